"""ATLAS two same-sign leptons or three leptons + jets at 13 TeV, 3.2 fb⁻¹.

arXiv:1602.09058, Table 2. Signal electrons pT > 10 GeV with |η| < 2.0, muons
pT > 10 GeV with |η| < 2.5; at least two leptons above 20 GeV, and when there are
exactly two they have the same charge. Jets pT > 20 GeV, |η| < 2.8 (N_j counts
those above 50 GeV); b-jets pT > 20 GeV, |η| < 2.5; m_eff sums E_T^miss, all jets
and all signal leptons. Deviation: lepton isolation is the detector's generic 15 %
cone rather than the 6 % track and calorimeter isolation of the paper.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from simulators.analyses.common import (
    Analysis,
    multiplicity,
    scalar_sum_pt,
    selected_jets,
)
from simulators.detector import PhysicsObjects
from simulators.jets import sorted_by_pt

#: SR: (minimum leptons, b-jets (exact 0 or minimum), minimum jets above 50 GeV,
#: E_T^miss, m_eff) in GeV.
CUTS = {
    "SR0b3j": (3, 0, 3, 200.0, 550.0),
    "SR0b5j": (2, 0, 5, 125.0, 650.0),
    "SR1b": (2, 1, 4, 150.0, 550.0),
    "SR3b": (2, 3, 0, 125.0, 650.0),
}


def select(objects: PhysicsObjects) -> dict[str, np.ndarray]:
    """Signal-region masks ``(n,)`` for a batch of events."""
    met = objects.met
    electrons = objects.electrons[
        (objects.electrons.pt > 10.0) & (np.abs(objects.electrons.eta) < 2.0)
    ]
    muons = objects.muons[(objects.muons.pt > 10.0) & (np.abs(objects.muons.eta) < 2.5)]
    lepton = sorted_by_pt(
        ak.concatenate([electrons[["pt", "charge"]], muons[["pt", "charge"]]], axis=1)
    )
    n_lep = multiplicity(lepton)
    charge_product = ak.to_numpy(ak.prod(lepton.charge, axis=1))
    lepton_ok = (multiplicity(lepton[lepton.pt > 20.0]) >= 2) & (
        (n_lep > 2) | (charge_product > 0)
    )

    jets = selected_jets(objects, 20.0, 2.8)
    n_b = multiplicity(jets[jets.btag & (np.abs(jets.eta) < 2.5)])
    n_jets_50 = multiplicity(jets[jets.pt > 50.0])
    meff = met + scalar_sum_pt(jets) + scalar_sum_pt(lepton)

    masks = {}
    for sr, (lep_min, b_jets, jets_min, met_min, meff_min) in CUTS.items():
        b_ok = n_b == 0 if b_jets == 0 else n_b >= b_jets
        masks[sr] = (
            lepton_ok
            & (n_lep >= lep_min)
            & b_ok
            & (n_jets_50 >= jets_min)
            & (met > met_min)
            & (meff > meff_min)
        )
    return masks


ANALYSIS = Analysis(
    name="atlas_1602_09058",
    energy_tev=13.0,
    luminosity_fb=3.2,
    signal_regions=tuple(CUTS),
    select=select,
    reference="ATLAS, arXiv:1602.09058",
)
