"""Generic two- and three-body decay widths with chiral couplings (GeV).

All masses may carry a sign (a negative neutralino or gluino mass with a real mixing
matrix); kinematics use absolute values, the chirality-flip terms the signed ones.
Formulas are the standard spin-summed squares of the tree amplitudes (derived with
trace techniques, e.g. Haber and Kane, Phys. Rept. 117 (1985) 75, App. A):

- scalar -> fermion fermion, ``L = f1bar (a P_R + b P_L) f2 S``:
  ``sum|M|^2 = (a^2 + b^2)(m^2 - m1^2 - m2^2) - 4 a b m1 m2``;
- fermion -> fermion scalar: ``(a^2 + b^2)(m^2 + m1^2 - ms^2) + 4 a b m m1``;
- fermion -> fermion vector, ``V_mu f1bar gamma^mu (gL P_L + gR P_R) f``:
  ``(gL^2 + gR^2)(m^2 + m1^2 - 2 mV^2 + (m^2 - m1^2)^2 / mV^2) - 12 gL gR m m1``;
- scalar -> scalar vector, ``g (p + p')^mu``: ``g^2 lambda / mV^2``;
- scalar -> scalar scalar, coupling ``g`` in GeV: ``g^2``.

Three-body decays through one kind of off-shell scalar are integrated over the
invariant mass of the scalar (the squared amplitude depends on nothing else); decays
through an off-shell vector boson are factorised, ``dGamma/dq^2 = Gamma(m -> m' V*(q))
sqrt(q^2) Gamma(V*(q) -> f f') / (pi |q^2 - mV^2 + i mV GammaV|^2)``, which is exact
for massless final fermions after the angular integration.
"""

from __future__ import annotations

import math

import numpy as np

#: Gauss-Legendre nodes used for every one-dimensional integral.
_N_NODES = 32
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(_N_NODES)


def momentum(m: float, m1: float, m2: float) -> float:
    """Two-body decay momentum (GeV) in the rest frame of the mother; 0 if closed."""
    m, m1, m2 = abs(m), abs(m1), abs(m2)
    if m <= m1 + m2:
        return 0.0
    lam = (m * m - (m1 + m2) ** 2) * (m * m - (m1 - m2) ** 2)
    return math.sqrt(lam) / (2.0 * m)


def _momentum_array(m: np.ndarray, m1: float, m2: float) -> np.ndarray:
    """Vectorised two-body momentum, ``m`` an array of mother masses."""
    lam = (m * m - (m1 + m2) ** 2) * (m * m - (m1 - m2) ** 2)
    return np.sqrt(np.clip(lam, 0.0, None)) / (2.0 * m)


def scalar_to_fermions(
    m: float, m1: float, m2: float, a: float, b: float, colour: float = 1.0
) -> float:
    """Width of a scalar into two fermions (signed fermion masses)."""
    p = momentum(m, m1, m2)
    if p == 0.0:
        return 0.0
    amp = (a * a + b * b) * (m * m - m1 * m1 - m2 * m2) - 4.0 * a * b * m1 * m2
    return colour * p * max(amp, 0.0) / (8.0 * np.pi * m * m)


def fermion_to_fermion_scalar(
    m: float, m1: float, ms: float, a: float, b: float, colour: float = 1.0
) -> float:
    """Width of a fermion into a fermion and a scalar (spin averaged)."""
    p = momentum(m, m1, ms)
    if p == 0.0:
        return 0.0
    amp = (a * a + b * b) * (m * m + m1 * m1 - ms * ms) + 4.0 * a * b * m * m1
    return colour * p * max(amp, 0.0) / (16.0 * np.pi * m * m)


def fermion_to_fermion_vector(
    m: float, m1: float, mv: float, gl: float, gr: float, colour: float = 1.0
) -> float:
    """Width of a fermion into a fermion and a massive vector (spin averaged)."""
    p = momentum(m, m1, mv)
    if p == 0.0:
        return 0.0
    m2, m12 = m * m, m1 * m1
    amp = (gl * gl + gr * gr) * (m2 + m12 - 2 * mv * mv + (m2 - m12) ** 2 / mv**2)
    amp -= 12.0 * gl * gr * m * m1
    return colour * p * max(amp, 0.0) / (16.0 * np.pi * m2)


