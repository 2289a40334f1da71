"""Tests of the signal-region selections on hand-built physics objects."""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from simulators.analyses import ANALYSES, implemented
from simulators.analyses.common import aplanarity
from simulators.detector import PhysicsObjects


def _object(pt: float, eta: float, phi: float, **extra) -> dict:
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    record = dict(
        pt=pt, eta=eta, phi=phi, m=0.0, px=px, py=py, pz=pz, e=pt * np.cosh(eta)
    )
    record.update(extra)
    return record


def _jet(pt: float, eta: float, phi: float, btag: bool = False) -> dict:
    return _object(pt, eta, phi, btag=btag, tautag=False, flavour=5 if btag else 0)


def _lepton(pdg: int, pt: float, eta: float, phi: float) -> dict:
    return _object(pt, eta, phi, id=pdg, status=1, charge=-int(np.sign(pdg)))


def _objects(jets, electrons=(), muons=(), met=(0.0, 0.0)) -> PhysicsObjects:
    """One event's objects; ``met`` = (magnitude GeV, azimuth)."""
    empty_jet = ak.Array([[_jet(1.0, 0.0, 0.0)]])[:, :0]
    empty_lepton = ak.Array([[_lepton(11, 1.0, 0.0, 0.0)]])[:, :0]
    jets_array = ak.Array([list(jets)]) if jets else empty_jet
    e_array = ak.Array([list(electrons)]) if electrons else empty_lepton
    m_array = ak.Array([list(muons)]) if muons else empty_lepton
    met_x = np.array([met[0] * np.cos(met[1])])
    met_y = np.array([met[0] * np.sin(met[1])])
    return PhysicsObjects(jets_array, e_array, m_array, empty_lepton, met_x, met_y)


def _passed(analysis: str, objects: PhysicsObjects) -> set[str]:
    masks = ANALYSES[analysis].select(objects)
    return {sr for sr, mask in masks.items() if bool(mask[0])}


def test_signal_region_names_match_the_catalogue(shared_dir: Path) -> None:
    catalogue = json.loads(
        (shared_dir / "data" / "lhc_signal_regions.json").read_text()
    )

    for name in implemented():
        published = catalogue["analyses"][name]
        assert set(ANALYSES[name].signal_regions) == set(published["signal_regions"])
        assert ANALYSES[name].luminosity_fb == published["luminosity_fb"]
        assert ANALYSES[name].energy_tev == published["sqrt_s_tev"]


def test_monojet_event_falls_in_its_met_bins() -> None:
    objects = _objects(
        [_jet(400.0, 0.5, np.pi), _jet(40.0, 1.0, 1.5)], met=(320.0, 0.0)
    )

    assert _passed("atlas_1604_07773", objects) == {"IM1", "IM2", "EM2"}


def test_monojet_vetoes_leptons_and_aligned_jets() -> None:
    with_muon = _objects(
        [_jet(400.0, 0.5, np.pi)], muons=[_lepton(13, 15.0, 0.0, 1.0)], met=(320.0, 0.0)
    )
    aligned = _objects(
        [_jet(400.0, 0.5, np.pi), _jet(40.0, 1.0, 0.2)], met=(320.0, 0.0)
    )

    assert _passed("atlas_1604_07773", with_muon) == set()
    assert _passed("atlas_1604_07773", aligned) == set()


def test_zero_lepton_two_jet_event() -> None:
    # H_T = 1000, E_T^miss = 600: E_T^miss/sqrt(H_T) = 19.0, m_eff = 1600
    jets = [_jet(600.0, 0.0, 0.0), _jet(400.0, 0.5, 2.0)]
    objects = _objects(jets, met=(600.0, 4.2))

    # 2jl (m_eff > 1200), 2jm (> 1600 fails: exactly 1600), 2jt needs 20 and 2000
    assert _passed("atlas_1605_03814", objects) == {"2jl"}


def test_same_sign_dimuons_with_a_b_jet() -> None:
    # m_eff = 160 + 4 * 100 + 2 * 50 = 660 > 550, E_T^miss 160 > 150
    jets = [_jet(100.0, 0.0, k * 1.5, btag=(k == 0)) for k in range(4)]
    muons = [_lepton(13, 50.0, 0.3, 0.7), _lepton(13, 50.0, -0.3, 2.5)]

    same_sign = _objects(jets, muons=muons, met=(160.0, 3.0))
    opposite = _objects(
        jets, muons=[muons[0], _lepton(-13, 50.0, -0.3, 2.5)], met=(160.0, 3.0)
    )

    assert _passed("atlas_1602_09058", same_sign) == {"SR1b"}
    assert _passed("atlas_1602_09058", opposite) == set()


