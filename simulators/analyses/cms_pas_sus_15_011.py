"""CMS opposite-sign same-flavour dileptons + jets + E_T^miss at 13 TeV, 2.2 fb⁻¹.

CMS-PAS-SUS-15-011. Two leading leptons (e or μ, pT > 20 GeV, |η| < 2.4 outside
1.4-1.6) of the same flavour and opposite charge, ΔR > 0.1 (on the Z) or 0.3; jets
pT > 35 GeV, |η| < 2.4, at least two. On-Z (81 < m_ll < 101 GeV) SRs A (2-3 jets,
H_T > 400 GeV) and B (≥ 4 jets) in E_T^miss bins with 0 or ≥ 1 b-jets, plus the
ATLAS-like SR C; edge SRs D (both leptons |η| < 1.4) and E (otherwise) in m_ll bins
require ≥ 2 jets and E_T^miss > 150 GeV or ≥ 3 jets and E_T^miss > 100 GeV.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from simulators.analyses.common import (
    Analysis,
    invariant_mass,
    leptons,
    min_delta_phi,
    multiplicity,
    nth,
    scalar_sum_pt,
    selected_jets,
)
from simulators.detector import PhysicsObjects
from simulators.jets import delta_r_matrix

MET_BINS = {
    "a.lowMET": (100.0, 150.0),
    "b.mediumMET": (150.0, 225.0),
    "c.highMET": (225.0, 300.0),
    "d.vhighMET": (300.0, np.inf),
}
MLL_BINS = {
    "a.vlowMll": (20.0, 70.0),
    "b.lowMll": (70.0, 81.0),
    "c.mediumMll": (81.0, 101.0),
    "d.highMll": (101.0, 120.0),
    "e.vhighMll": (120.0, np.inf),
}
SIGNAL_REGIONS = (
    *(f"SR{a}_b{b}_{m}" for a in "AB" for b in "01" for m in MET_BINS),
    "SRC_ATLAS",
    *(f"SRD_cen_{m}_b{b}" for m in MLL_BINS for b in ("0", "1", "_all")),
    *(f"SRE_for_{m}_b{b}" for m in MLL_BINS for b in ("0", "1", "_all")),
)


def select(objects: PhysicsObjects) -> dict[str, np.ndarray]:
    """Signal-region masks ``(n,)`` for a batch of events."""
    met = objects.met
    lepton = leptons(objects, 20.0, 20.0, 2.4)
    abs_eta = np.abs(lepton.eta)
    lepton = lepton[(abs_eta < 1.4) | (abs_eta > 1.6)]
    padded = ak.pad_none(lepton, 2, axis=1)
    first, second = padded[:, 0], padded[:, 1]
    two = multiplicity(lepton) >= 2
    sfos = two & ak.to_numpy(
        ak.fill_none(
            (first.flavour == second.flavour) & (first.charge != second.charge), False
        )
    )
    mll = ak.to_numpy(ak.fill_none(invariant_mass(first, second), 0.0))
    d_r = np.hypot(
        nth(lepton.eta, 0) - nth(lepton.eta, 1),
        np.abs((nth(lepton.phi, 0) - nth(lepton.phi, 1) + np.pi) % (2 * np.pi) - np.pi),
    )
    on_z = (mll > 81.0) & (mll <= 101.0)
    sfos &= np.where(on_z, d_r > 0.1, d_r > 0.3)

    jets = selected_jets(objects, 35.0, 2.4)
    jets = jets[~ak.any(delta_r_matrix(jets, lepton[:, :2]) < 0.4, axis=2)]
    n_jets = multiplicity(jets)
    n_b = multiplicity(jets[jets.btag])
    ht = scalar_sum_pt(jets)
    base = sfos & (n_jets >= 2)
    central = (np.abs(nth(lepton.eta, 0, 9.0)) < 1.4) & (
        np.abs(nth(lepton.eta, 1, 9.0)) < 1.4
    )
    b_masks = {"0": n_b == 0, "1": n_b >= 1, "_all": np.ones(len(met), dtype=bool)}

    masks = {}
    region_a = base & on_z & (n_jets <= 3) & (ht > 400.0)
    region_b = base & on_z & (n_jets >= 4)
    for region, mask in (("A", region_a), ("B", region_b)):
        for b in "01":
            for name, (low, high) in MET_BINS.items():
                masks[f"SR{region}_b{b}_{name}"] = (
                    mask & b_masks[b] & (met > low) & (met <= high)
                )
    lepton_ht = ht + nth(lepton.pt, 0) + nth(lepton.pt, 1)
    masks["SRC_ATLAS"] = (
        base
        & on_z
        & (met > 225.0)
        & (min_delta_phi(jets, objects.met_phi, 0, 2) > 0.4)
        & (lepton_ht > 600.0)
    )
    edge = base & (((n_jets >= 2) & (met > 150.0)) | ((n_jets >= 3) & (met > 100.0)))
    for name, (low, high) in MLL_BINS.items():
        in_bin = edge & (mll > low) & (mll <= high)
        for b, b_mask in b_masks.items():
            masks[f"SRD_cen_{name}_b{b}"] = in_bin & central & b_mask
            masks[f"SRE_for_{name}_b{b}"] = in_bin & ~central & b_mask
    return masks


ANALYSIS = Analysis(
    name="cms_pas_sus_15_011",
    energy_tev=13.0,
    luminosity_fb=2.2,
    signal_regions=SIGNAL_REGIONS,
    select=select,
    reference="CMS-PAS-SUS-15-011",
)
