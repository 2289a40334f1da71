"""Tests of the builtin backend: contract, failures, and the physics of known spectra."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from simulators.analyses import implemented
from simulators.backends import make_simulator
from simulators.builtin import BuiltinSimulator
from simulators.catalogue import load_catalogue
from simulators.errors import SimulatorConfigError
from simulators.tally import SignalTally

BASE = dict(M1=200.0, M2=1500.0, M3=650.0, mQ12=3000.0, mQ3=3000.0, mL12=3000.0)
BASE.update(mL3=3000.0, mA=3000.0, A=0.0, mu=2000.0, tanb=10.0)
#: Every sparticle above 2.5 TeV: m(g̃) = 4.1 TeV, m(χ̃⁰₁) = 2.55 TeV.
DECOUPLED = dict(BASE, M1=2500.0, M2=3000.0, M3=4000.0, mQ12=5000.0, mQ3=5000.0)
DECOUPLED.update(mL12=4000.0, mL3=4000.0, mA=4000.0, mu=3500.0)
#: m(g̃) = 797 GeV, m(χ̃⁰₁) = 203 GeV, squarks at 3 TeV.
LIGHT_GLUINO = dict(BASE)
#: m(g̃) = 780 GeV, m(χ̃⁰₁) = 100 GeV.
LIGHTER_GLUINO = dict(BASE, M1=100.0, M3=630.0)
#: m(g̃) = 764 GeV, m(χ̃⁰₁) = 710 GeV.
COMPRESSED_GLUINO = dict(BASE, M1=700.0, M3=620.0, mu=2500.0)
#: m(t̃₁) = 522 GeV → t χ̃⁰₁ (100 GeV) at 100 %, gluino at 2.6 TeV.
LIGHT_STOP = dict(BASE, M1=100.0, M3=2500.0, mQ3=800.0, A=-1600.0, mu=1200.0)
LIGHT_STOP.update(mL12=2000.0, mL3=2000.0, mA=2000.0)

#: Small statistics for the default (fast) tests.
FAST = dict(min_events=100, max_events=200)


def _zero_signal_chi2() -> float:
    catalogue = load_catalogue(energy_tev=13.0).subset(implemented(13.0))
    return catalogue.zero_signal_chi2(13.0)


def test_contract_describe_check_and_pickle() -> None:
    simulator = make_simulator("builtin", {"max_events": 600})

    simulator.check()
    description = simulator.describe()
    clone = pickle.loads(pickle.dumps(simulator))

    assert description["energies"] == [13]
    assert sorted(description["analyses"][13]) == sorted(implemented(13.0))
    assert description["n_features"] == 56
    assert clone.max_events == 600


@pytest.mark.parametrize(
    "settings",
    [{"energies_tev": [14]}, {"model": "cmssm"}, {"min_events": 10, "max_events": 5}],
)
def test_check_rejects_bad_settings(settings: dict) -> None:
    with pytest.raises(SimulatorConfigError):
        BuiltinSimulator(**settings).check()


@pytest.mark.parametrize(
    ("name", "value", "need"),
    [
        ("event_factor", -3, "a finite number > 0"),
        ("event_factor", 0, "a finite number > 0"),
        ("event_factor", float("nan"), "a finite number > 0"),
        ("event_factor", "eight", "a finite number > 0"),
        ("event_factor", True, "a finite number > 0"),
        ("min_events", 0, "a whole number >= 1"),
        ("min_events", 250.5, "a whole number >= 1"),
        ("max_events", 100, "a whole number >= min_events (500)"),
        ("skip_below_events", -0.1, "a finite number >= 0"),
        ("signal_systematic", -0.1, "a finite number >= 0"),
        ("electroweak_threshold_gev", -1.0, "a finite number >= 0"),
        ("timeout_s", 0, "a finite number > 0"),
        ("timeout_s", float("inf"), "a finite number > 0"),
        ("cap", -100.0, "a finite number > 0"),
        ("refine_target_error", -0.5, "a finite number >= 0"),
        ("refine_max_factor", 0.5, "a finite number >= 1"),
        ("refine_max_seconds", 0, "a finite number > 0"),
    ],
)
def test_a_nonsensical_number_is_named_with_its_value(name, value, need) -> None:
    simulator = make_simulator("builtin", {name: value})

    with pytest.raises(SimulatorConfigError) as info:
        simulator.check()

    assert str(info.value) == f"builtin simulator: {name} = {value!r}: must be {need}"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (
            {"electroweak_energies_tev": [8.0, -13.0]},
            "electroweak_energies_tev = -13.0",
        ),
        ({"k_factors": {"gluino_gluino": 0.0}}, "k_factors.gluino_gluino = 0.0"),
    ],
)
def test_a_bad_entry_of_a_list_or_mapping_is_named(settings, named) -> None:
    with pytest.raises(SimulatorConfigError, match=f"builtin simulator: {named}: "):
        make_simulator("builtin", settings).check()


def test_whole_floats_are_event_counts() -> None:
    # YAML writes 1e3 as a float; a count with a whole value is fine.
    simulator = make_simulator("builtin", {"min_events": 1e2, "max_events": 2e2})

    simulator.check()


def test_a_setting_of_the_wrong_kind_is_a_config_error() -> None:
    with pytest.raises(SimulatorConfigError, match="simulator backend 'builtin': "):
        make_simulator("builtin", {"energies_tev": "thirteen"})


def test_a_misspelt_setting_is_named_with_the_key_it_means() -> None:
    with pytest.raises(SimulatorConfigError) as info:
        make_simulator("builtin", {"event_facter": 3.0, "max_events": 600})

    assert str(info.value) == (
        "simulator.settings: unknown key(s) ['event_facter'] for backend 'builtin'"
        " (event_facter: a misspelling of event_factor?)"
    )


def test_an_unknown_setting_like_no_other_lists_the_keys_the_backend_takes() -> None:
    with pytest.raises(
        SimulatorConfigError,
        match=r"simulator\.settings: unknown key\(s\) \['xyz'\] for "
        r"backend 'builtin'; it accepts \[.*'event_factor'",
    ):
        make_simulator("builtin", {"xyz": 3.0})


def test_the_simulator_reads_points_of_the_campaign_space() -> None:
    assert make_simulator("builtin", {}).model == "pmssm11"
    assert make_simulator("builtin", {}, model="pmssm19").model == "pmssm19"
    assert make_simulator("builtin", {"model": "pmssm19"}, model="pmssm19").model == (
        "pmssm19"
    )
    with pytest.raises(
        SimulatorConfigError,
        match=r"simulator\.settings\.model is 'pmssm11' but the points come from "
        r"the 'pmssm19' space",
    ):
        make_simulator("builtin", {"model": "pmssm11"}, model="pmssm19")


def test_a_backend_without_a_model_setting_is_not_given_one() -> None:
    with pytest.raises(
        SimulatorConfigError, match=r"needs the setting\(s\) \['pool'\]"
    ):
        make_simulator("replay", {}, model="pmssm19")


def test_a_bad_point_fails_without_raising(tmp_path: Path) -> None:
    result = BuiltinSimulator(**FAST).simulate({"M1": 100.0}, seed=1, workdir=tmp_path)

    assert result.status == "failed"
    assert "lacks parameters" in result.reason
    assert "Traceback" in result.extra["traceback"]


def test_pre_selection_rejects_a_wino_below_the_bino(tmp_path: Path) -> None:
    # M2 < M1 but chargino at 95 GeV: below the LEP bound of 103.5 GeV
    point = dict(BASE, M1=300.0, M2=90.0)

    result = BuiltinSimulator(**FAST).simulate(point, seed=1, workdir=tmp_path)

    assert result.status == "rejected"
    assert result.reason
    assert result.masses[1000024] < 103.5


def test_timeout_becomes_a_failed_result(tmp_path: Path) -> None:
    simulator = BuiltinSimulator(timeout_s=1e-6, **FAST)

    result = simulator.simulate(LIGHT_GLUINO, seed=1, workdir=tmp_path)

    assert result.status == "failed"
    assert "time limit" in result.reason


def test_pythia_failure_becomes_a_failed_result(tmp_path: Path, monkeypatch) -> None:
    from simulators import events

    monkeypatch.setitem(
        events.PROCESS_GROUPS, "gluino_gluino", ("SUSY:noSuchProcess = on",)
    )

    result = BuiltinSimulator(**FAST).simulate(LIGHT_GLUINO, seed=1, workdir=tmp_path)

    assert result.status == "failed"
    assert "Pythia rejected the setting" in result.reason


def test_decoupled_spectrum_gives_the_zero_signal_chi2(tmp_path: Path) -> None:
    result = BuiltinSimulator(**FAST).simulate(DECOUPLED, seed=1, workdir=tmp_path)

    assert result.status == "ok"
    assert result.chi2[13] == pytest.approx(_zero_signal_chi2(), abs=0.01)
    assert all(n == 0.0 and error == 0.0 for n, error in result.signal[13].values())
    assert result.masses[1000021] > 4000.0


def test_light_gluino_result_is_complete(tmp_path: Path) -> None:
    result = BuiltinSimulator(**FAST).simulate(LIGHT_GLUINO, seed=1, workdir=tmp_path)

    assert result.status == "ok", result.reason
    assert result.chi2[13] > _zero_signal_chi2() + 10.0
    assert set(result.chi2_analysis[13]) == set(implemented(13.0))
    assert result.features is not None and len(result.features) == 56
    assert result.extra["cross_sections_fb_13"]["gluino_gluino"] > 500.0
    stages = {"spectrum", "preselection", "decays", "events", "detector", "analysis"}
    assert stages | {"statistics", "total"} <= set(result.timings)
    assert set(result.extra["cpu_timings_13"]) == {"events", "detector", "analysis"}


@pytest.mark.slow
def test_light_gluino_hits_the_cap(tmp_path: Path) -> None:
    # Uncapped about 120 with the default 10 % signal systematic (about 95 with 20 %:
    # the log-normal signal nuisance saturates each region's chi-square).
    result = BuiltinSimulator().simulate(LIGHTER_GLUINO, seed=2, workdir=tmp_path)

    assert result.chi2[13] == pytest.approx(100.0)


@pytest.mark.slow
def test_compressed_gluinos_light_up_the_monojet_regions(tmp_path: Path) -> None:
    result = BuiltinSimulator().simulate(COMPRESSED_GLUINO, seed=3, workdir=tmp_path)

    signal = result.signal[13]
    monojet = signal["atlas_1604_07773/IM1"][0]
    assert monojet > 100.0
    # the monojet selection beats the multijet one on a compressed spectrum
    assert monojet > 2.0 * max(
        signal[f"atlas_1605_03814/{sr}"][0] for sr in ("2jl", "2jm")
    )


@pytest.mark.slow
def test_light_stops_light_up_b_jet_and_one_lepton_regions(tmp_path: Path) -> None:
    result = BuiltinSimulator().simulate(LIGHT_STOP, seed=4, workdir=tmp_path)

    signal = result.signal[13]
    one_lepton = sum(
        v[0] for k, v in signal.items() if k.startswith("atlas_conf_2015_076")
    )
    b_jets = sum(v[0] for k, v in signal.items() if k.startswith("atlas_conf_2015_067"))
    assert one_lepton > 1.0
    assert b_jets > 1.0


def test_signal_from_a_real_spheno_card(shared_dir: Path) -> None:
    from simulators.builtin import signal_from_card
    from simulators.events import GenerationSettings
    from simulators.slha import read_spectrum

    card = shared_dir / "fixtures" / "spheno" / "light_gluino" / "SPheno.spc"
    settings = GenerationSettings(probe_events=100, min_events=100, max_events=200)

    energy_signal = signal_from_card(
        card, read_spectrum(card).masses, 13.0, seed=3, settings=settings
    )

    # m(g̃) = 1351 GeV → q q̄ χ̃: the multijet search sees it, the errors are sane
    multijet = energy_signal.signal["atlas_1605_03814"]
    assert max(n for n, _ in multijet.values()) > 1.0
    for regions in energy_signal.signal.values():
        for n, error in regions.values():
            assert 0.0 <= error <= n + 1e-12 or n == 0.0
    assert set(energy_signal.signal) == set(implemented(13.0))
    pairs = energy_signal.process_cross_sections_fb
    assert pairs[(1000021, 1000021)] == pytest.approx(
        energy_signal.cross_sections_fb["gluino_gluino"]
    )


def test_replica_averaged_signal_and_its_error() -> None:
    # 3 generated events of one group, σ = 7 fb over 3 events at 1 fb⁻¹, so each
    # carries 7/3 expected events; 2 replicas each: event 0 passes in both, event 1
    # in one, event 2 in none.
    analysis = SimpleNamespace(name="a", signal_regions=["SR"], luminosity_fb=1.0)
    tally = SignalTally([analysis], seed=0)
    tally.add_events("g", np.array([[1.0, 0.5, 0.0]]))
    tally.set_cross_section("g", 0, 3, 7.0, 0.0)

    (n_signal,), (error,) = tally.signal()

    weight = 7.0 / 3.0
    assert n_signal == pytest.approx(weight * 1.5)
    assert error == pytest.approx(weight * np.sqrt(1.0 + 0.25))


def test_detector_replicas_must_be_a_positive_integer() -> None:
    with pytest.raises(SimulatorConfigError, match="detector_replicas"):
        BuiltinSimulator(detector_replicas=0).check()


#: m(g̃) = 1.35 TeV: χ² a little above the zero-signal value, with Monte Carlo noise.
HEAVY_GLUINO = dict(BASE, M3=1150.0)


def test_refinement_adds_events_until_its_limit(tmp_path: Path) -> None:
    plain = BuiltinSimulator(**FAST, refine_target_error=None)
    refining = BuiltinSimulator(
        **FAST,
        refine_target_error=1e-3,
        refine_chi2_window=(0.0, 99.0),
        refine_max_factor=3.0,
    )

    first = plain.simulate(HEAVY_GLUINO, seed=2, workdir=tmp_path / "a")
    refined = refining.simulate(HEAVY_GLUINO, seed=2, workdir=tmp_path / "b")

    before, after = first.extra["refinement_13"], refined.extra["refinement_13"]
    assert before["stopped"] == "not refined" and before["factor"] == 1.0
    assert after["stopped"] == "most events reached"
    assert after["factor"] == pytest.approx(3.0)
    # the first pass is the same events with the same seed; refinement adds twice
    # as many again to every group beyond its 100 probe events (the others expect
    # less than one event and stay as they are)
    assert after["first_chi2"] == pytest.approx(first.chi2[13])
    n_first = first.extra["n_events_13"]
    assert any(n > 100 for n in n_first.values())
    assert refined.extra["n_events_13"] == {
        group: 3 * n if n > 100 else n for group, n in n_first.items()
    }
    assert after["mc_error"] < after["first_mc_error"]
    assert refined.chi2[13] == pytest.approx(after["refined_chi2"])


def test_refinement_keeps_the_first_pass_when_its_time_runs_out(tmp_path: Path) -> None:
    simulator = BuiltinSimulator(
        **FAST,
        refine_target_error=1e-3,
        refine_chi2_window=(0.0, 99.0),
        refine_max_seconds=1e-3,
    )

    result = simulator.simulate(HEAVY_GLUINO, seed=2, workdir=tmp_path)

    info = result.extra["refinement_13"]
    assert result.status == "ok"
    assert info["stopped"] == "time budget spent"
    assert info["factor"] == 1.0
    assert result.chi2[13] == pytest.approx(info["first_chi2"])


def test_points_outside_the_window_are_not_refined(tmp_path: Path) -> None:
    simulator = BuiltinSimulator(
        **FAST, refine_target_error=1e-3, refine_chi2_window=(99.0, 99.5)
    )

    result = simulator.simulate(HEAVY_GLUINO, seed=2, workdir=tmp_path)

    assert result.extra["refinement_13"]["stopped"] == "not refined"
    assert result.extra["refinement_13"]["mc_error"] > 0.0


@pytest.mark.parametrize(
    "settings",
    [
        {"refine_target_error": -1.0},
        {"refine_target_error": "small"},
        {"refine_chi2_window": (95.0, 60.0)},
        {"refine_max_factor": 0.5},
        {"refine_max_seconds": 0.0},
    ],
)
def test_check_rejects_bad_refinement_settings(settings: dict) -> None:
    with pytest.raises(SimulatorConfigError, match="refine"):
        BuiltinSimulator(**settings).check()


def test_longest_point_time_counts_the_refinement_of_every_energy() -> None:
    simulator = BuiltinSimulator(
        energies_tev=(8.0, 13.0), timeout_s=100.0, refine_max_seconds=50.0
    )
    assert simulator.max_seconds_per_point == 200.0
    assert (
        BuiltinSimulator(
            timeout_s=100.0, refine_target_error=None
        ).max_seconds_per_point
        == 100.0
    )
