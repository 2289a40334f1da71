"""The 56 reparametrized inputs of the paper (Sect. 4.1-4.2) from decays and sigma.

For every 2 -> 2 production process the decay trees of both produced particles are
traversed, keeping channels with a branching ratio of at least 1 % (``MIN_BR``).
Along the way each final state is counted in one of nine categories -- light jets
(u, d, s, c quarks and gluons), b-jets, e+, e-, mu+, mu-, tau+, tau- (taus are not
decayed further) and invisible (neutrinos and a stable neutral sparticle) -- and each
on-shell resonance in one of five: W+, W-, Z, t, tbar (resonances are counted and
then decayed further). Light Higgs, W, Z and top decays come from the decay table
when it lists them, otherwise from the PDG tables below. Photons, soft pions (from
chi+ -> chi0 pi+) and stable charged sparticles are not counted.

Energies: every produced particle starts at rest (``E = m``, the paper's heaviest
mother at rest). A daughter ``i`` of ``k -> i + {j}`` gets the largest energy it
can have in the rest frame of ``k``, eq. (3) of the paper,

    E*_i = sqrt((m_k^2 - (sum m_j + m_i)^2)(m_k^2 - (sum m_j - m_i)^2) / (2 m_k)^2
                + m_i^2),

boosted with the mother's estimated Lorentz factor, eq. (4): ``E_i = gamma_k E*_i``
with ``gamma_k = E_k / m_k``. A channel off the mass shell (negative product) gives
``E*_i = m_i``.

Statistics: the probability of a decay tree is the product of its branching ratios,
renormalised over the kept channels at each step (so the kept trees of a particle
sum to one). Per process and category: the mean and standard deviation of the
multiplicity over trees, and the mean and standard deviation of ``E_max`` over all
occurrences of that category (each occurrence weighted by its tree probability).
Averaging over processes: multiplicity statistics with weight sigma; ``E_max``
statistics with weight sigma times the process's mean multiplicity of that
category, so processes that never produce it do not dilute it. A category that never
occurs gets zeros; with no process (or zero total cross section) all 56 features are
zero. Feature ``4 c + s`` is statistic ``s`` (n_mean, n_std, emax_mean, emax_std)
of category ``c`` in ``CATEGORIES`` order; names in ``FEATURE_NAMES``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from simulators.decays_couplings import FERMION_MASSES_GEV
from simulators.spectrum_types import DecayTable, Spectrum

logger = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = (
    "jet", "bjet", "e+", "e-", "mu+", "mu-", "tau+", "tau-", "invisible",
    "W+", "W-", "Z", "t", "tbar",
)  # fmt: skip
STATISTICS: tuple[str, ...] = ("n_mean", "n_std", "emax_mean", "emax_std")
FEATURE_NAMES: tuple[str, ...] = tuple(
    f"{c}_{s}" for c in CATEGORIES for s in STATISTICS
)
N_CATEGORIES = len(CATEGORIES)

#: Channels below this branching ratio are not followed (paper: "larger than 1 %").
MIN_BR = 0.01
#: Deepest decay chain followed (a guard against malformed tables).
MAX_DEPTH = 25

_FINAL_CATEGORY: dict[int, int] = {1: 0, 2: 0, 3: 0, 4: 0, -1: 0, -2: 0, -3: 0, -4: 0}
_FINAL_CATEGORY |= {21: 0, 5: 1, -5: 1, -11: 2, 11: 3, -13: 4, 13: 5, -15: 6, 15: 7}
_FINAL_CATEGORY |= {p: 8 for p in (12, 14, 16, -12, -14, -16)}
_RESONANCE_CATEGORY: dict[int, int] = {24: 9, -24: 10, 23: 11, 6: 12, -6: 13}

#: Neutral sparticles that count as invisible when stable.
_INVISIBLE_SPARTICLES = {1000022, 1000023, 1000025, 1000035, 1000012, 1000014, 1000016}
#: Particles equal to their antiparticle (daughters kept under conjugation).
_SELF_CONJUGATE = {21, 22, 23, 25, 35, 36, 111, 1000021, 1000022, 1000023, 1000025}
_SELF_CONJUGATE |= {1000035}

#: SM decays (PDG 2022 branching ratios, W hadrons = 1 - leptons; LHC Higgs WG for h
#: at 125 GeV). The light
#: Higgs keeps its two-body channels b b, g g, tau tau, c c (87 % of its width):
#: W W* and Z Z* have no on-shell two-body kinematics for eq. (3) and are left out.
SM_DECAYS: dict[int, list[tuple[float, tuple[int, ...]]]] = {
    6: [(1.0, (5, 24))],
    24: [
        (0.1071, (-11, 12)), (0.1063, (-13, 14)), (0.1138, (-15, 16)),
        (0.3364, (2, -1)), (0.3364, (4, -3)),
    ],
    23: [
        (0.0667, (12, -12)), (0.0667, (14, -14)), (0.0666, (16, -16)),
        (0.03363, (11, -11)), (0.03366, (13, -13)), (0.03370, (15, -15)),
        (0.1512, (5, -5)), (0.1203, (4, -4)), (0.1160, (2, -2)),
        (0.1558, (1, -1)), (0.1558, (3, -3)),
    ],
    25: [(0.5809, (5, -5)), (0.0818, (21, 21)), (0.0627, (15, -15)), (0.0288, (4, -4))],
}  # fmt: skip
#: Masses (GeV) of SM bosons when the spectrum lacks them (PDG 2022).
_BOSON_MASSES = {21: 0.0, 22: 0.0, 23: 91.1876, 24: 80.377, 25: 125.25, 211: 0.13957}


def _single(category: int, energy: float) -> np.ndarray:
    """Moments of one particle of a category with a fixed energy.

    Moments are arrays of shape ``(4, 14)``: rows ``E[n]``, ``E[n^2]``,
    ``E[sum of E_max]`` and ``E[sum of E_max^2]`` per category.
    """
    out = np.zeros((4, N_CATEGORIES))
    out[:, category] = (1.0, 1.0, energy, energy * energy)
    return out


def _plus(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Moments of two independent subtrees together (counts add)."""
    out = a + b
    out[1] += 2.0 * a[0] * b[0]
    return out


