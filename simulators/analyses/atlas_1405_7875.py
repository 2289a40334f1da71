"""ATLAS 0-lepton 2-6 jets + E_T^miss at 8 TeV, 20.3 fb⁻¹ (arXiv:1405.7875).

Cuts of the publication's Table 1: lepton veto (e, μ pT > 10 GeV), E_T^miss > 160
GeV, pT(j1) > 130 GeV, pT(j2) > 60 GeV; jets for the higher multiplicities above
60 GeV (40 GeV for 4jW); Δφ(j1-3, E_T^miss) > 0.4 (jets above 40 GeV), and for the
SRs with four or more jets Δφ > 0.2 for every jet above 40 GeV. H_T and m_eff(incl)
use the jets above 40 GeV. W candidates: a jet with mass 60-100 GeV (unresolved) or
the closest pair of the other jets with mass 60-100 GeV (resolved).
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from simulators.analyses.common import (
    Analysis,
    invariant_mass,
    min_delta_phi,
    no_leptons,
    nth,
    scalar_sum_pt,
    selected_jets,
)
from simulators.detector import PhysicsObjects

#: SR: (jets, ratio kind, ratio cut, m_eff(incl) cut); kind "ht" = E_T^miss/√H_T
#: (GeV^½), "meff" = E_T^miss/m_eff(Nj).
CUTS = {
    "SR01_a.2jl": (2, "ht", 8.0, 800.0),
    "SR01_b.2jm": (2, "ht", 15.0, 1200.0),
    "SR01_c.2jt": (2, "ht", 15.0, 1600.0),
    "SR02_3j": (3, "meff", 0.3, 2200.0),
    "SR03_a.4jl-": (4, "ht", 10.0, 700.0),
    "SR03_b.4jl": (4, "ht", 10.0, 1000.0),
    "SR03_c.4jm": (4, "meff", 0.4, 1300.0),
    "SR03_d.4jt": (4, "meff", 0.25, 2200.0),
    "SR04_5j": (5, "meff", 0.2, 1200.0),
    "SR05_a.6jl": (6, "meff", 0.2, 900.0),
    "SR05_b.6jm": (6, "meff", 0.2, 1200.0),
    "SR05_c.6jt": (6, "meff", 0.25, 1500.0),
    "SR05_d.6jt+": (6, "meff", 0.15, 1700.0),
}
SIGNAL_REGIONS = (*CUTS, "SR01_d.2jW", "SR03_e.4jW")


def select(objects: PhysicsObjects) -> dict[str, np.ndarray]:
    """Signal-region masks ``(n,)`` for a batch of events."""
    met, met_phi = objects.met, objects.met_phi
    jets = selected_jets(objects, 20.0, 4.5)
    pt = [nth(jets.pt, k) for k in range(6)]
    jets_40 = jets[jets.pt > 40.0]
    ht = scalar_sum_pt(jets_40)
    meff_incl = ht + met
    base = (
        no_leptons(objects, 10.0, 10.0)
        & (met > 160.0)
        & (pt[0] > 130.0)
        & (pt[1] > 60.0)
    )
    base &= min_delta_phi(jets_40, met_phi, 0, 3) > 0.4
    more_jets = min_delta_phi(jets_40, met_phi, 0, None) > 0.2
    met_over_sqrt_ht = met / np.sqrt(np.maximum(ht, 1.0))

    masks = {}
    for sr, (n, kind, ratio, meff) in CUTS.items():
        mask = base & (meff_incl > meff)
        for k in range(2, n):
            mask &= pt[k] > 60.0
        if n >= 4:
            mask &= more_jets
        if kind == "ht":
            mask &= met_over_sqrt_ht > ratio
        else:
            mask &= met / (sum(pt[:n]) + met) > ratio
        masks[sr] = mask
    masks.update(_w_regions(jets, pt, met, meff_incl, base & more_jets, base))
    return masks


def _w_regions(jets, pt, met, meff_incl, base_4j, base_2j) -> dict[str, np.ndarray]:
    masses = ak.sort(jets.m, axis=1, ascending=False)
    first, second = nth(masses, 0), nth(masses, 1)
    in_w = lambda m: (m > 60.0) & (m < 100.0)  # noqa: E731
    two_w = in_w(first) & in_w(second)
    meff_2j = pt[0] + pt[1] + met
    jw_2 = base_2j & two_w & (met / meff_2j > 0.25) & (meff_incl > 1800.0)

    heaviest = ak.argmax(jets.m, axis=1, keepdims=True)
    others = jets[ak.local_index(jets.m) != ak.fill_none(heaviest[:, 0], -1)]
    resolved = _closest_pair_mass(others)
    four = (pt[2] > 40.0) & (pt[3] > 40.0)
    meff_4j = pt[0] + pt[1] + pt[2] + pt[3] + met
    jw_4 = base_4j & four & in_w(first) & in_w(resolved)
    jw_4 &= (met / meff_4j > 0.35) & (meff_incl > 1100.0)
    return {"SR01_d.2jW": jw_2, "SR03_e.4jW": jw_4}


def _closest_pair_mass(jets: ak.Array) -> np.ndarray:
    """Invariant mass of the pair of jets closest in ΔR (0 when fewer than two)."""
    pairs = ak.combinations(jets, 2, axis=1, fields=["a", "b"])
    distance = np.hypot(
        pairs.a.eta - pairs.b.eta,
        np.abs((pairs.a.phi - pairs.b.phi + np.pi) % (2 * np.pi) - np.pi),
    )
    closest = ak.argmin(distance, axis=1, keepdims=True)
    chosen = pairs[closest]
    mass = invariant_mass(chosen.a, chosen.b)
    return ak.to_numpy(ak.fill_none(ak.firsts(mass), 0.0)).astype(float)


ANALYSIS = Analysis(
    name="atlas_1405_7875",
    energy_tev=8.0,
    luminosity_fb=20.3,
    signal_regions=SIGNAL_REGIONS,
    select=select,
    reference="ATLAS, arXiv:1405.7875",
)
