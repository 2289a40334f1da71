"""ATLAS ≥ 3 b-jets + 0-1 lepton + E_T^miss at 13 TeV, 3.3 fb⁻¹ (gluino → stop/sbottom).

ATLAS-CONF-2015-067, published as arXiv:1605.09318;
cuts from its Tables 2-4. Leptons pT > 20 GeV; jets pT > 30 GeV, |η| < 2.8; b-jets
are b-tagged jets (|η| < 2.5). Preselection: ≥ 4 jets, ≥ 3 b-jets, E_T^miss > 200
GeV. Top candidates: the jets re-clustered with anti-kt R = 1.0, pT > 300 GeV,
|η| < 2.0, m > 100 GeV. Deviation: the re-clustered jets are not trimmed
(f_cut = 0.05), which slightly raises their masses.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from simulators.analyses.common import (
    Analysis,
    leptons,
    min_delta_phi,
    multiplicity,
    nth,
    scalar_sum_pt,
    selected_jets,
    transverse_mass,
)
from simulators.detector import PhysicsObjects
from simulators.jets import cluster

SIGNAL_REGIONS = (
    "SR-Gbb-A",
    "SR-Gbb-B",
    "SR-Gbb-C",
    "SR-Gtt-0L-A",
    "SR-Gtt-0L-B",
    "SR-Gtt-0L-C",
    "SR-Gtt-1L-A",
    "SR-Gtt-1L-B",
)
#: Gbb: (jet and b-jet pT minimum, E_T^miss, m_eff(4j)) in GeV.
GBB = {
    "A": (90.0, 350.0, 1600.0),
    "B": (90.0, 450.0, 1400.0),
    "C": (30.0, 500.0, 1400.0),
}
#: Gtt-0L: (E_T^miss, m_eff(incl), N b-jets, N tops).
GTT_0L = {
    "A": (400.0, 1700.0, 3, 1),
    "B": (350.0, 1250.0, 4, 1),
    "C": (350.0, 1250.0, 4, 0),
}
#: Gtt-1L: (E_T^miss, m_eff(incl), N tops).
GTT_1L = {"A": (200.0, 1100.0, 1), "B": (300.0, 900.0, 0)}


def select(objects: PhysicsObjects) -> dict[str, np.ndarray]:
    """Signal-region masks ``(n,)`` for a batch of events."""
    met, met_phi = objects.met, objects.met_phi
    jets = selected_jets(objects, 30.0, 2.8)
    bjets = jets[jets.btag & (np.abs(jets.eta) < 2.5)]
    lepton = leptons(objects, 20.0, 20.0, 2.5)
    n_lep, n_jets, n_b = multiplicity(lepton), multiplicity(jets), multiplicity(bjets)
    presel = (n_jets >= 4) & (n_b >= 3) & (met > 200.0)
    mt_b_min = np.min(
        [
            transverse_mass(nth(bjets.pt, k), nth(bjets.phi, k), met, met_phi)
            for k in range(3)
        ],
        axis=0,
    )
    meff_4j = met + sum(nth(jets.pt, k) for k in range(4))
    meff_incl = met + scalar_sum_pt(jets) + scalar_sum_pt(lepton)
    n_tops = _top_candidates(jets)
    zero_lepton = presel & (n_lep == 0) & (min_delta_phi(jets, met_phi, 0, 4) > 0.4)

    masks = {}
    for name, (pt_min, met_min, meff_min) in GBB.items():
        masks[f"SR-Gbb-{name}"] = (
            zero_lepton
            & (meff_4j > meff_min)
            & (met > met_min)
            & (nth(jets.pt, 3) >= pt_min)
            & (nth(bjets.pt, 2) >= pt_min)
        )
    gtt_0l = zero_lepton & (n_jets >= 8) & (mt_b_min > 80.0)
    for name, (met_min, meff_min, b_min, top_min) in GTT_0L.items():
        masks[f"SR-Gtt-0L-{name}"] = (
            gtt_0l
            & (meff_incl > meff_min)
            & (met > met_min)
            & (n_b >= b_min)
            & (n_tops >= top_min)
        )
    mt_lepton = transverse_mass(nth(lepton.pt, 0), nth(lepton.phi, 0), met, met_phi)
    gtt_1l = (
        presel & (n_lep >= 1) & (n_jets >= 6) & (mt_b_min > 160.0) & (mt_lepton > 150.0)
    )
    for name, (met_min, meff_min, top_min) in GTT_1L.items():
        masks[f"SR-Gtt-1L-{name}"] = (
            gtt_1l & (meff_incl > meff_min) & (met > met_min) & (n_tops >= top_min)
        )
    return masks


def _top_candidates(jets: ak.Array) -> np.ndarray:
    large = cluster(jets[["px", "py", "pz", "e"]], radius=1.0)
    tops = (large.pt > 300.0) & (np.abs(large.eta) < 2.0) & (large.m > 100.0)
    return ak.to_numpy(ak.sum(tops, axis=1)).astype(int)


ANALYSIS = Analysis(
    name="atlas_conf_2015_067",
    energy_tev=13.0,
    luminosity_fb=3.3,
    signal_regions=SIGNAL_REGIONS,
    select=select,
    reference="ATLAS-CONF-2015-067; ATLAS, arXiv:1605.09318",
)