def _boosted(rest: np.ndarray, gamma: float) -> np.ndarray:
    """Moments of a subtree whose root moves with Lorentz factor ``gamma``.

    Every energy in the subtree is proportional to the root's (eq. (4) chains
    linearly), so only the energy rows scale.
    """
    out = rest.copy()
    out[2] *= gamma
    out[3] *= gamma * gamma
    return out


def compute_features(
    spectrum: Spectrum,
    decays: DecayTable,
    cross_sections_fb: Mapping[tuple[int, int], float],
) -> np.ndarray:
    """The 56 reparametrized features of one point.

    Args:
        spectrum: The spectrum (masses in GeV).
        decays: Decay table (PDG -> Decay), conjugate decays by CP.
        cross_sections_fb: Production cross section in fb per pair of PDG codes.

    Returns:
        Array of shape ``(56,)``, finite, ordered as ``FEATURE_NAMES``.
    """
    walker = _TreeWalker(spectrum, decays)
    rows, weights = [], []
    for (pdg_a, pdg_b), sigma in cross_sections_fb.items():
        if not (np.isfinite(sigma) and sigma > 0.0):
            continue
        leg_a = walker.moments(int(pdg_a), walker.mass(int(pdg_a)), 0)
        leg_b = walker.moments(int(pdg_b), walker.mass(int(pdg_b)), 0)
        rows.append(_process_statistics(_plus(leg_a, leg_b)))
        weights.append(float(sigma))
    if not rows:
        return np.zeros(len(FEATURE_NAMES))
    return _average_processes(np.array(rows), np.array(weights)).ravel()


def _process_statistics(m: np.ndarray) -> np.ndarray:
    """Per category (n_mean, n_std, emax_mean, emax_std), shape ``(14, 4)``."""
    n1, n2, e1, e2 = m
    n_std = np.sqrt(np.clip(n2 - n1**2, 0.0, None))
    occurs = n1 > 1e-12
    safe = np.where(occurs, n1, 1.0)
    e_mean = np.where(occurs, e1 / safe, 0.0)
    e_std = np.where(occurs, np.sqrt(np.clip(e2 / safe - e_mean**2, 0.0, None)), 0.0)
    return np.stack([n1, n_std, e_mean, e_std], axis=1)


