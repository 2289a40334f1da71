"""Tests of the SR combination: choice per disjoint group, sums, cap, zero signal."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulators.catalogue import catalogue_from_dict, load_catalogue
from simulators.combination import combine, combine_many
from simulators.errors import CatalogueError
from simulators.likelihood import chi2_signal_region


def deviance(lam: float, n: float) -> float:
    """Poisson deviance 2 [λ − n + n ln(n/λ)] (chi-square without uncertainties)."""
    return 2 * (lam - n + (n * math.log(n / lam) if n > 0 else 0.0))


def region(n_obs, n_bkg, s95_exp, bkg_error=None):
    return {
        "n_obs": n_obs,
        "n_bkg": n_bkg,
        "bkg_error": bkg_error,
        "s95_obs": s95_exp,
        "s95_exp": s95_exp,
    }


@pytest.fixture
def toy():
    """Two analyses at 13 TeV, no background errors; "jets" has two groups."""
    common = {
        "sqrt_s_tev": 13.0,
        "luminosity_fb": 3.2,
        "reference": "t",
        "description": "t",
    }
    return catalogue_from_dict(
        {
            "analyses": {
                "jets": {
                    **common,
                    "signal_regions": {
                        "A": region(10.0, 8.0, 5.0),
                        "B": region(3.0, 4.0, 2.0),
                        "C": region(20.0, 25.0, 10.0),
                    },
                    "groups": [["A", "B"], ["C"]],
                },
                "leptons": {**common, "signal_regions": {"L": region(1.0, 2.0, 3.0)}},
            }
        }
    )


def test_picks_largest_signal_over_expected_limit_per_group(toy) -> None:
    # A: 6/5 = 1.2 beats B: 2/2 = 1.0; C alone in its group; "leptons" has no signal.
    signal = {"jets": {"A": (6.0, 0.0), "B": (2.0, 0.0), "C": (5.0, 0.0)}}
    result = combine(toy, signal)

    assert result.chosen == {"jets": ["A", "C"], "leptons": ["L"]}
    jets = deviance(14.0, 10.0) + deviance(30.0, 20.0)
    assert result.per_analysis["jets"] == pytest.approx(jets)
    assert result.per_analysis["leptons"] == pytest.approx(deviance(2.0, 1.0))
    assert result.total == pytest.approx(jets + deviance(2.0, 1.0))
    assert result.per_region["jets"]["B"] == pytest.approx(deviance(6.0, 3.0))


def test_total_is_capped(toy) -> None:
    signal = {"jets": {"A": (200.0, 0.0)}}
    result = combine(toy, signal)
    assert result.uncapped > 100
    assert result.total == 100.0
    assert combine(toy, signal, cap=50.0).total == 50.0
    assert combine(toy, signal, cap=math.inf).total == result.uncapped


def test_zero_signal_uses_background_only_limit_and_smallest_expected_limit(toy):
    result = combine(toy, {})
    assert result.chosen == {"jets": ["B", "C"], "leptons": ["L"]}
    expected = deviance(4.0, 3.0) + deviance(25.0, 20.0) + deviance(2.0, 1.0)
    assert result.total == pytest.approx(expected)
    assert toy.zero_signal_chi2() == pytest.approx(expected)


def test_signal_systematic_adds_in_quadrature(toy) -> None:
    result = combine(toy, {"leptons": {"L": (4.0, 0.3)}}, signal_systematic=0.2)
    sigma = math.hypot(0.3, 0.2 * 4.0)
    expected = chi2_signal_region(4.0, sigma, 2.0, 0.0, 1.0)
    assert result.per_analysis["leptons"] == pytest.approx(float(expected))


@pytest.mark.parametrize("energy", [8, 13])
def test_decoupled_equals_tiny_equal_signal(energy) -> None:
    catalogue = load_catalogue(energy_tev=energy)
    tiny = {
        name: {sr: (1e-6, 1e-7) for sr in analysis.signal_regions}
        for name, analysis in catalogue.analyses.items()
    }
    decoupled = combine(catalogue, {})
    heavy = combine(catalogue, tiny)
    assert heavy.chosen == decoupled.chosen
    assert heavy.total == pytest.approx(decoupled.total, abs=0.01)
    assert decoupled.total == pytest.approx(catalogue.zero_signal_chi2())


def test_light_spectrum_hits_the_cap() -> None:
    catalogue = load_catalogue(energy_tev=13)
    signal = {"atlas_1605_03814": {"4jt": (150.0, 5.0)}}
    assert combine(catalogue, signal).total == 100.0


def test_aliases_accepted_in_signal() -> None:
    catalogue = load_catalogue(energy_tev=13)
    by_alias = combine(catalogue, {"atlas_1605_04285": {"6j": (5.0, 1.0)}})
    by_name = combine(catalogue, {"atlas_conf_2015_076": {"6j": (5.0, 1.0)}})
    assert by_alias.total == by_name.total
    assert by_alias.chosen["atlas_conf_2015_076"] == ["6j"]


@pytest.mark.parametrize(
    ("signal", "message"),
    [
        ({"atlas_0000_0000": {"x": (1.0, 0.1)}}, "atlas_0000_0000"),
        ({"atlas_1605_03814": {"9j": (1.0, 0.1)}}, r"atlas_1605_03814.*9j"),
        ({"atlas_1605_03814": {"4jt": (-1.0, 0.1)}}, r"atlas_1605_03814.*4jt"),
        ({"atlas_1605_03814": {"4jt": (math.nan, 0.1)}}, r"atlas_1605_03814.*4jt"),
        ({"atlas_1605_03814": {"4jt": 3.0}}, r"atlas_1605_03814.*4jt"),
    ],
)
def test_bad_signal_is_named(signal, message) -> None:
    catalogue = load_catalogue(energy_tev=13)
    with pytest.raises(CatalogueError, match=message):
        combine(catalogue, signal)


def test_many_spectra_at_once_match_one_by_one() -> None:
    catalogue = load_catalogue(energy_tev=13)
    rng = np.random.default_rng(5)
    m = 12
    arrays = {}
    for name, analysis in catalogue.analyses.items():
        k = len(analysis.signal_regions)
        s = rng.exponential(5.0, (m, k)) * (rng.uniform(size=(m, k)) < 0.6)
        arrays[name] = (s, 0.1 * s)
    arrays["atlas_1605_03814"][0][0] = 0.0  # one spectrum without signal there
    batch = combine_many(catalogue, arrays, signal_systematic=0.2)

    for i in range(m):
        one = {
            name: dict(zip(a.region_names, zip(s[i], e[i], strict=True), strict=True))
            for (name, (s, e)), a in zip(
                arrays.items(), catalogue.analyses.values(), strict=True
            )
        }
        single = combine(catalogue, one, signal_systematic=0.2)
        assert batch.total[i] == pytest.approx(single.total)
        for name, analysis in catalogue.analyses.items():
            assert batch.per_analysis[name][i] == pytest.approx(
                single.per_analysis[name]
            )
            names = [analysis.region_names[j] for j in batch.chosen[name][i]]
            assert names == single.chosen[name]


def test_many_spectra_reject_bad_shapes() -> None:
    catalogue = load_catalogue(energy_tev=13, analyses=["atlas_1605_03814"])
    with pytest.raises(CatalogueError, match=r"atlas_1605_03814.*shape"):
        combine_many(
            catalogue, {"atlas_1605_03814": (np.ones((2, 3)), np.ones((2, 3)))}
        )
    bad = np.ones((2, 7))
    bad[1, 3] = -1.0
    with pytest.raises(CatalogueError, match="atlas_1605_03814, SR 4jt"):
        combine_many(catalogue, {"atlas_1605_03814": (bad, np.ones((2, 7)))})
