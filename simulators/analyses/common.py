"""Vectorised building blocks shared by the signal-region selections."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import awkward as ak
import numpy as np

from simulators.detector import PhysicsObjects
from simulators.jets import delta_phi, sorted_by_pt

#: A selection maps a batch of physics objects to one boolean mask ``(n,)`` per SR.
Selection = Callable[[PhysicsObjects], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Analysis:
    """One implemented search.

    Attributes:
        name: CheckMATE name, as in the signal-region catalogue.
        energy_tev: Centre-of-mass energy (TeV).
        luminosity_fb: Integrated luminosity (fb⁻¹) the expected signal refers to.
        signal_regions: SR names, exactly as in the catalogue.
        select: The selection; returns a mask for every name in ``signal_regions``.
        reference: The publication the cuts come from.
    """

    name: str
    energy_tev: float
    luminosity_fb: float
    signal_regions: tuple[str, ...]
    select: Selection
    reference: str


def nth(values: ak.Array, index: int, fill: float = 0.0) -> np.ndarray:
    """The ``index``-th entry of each event's list (0-based), ``fill`` when absent."""
    padded = ak.pad_none(values, index + 1, axis=1)
    return ak.to_numpy(ak.fill_none(padded[:, index], fill)).astype(float)


def count(mask: ak.Array) -> np.ndarray:
    """Number of true entries per event, ``(n,)``."""
    return ak.to_numpy(ak.sum(mask, axis=1)).astype(int)


def selected_jets(objects: PhysicsObjects, pt_min: float, eta_max: float) -> ak.Array:
    """Jets above ``pt_min`` (GeV) within ``|η| < eta_max``, sorted by pT."""
    jets = objects.jets
    return jets[(jets.pt > pt_min) & (np.abs(jets.eta) < eta_max)]


def leptons(
    objects: PhysicsObjects,
    electron_pt: float = 10.0,
    muon_pt: float = 10.0,
    eta_max: float = 2.5,
) -> ak.Array:
    """Electrons and muons above thresholds, merged, sorted by pT, with ``flavour``."""
    electrons = objects.electrons
    muons = objects.muons
    electrons = electrons[
        (electrons.pt > electron_pt) & (np.abs(electrons.eta) < eta_max)
    ]
    muons = muons[(muons.pt > muon_pt) & (np.abs(muons.eta) < eta_max)]
    electrons = ak.with_field(electrons, ak.zeros_like(electrons.pt) + 11, "flavour")
    muons = ak.with_field(muons, ak.zeros_like(muons.pt) + 13, "flavour")
    return sorted_by_pt(ak.concatenate([electrons, muons], axis=1))


def min_delta_phi(
    jets: ak.Array, met_phi: np.ndarray, start: int = 0, stop: int | None = None
) -> np.ndarray:
    """Smallest |Δφ(jet, E_T^miss)| over jets ``start:stop`` (π when none)."""
    chosen = jets[:, start:stop]
    dphi = delta_phi(chosen.phi, met_phi)
    return ak.to_numpy(ak.fill_none(ak.min(dphi, axis=1), np.pi))


def scalar_sum_pt(objects: ak.Array) -> np.ndarray:
    """Σ pT per event (GeV)."""
    return ak.to_numpy(ak.sum(objects.pt, axis=1)).astype(float)


def aplanarity(jets: ak.Array) -> np.ndarray:
    """Aplanarity 3/2 λ₃ of the momentum tensor Σ pᵢpⱼ / Σ|p|² of the given jets."""
    momenta = (jets.px, jets.py, jets.pz)
    norm = ak.to_numpy(ak.sum(jets.px**2 + jets.py**2 + jets.pz**2, axis=1))
    tensor = np.zeros((len(norm), 3, 3))
    for i in range(3):
        for j in range(i, 3):
            value = ak.to_numpy(ak.sum(momenta[i] * momenta[j], axis=1))
            tensor[:, i, j] = tensor[:, j, i] = value
    tensor /= np.where(norm > 0.0, norm, 1.0)[:, None, None]
    return 1.5 * np.linalg.eigvalsh(tensor)[:, 0]


def transverse_mass(pt, phi, met: np.ndarray, met_phi: np.ndarray) -> np.ndarray:
    """m_T (GeV) of a massless object with the missing momentum."""
    return np.sqrt(
        np.maximum(2.0 * pt * met * (1.0 - np.cos(delta_phi(phi, met_phi))), 0.0)
    )


def invariant_mass(first: ak.Array, second: ak.Array) -> np.ndarray:
    """Invariant mass (GeV) of two objects given as per-event records."""
    e = first.e + second.e
    px = first.px + second.px
    py = first.py + second.py
    pz = first.pz + second.pz
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


def multiplicity(objects: ak.Array) -> np.ndarray:
    """Number of objects per event, ``(n,)``."""
    return ak.to_numpy(ak.num(objects, axis=1)).astype(int)


def no_leptons(
    objects: PhysicsObjects, electron_pt: float, muon_pt: float
) -> np.ndarray:
    """True for events without electrons or muons above the given pT (GeV)."""
    return multiplicity(leptons(objects, electron_pt, muon_pt, 2.5)) == 0
