"""Tree-level MSSM couplings in SLHA conventions, built once per spectrum for decays.

Conventions (SLHA 1/2, the same as Gunion and Haber, Nucl. Phys. B272 (1986) 1, and
Haber and Kane, Phys. Rept. 117 (1985) 75, with real mixing matrices and signed
neutralino masses):

- neutralino basis (B~, W~3, H~d, H~u), ``chi0 = N psi0``, ``N* M_N N^dagger`` diagonal;
- chargino bases (W~+, H~u+) and (W~-, H~d-), ``U* X V^dagger`` diagonal;
- sfermion mass states ``f~_i = R_i1 f~_L + R_i2 f~_R`` (SLHA STOPMIX etc.);
- CP-even Higgs ``h = -sin(alpha) h_d + cos(alpha) h_u``, ``H = cos(alpha) h_d +
  sin(alpha) h_u``; pseudoscalar ``A = sin(beta) a_d + cos(beta) a_u``.

Fermion-sfermion-ino couplings are written, as in Bartl et al. (e.g. Z. Phys. C73
(1997) 469), as ``L = fbar (a P_R + b P_L) chi f~ + h.c.`` with the gauge couplings
absorbed into ``a`` and ``b``. Higgs-ino-ino and Higgs-sfermion-sfermion couplings are
obtained as derivatives of the tree-level mass matrices with respect to the neutral
Higgs fields (exact at tree level, because those mass terms are linear or quadratic in
the Higgs vacuum values); the charged-Higgs-neutralino-chargino coupling follows
Gunion and Haber (their Q'^L, Q'^R).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

import numpy as np

from simulators.spectrum_types import Spectrum

SQRT2 = np.sqrt(2.0)

#: PDG code -> (T3 of the left-handed field, electric charge, colours).
FERMION_QUANTUM_NUMBERS: dict[int, tuple[float, float, int]] = {
    1: (-0.5, -1 / 3, 3),
    2: (0.5, 2 / 3, 3),
    3: (-0.5, -1 / 3, 3),
    4: (0.5, 2 / 3, 3),
    5: (-0.5, -1 / 3, 3),
    6: (0.5, 2 / 3, 3),
    11: (-0.5, -1.0, 1),
    12: (0.5, 0.0, 1),
    13: (-0.5, -1.0, 1),
    14: (0.5, 0.0, 1),
    15: (-0.5, -1.0, 1),
    16: (0.5, 0.0, 1),
}

#: Kinematic masses (GeV) of the light fermions; PDG 2022 values (c: MSbar m_c(m_c),
#: b: pole mass). The top mass comes from the spectrum when it carries one.
FERMION_MASSES_GEV: dict[int, float] = {
    1: 0.0,
    2: 0.0,
    3: 0.0,
    4: 1.27,
    5: 4.78,
    6: 173.1,
    11: 0.000511,
    12: 0.0,
    13: 0.10566,
    14: 0.0,
    15: 1.77686,
    16: 0.0,
}

#: Running masses (GeV) near 1 TeV used for the Yukawa couplings of the first two
#: generations (MSbar running from PDG 2022 inputs; only Higgs -> c c~, s s~, mu mu
#: and tiny sfermion Yukawa terms depend on them).
YUKAWA_MASSES_GEV: dict[int, float] = {
    1: 0.0025,
    2: 0.0012,
    3: 0.048,
    4: 0.53,
    11: 0.000511,
    13: 0.10566,
}

#: SU(2) partner of each fermion (up <-> down type in the same doublet).
DOUBLET_PARTNER: dict[int, int] = {
    1: 2, 2: 1, 3: 4, 4: 3, 5: 6, 6: 5,
    11: 12, 12: 11, 13: 14, 14: 13, 15: 16, 16: 15,
}  # fmt: skip

#: Sfermion mass states: fermion PDG -> PDG codes of its partners (state 1, state 2).
SFERMIONS: dict[int, tuple[int, ...]] = {
    1: (1000001, 2000001),
    2: (1000002, 2000002),
    3: (1000003, 2000003),
    4: (1000004, 2000004),
    5: (1000005, 2000005),
    6: (1000006, 2000006),
    11: (1000011, 2000011),
    13: (1000013, 2000013),
    15: (1000015, 2000015),
    12: (1000012,),
    14: (1000014,),
    16: (1000016,),
}

NEUTRALINOS = (1000022, 1000023, 1000025, 1000035)
CHARGINOS = (1000024, 1000037)
GLUINO = 1000021


@dataclass
class SfermionFamily:
    """The sfermion mass states partnering one SM fermion.

    Attributes:
        fermion: PDG code of the SM fermion.
        pdgs: PDG codes of the mass states.
        masses: Masses (GeV), shape ``(n_states,)``.
        R: Rows are mass states, columns (L, R) components, shape ``(n_states, 2)``.
    """

    fermion: int
    pdgs: tuple[int, ...]
    masses: np.ndarray
    R: np.ndarray


@dataclass
class Couplings:
    """Everything the decay formulas need about one spectrum (GeV, dimensionless)."""

    g: float
    gp: float
    g3: float
    v: float
    tan_beta: float
    sin_beta: float
    cos_beta: float
    sin_alpha: float
    cos_alpha: float
    sw2: float
    mu: float
    m_w: float
    m_z: float
    N: np.ndarray
    m_neutralino: np.ndarray
    U: np.ndarray
    V: np.ndarray
    m_chargino: np.ndarray
    m_gluino: float
    masses: dict[int, float]
    yukawa: dict[int, float] = field(default_factory=dict)
    families: dict[int, SfermionFamily] = field(default_factory=dict)
    cache: dict[tuple, Any] = field(default_factory=dict, repr=False)

    def mass(self, pdg: int) -> float:
        """Kinematic mass (GeV, absolute value) of a particle by PDG code."""
        pdg = abs(pdg)
        if pdg in FERMION_MASSES_GEV and pdg != 6:
            return FERMION_MASSES_GEV[pdg]
        return abs(self.masses.get(pdg, FERMION_MASSES_GEV.get(pdg, 0.0)))


def _cached(function: Callable) -> Callable:
    """Compute a coupling matrix once per spectrum (stored on the record)."""

    @wraps(function)
    def wrapper(cp: Couplings, *args: Any) -> Any:
        key = (function.__name__, *args)
        if key not in cp.cache:
            cp.cache[key] = function(cp, *args)
        return cp.cache[key]

    return wrapper


def build_couplings(spectrum: Spectrum) -> Couplings:
    """Collect masses, mixings and couplings of one spectrum for the decay formulas.

    Args:
        spectrum: The spectrum (SLHA conventions).

    Returns:
        The couplings record.
    """
    c = spectrum.couplings
    g, gp = float(c.get("g2", 0.65)), float(c.get("g1", 0.36))
    v = float(c.get("v", 246.0))
    tb = float(spectrum.tan_beta)
    sb, cb = tb / np.hypot(1.0, tb), 1.0 / np.hypot(1.0, tb)
    masses = {int(k): float(x) for k, x in spectrum.masses.items()}
    m_w = abs(masses.get(24, 80.38))
    m_z = abs(masses.get(23, 91.1876))
    couplings = Couplings(
        g=g,
        gp=gp,
        g3=float(c.get("g3", 1.04)),
        v=v,
        tan_beta=tb,
        sin_beta=sb,
        cos_beta=cb,
        sin_alpha=float(np.sin(spectrum.alpha)),
        cos_alpha=float(np.cos(spectrum.alpha)),
        sw2=gp**2 / (g**2 + gp**2),
        mu=float(spectrum.mu),
        m_w=m_w,
        m_z=m_z,
        N=np.asarray(spectrum.N, dtype=float),
        m_neutralino=np.array([masses[p] for p in NEUTRALINOS]),
        U=np.asarray(spectrum.U, dtype=float),
        V=np.asarray(spectrum.V, dtype=float),
        m_chargino=np.array([masses[p] for p in CHARGINOS]),
        m_gluino=_signed_gluino_mass(spectrum, masses),
        masses=masses,
    )
    couplings.yukawa = _yukawas(spectrum, couplings)
    couplings.families = _families(spectrum, masses)
    return couplings


def _signed_gluino_mass(spectrum: Spectrum, masses: dict[int, float]) -> float:
    """Gluino mass with the sign of M3 (a positive SLHA mass hides a phase i)."""
    m = masses.get(GLUINO, 0.0)
    if m < 0:
        return m
    return float(np.copysign(m, spectrum.parameters.get("M3", 1.0)))


def _yukawas(spectrum: Spectrum, cp: Couplings) -> dict[int, float]:
    """Yukawa couplings at Q of every charged fermion (neutrinos have none)."""
    c = spectrum.couplings
    y = {12: 0.0, 14: 0.0, 16: 0.0}
    for pdg, m in YUKAWA_MASSES_GEV.items():
        vev = cp.v * (
            cp.sin_beta if FERMION_QUANTUM_NUMBERS[pdg][0] > 0 else cp.cos_beta
        )
        y[pdg] = SQRT2 * m / vev
    y[6] = float(c.get("yt", SQRT2 * 165.0 / (cp.v * cp.sin_beta)))
    y[5] = float(c.get("yb", SQRT2 * 2.8 / (cp.v * cp.cos_beta)))
    y[15] = float(c.get("ytau", SQRT2 * 1.75 / (cp.v * cp.cos_beta)))
    return y


def _families(
    spectrum: Spectrum, masses: dict[int, float]
) -> dict[int, SfermionFamily]:
    """Sfermion families with their (L, R) composition; third generation mixes.

    Selectrons and smuons get the left-right mixing ``m_l (A_l - mu tan(beta))``
    with ``A_l = 0`` (the pMSSM has trilinears for the third generation only),
    which matters for smuons at large ``mu tan(beta)``; the first two squark
    generations are taken unmixed.
    """
    mixing = {6: spectrum.stop_mix, 5: spectrum.sbottom_mix, 15: spectrum.stau_mix}
    families = {}
    for fermion, pdgs in SFERMIONS.items():
        m = np.array([abs(masses.get(p, 1e9)) for p in pdgs])
        if fermion in mixing:
            R = np.asarray(mixing[fermion], dtype=float)
        elif fermion in (11, 13):
            x_lr = -YUKAWA_MASSES_GEV[fermion] * spectrum.mu * spectrum.tan_beta
            R = _mixing_from_masses(m[0], m[1], x_lr)
        elif len(pdgs) == 2:
            R = np.eye(2)
        else:
            R = np.array([[1.0, 0.0]])
        families[fermion] = SfermionFamily(fermion, pdgs, m, R)
    return families


def _mixing_from_masses(m1: float, m2: float, x_lr: float) -> np.ndarray:
    """Rotation with mass eigenvalues m1 (L-like), m2 and off-diagonal ``x_lr``.

    ``R^T diag(m1^2, m2^2) R`` has off-diagonal ``sin(t) cos(t) (m1^2 - m2^2)``;
    a splitting too small for ``x_lr`` gives maximal mixing.
    """
    split = m1 * m1 - m2 * m2
    sin_2t = np.clip(2.0 * x_lr / split, -1.0, 1.0) if split != 0 else np.sign(x_lr)
    t = 0.5 * np.arcsin(sin_2t)
    return np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])


@_cached
def neutralino_sfermion(cp: Couplings, fermion: int) -> tuple[np.ndarray, np.ndarray]:
    """Couplings ``fbar (a P_R + b P_L) chi0_k f~_i`` of one sfermion family.

    Returns:
        ``(a, b)``, each of shape ``(n_states, 4)``.
    """
    t3, e, _ = FERMION_QUANTUM_NUMBERS[fermion]
    N = cp.N
    gauge_l = -SQRT2 * (cp.g * t3 * N[:, 1] + cp.gp * (e - t3) * N[:, 0])
    gauge_r = SQRT2 * cp.gp * e * N[:, 0]
    higgsino = N[:, 3] if t3 > 0 else N[:, 2]
    yuk = -cp.yukawa[fermion] * higgsino
    R = cp.families[fermion].R
    a = np.outer(R[:, 0], gauge_l) + np.outer(R[:, 1], yuk)
    b = np.outer(R[:, 0], yuk) + np.outer(R[:, 1], gauge_r)
    return a, b


@_cached
def chargino_sfermion(cp: Couplings, fermion: int) -> tuple[np.ndarray, np.ndarray]:
    """Couplings of the sfermions of ``fermion`` to its doublet partner and charginos.

    For an up-type family (incl. sneutrinos) the interaction is
    ``dbar (l P_R + k P_L) chi+^c_k u~_i`` (u~ -> d chi+); for a down-type family
    ``ubar (l P_R + k P_L) chi+_k d~_i`` (d~ -> u chi-).

    Returns:
        ``(l, k)``, each of shape ``(n_states, 2)``.
    """
    t3 = FERMION_QUANTUM_NUMBERS[fermion][0]
    partner = DOUBLET_PARTNER[fermion]
    y_f, y_p = cp.yukawa[fermion], cp.yukawa[partner]
    R = cp.families[fermion].R
    if t3 > 0:
        own, other = cp.V, cp.U
    else:
        own, other = cp.U, cp.V
    l_coef = -cp.g * np.outer(R[:, 0], own[:, 0]) + y_f * np.outer(R[:, 1], own[:, 1])
    k_coef = y_p * np.outer(R[:, 0], other[:, 1])
    return l_coef, k_coef


@_cached
def gluino_sfermion(cp: Couplings, fermion: int) -> tuple[np.ndarray, np.ndarray]:
    """Couplings ``qbar (a P_R + b P_L) g~ q~_i`` (colour matrix stripped).

    The phase of a negative M3 is carried by the signed gluino mass.

    Returns:
        ``(a, b)``, each of shape ``(n_states,)``.
    """
    R = cp.families[fermion].R
    return -SQRT2 * cp.g3 * R[:, 0], SQRT2 * cp.g3 * R[:, 1]


@_cached
def neutralino_w(cp: Couplings) -> tuple[np.ndarray, np.ndarray]:
    """``g W-_mu chi0bar_i gamma^mu (OL_ij P_L + OR_ij P_R) chi+_j``: (g OL, g OR)."""
    N, U, V = cp.N, cp.U, cp.V
    o_l = -np.outer(N[:, 3], V[:, 1]) / SQRT2 + np.outer(N[:, 1], V[:, 0])
    o_r = np.outer(N[:, 2], U[:, 1]) / SQRT2 + np.outer(N[:, 1], U[:, 0])
    return cp.g * o_l, cp.g * o_r


@_cached
def neutralino_z(cp: Couplings) -> tuple[np.ndarray, np.ndarray]:
    """Z couplings between neutralinos (vector vertex for i != j), shape ``(4, 4)``."""
    N = cp.N
    o_l = -0.5 * np.outer(N[:, 2], N[:, 2]) + 0.5 * np.outer(N[:, 3], N[:, 3])
    gz = cp.g / np.sqrt(1.0 - cp.sw2)
    return gz * o_l, -gz * o_l


@_cached
def chargino_z(cp: Couplings) -> tuple[np.ndarray, np.ndarray]:
    """Z couplings between charginos, shape ``(2, 2)``."""
    U, V = cp.U, cp.V
    eye = np.eye(2) * cp.sw2
    o_l = -np.outer(V[:, 0], V[:, 0]) - 0.5 * np.outer(V[:, 1], V[:, 1]) + eye
    o_r = -np.outer(U[:, 0], U[:, 0]) - 0.5 * np.outer(U[:, 1], U[:, 1]) + eye
    gz = cp.g / np.sqrt(1.0 - cp.sw2)
    return gz * o_l, gz * o_r


def _higgs_directions(cp: Couplings) -> dict[int, tuple[float, float]]:
    """Components (along h_d, h_u) of h, H and, for the CP-odd part, A."""
    sa, ca, sb, cb = cp.sin_alpha, cp.cos_alpha, cp.sin_beta, cp.cos_beta
    return {25: (-sa, ca), 35: (ca, sa), 36: (sb, cb)}


@_cached
def neutralino_higgs(cp: Couplings) -> dict[int, np.ndarray]:
    """Neutral Higgs couplings ``-1/2 phi C_ij chibar_i chi_j`` (scalar or gamma5).

    Returns:
        PDG (25, 35, 36) -> symmetric ``(4, 4)`` matrix ``C``; for A the vertex is
        pseudoscalar (``a = -b``).
    """
    d_vd = np.zeros((4, 4))
    d_vu = np.zeros((4, 4))
    d_vd[0, 2] = d_vd[2, 0] = -cp.gp / 2
    d_vd[1, 2] = d_vd[2, 1] = cp.g / 2
    d_vu[0, 3] = d_vu[3, 0] = cp.gp / 2
    d_vu[1, 3] = d_vu[3, 1] = -cp.g / 2
    out = {}
    for pdg, (xd, xu) in _higgs_directions(cp).items():
        out[pdg] = cp.N @ (xd * d_vd + xu * d_vu) @ cp.N.T
    return out


@_cached
def chargino_higgs(cp: Couplings) -> dict[int, np.ndarray]:
    """Neutral Higgs couplings ``-phi chibar_i (C_ij P_L + C_ji P_R) chi_j``."""
    d_vd = np.array([[0.0, 0.0], [cp.g / SQRT2, 0.0]])
    d_vu = np.array([[0.0, cp.g / SQRT2], [0.0, 0.0]])
    return {
        pdg: cp.U @ (xd * d_vd + xu * d_vu) @ cp.V.T
        for pdg, (xd, xu) in _higgs_directions(cp).items()
    }


@_cached
def neutralino_chargino_hplus(cp: Couplings) -> tuple[np.ndarray, np.ndarray]:
    """Charged Higgs couplings (g cos(beta) Q'L, g sin(beta) Q'R), shape ``(4, 2)``."""
    N, U, V = cp.N, cp.U, cp.V
    tw = np.sqrt(cp.sw2 / (1.0 - cp.sw2))
    mix = (N[:, 1] + tw * N[:, 0]) / SQRT2
    q_l = np.outer(N[:, 3], V[:, 0]) + np.outer(mix, V[:, 1])
    q_r = np.outer(N[:, 2], U[:, 0]) - np.outer(mix, U[:, 1])
    return cp.g * cp.cos_beta * q_l, cp.g * cp.sin_beta * q_r


@_cached
def sfermion_higgs(cp: Couplings, fermion: int) -> dict[int, np.ndarray]:
    """Neutral Higgs - sfermion - sfermion couplings in the mass basis (GeV).

    The left-right entry of the mass matrix is reconstructed from the masses and
    mixing, which gives the trilinear A_f without needing the input parameters.

    Returns:
        PDG (25, 35, 36) -> ``(n, n)`` matrix ``G`` (n mass states) with
        ``L = -phi f~_i* G_ij f~_j`` (for A the modulus of the antisymmetric
        coupling).
    """
    fam = cp.families[fermion]
    t3, e, _ = FERMION_QUANTUM_NUMBERS[fermion]
    up = t3 > 0
    y = cp.yukawa[fermion]
    v_d, v_u = cp.v * cp.cos_beta, cp.v * cp.sin_beta
    v_f, v_o = (v_u, v_d) if up else (v_d, v_u)
    m_lr = float(np.sum(fam.masses**2 * fam.R[:, 0] * fam.R[:, 1]))
    a_f = (SQRT2 * m_lr / max(y, 1e-12) + cp.mu * v_o) / v_f
    d_l = 0.5 * (cp.g**2 * t3 - cp.gp**2 * (e - t3))
    d_r = 0.5 * (-(cp.gp**2) * e)
    blocks = {}
    for name, sign in (("d", 1.0), ("u", -1.0)):
        own = (name == "u") == up
        diag_y = y**2 * (v_f if own else 0.0)
        vev = v_d if name == "d" else v_u
        lr = y * a_f / SQRT2 if own else -y * cp.mu / SQRT2
        blocks[name] = np.array(
            [[diag_y + sign * d_l * vev, lr], [lr, diag_y + sign * d_r * vev]]
        )
    R = fam.R
    out = {}
    for pdg, (xd, xu) in _higgs_directions(cp).items():
        if pdg == 36:
            c_a = (
                y * (a_f * xu + cp.mu * xd) / SQRT2
                if up
                else y * (a_f * xd + cp.mu * xu) / SQRT2
            )
            n = len(fam.pdgs)
            out[pdg] = np.abs(c_a) * (np.ones((n, n)) - np.eye(n))
        else:
            out[pdg] = R @ (xd * blocks["d"] + xu * blocks["u"]) @ R.T
    return out


def _trilinear(cp: Couplings, fermion: int) -> float:
    """A_f (GeV) reconstructed from the sfermion masses and mixing."""
    fam = cp.families[fermion]
    up = FERMION_QUANTUM_NUMBERS[fermion][0] > 0
    v_f, v_o = (cp.sin_beta, cp.cos_beta) if up else (cp.cos_beta, cp.sin_beta)
    m_lr = float(np.sum(fam.masses**2 * fam.R[:, 0] * fam.R[:, 1]))
    y = max(cp.yukawa[fermion], 1e-12)
    return (SQRT2 * m_lr / y + cp.mu * cp.v * v_o) / (cp.v * v_f)


@_cached
def sfermion_charged_higgs(cp: Couplings, up: int) -> np.ndarray:
    """H+ couplings ``G_ij H+ u~_i* d~_j`` (GeV) in the mass bases.

    In the (L, R) bases, with running masses m_u, m_d from the Yukawas (Gunion and
    Haber, Nucl. Phys. B272 (1986) 1; the same matrix in Bartl et al., Phys. Lett.
    B402 (1997) 303): ``g / (sqrt 2 m_W)`` times
    ``[[m_d^2 tb + m_u^2 / tb - m_W^2 sin 2b, m_d (A_d tb + mu)],
    [m_u (A_u / tb + mu), 2 m_u m_d / sin 2b]]``.

    Returns:
        Shape ``(n_up_states, n_down_states)``.
    """
    down = DOUBLET_PARTNER[up]
    tb, sb, cb = cp.tan_beta, cp.sin_beta, cp.cos_beta
    m_u = cp.yukawa[up] * cp.v * sb / SQRT2
    m_d = cp.yukawa[down] * cp.v * cb / SQRT2
    s2b = 2 * sb * cb
    a_d = _trilinear(cp, down) if len(cp.families[down].pdgs) == 2 else 0.0
    G = np.array(
        [
            [m_d**2 * tb + m_u**2 / tb - cp.m_w**2 * s2b, m_d * (a_d * tb + cp.mu)],
            [
                m_u * (_trilinear(cp, up) / tb + cp.mu) if m_u > 0 else 0.0,
                2 * m_u * m_d / s2b,
            ],
        ]
    )
    G *= cp.g / (SQRT2 * cp.m_w)
    R_u, R_d = cp.families[up].R, cp.families[down].R
    return R_u @ G[: R_u.shape[1], :] @ R_d.T


def heavy_higgs_to_light_pair(cp: Couplings) -> float:
    """Tree-level H h h coupling (GeV), Gunion and Haber, Nucl. Phys. B272 (1986) 1.

    ``g_Hhh = -(g m_Z / (2 cos(theta_W))) [2 sin(2a) sin(b + a) - cos(2a) cos(b + a)]``.
    """
    sa, ca, sb, cb = cp.sin_alpha, cp.cos_alpha, cp.sin_beta, cp.cos_beta
    s2a, c2a = 2 * sa * ca, ca * ca - sa * sa
    s_ba, c_ba = sb * ca + cb * sa, cb * ca - sb * sa
    return -cp.g * cp.m_z / (2 * np.sqrt(1 - cp.sw2)) * (2 * s2a * s_ba - c2a * c_ba)