def scalar_to_scalar_vector(m: float, m1: float, mv: float, g: float) -> float:
    """Width of a scalar into a scalar and a vector, vertex ``g (p + p')``."""
    p = momentum(m, m1, mv)
    return g * g * p**3 / (2.0 * np.pi * mv * mv) if p > 0 else 0.0


def scalar_to_scalars(m: float, m1: float, m2: float, g: float) -> float:
    """Width of a scalar into two scalars, trilinear coupling ``g`` (GeV)."""
    p = momentum(m, m1, m2)
    return g * g * p / (8.0 * np.pi * m * m) if p > 0 else 0.0


def vector_to_fermions(
    q2: np.ndarray, m1: float, m2: float, cl: float, cr: float, colour: float
) -> np.ndarray:
    """Width of a vector of mass ``sqrt(q2)`` into two fermions, shape of ``q2``."""
    q = np.sqrt(q2)
    p = _momentum_array(q, m1, m2)
    amp = (cl * cl + cr * cr) * (
        2 * q2 - m1 * m1 - m2 * m2 - (m1 * m1 - m2 * m2) ** 2 / q2
    )
    amp += 12.0 * cl * cr * m1 * m2
    return colour * p * np.clip(amp, 0.0, None) / (24.0 * np.pi * q2)


def _fermion_to_vector_array(
    m: float, m1: float, mv: np.ndarray, gl: float, gr: float
) -> np.ndarray:
    """``fermion_to_fermion_vector`` for an array of vector masses."""
    lam = (m * m - (abs(m1) + mv) ** 2) * (m * m - (abs(m1) - mv) ** 2)
    p = np.sqrt(np.clip(lam, 0.0, None)) / (2.0 * abs(m))
    m2, m12 = m * m, m1 * m1
    amp = (gl * gl + gr * gr) * (m2 + m12 - 2 * mv * mv + (m2 - m12) ** 2 / mv**2)
    amp -= 12.0 * gl * gr * m * m1
    return p * np.clip(amp, 0.0, None) / (16.0 * np.pi * m2)


