"""ATLAS monojet at 8 TeV, 20.3 fb⁻¹ (arXiv:1502.01518).

Lepton veto (e pT > 20 GeV, μ pT > 10 GeV), photon veto above 30 GeV; leading jet
pT > 120 GeV within |η| < 2.0 and pT(j1)/E_T^miss > 0.5; Δφ(jet, E_T^miss) > 1.0
for every jet above 30 GeV; SR1-SR9: E_T^miss above 150, 200, 250, 300, 350, 400,
500, 600 and 700 GeV. Deviation: the isolated-track veto is not applied.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from simulators.analyses.common import (
    Analysis,
    min_delta_phi,
    no_leptons,
    nth,
    selected_jets,
)
from simulators.detector import PhysicsObjects

MET_THRESHOLDS = dict(
    zip(
        [f"SR{k}" for k in range(1, 10)],
        (150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 500.0, 600.0, 700.0),
        strict=True,
    )
)


def select(objects: PhysicsObjects) -> dict[str, np.ndarray]:
    """Signal-region masks ``(n,)`` for a batch of events."""
    met = objects.met
    jets = selected_jets(objects, 25.0, 4.5)
    leading, leading_eta = nth(jets.pt, 0), np.abs(nth(jets.eta, 0, fill=99.0))
    no_photon = ak.to_numpy(ak.num(objects.photons[objects.photons.pt > 30.0]) == 0)
    base = no_leptons(objects, 20.0, 10.0) & no_photon
    base &= (leading > 120.0) & (leading_eta < 2.0) & (leading > 0.5 * met)
    base &= min_delta_phi(jets[jets.pt > 30.0], objects.met_phi) > 1.0
    return {sr: base & (met > threshold) for sr, threshold in MET_THRESHOLDS.items()}


ANALYSIS = Analysis(
    name="atlas_1502_01518",
    energy_tev=8.0,
    luminosity_fb=20.3,
    signal_regions=tuple(MET_THRESHOLDS),
    select=select,
    reference="ATLAS, arXiv:1502.01518",
)
