"""ATLAS 0-lepton 2-6 jets + E_T^miss at 13 TeV, 3.2 fb⁻¹ (arXiv:1605.03814).

Cuts from Table 2 of the publication (as implemented in CheckMATE): lepton veto
(e, μ with pT > 10 GeV), jets pT > 50 GeV within |η| < 2.8, E_T^miss > 200 GeV.
m_eff(incl) sums all jets above 50 GeV and E_T^miss; m_eff(Nj) the leading N jets.
Deviation: the |η| < 1.2 requirement on the four leading jets of 4jt is not applied.
"""

from __future__ import annotations

import numpy as np

from simulators.analyses.common import (
    Analysis,
    aplanarity,
    min_delta_phi,
    multiplicity,
    no_leptons,
    nth,
    scalar_sum_pt,
    selected_jets,
)
from simulators.detector import PhysicsObjects

#: SR: (pT(j1), pT(j2), N jets, Δφ(j1-3), Δφ(j>3), E_T^miss/√H_T, aplanarity,
#: E_T^miss/m_eff(Nj), m_eff(incl)); GeV, GeV^½, rad.
CUTS = {
    "2jl": (200.0, 200.0, 2, 0.8, 0.0, 15.0, 0.0, 0.0, 1200.0),
    "2jm": (300.0, 50.0, 2, 0.4, 0.0, 15.0, 0.0, 0.0, 1600.0),
    "2jt": (200.0, 200.0, 2, 0.8, 0.0, 20.0, 0.0, 0.0, 2000.0),
    "4jt": (200.0, 100.0, 4, 0.4, 0.2, 0.0, 0.04, 0.2, 2200.0),
    "5j": (200.0, 100.0, 5, 0.4, 0.2, 0.0, 0.04, 0.25, 1600.0),
    "6jm": (200.0, 100.0, 6, 0.4, 0.2, 0.0, 0.04, 0.25, 1600.0),
    "6jt": (200.0, 100.0, 6, 0.4, 0.2, 0.0, 0.04, 0.2, 2000.0),
}


def select(objects: PhysicsObjects) -> dict[str, np.ndarray]:
    """Signal-region masks ``(n,)`` for a batch of events."""
    met, met_phi = objects.met, objects.met_phi
    jets = selected_jets(objects, 50.0, 2.8)
    n_jets = multiplicity(jets)
    pt = [nth(jets.pt, k) for k in range(6)]
    ht = scalar_sum_pt(jets)
    meff_incl = ht + met
    base = (met > 200.0) & (n_jets >= 2) & no_leptons(objects, 10.0, 10.0)
    dphi_123 = min_delta_phi(jets, met_phi, 0, 3)
    dphi_rest = min_delta_phi(jets, met_phi, 3, None)
    met_over_sqrt_ht = met / np.sqrt(np.maximum(ht, 1.0))
    aplan = aplanarity(jets)

    masks = {}
    for sr, (
        pt1,
        pt2,
        n,
        dphi1,
        dphi2,
        ratio_ht,
        aplan_min,
        ratio_meff,
        meff,
    ) in CUTS.items():
        meff_n = sum(pt[:n]) + met
        mask = base & (pt[0] > pt1) & (n_jets >= n) & (pt[1] > pt2)
        mask &= dphi_123 > dphi1
        if n > 3:
            mask &= (dphi_rest > dphi2) & (aplan > aplan_min)
        for k in range(2, min(n, 4)):
            mask &= pt[k] > 100.0
        mask &= met_over_sqrt_ht > ratio_ht
        mask &= met / meff_n > ratio_meff
        masks[sr] = mask & (meff_incl > meff)
    return masks


ANALYSIS = Analysis(
    name="atlas_1605_03814",
    energy_tev=13.0,
    luminosity_fb=3.2,
    signal_regions=tuple(CUTS),
    select=select,
    reference="ATLAS, arXiv:1605.03814",
)