def _nodes(lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on ``[lo, hi]``."""
    half = 0.5 * (hi - lo)
    return lo + half * (_NODES + 1.0), half * _WEIGHTS


def fermion_to_fermion_vector_offshell(
    m: float,
    m_out: float,
    gl: float,
    gr: float,
    mv: float,
    width_v: float,
    final: tuple[float, float, float, float, float],
) -> float:
    """Three-body width ``F -> F' f f'`` through an off-shell vector boson.

    Args:
        m, m_out: Signed masses of the decaying and the final heavy fermion (GeV).
        gl, gr: Couplings of the vector to the heavy fermions.
        mv, width_v: Mass and total width of the vector (GeV).
        final: ``(m1, m2, cl, cr, colour)`` of the light fermion pair.

    Returns:
        The width in GeV.
    """
    m1, m2, cl, cr, colour = final
    if abs(m) <= abs(m_out) + m1 + m2:
        return 0.0
    lo, hi = (m1 + m2) ** 2, (abs(m) - abs(m_out)) ** 2
    q2, w = _nodes_mapped(lo, hi, mv, width_v)
    q = np.sqrt(q2)
    two_body = _fermion_to_vector_array(m, m_out, q, gl, gr)
    shape = q * vector_to_fermions(q2, m1, m2, cl, cr, colour)
    shape /= np.pi * ((q2 - mv * mv) ** 2 + (mv * width_v) ** 2)
    return float(np.sum(w * two_body * shape))


def _nodes_mapped(
    lo: float, hi: float, mass: float, width: float
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes in ``q^2`` with the Breit-Wigner flattened by an arctangent map."""
    mw = mass * max(width, 1e-3 * mass)
    t_lo = np.arctan((lo - mass * mass) / mw)
    t_hi = np.arctan((hi - mass * mass) / mw)
    t, w = _nodes(t_lo, t_hi)
    q2 = mass * mass + mw * np.tan(t)
    jac = mw / np.cos(t) ** 2
    return q2, w * jac


def three_body_scalar_exchange(
    m0: float,
    m1: float,
    m2: float,
    m3: float,
    m_scalars: np.ndarray,
    line1: tuple[np.ndarray, np.ndarray],
    line2: tuple[np.ndarray, np.ndarray],
    colour: float,
) -> float:
    """Width of ``F0 -> f1 S*``, ``S* -> f2 F3`` summed over the scalar mass states.

    Line 1 is a fermion-to-fermion-scalar vertex with couplings ``(a1, b1)`` per
    scalar, line 2 a scalar-to-two-fermions vertex with ``(a2, b2)``; the
    interference between scalar mass states is kept. Masses are signed. Scalars
    light enough to be produced on shell (``m_s < |m0| - |m1|``) are left out: that
    process is the two-body decay, counted separately.

    Args:
        m0, m1, m2, m3: Signed masses (GeV) of mother, f1, f2 and F3.
        m_scalars: Masses of the exchanged scalars (GeV), shape ``(n,)``.
        line1, line2: Coupling arrays, each of shape ``(n,)``.
        colour: Colour factor of the whole process.

    Returns:
        The width in GeV.
    """
    if abs(m0) <= abs(m1) + abs(m2) + abs(m3):
        return 0.0
    m_scalars = np.asarray(m_scalars, dtype=float)
    offshell = m_scalars > abs(m0) - abs(m1)
    if not np.any(offshell):
        return 0.0
    lo, hi = (abs(m2) + abs(m3)) ** 2, (abs(m0) - abs(m1)) ** 2
    s, w = _nodes(lo, hi)
    a1, b1 = (np.asarray(x, dtype=float)[offshell] for x in line1)
    a2, b2 = (np.asarray(x, dtype=float)[offshell] for x in line2)
    m_scalars = m_scalars[offshell]
    t1 = _line_matrix(a1, b1, (m0 * m0 + m1 * m1 - s), 2.0 * m0 * m1)
    t2 = _line_matrix(a2, b2, (s - m2 * m2 - m3 * m3), -2.0 * m2 * m3)
    prop = 1.0 / (s[:, None] - m_scalars[None, :] ** 2)
    amp2 = np.sum(t1 * t2 * prop[:, :, None] * prop[:, None, :], axis=(1, 2))
    dalitz = _dalitz_length(s, abs(m0), abs(m1), abs(m2), abs(m3))
    integral = np.sum(w * dalitz * np.clip(amp2, 0.0, None))
    return colour * 0.5 * integral / ((2 * np.pi) ** 3 * 32 * abs(m0) ** 3)


def _line_matrix(
    a: np.ndarray, b: np.ndarray, dot: np.ndarray, mass_term: float
) -> np.ndarray:
    """Spin-summed fermion line for scalar states (s, s'), shape ``(n_s2, n, n)``."""
    aa = a[:, None] * a[None, :] + b[:, None] * b[None, :]
    ab = a[:, None] * b[None, :] + b[:, None] * a[None, :]
    return dot[:, None, None] * aa[None] + mass_term * ab[None]


def _dalitz_length(
    s: np.ndarray, m0: float, m1: float, m2: float, m3: float
) -> np.ndarray:
    """Length of the ``m12^2`` range at fixed ``m23^2 = s`` (GeV^2)."""
    rs = np.sqrt(s)
    e2 = (s - m3 * m3 + m2 * m2) / (2 * rs)
    e1 = (m0 * m0 - s - m1 * m1) / (2 * rs)
    return (
        4.0
        * np.sqrt(np.clip(e2 * e2 - m2 * m2, 0, None))
        * np.sqrt(np.clip(e1 * e1 - m1 * m1, 0, None))
    )
