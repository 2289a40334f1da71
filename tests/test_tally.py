"""Tests of the signal tally: weighted pass counts, their errors and bootstrap."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from simulators.tally import SignalTally

ONE_SR = [SimpleNamespace(name="a", signal_regions=["SR"], luminosity_fb=2.0)]


def test_batches_add_up_to_the_whole_sample() -> None:
    rng = np.random.default_rng(3)
    fractions = rng.uniform(size=(1, 1000)) < 0.3
    whole = SignalTally(ONE_SR, seed=1)
    whole.add_events("g", fractions)
    whole.set_cross_section("g", 0, 1000, 50.0, 1.0)
    split = SignalTally(ONE_SR, seed=1)
    split.add_events("g", fractions[:, :400])
    split.add_events("g", fractions[:, 400:])
    split.set_cross_section("g", 0, 1000, 50.0, 1.0)

    assert split.signal()[0] == pytest.approx(whole.signal()[0], rel=1e-12)
    assert split.signal()[1] == pytest.approx(whole.signal()[1], rel=1e-12)
    # 2 fb⁻¹ × 50 fb / 1000 events = 0.1 expected events per generated event
    passed = fractions.sum()
    assert whole.signal()[0][0] == pytest.approx(0.1 * passed)
    assert whole.signal()[1][0] == pytest.approx(0.1 * np.sqrt(passed))


def test_cross_sections_of_two_generator_runs_are_event_weighted() -> None:
    tally = SignalTally(ONE_SR, seed=1)
    tally.add_events("g", np.ones((1, 400)))
    tally.set_cross_section("g", 0, 100, 10.0, 1.0)
    tally.set_cross_section("g", "refine", 300, 14.0, 0.5)

    # (100 × 10 + 300 × 14) / 400 = 13 fb; every one of the 400 events passes
    assert tally.cross_sections_fb() == {"g": pytest.approx(13.0)}
    assert tally.signal()[0][0] == pytest.approx(2.0 * 13.0)


def test_bootstrap_spread_matches_the_poisson_error_of_a_count() -> None:
    rng = np.random.default_rng(5)
    fractions = (rng.uniform(size=(1, 10_000)) < 0.2).astype(float)
    tally = SignalTally(ONE_SR, seed=2, n_bootstrap=2000)
    tally.add_events("g", fractions)
    tally.set_cross_section("g", 0, 10_000, 5000.0, 0.0)

    replicas = tally.bootstrap_signal()[:, 0]

    # weight 2 × 5000 / 10 000 = 1 event per generated event: the spread of the
    # passing count k is sqrt(k); 2000 replicas measure it to about 2 %
    k = fractions.sum()
    assert replicas.mean() == pytest.approx(k, rel=0.01)
    assert replicas.std(ddof=1) == pytest.approx(np.sqrt(k), rel=0.08)


def test_bootstrap_includes_the_cross_section_error() -> None:
    tally = SignalTally(ONE_SR, seed=4, n_bootstrap=2000)
    tally.add_events("g", np.ones((1, 10_000)))
    tally.set_cross_section("g", 0, 10_000, 1.0e-3, 1.0e-4)

    replicas = tally.bootstrap_signal()[:, 0]

    # 2 fb⁻¹ × 1e-3 fb = 2e-3 events with a 10 % cross-section error; the
    # counting error, 1/sqrt(1e4) = 1 %, adds in quadrature: sqrt(0.1² + 0.01²)
    expected = np.hypot(0.10, 0.01)
    assert replicas.std(ddof=1) / 2.0e-3 == pytest.approx(expected, rel=0.08)


def test_catalogue_regions_without_a_selection_get_zero_signal() -> None:
    tally = SignalTally(ONE_SR, seed=1)
    tally.add_events("g", np.ones((1, 10)))
    tally.set_cross_section("g", 0, 10, 5.0, 0.0)
    catalogue = SimpleNamespace(
        analyses={"a": SimpleNamespace(region_names=["other", "SR"])}
    )
    s, error = tally.signal()

    rows, errors = tally.arrays_by_analysis(catalogue, s, error)["a"]

    assert rows.tolist() == [[0.0, 10.0]]
    assert errors[0, 0] == 0.0


def test_fractions_of_the_wrong_shape_are_refused() -> None:
    tally = SignalTally(ONE_SR, seed=1)
    with pytest.raises(ValueError, match="shape"):
        tally.add_events("g", np.ones((2, 10)))
