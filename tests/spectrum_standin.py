"""An analytic stand-in for the key masses of a pMSSM-19 point, for tests only.

Tree-level squark mass matrices with D-terms, and the gluino pole mass as |M3|
raised by a flat 10 % (the size of the one-loop QCD correction for TeV squarks).
Parameters in GeV at the SUSY scale; constants below with their sources.
"""

from __future__ import annotations

import numpy as np

from sampler.space import PMSSM19_NAMES

#: Top and bottom masses in GeV (PDG running masses near 1 TeV would be lower; the
#: pole-mass order of magnitude is all the ordering needs).
M_TOP = 173.0
M_BOTTOM = 4.18
#: Z mass in GeV and sin^2 of the weak mixing angle (PDG).
M_Z = 91.1876
SIN2_W = 0.231
#: Flat gluino pole-mass correction relative to |M3|.
GLUINO_POLE_FACTOR = 1.10


def key_masses(X: np.ndarray) -> dict[str, np.ndarray]:
    """Key masses (GeV) of pMSSM-19 points ``X`` ``(n, 19)``; nan for a tachyon."""
    p = {name: np.asarray(X)[:, j] for j, name in enumerate(PMSSM19_NAMES)}
    tanb = p["tanb"]
    c2b = (1.0 - tanb**2) / (1.0 + tanb**2)
    dz = M_Z**2 * c2b
    d_ul, d_ur = (0.5 - 2.0 / 3.0 * SIN2_W) * dz, 2.0 / 3.0 * SIN2_W * dz
    d_dl, d_dr = (-0.5 + 1.0 / 3.0 * SIN2_W) * dz, -1.0 / 3.0 * SIN2_W * dz
    stop = _lighter(
        p["mQ3"] ** 2 + M_TOP**2 + d_ul,
        p["mU3"] ** 2 + M_TOP**2 + d_ur,
        M_TOP * (p["At"] - p["mu"] / tanb),
    )
    sbottom = _lighter(
        p["mQ3"] ** 2 + M_BOTTOM**2 + d_dl,
        p["mD3"] ** 2 + M_BOTTOM**2 + d_dr,
        M_BOTTOM * (p["Ab"] - p["mu"] * tanb),
    )
    light_sq = np.minimum.reduce(
        [
            p["mQ12"] ** 2 + d_ul,
            p["mQ12"] ** 2 + d_dl,
            p["mU12"] ** 2 + d_ur,
            p["mD12"] ** 2 + d_dr,
        ]
    )
    return {
        "m_gluino": GLUINO_POLE_FACTOR * np.abs(p["M3"]),
        "m_stop1": stop,
        "m_sbottom1": sbottom,
        "m_squark_min": _sqrt_or_nan(light_sq),
    }


def _lighter(m_ll: np.ndarray, m_rr: np.ndarray, m_lr: np.ndarray) -> np.ndarray:
    """Lighter eigenvalue's square root of [[m_ll, m_lr], [m_lr, m_rr]] (GeV^2)."""
    half_sum = 0.5 * (m_ll + m_rr)
    root = np.sqrt(0.25 * (m_ll - m_rr) ** 2 + m_lr**2)
    return _sqrt_or_nan(half_sum - root)


def _sqrt_or_nan(m_sq: np.ndarray) -> np.ndarray:
    return np.sqrt(np.where(m_sq > 0.0, m_sq, np.nan))
