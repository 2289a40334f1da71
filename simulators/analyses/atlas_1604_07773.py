"""ATLAS monojet at 13 TeV, 3.2 fb⁻¹ (arXiv:1604.07773).

Lepton veto (e pT > 20 GeV, μ pT > 10 GeV); at most four jets with pT > 30 GeV and
|η| < 2.8; Δφ(jet, E_T^miss) > 0.4 for all of them; leading jet pT > 250 GeV with
|η| < 2.4; E_T^miss > 250 GeV. Inclusive (IM) and exclusive (EM) E_T^miss bins.
"""

from __future__ import annotations

import numpy as np

from simulators.analyses.common import (
    Analysis,
    min_delta_phi,
    multiplicity,
    no_leptons,
    nth,
    selected_jets,
)
from simulators.detector import PhysicsObjects

#: SR to its E_T^miss interval (GeV); None = no upper edge.
MET_BINS: dict[str, tuple[float, float | None]] = {
    "IM1": (250.0, None),
    "IM2": (300.0, None),
    "IM3": (350.0, None),
    "IM4": (400.0, None),
    "IM5": (500.0, None),
    "IM6": (600.0, None),
    "IM7": (700.0, None),
    "EM1": (250.0, 300.0),
    "EM2": (300.0, 350.0),
    "EM3": (350.0, 400.0),
    "EM4": (400.0, 500.0),
    "EM5": (500.0, 600.0),
    "EM6": (600.0, 700.0),
}


def select(objects: PhysicsObjects) -> dict[str, np.ndarray]:
    """Signal-region masks ``(n,)`` for a batch of events."""
    met = objects.met
    jets = selected_jets(objects, 30.0, 2.8)
    leading_eta = np.abs(nth(jets.eta, 0, fill=99.0))
    base = no_leptons(objects, 20.0, 10.0) & (multiplicity(jets) <= 4)
    base &= (multiplicity(jets) >= 1) & (nth(jets.pt, 0) > 250.0) & (leading_eta < 2.4)
    base &= min_delta_phi(jets, objects.met_phi, 0, 4) > 0.4

    masks = {}
    for sr, (low, high) in MET_BINS.items():
        in_bin = met > low if high is None else (met > low) & (met <= high)
        masks[sr] = base & in_bin
    return masks


ANALYSIS = Analysis(
    name="atlas_1604_07773",
    energy_tev=13.0,
    luminosity_fb=3.2,
    signal_regions=tuple(MET_BINS),
    select=select,
    reference="ATLAS, arXiv:1604.07773",
)
