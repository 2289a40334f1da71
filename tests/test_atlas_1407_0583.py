"""The 8 TeV one-lepton stop search (arXiv:1407.0583) on hand-built events.

Each signal region has one event that passes it; variations of that event fail
one key cut each, with the thresholds of the publication's tables written out
here: E_T^miss just below the SR's threshold, the lepton moved onto the E_T^miss
direction (m_T = 0), the b-tags removed (or added, for the b-veto SR), a second
lepton, the lepton moved across the 25 GeV hard/soft boundary, one jet fewer than
required, and a τ-tagged jet of opposite charge where the SR has a τ veto.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from simulators.analyses import ANALYSES, implemented
from simulators.analyses.atlas_1407_0583 import SIGNAL_REGIONS, _amt2_mt_bins
from simulators.detector import PhysicsObjects

# Passing events: jets (pT GeV, η, φ, b-tagged), muon (pT, η, φ), E_T^miss (GeV, φ).
TOP = dict(
    jets=[(304.0, 1.2, 1.73, True), (95.0, -0.6, 1.71, False),
          (88.0, -1.2, 1.27, False), (53.0, -1.1, 0.29, False)],
    lepton=(197.0, 1.0, 1.21), met=(280.0, -1.21),
)  # fmt: skip
BOOSTED = dict(
    jets=[(309.0, 0.2, -1.65, False), (193.0, 0.6, -1.61, True),
          (169.0, 0.7, -2.71, True), (77.0, 0.8, -2.12, True)],
    lepton=(90.0, 1.1, -2.59), met=(335.0, -0.63),
)  # fmt: skip
TWO_B = dict(
    jets=[(315.0, -0.7, 2.57, True), (276.0, 0.3, -2.33, True),
          (215.0, -0.4, -2.16, False), (178.0, 1.2, 0.14, False)],
    lepton=(42.0, 0.7, -2.93), met=(303.0, 0.39),
)  # fmt: skip
EVENTS = {
    "tN_diag_a": dict(
        jets=[(248.0, -1.1, 3.03, True), (146.0, 1.3, -0.63, False),
              (66.0, -1.0, -2.29, False), (41.0, -0.7, -1.54, False)],
        lepton=(175.0, -0.1, -2.38), met=(146.0, -1.61),
    ),
    "tN_diag_b": dict(
        jets=[(223.0, -0.2, -2.89, False), (127.0, -0.4, -2.07, False),
              (58.0, 0.8, -1.34, True), (55.0, -0.3, -1.66, True)],
        lepton=(178.0, -0.4, -1.49), met=(135.0, 0.59),
    ),
    "tN_diag_c": dict(
        jets=[(246.0, -0.1, 0.23, True), (194.0, 0.1, -1.31, False),
              (49.0, 1.5, -1.15, True), (42.0, 0.6, -1.48, False)],
        lepton=(250.0, 0.2, 2.16), met=(585.0, 1.84),
    ),
    "tN_diag_d": TOP,
    "tN_med": TOP,
    "tNbC_mix": TOP,
    "tN_high": BOOSTED,
    "tN_boost": BOOSTED,
    "bCc_diag": dict(
        jets=[(250.0, 0.5, 2.88, False), (162.0, 0.0, 2.43, False),
              (145.0, 0.1, -2.82, False), (123.0, -0.7, -0.71, False)],
        lepton=(75.0, -0.3, -1.94), met=(274.0, 0.25),
    ),
    "bCd_bulk_a": dict(
        jets=[(232.0, -0.9, 2.66, True), (172.0, 0.6, 0.13, True),
              (103.0, 0.2, 2.67, False), (26.0, 0.7, 0.76, False)],
        lepton=(52.0, 0.0, 2.97), met=(335.0, -2.61),
    ),
    "bCd_bulk_b": dict(
        jets=[(311.0, 1.0, 2.53, False), (272.0, 1.5, 1.73, True),
              (164.0, -1.0, 1.9, False), (58.0, 0.2, 0.92, False)],
        lepton=(74.0, 0.4, 3.07), met=(214.0, 0.66),
    ),
    "bCd_bulk_c": dict(
        jets=[(313.0, -0.6, 1.13, True), (208.0, 0.7, -2.06, True),
              (167.0, 1.4, -2.41, False), (116.0, 0.7, -1.93, True)],
        lepton=(109.0, 0.6, -0.44), met=(547.0, -0.89),
    ),
    "bCd_bulk_d": TWO_B,
    "bCd_high1": TWO_B,
    "bCd_high2": TWO_B,
    "bCb_med2_a": dict(
        jets=[(347.0, -0.7, -1.94, True), (276.0, -0.1, 1.47, True),
              (134.0, 0.6, 0.91, False), (94.0, -0.2, -1.66, True)],
        lepton=(49.0, 0.5, -1.01), met=(187.0, 0.12),
    ),
    "bCb_med2_b": BOOSTED,
    "bCb_med2_c": dict(
        jets=[(313.0, -0.6, 1.13, True), (208.0, 0.7, -2.06, True),
              (167.0, 1.4, -2.41, False), (116.0, 0.7, -1.93, True)],
        lepton=(109.0, 0.6, -0.44), met=(547.0, -0.89),
    ),
    "bCb_med2_d": TWO_B,
    "threeBody_a": dict(
        jets=[(227.0, 0.7, 1.45, False), (133.0, 1.3, 0.84, False),
              (114.0, -0.7, -1.3, True), (56.0, -0.4, 2.77, True)],
        lepton=(26.0, -1.0, -2.05), met=(235.0, 2.78),
    ),
    "threeBody_b": dict(
        jets=[(259.0, 0.6, -0.95, False), (231.0, -1.4, 1.52, False),
              (205.0, 0.9, 2.61, False), (106.0, 0.9, 2.34, True)],
        lepton=(39.0, 0.7, 2.51), met=(541.0, -1.48),
    ),
    "threeBody_c": dict(
        jets=[(227.0, 0.7, 1.45, False), (133.0, 1.3, 0.84, False),
              (114.0, -0.7, -1.3, True), (90.0, -0.4, 2.77, True)],
        lepton=(26.0, -1.0, -2.05), met=(235.0, 2.78),
    ),
    "threeBody_d": dict(
        jets=[(279.0, 0.9, 2.66, True), (228.0, -0.8, -2.19, False),
              (154.0, -0.1, -0.1, True), (130.0, 0.3, 2.87, False)],
        lepton=(56.0, 0.1, 0.42), met=(495.0, 2.0),
    ),
    "bCa_low": dict(
        jets=[(254.0, 1.3, 0.24, False), (196.0, 0.7, 0.89, True)],
        lepton=(9.0, 0.1, 1.3), met=(576.0, -1.57),
    ),
    "bCa_med": dict(
        jets=[(233.0, 0.3, 2.04, False), (195.0, -1.3, -2.28, True),
              (139.0, 0.9, -2.5, True), (98.0, 1.4, 2.62, False)],
        lepton=(17.0, -0.8, -2.44), met=(352.0, -0.5),
    ),
    "bCb_med1": dict(
        jets=[(270.0, -1.4, -1.82, True), (265.0, -1.3, 0.73, True)],
        lepton=(11.0, 0.1, 2.49), met=(260.0, -2.55),
    ),
    "bCb_high": dict(
        jets=[(270.0, -1.4, -1.82, True), (265.0, -1.3, 0.73, True),
              (191.0, -0.4, 1.17, False), (148.0, -1.4, -0.48, False)],
        lepton=(11.0, 0.1, 2.49), met=(594.0, -2.55),
    ),
}  # fmt: skip

#: E_T^miss thresholds (GeV) of the publication's SR tables.
MET_CUT = {
    "tN_diag": 125.0, "tN_med": 200.0, "tN_high": 320.0, "tN_boost": 315.0,
    "bCc_diag": 140.0, "bCd_bulk": 150.0, "threeBody": 150.0, "tNbC_mix": 270.0,
    "bCb_med2": 170.0, "bCd_high1": 150.0, "bCd_high2": 160.0, "bCa_low": 370.0,
    "bCa_med": 300.0, "bCb_med1": 150.0, "bCb_high": 250.0,
}  # fmt: skip
#: Jets each SR requires (bCa_low and the bCb SRs two, bCc_diag and bCa_med three).
JETS_NEEDED = {"bCa_low": 2, "bCb_med1": 2, "bCb_high": 2, "bCc_diag": 3}
JETS_NEEDED["bCa_med"] = 3
SOFT = ("bCa_low", "bCa_med", "bCb_med1", "bCb_high")
TAU_VETO = ("tN_diag", "bCd_bulk", "threeBody", "tNbC_mix", "bCb_med2", "bCd_high")
BINNED = ("tN_diag", "bCd_bulk", "threeBody", "bCb_med2")


def _family(sr: str) -> str:
    return next((f for f in BINNED if sr.startswith(f + "_")), sr)


def _record(pt: float, eta: float, phi: float, **extra) -> dict:
    record = dict(
        pt=pt,
        eta=eta,
        phi=phi,
        m=0.0,
        px=pt * np.cos(phi),
        py=pt * np.sin(phi),
        pz=pt * np.sinh(eta),
        e=pt * np.cosh(eta),
    )
    record.update(extra)
    return record


def _jet(pt, eta, phi, btag, tautag=False, charge=0) -> dict:
    flavour = 15 if tautag else (5 if btag else 0)
    return _record(
        pt, eta, phi, btag=btag, tautag=tautag, charge=charge, flavour=flavour
    )


def _lepton(pdg: int, pt: float, eta: float, phi: float) -> dict:
    return _record(pt, eta, phi, id=pdg, status=1, charge=-int(np.sign(pdg)))


def _objects(jets, muons=(), electrons=(), met=(0.0, 0.0)) -> PhysicsObjects:
    empty_jet = ak.Array([[_jet(1.0, 0.0, 0.0, False)]])[:, :0]
    empty_lepton = ak.Array([[_lepton(11, 1.0, 0.0, 0.0)]])[:, :0]
    jets_array = ak.Array([list(jets)]) if jets else empty_jet
    e_array = ak.Array([list(electrons)]) if electrons else empty_lepton
    m_array = ak.Array([list(muons)]) if muons else empty_lepton
    met_x = np.array([met[0] * np.cos(met[1])])
    met_y = np.array([met[0] * np.sin(met[1])])
    return PhysicsObjects(jets_array, e_array, m_array, empty_lepton, met_x, met_y)


def _spec_objects(specs: list[dict]) -> PhysicsObjects:
    """All events of ``specs`` in one batch (one selection call keeps tests fast)."""
    jets, muons, electrons, met_x, met_y = [], [], [], [], []
    for spec in specs:
        jets.append([_jet(*j) for j in spec["jets"]] + list(spec.get("extra_jets", [])))
        muons.append([_lepton(13, *spec["lepton"])])
        electrons.append(list(spec.get("electrons", [])))
        met_x.append(spec["met"][0] * np.cos(spec["met"][1]))
        met_y.append(spec["met"][0] * np.sin(spec["met"][1]))
    template = ak.Array([[_lepton(11, 1.0, 0.0, 0.0)]])
    electron_array = ak.concatenate(
        [template[:, :0] if not e else ak.Array([e]) for e in electrons]
    )
    return PhysicsObjects(
        ak.Array(jets),
        electron_array,
        ak.Array(muons),
        template[:, :0][np.zeros(len(specs), dtype=int)],
        np.array(met_x),
        np.array(met_y),
    )


def _variants(sr: str) -> dict[str, dict]:
    """The passing event of ``sr`` and its one-cut failures."""
    event = EVENTS[sr]
    pt, eta, phi = event["lepton"]
    flip = sr == "bCc_diag"  # the b-veto region: tag every jet instead
    variants = {
        "pass": {},
        "met_low": dict(met=(MET_CUT[_family(sr)] - 1.0, event["met"][1])),
        "mt_zero": dict(lepton=(pt, eta, event["met"][1])),
        "b_tags": dict(jets=[(p, e, f, flip) for p, e, f, _ in event["jets"]]),
        "second_lepton": dict(electrons=[_lepton(11, 15.0, -2.0, 0.0)]),
        "lepton_side": dict(lepton=(30.0 if sr in SOFT else 20.0, eta, phi)),
        "few_jets": dict(jets=event["jets"][: JETS_NEEDED.get(sr, 4) - 1]),
        # The muon has charge -1; a 22 GeV tau-tagged jet lies below the 25 GeV
        # signal-jet threshold, so only the tau veto sees it.
        "tau_opposite": dict(
            extra_jets=[_jet(22.0, 2.0, 0.0, False, tautag=True, charge=1)]
        ),
        "tau_same": dict(
            extra_jets=[_jet(22.0, 2.0, 0.0, False, tautag=True, charge=-1)]
        ),
    }
    return {name: dict(event, **change) for name, change in variants.items()}


EXTRA = {
    "bCb_med1_high_met": dict(EVENTS["bCb_med1"], met=(594.0, -2.55)),
    "bCa_med_lead_b": dict(
        EVENTS["bCa_med"],
        jets=[
            (*EVENTS["bCa_med"]["jets"][0][:3], True),
            *EVENTS["bCa_med"]["jets"][1:],
        ],
    ),
    "top_met_190": dict(TOP, met=(190.0, -1.21)),
}


@functools.cache
def _results() -> dict[tuple[str, str], set[str]]:
    keys, specs = [], []
    for sr in SIGNAL_REGIONS:
        for name, spec in _variants(sr).items():
            keys.append((sr, name))
            specs.append(spec)
    for name, spec in EXTRA.items():
        keys.append(("extra", name))
        specs.append(spec)
    masks = ANALYSES["atlas_1407_0583"].select(_spec_objects(specs))
    assert set(masks) == set(SIGNAL_REGIONS)
    return {
        key: {sr for sr, mask in masks.items() if bool(mask[i])}
        for i, key in enumerate(keys)
    }


def _passed(sr: str, variant: str) -> set[str]:
    return _results()[(sr, variant)]


def test_signal_region_names_match_both_catalogues(
    shared_dir: Path, repo_root: Path
) -> None:
    shared = json.loads((shared_dir / "data" / "lhc_signal_regions.json").read_text())
    shipped = json.loads(
        (repo_root / "simulators" / "data" / "lhc_signal_regions.json").read_text()
    )

    published = set(shared["analyses"]["atlas_1407_0583"]["signal_regions"])
    assert set(SIGNAL_REGIONS) == published
    assert len(SIGNAL_REGIONS) == len(published) == 27
    assert set(shipped["analyses"]["atlas_1407_0583"]["signal_regions"]) == published
    assert "atlas_1407_0583" in implemented(8.0)
    assert ANALYSES["atlas_1407_0583"].luminosity_fb == 20.3


def test_every_signal_region_has_a_passing_event() -> None:
    assert set(EVENTS) == set(SIGNAL_REGIONS)


@pytest.mark.parametrize("sr", SIGNAL_REGIONS)
def test_event_passes_its_region_and_one_bin_of_its_family(sr: str) -> None:
    passed = _passed(sr, "pass")

    assert sr in passed
    family = _family(sr)
    if family != sr:
        assert len({p for p in passed if _family(p) == family}) == 1


@pytest.mark.parametrize("sr", SIGNAL_REGIONS)
def test_met_just_below_threshold_fails(sr: str) -> None:
    assert sr not in _passed(sr, "met_low")


@pytest.mark.parametrize("sr", [s for s in SIGNAL_REGIONS if not s.startswith("bCb_")])
def test_lepton_along_met_fails_the_transverse_mass(sr: str) -> None:
    # m_T = 0; every SR but bCb_med1/bCb_high (am_T2 only) has an m_T cut.
    assert sr not in _passed(sr, "mt_zero")


@pytest.mark.parametrize("sr", SIGNAL_REGIONS)
def test_b_tag_requirement(sr: str) -> None:
    assert sr not in _passed(sr, "b_tags")


@pytest.mark.parametrize("sr", SIGNAL_REGIONS)
def test_second_lepton_fails(sr: str) -> None:
    assert sr not in _passed(sr, "second_lepton")


@pytest.mark.parametrize("sr", SIGNAL_REGIONS)
def test_lepton_on_the_wrong_side_of_25_gev_fails(sr: str) -> None:
    assert sr not in _passed(sr, "lepton_side")


@pytest.mark.parametrize("sr", SIGNAL_REGIONS)
def test_one_jet_too_few_fails(sr: str) -> None:
    assert sr not in _passed(sr, "few_jets")


@pytest.mark.parametrize(
    "sr", [sr for sr in SIGNAL_REGIONS if _family(sr).startswith(TAU_VETO)]
)
def test_opposite_charge_tau_is_vetoed_same_charge_is_not(sr: str) -> None:
    assert sr not in _passed(sr, "tau_opposite")
    assert sr in _passed(sr, "tau_same")


def test_soft_regions_split_by_met_and_jet_multiplicity() -> None:
    # bCa_med needs three jets: the two-jet bCa_low event fails it. bCb_med1
    # (E_T^miss > 150 GeV) holds at 594 GeV where bCb_high (> 250) holds too, but
    # a third and fourth jet with H_T,2 = 339 GeV > 50 GeV remove bCb_med1, and
    # bCb_high fails at 260 GeV.
    assert "bCa_med" not in _passed("bCa_low", "pass")
    assert {"bCb_med1", "bCb_high"} <= _passed("extra", "bCb_med1_high_met")
    assert "bCb_med1" not in _passed("bCb_high", "pass")
    assert "bCb_high" not in _passed("bCb_med1", "pass")


def test_leading_b_tagged_jet_fails_the_bca_regions() -> None:
    assert not {"bCa_low", "bCa_med"} & _passed("extra", "bCa_med_lead_b")


def test_amt2_and_mt_bins() -> None:
    # am_T2 175-250 / > 250 GeV crossed with m_T 90-120 / > 120 GeV.
    mask = np.array([True, True, True, True, False])
    amt2 = np.array([200.0, 200.0, 300.0, 300.0, 300.0])
    mt = np.array([100.0, 130.0, 100.0, 130.0, 130.0])

    bins = _amt2_mt_bins("x", mask, amt2, mt)

    assert [bins[f"x_{k}"].tolist() for k in "abcd"] == [
        [True, False, False, False, False],
        [False, True, False, False, False],
        [False, False, True, False, False],
        [False, False, False, True, False],
    ]


def test_top_event_between_the_tn_diag_and_tn_med_thresholds() -> None:
    # m_T = sqrt(2 * 197 * 280 * (1 - cos(1.21 + 1.21))) = 439.5 GeV > 140 GeV and
    # E_T^miss / sqrt(H_T) = 280 / sqrt(304 + 95 + 88 + 53) = 12.05 > 5: the event
    # passes tN_med and tN_diag_d; at E_T^miss = 190 GeV (below tN_med's 200,
    # above tN_diag's 150) tN_med goes and tN_diag_d stays.
    assert np.sqrt(2.0 * 197.0 * 280.0 * (1.0 - np.cos(2.42))) == pytest.approx(
        439.5, abs=0.1
    )
    assert {"tN_med", "tN_diag_d"} <= _passed("tN_med", "pass")
    passed = _passed("extra", "top_met_190")
    assert "tN_med" not in passed
    assert "tN_diag_d" in passed


@pytest.mark.slow
def test_light_stop_fills_the_stop_regions(shared_dir: Path) -> None:
    from simulators.builtin import signal_from_card
    from simulators.events import GenerationSettings
    from simulators.slha import read_spectrum

    # m(t̃₁) = 358 GeV → b W χ̃⁰₁ (73 %) or c χ̃⁰₁, m(χ̃⁰₁) = 251 GeV.
    card = shared_dir / "fixtures" / "spheno" / "light_stop" / "SPheno.spc"
    settings = GenerationSettings(probe_events=200, min_events=2000, max_events=4000)

    energy_signal = signal_from_card(
        card, read_spectrum(card).masses, 8.0, seed=11, settings=settings
    )

    # sigma(stop pair, LO) is about 0.56 pb: some 11 000 events in 20.3 fb^-1, of
    # which a few per mille survive the tight one-lepton selections; the largest
    # yield lands in a region built for stops decaying through (off-shell) tops.
    signal = energy_signal.signal["atlas_1407_0583"]
    assert set(signal) == set(SIGNAL_REGIONS)
    assert sum(n for n, _ in signal.values()) > 10.0
    largest = max(signal, key=lambda sr: signal[sr][0])
    assert _family(largest) in ("tN_diag", "bCd_bulk", "bCc_diag", "threeBody")
    for n, error in signal.values():
        assert 0.0 <= error <= n + 1e-12 or n == 0.0
