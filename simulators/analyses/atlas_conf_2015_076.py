"""ATLAS one isolated lepton + jets + E_T^miss at 13 TeV, 3.2 fb⁻¹.

ATLAS-CONF-2015-076, published as arXiv:1605.04285;
cuts from its Table 2. Soft-lepton SRs: exactly one lepton, e 7-35 GeV or μ 6-35
GeV; hard-lepton SRs: exactly one lepton above 10 GeV and it above 35 GeV. Jets
pT > 25 GeV, |η| < 2.8; m_eff sums the lepton, jets above 30 GeV and E_T^miss;
H_T (soft SRs) the lepton and all jets. 4jLowX keeps the published window
125 < m_T < 425 GeV.
"""

from __future__ import annotations

import numpy as np

from simulators.analyses.common import (
    Analysis,
    aplanarity,
    leptons,
    multiplicity,
    nth,
    scalar_sum_pt,
    selected_jets,
    transverse_mass,
)
from simulators.detector import PhysicsObjects

SIGNAL_REGIONS = ("2jSoftLep", "4jHighX", "4jLowX", "5j", "5jSoftLep", "6j")


def select(objects: PhysicsObjects) -> dict[str, np.ndarray]:
    """Signal-region masks ``(n,)`` for a batch of events."""
    met, met_phi = objects.met, objects.met_phi
    jets = selected_jets(objects, 25.0, 2.8)
    n_jets = multiplicity(jets)
    pt = [nth(jets.pt, k) for k in range(6)]
    aplan = aplanarity(jets)
    jet_sum_30 = scalar_sum_pt(jets[jets.pt > 30.0])

    soft_all = leptons(objects, 7.0, 6.0, 2.47)
    soft = soft_all[soft_all.pt < 35.0]
    one_soft = (multiplicity(soft_all) == 1) & (multiplicity(soft) == 1)
    soft_pt, soft_phi = nth(soft.pt, 0), nth(soft.phi, 0)
    mt_soft = transverse_mass(soft_pt, soft_phi, met, met_phi)
    meff_soft = soft_pt + met + jet_sum_30
    ht_soft = soft_pt + scalar_sum_pt(jets)

    hard_all = leptons(objects, 10.0, 10.0, 2.47)
    one_hard = (multiplicity(hard_all) == 1) & (nth(hard_all.pt, 0) > 35.0)
    hard_pt, hard_phi = nth(hard_all.pt, 0), nth(hard_all.phi, 0)
    mt = transverse_mass(hard_pt, hard_phi, met, met_phi)
    meff = hard_pt + met + jet_sum_30
    ratio = met / np.maximum(meff, 1.0)

    def jets_above(first: float, others: float, n: int) -> np.ndarray:
        mask = (n_jets >= n) & (pt[0] >= first)
        for k in range(1, n):
            mask &= pt[k] >= others
        return mask

    return {
        "2jSoftLep": one_soft
        & (met > 530.0)
        & jets_above(180.0, 30.0, 2)
        & (mt_soft > 100.0)
        & (met / np.maximum(meff_soft, 1.0) > 0.38),
        "5jSoftLep": one_soft
        & (met > 375.0)
        & jets_above(200.0, 30.0, 5)
        & (pt[1] > 200.0)
        & (pt[2] > 200.0)
        & (aplan > 0.02)
        & (ht_soft > 1100.0),
        "4jHighX": one_hard
        & (met > 200.0)
        & jets_above(325.0, 30.0, 4)
        & (mt > 425.0)
        & (ratio > 0.3)
        & (meff > 1800.0),
        "4jLowX": one_hard
        & (met > 200.0)
        & jets_above(325.0, 150.0, 4)
        & (aplan > 0.04)
        & (mt > 125.0)
        & (mt < 425.0)
        & (meff > 2000.0),
        "5j": one_hard
        & (met > 250.0)
        & jets_above(225.0, 50.0, 5)
        & (aplan > 0.04)
        & (mt > 275.0)
        & (ratio > 0.1)
        & (meff > 1800.0),
        "6j": one_hard
        & (met > 250.0)
        & jets_above(125.0, 30.0, 6)
        & (aplan > 0.04)
        & (mt > 225.0)
        & (ratio > 0.2)
        & (meff > 1000.0),
    }


ANALYSIS = Analysis(
    name="atlas_conf_2015_076",
    energy_tev=13.0,
    luminosity_fb=3.2,
    signal_regions=SIGNAL_REGIONS,
    select=select,
    reference="ATLAS-CONF-2015-076; ATLAS, arXiv:1605.04285",
)