def test_on_z_dielectrons_with_four_jets() -> None:
    # two 45.6 GeV electrons back to back at η = 0: m_ll = 91.2 GeV
    electrons = [_lepton(11, 45.6, 0.0, 0.0), _lepton(-11, 45.6, 0.0, np.pi)]
    jets = [_jet(100.0, 0.5, 0.5 + k * 1.5) for k in range(4)]
    objects = _objects(jets, electrons=electrons, met=(250.0, 1.0))

    assert _passed("cms_pas_sus_15_011", objects) == {
        "SRB_b0_c.highMET",
        "SRD_cen_c.mediumMll_b0",
        "SRD_cen_c.mediumMll_b_all",
    }


def test_three_b_jets_and_missing_energy_for_gbb() -> None:
    # m_eff(4j) = 420 + 4 * 300 = 1620: A (> 1600, E_T^miss > 350) only;
    # B and C need E_T^miss above 450 and 500 GeV
    jets = [_jet(300.0, 0.2, k * 1.2, btag=(k < 3)) for k in range(4)]
    lower = _objects(jets, met=(420.0, 4.3))
    higher = _objects(jets, met=(550.0, 4.3))

    assert _passed("atlas_conf_2015_067", lower) == {"SR-Gbb-A"}
    assert _passed("atlas_conf_2015_067", higher) == {
        "SR-Gbb-A",
        "SR-Gbb-B",
        "SR-Gbb-C",
    }


def test_one_hard_lepton_six_jets() -> None:
    # m_T of a 100 GeV muon against 300 GeV E_T^miss back to back: sqrt(4 * 100 * 300)
    jets = [_jet(150.0, 0.3 * k - 0.6, k * 1.0) for k in range(6)]
    muons = [_lepton(13, 100.0, 0.0, 0.0)]
    objects = _objects(jets, muons=muons, met=(300.0, np.pi))

    assert "6j" in _passed("atlas_conf_2015_076", objects)


def test_aplanarity_of_planar_and_spherical_jets() -> None:
    planar = ak.Array([[_jet(100.0, 0.0, k * np.pi / 2) for k in range(4)]])
    spherical = ak.Array(
        [
            [
                dict(px=1.0, py=0.0, pz=0.0),
                dict(px=0.0, py=1.0, pz=0.0),
                dict(px=0.0, py=0.0, pz=1.0),
            ]
        ]
    )

    assert aplanarity(planar)[0] == pytest.approx(0.0, abs=1e-12)
    assert aplanarity(spherical)[0] == pytest.approx(0.5)


def test_three_leptons_with_a_z_pair_and_a_hard_third_lepton() -> None:
    # e⁺e⁻ at 91.2 GeV, a 100 GeV muon back to back with 150 GeV E_T^miss:
    # m_T = sqrt(2 * 100 * 150 * 2) = 245 GeV -> Z window, E_T^miss > 135, m_T > 110
    electrons = [_lepton(11, 45.6, 0.0, 0.0), _lepton(-11, 45.6, 0.0, np.pi)]
    muons = [_lepton(13, 100.0, 0.5, np.pi / 2)]
    objects = _objects([], electrons=electrons, muons=muons, met=(150.0, -np.pi / 2))

    assert _passed("atlas_1402_7029", objects) == {"SR0taua16"}


def test_eight_tev_monojet_and_multijet_regions() -> None:
    monojet = _objects([_jet(400.0, 0.5, np.pi)], met=(380.0, 0.0))
    # H_T = 900 (jets above 40 GeV), E_T^miss 500: ratio 16.7, m_eff(incl) 1400
    two_jets = _objects(
        [_jet(600.0, 0.0, 0.0), _jet(300.0, 0.5, 2.0)], met=(500.0, 4.2)
    )

    assert _passed("atlas_1502_01518", monojet) == {"SR1", "SR2", "SR3", "SR4", "SR5"}
    assert _passed("atlas_1405_7875", two_jets) == {"SR01_a.2jl", "SR01_b.2jm"}