def _average_processes(rows: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Cross-section weighted average of per-process statistics, shape ``(14, 4)``."""
    out = np.zeros((N_CATEGORIES, 4))
    out[:, :2] = np.einsum("p,pcs->cs", sigma, rows[:, :, :2]) / sigma.sum()
    e_weights = sigma[:, None] * rows[:, :, 0]
    total = e_weights.sum(axis=0)
    safe = np.where(total > 0, total, 1.0)
    out[:, 2:] = np.einsum("pc,pcs->cs", e_weights, rows[:, :, 2:]) / safe[:, None]
    return out


def max_energy(m_mother: float, m_daughter: float, m_others: float) -> float:
    """Eq. (3): largest energy (GeV) of a daughter in the mother's rest frame."""
    product = (m_mother**2 - (m_others + m_daughter) ** 2) * (
        m_mother**2 - (m_others - m_daughter) ** 2
    )
    return float(np.sqrt(max(product, 0.0) / (2.0 * m_mother) ** 2 + m_daughter**2))


class _TreeWalker:
    """Follows decay trees and accumulates category moments.

    The moments of each particle are computed once, at rest, and boosted.
    """

    def __init__(self, spectrum: Spectrum, decays: DecayTable) -> None:
        self.spectrum = spectrum
        self.decays = decays
        self.memo: dict[int, np.ndarray] = {}

    def mass(self, pdg: int) -> float:
        """Mass in GeV (absolute value) of any particle by PDG code."""
        code = abs(pdg)
        if code in self.spectrum.masses and code not in FERMION_MASSES_GEV:
            return abs(float(self.spectrum.masses[code]))
        if code == 6:
            return abs(float(self.spectrum.masses.get(6, FERMION_MASSES_GEV[6])))
        if code in FERMION_MASSES_GEV:
            return FERMION_MASSES_GEV[code]
        return _BOSON_MASSES.get(code, 0.0)

    def channels(self, pdg: int) -> list[tuple[float, tuple[int, ...]]]:
        """Kept channels (BR >= MIN_BR, renormalised) of a particle or antiparticle."""
        code = abs(pdg)
        decay = self.decays.get(code)
        table = (
            decay.channels
            if decay is not None and decay.channels
            else SM_DECAYS.get(code, [])
        )
        kept = [(br, d) for br, d in table if br >= MIN_BR]
        total = sum(br for br, _ in kept)
        if pdg < 0 and code not in _SELF_CONJUGATE:
            kept = [(br, tuple(_conjugate(x) for x in d)) for br, d in kept]
        return [(br / total, d) for br, d in kept] if total > 0 else []

    def moments(self, pdg: int, energy: float, depth: int) -> np.ndarray:
        """Moments of the subtree of one particle with lab energy ``energy``."""
        if pdg in _FINAL_CATEGORY:
            return _single(_FINAL_CATEGORY[pdg], energy)
        m_k = self.mass(pdg)
        if pdg not in self.memo:
            self.memo[pdg] = self._at_rest(pdg, m_k, depth)
        return _boosted(self.memo[pdg], energy / m_k if m_k > 0 else 1.0)

    def _at_rest(self, pdg: int, m_k: float, depth: int) -> np.ndarray:
        """Moments of a decaying (or stable) particle at rest."""
        channels = self.channels(pdg) if depth < MAX_DEPTH and m_k > 0 else []
        if not channels:
            if abs(pdg) in _INVISIBLE_SPARTICLES:
                return _single(8, m_k)
            return np.zeros((4, N_CATEGORIES))
        out = np.zeros((4, N_CATEGORIES))
        for br, daughters in channels:
            masses = [self.mass(d) for d in daughters]
            total_mass = sum(masses)
            branch = np.zeros((4, N_CATEGORIES))
            for d, m_i in zip(daughters, masses, strict=True):
                e_rest = max_energy(m_k, m_i, total_mass - m_i)
                branch = _plus(branch, self.moments(d, e_rest, depth + 1))
            out += br * branch
        if pdg in _RESONANCE_CATEGORY:
            out = _plus(out, _single(_RESONANCE_CATEGORY[pdg], m_k))
        return out


def _conjugate(pdg: int) -> int:
    """PDG code of the charge conjugate."""
    return pdg if abs(pdg) in _SELF_CONJUGATE else -pdg
