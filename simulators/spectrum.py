"""Built-in pMSSM spectrum at Q = 1 TeV: tree-level mixing plus leading loop corrections.

The calculator takes the pMSSM-11 or pMSSM-19 soft parameters as running values at
Q = 1 TeV (the SPA convention) and returns pole masses in SLHA conventions:

- neutralino (4x4) and chargino (2x2) mass matrices with the one-loop gaugino and
  higgsino self-energies in the heavy-sfermion approximation (the structure of
  Pierce, Bagger, Matchev, Zhang, Nucl. Phys. B491 (1997) 3, hep-ph/9606211,
  App. D), then diagonalised: real ``N`` with signed masses ordered by |m|; ``U``,
  ``V`` from a singular-value decomposition with positive masses;
- sfermion masses with D-terms, left-right mixing of the third generation
  (X_t = A_t - mu / tan(beta), X_b = A_b - mu tan(beta), X_tau = A_tau - mu tan(beta))
  and, for squarks, the one-loop gluon/gluino correction (S. P. Martin, "A
  Supersymmetry Primer", hep-ph/9709356, Sect. 8.4, from Pierce et al. 1997);
- the gluino pole mass with its one-loop QCD correction from gluon and squark loops
  (Pierce et al. 1997, Eq. (D.44); closed form as in Martin's primer, Sect. 8.4);
- the CP-even Higgs masses and the angle alpha from the tree-level matrix plus the
  one-loop effective potential of top, bottom, tau and their partners (Ellis,
  Ridolfi, Zwirner, Phys. Lett. B262 (1991) 477) evaluated numerically, with the
  leading two-loop O(alpha_t alpha_s, alpha_t^2) terms and the top-Yukawa running
  of the tree-level quartic of Carena, Haber, Heinemeyer, Hollik, Wagner,
  Weiglein, Nucl. Phys. B580 (2000) 29, hep-ph/0001002, Eq. (2.3); the input m_A
  is the pseudoscalar mass including the same one-loop potential; the charged
  Higgs mass is the tree-level sqrt(m_A^2 + m_W^2). On top of this comes an
  empirical shift of m_h^2, linear in ln(M_S^2/m_t^2), that makes the built-in m_h
  follow SPheno 4.0.5 (our reference spectrum generator) within 2.5 GeV on its
  reference points; see ``_spheno_calibration``;
- a check of the tan(beta)-enhanced bottom-Yukawa correction Delta_b: above 100 %
  the spectrum is flagged in ``Spectrum.problems``, as SPheno refuses such points.

Agreement with SPheno 4.0.5 on the nine reference points of
``shared/fixtures/spheno``: gluino, squarks, sleptons, neutralinos and charginos
within 1.5 % except a light stop under a heavy gluino (+5 %) and electroweakinos
below 130 GeV (-4 %); m_h within 2 GeV.

Known shortcomings, in plain words: there is no renormalisation-group running (all
parameters are taken at Q = 1 TeV, gauge and Yukawa couplings are fixed typical
values there); electroweak loop corrections to sfermion masses are left out
(they move sleptons and squarks by a few per mille); the higgsino-Higgs mixing
term proportional to mu sin(2 beta) in the gaugino self-energies is left out; the
W mass is the measured value, not a prediction; and no flavour or precision
observable (b -> s gamma, B_s -> mu mu, ...) is computed, so ``low_energy`` stays
empty and the pre-selection cannot apply Table 2 to built-in spectra.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping

import numpy as np

from simulators.errors import SimulatorError
from simulators.spectrum_types import Spectrum

logger = logging.getLogger(__name__)

#: Canonical parameter names per model, in the order of the sampler's spaces.
MODEL_PARAMETERS: dict[str, tuple[str, ...]] = {
    "pmssm11": (
        "M1", "M2", "M3", "mQ12", "mQ3", "mL12", "mL3", "mA", "A", "mu", "tanb",
    ),
    "pmssm19": (
        "M1", "M2", "M3", "mL12", "mE12", "mL3", "mE3", "mQ12", "mU12", "mD12",
        "mQ3", "mU3", "mD3", "At", "Ab", "Atau", "mu", "mA", "tanb",
    ),
}  # fmt: skip

#: Renormalisation scale of the inputs (GeV), SPA convention.
Q_SCALE = 1000.0
#: Z and W pole masses (GeV), PDG.
M_Z = 91.1876
M_W = 80.379
#: On-shell weak mixing angle, 1 - m_W^2 / m_Z^2.
SIN2_W = 1.0 - M_W**2 / M_Z**2
#: Pole masses of top, bottom and tau (GeV), PDG; written to the MASS block.
M_TOP_POLE = 173.1
M_BOTTOM_POLE = 4.78
M_TAU_POLE = 1.77682
#: DR-bar gauge couplings g' (not GUT-normalised), g, g3 at Q = 1 TeV: typical
#: values of SPheno 4.0.5's GAUGE block on our reference points (they vary by
#: about 1 % with the spectrum through the SUSY thresholds).
G1_Q, G2_Q, G3_Q = 0.3615, 0.6365, 1.040
#: DR-bar vacuum expectation value at Q = 1 TeV (GeV, about 246 convention),
#: SPheno 4.0.5 HMIX 3 on our reference points.
V_Q = 244.6
#: DR-bar Z and W masses and weak mixing angle at Q from the couplings above; the
#: tree-level neutralino and chargino matrices take these (SLHA convention).
M_Z_DR = math.hypot(G1_Q, G2_Q) * V_Q / 2.0
M_W_DR = G2_Q * V_Q / 2.0
SIN2_W_DR = G1_Q**2 / (G1_Q**2 + G2_Q**2)
#: DR-bar running masses at Q = 1 TeV (GeV) used in the sfermion mass matrices:
#: y v sin(beta)/sqrt(2) (top) and y v cos(beta)/sqrt(2) (bottom, tau) from SPheno
#: 4.0.5's YU/YD/YE blocks on our reference points (including its SUSY threshold
#: corrections; the SM MS-bar top mass at 1 TeV is about 150 GeV).
M_TOP_Q, M_BOTTOM_Q, M_TAU_Q = 147.0, 2.30, 1.75
#: MS-bar top mass m_t(m_t) = m_t(pole) / (1 + 4 alpha_s / (3 pi)) with
#: alpha_s(m_t) = 0.108, and v = 174.1 GeV: the inputs of hep-ph/0001002 Eq. (2.3).
ALPHA_S_MT = 0.108
M_TOP_MSBAR = M_TOP_POLE / (1.0 + 4.0 * ALPHA_S_MT / (3.0 * math.pi))
V_174 = 174.1
#: Slope (GeV^2 per unit of ln(M_S^2/mt^2)) and pivot of the m_h^2 calibration to
#: SPheno 4.0.5, see ``_spheno_calibration``.
SPHENO_MH2_SLOPE = 760.0
SPHENO_MH2_PIVOT = 3.6

_LOOP = 1.0 / (16.0 * math.pi**2)

#: PDG codes of the sfermions by name.
SQUARKS_LIGHT = (1000001, 2000001, 1000002, 2000002, 1000003, 2000003, 1000004, 2000004)
NEUTRALINOS = (1000022, 1000023, 1000025, 1000035)
CHARGINOS = (1000024, 1000037)


class SpectrumError(SimulatorError, ValueError):
    """Raised when a parameter point cannot be read for the given model."""


# --------------------------------------------------------------------------- inputs


def soft_parameters(
    point: Mapping[str, float] | np.ndarray, model: str
) -> dict[str, np.ndarray]:
    """Expand a pMSSM-11 or pMSSM-19 point into the 19 independent soft inputs.

    Args:
        point: Mapping by canonical name, or an array ``(n, dim)`` in canonical order.
        model: ``"pmssm11"`` or ``"pmssm19"``.

    Returns:
        Arrays (GeV; ``tanb`` dimensionless) keyed M1, M2, M3, mQ1, mU1, mD1, mL1,
        mE1 (first two generations), mQ3, mU3, mD3, mL3, mE3, At, Ab, Atau, mu, mA,
        tanb.

    Raises:
        SpectrumError: Unknown model or missing parameter.
    """
    if model not in MODEL_PARAMETERS:
        raise SpectrumError(
            f"unknown model {model!r}; expected one of {sorted(MODEL_PARAMETERS)}"
        )
    names = MODEL_PARAMETERS[model]
    p = _columns(point, names, model)
    if model == "pmssm11":
        return {
            "M1": p["M1"], "M2": p["M2"], "M3": p["M3"],
            "mQ1": p["mQ12"], "mU1": p["mQ12"], "mD1": p["mQ12"],
            "mL1": p["mL12"], "mE1": p["mL12"],
            "mQ3": p["mQ3"], "mU3": p["mQ3"], "mD3": p["mQ3"],
            "mL3": p["mL3"], "mE3": p["mL3"],
            "At": p["A"], "Ab": p["A"], "Atau": p["A"],
            "mu": p["mu"], "mA": p["mA"], "tanb": p["tanb"],
        }  # fmt: skip
    return {
        "M1": p["M1"], "M2": p["M2"], "M3": p["M3"],
        "mQ1": p["mQ12"], "mU1": p["mU12"], "mD1": p["mD12"],
        "mL1": p["mL12"], "mE1": p["mE12"],
        "mQ3": p["mQ3"], "mU3": p["mU3"], "mD3": p["mD3"],
        "mL3": p["mL3"], "mE3": p["mE3"],
        "At": p["At"], "Ab": p["Ab"], "Atau": p["Atau"],
        "mu": p["mu"], "mA": p["mA"], "tanb": p["tanb"],
    }  # fmt: skip


def _columns(
    point: Mapping[str, float] | np.ndarray, names: tuple[str, ...], model: str
) -> dict[str, np.ndarray]:
    if isinstance(point, Mapping):
        missing = [name for name in names if name not in point]
        if missing:
            raise SpectrumError(f"{model} point lacks parameters {missing}")
        return {name: np.atleast_1d(np.asarray(point[name], float)) for name in names}
    X = np.asarray(point, dtype=float)
    X = X[None, :] if X.ndim == 1 else X
    if X.ndim != 2 or X.shape[1] != len(names):
        raise SpectrumError(f"expected {model} points of shape (n, {len(names)})")
    return {name: X[:, j] for j, name in enumerate(names)}


# ------------------------------------------------------------ loop functions


def b0(p: np.ndarray, m1: np.ndarray, m2: np.ndarray, q: float = Q_SCALE) -> np.ndarray:
    """Finite part of the Passarino-Veltman B0(p^2; m1^2, m2^2) in DR-bar at scale q.

    Closed form of Pierce et al. 1997, App. B; real part. Masses in GeV; p > 0.
    """
    p2 = np.asarray(p, float) ** 2
    m12 = np.maximum(np.asarray(m1, float) ** 2, 1e-6)
    m22 = np.maximum(np.asarray(m2, float) ** 2, 1e-6)
    s = p2 - m22 + m12
    root = np.sqrt(s.astype(complex) ** 2 - 4.0 * p2 * (m12 - 1e-10j * (m12 + p2)))
    x_plus = (s + root) / (2.0 * p2)
    x_minus = (s - root) / (2.0 * p2)
    return np.real(-np.log(p2 / q**2) - _fb(x_plus) - _fb(x_minus))


def _fb(x: np.ndarray) -> np.ndarray:
    return np.log(1.0 - x) - x * np.log(1.0 - 1.0 / x) - 1.0


def _a0(m: np.ndarray, q: float = Q_SCALE) -> np.ndarray:
    m2 = np.maximum(np.asarray(m, float) ** 2, 1e-6)
    return m2 * (1.0 - np.log(m2 / q**2))


def b1(p: np.ndarray, m1: np.ndarray, m2: np.ndarray, q: float = Q_SCALE) -> np.ndarray:
    """Finite part of B1(p^2; m1^2, m2^2) in the convention of Pierce et al. 1997.

    B1 = [A0(m2) - A0(m1) + (p^2 + m1^2 - m2^2) B0] / (2 p^2); for a heavy m2 it
    tends to 1/4 - ln(m2^2 / q^2) / 2.
    """
    p2 = np.asarray(p, float) ** 2
    m12, m22 = np.asarray(m1, float) ** 2, np.asarray(m2, float) ** 2
    return (_a0(m2, q) - _a0(m1, q) + (p2 + m12 - m22) * b0(p, m1, m2, q)) / (2.0 * p2)


# ------------------------------------------------------------ sfermions, gluino


def _trig(tanb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    beta = np.arctan(tanb)
    return np.sin(beta), np.cos(beta), np.cos(2.0 * beta)


def _squark_qcd_factor(m_soft: np.ndarray, m3: np.ndarray) -> np.ndarray:
    """1 + Delta m^2 / m^2 from gluon and gluino loops (Martin's primer, Sect. 8.4).

    Delta m^2 = m^2 (2 alpha_s / 3 pi) [1 + 3x + (x-1)^2 ln|x-1| - x^2 ln x
    + 2x ln(Q^2 / m^2)] with x = M3^2 / m^2; the last term's coefficient follows from
    the gluino term of the squark mass RGE, -(32/3) g3^2 M3^2 / (16 pi^2).
    """
    alpha_s = G3_Q**2 / (4.0 * math.pi)
    m2 = np.maximum(m_soft**2, 1.0)
    x = m3**2 / m2
    xm1 = np.abs(x - 1.0)
    mixed = np.where(xm1 > 1e-12, (x - 1.0) ** 2 * np.log(np.maximum(xm1, 1e-300)), 0.0)
    bracket = (
        1.0 + 3.0 * x + mixed - x**2 * np.log(x) + 2.0 * x * np.log(Q_SCALE**2 / m2)
    )
    return 1.0 + 2.0 * alpha_s / (3.0 * math.pi) * bracket


def _d_terms(cos2b: np.ndarray) -> dict[str, np.ndarray]:
    """D-term shifts (T3 - Q sin^2 theta_W) m_Z^2 cos 2 beta by sfermion kind (GeV^2)."""
    mz2 = M_Z**2 * cos2b
    return {
        "uL": (0.5 - 2.0 / 3.0 * SIN2_W) * mz2,
        "dL": (-0.5 + 1.0 / 3.0 * SIN2_W) * mz2,
        "uR": (2.0 / 3.0 * SIN2_W) * mz2,
        "dR": (-1.0 / 3.0 * SIN2_W) * mz2,
        "eL": (-0.5 + SIN2_W) * mz2,
        "eR": (-SIN2_W) * mz2,
        "nu": 0.5 * mz2,
    }


def _mix_2x2(
    m_ll: np.ndarray, m_rr: np.ndarray, m_lr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Eigen-decomposition of [[m_ll, m_lr], [m_lr, m_rr]] (GeV^2), vectorised.

    Returns:
        ``(m1_sq, m2_sq, cos_theta, sin_theta)`` with m1_sq <= m2_sq and the lighter
        state ``cos_theta * f_L + sin_theta * f_R`` (SLHA row 1 = (c, s), row 2 =
        (-s, c)).
    """
    half_sum = 0.5 * (m_ll + m_rr)
    half_diff = 0.5 * (m_ll - m_rr)
    root = np.sqrt(half_diff**2 + m_lr**2)
    theta = 0.5 * np.arctan2(-2.0 * m_lr, -(m_ll - m_rr))
    return half_sum - root, half_sum + root, np.cos(theta), np.sin(theta)


def _signed_sqrt(m2: np.ndarray) -> np.ndarray:
    return np.sqrt(np.abs(m2))


def _sfermion_sector(s: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Squared sfermion masses (GeV^2) and third-generation mixing, vectorised."""
    _, _, cos2b = _trig(s["tanb"])
    d = _d_terms(cos2b)
    tanb, mu, m3 = s["tanb"], s["mu"], np.abs(s["M3"])
    qcd = {
        k: _squark_qcd_factor(s[k], m3)
        for k in ("mQ1", "mU1", "mD1", "mQ3", "mU3", "mD3")
    }
    out = {
        "uL": s["mQ1"] ** 2 * qcd["mQ1"] + d["uL"],
        "dL": s["mQ1"] ** 2 * qcd["mQ1"] + d["dL"],
        "uR": s["mU1"] ** 2 * qcd["mU1"] + d["uR"],
        "dR": s["mD1"] ** 2 * qcd["mD1"] + d["dR"],
        "eL": s["mL1"] ** 2 + d["eL"],
        "eR": s["mE1"] ** 2 + d["eR"],
        "nu": s["mL1"] ** 2 + d["nu"],
        "nu3": s["mL3"] ** 2 + d["nu"],
    }
    stop = _mix_2x2(
        s["mQ3"] ** 2 * qcd["mQ3"] + M_TOP_Q**2 + d["uL"],
        s["mU3"] ** 2 * qcd["mU3"] + M_TOP_Q**2 + d["uR"],
        M_TOP_Q * (s["At"] - mu / tanb),
    )
    sbottom = _mix_2x2(
        s["mQ3"] ** 2 * qcd["mQ3"] + M_BOTTOM_Q**2 + d["dL"],
        s["mD3"] ** 2 * qcd["mD3"] + M_BOTTOM_Q**2 + d["dR"],
        M_BOTTOM_Q * (s["Ab"] - mu * tanb),
    )
    stau = _mix_2x2(
        s["mL3"] ** 2 + M_TAU_Q**2 + d["eL"],
        s["mE3"] ** 2 + M_TAU_Q**2 + d["eR"],
        M_TAU_Q * (s["Atau"] - mu * tanb),
    )
    for name, mix in (("stop", stop), ("sbottom", sbottom), ("stau", stau)):
        out[f"{name}1"], out[f"{name}2"] = mix[0], mix[1]
        out[f"{name}_cos"], out[f"{name}_sin"] = mix[2], mix[3]
    return out


def _gluino_pole(m3: np.ndarray, squark_masses: list[np.ndarray]) -> np.ndarray:
    """Gluino pole mass (GeV) from the running M3 at Q and the 12 squark masses.

    m = |M3| [1 + alpha_s/(4 pi) (15 + 3 ln(Q^2/M3^2) + sum_q~ A(m_q~^2/M3^2))],
    A(r) = int_0^1 x ln(x r - x(1-x)) dx for a massless quark (Pierce et al. 1997
    Eq. (D.44) in the closed form of Martin's primer, Sect. 8.4); the top-mass and
    stop-mixing terms are left out (below 0.1 % of the mass).
    """
    m3 = np.maximum(np.abs(m3), 1.0)
    alpha_s = G3_Q**2 / (4.0 * math.pi)
    total = 15.0 + 3.0 * np.log(Q_SCALE**2 / m3**2)
    for mq in squark_masses:
        total = total + _gluino_squark_integral(mq**2 / m3**2)
    return m3 * (1.0 + alpha_s / (4.0 * math.pi) * total)


def _gluino_squark_integral(r: np.ndarray) -> np.ndarray:
    """int_0^1 x ln|x (r - 1 + x)| dx = -1/4 + int_0^1 x ln|x + a| dx, a = r - 1."""
    a = np.asarray(r, float) - 1.0
    abs_a = np.maximum(np.abs(a), 1e-12)
    return (
        -0.25
        + 0.5 * (1.0 - a**2) * np.log(np.maximum(np.abs(1.0 + a), 1e-12))
        + 0.5 * a**2 * np.log(abs_a)
        - 0.25
        + 0.5 * a
    )


def key_masses(X: np.ndarray, model: str) -> dict[str, np.ndarray]:
    """Gluino, lighter stop and sbottom, and lightest first/second-generation squark.

    The same formulas as :func:`compute_spectrum`, vectorised over many points; used
    for mass-ordering constraints of the sampler.

    Args:
        X: Points, shape ``(n, dim)`` in the model's canonical parameter order (GeV).
        model: ``"pmssm11"`` or ``"pmssm19"``.

    Returns:
        ``m_gluino``, ``m_stop1``, ``m_sbottom1``, ``m_squark_min`` (over u~, d~, s~,
        c~ left and right), each shape ``(n,)`` in GeV; ``nan`` where the state is
        tachyonic.
    """
    s = soft_parameters(X, model)
    sf = _sfermion_sector(s)
    light = np.minimum.reduce([sf["uL"], sf["dL"], sf["uR"], sf["dR"]])
    return {
        "m_gluino": _gluino_pole(s["M3"], _squark_list(sf)),
        "m_stop1": _sqrt_or_nan(sf["stop1"]),
        "m_sbottom1": _sqrt_or_nan(sf["sbottom1"]),
        "m_squark_min": _sqrt_or_nan(light),
    }


def _sqrt_or_nan(m2: np.ndarray) -> np.ndarray:
    return np.sqrt(np.where(m2 >= 0.0, m2, np.nan))


def _squark_list(sf: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    first_two = [_signed_sqrt(sf[k]) for k in ("uL", "dL", "uR", "dR")] * 2
    third = [_signed_sqrt(sf[k]) for k in ("stop1", "stop2", "sbottom1", "sbottom2")]
    return first_two + third


# ------------------------------------------------------------ electroweakinos


def _gaugino_corrections(
    s: Mapping[str, float], sf: Mapping[str, float]
) -> tuple[float, float, float]:
    """Relative one-loop shifts of M1, M2 and mu (heavy-sfermion approximation).

    Each chiral multiplet of mass m contributes c * (-B1(M, m_f, m)) with c twice the
    sum of the squared charges (hypercharge for M1, SU(2) index for M2); vector loops
    give C (5 + 3 ln(Q^2/M^2)), C the quadratic Casimir (2 for the wino, 3/4 and
    1/4 for the higgsino doublet). The coefficients reproduce the one-loop running
    of M1, M2 and mu, as in Pierce et al. 1997, App. D.
    """
    m1 = max(abs(s["M1"]), 10.0)
    m2, mu = abs(s["M2"]), abs(s["mu"])
    ma = max(s["mA"], 10.0)
    m = {
        k: math.sqrt(abs(v)) for k, v in sf.items() if not k.endswith(("_cos", "_sin"))
    }
    q1, u1, d1 = (
        math.sqrt(abs(sf["uL"])),
        math.sqrt(abs(sf["uR"])),
        math.sqrt(abs(sf["dR"])),
    )
    e1, l1 = math.sqrt(abs(sf["eR"])), math.sqrt(abs(sf["eL"]))
    q3 = math.sqrt(max(abs(s["mQ3"]) ** 2, 1.0))
    u3, d3 = abs(s["mU3"]), abs(s["mD3"])
    l3, e3 = abs(s["mL3"]), abs(s["mE3"])

    def mb1(p: float, mf: float, ms: float) -> float:
        return -float(b1(p, mf, ms))

    higgs = lambda p, mh: mb1(p, mh, ma) + mb1(p, mh, M_Z)  # noqa: E731
    bino = (
        2 * (1 / 3 * mb1(m1, 0.0, q1) + 8 / 3 * mb1(m1, 0.0, u1) + 2 / 3 * mb1(m1, 0.0, d1))
        + 1 / 3 * mb1(m1, 0.0, q3) + 8 / 3 * mb1(m1, 0.0, u3) + 2 / 3 * mb1(m1, 0.0, d3)
        + 2 * (mb1(m1, 0.0, l1) + 2 * mb1(m1, 0.0, e1))
        + mb1(m1, 0.0, l3) + 2 * mb1(m1, 0.0, e3)
        + higgs(m1, mu)
    )  # fmt: skip
    wino = (
        2.0 * (5.0 + 3.0 * math.log(Q_SCALE**2 / m2**2))
        + 6 * mb1(m2, 0.0, q1) + 3 * mb1(m2, 0.0, q3)
        + 2 * mb1(m2, 0.0, l1) + mb1(m2, 0.0, l3)
        + higgs(m2, mu)
    )  # fmt: skip
    casimir = 0.75 * G2_Q**2 + 0.25 * G1_Q**2
    yt, yb, ytau = _yukawas(s["tanb"])
    higgsino = (
        casimir * (5.0 + 3.0 * math.log(Q_SCALE**2 / mu**2))
        + 0.75 * G2_Q**2 * higgs(mu, m2)
        + 0.25 * G1_Q**2 * higgs(mu, m1)
        + 1.5 * yt**2 * (mb1(mu, M_TOP_Q, m["stop1"]) + mb1(mu, M_TOP_Q, m["stop2"]))
        + 1.5 * yb**2 * (mb1(mu, M_BOTTOM_Q, m["sbottom1"]) + mb1(mu, M_BOTTOM_Q, m["sbottom2"]))
        + 0.5 * ytau**2 * (mb1(mu, M_TAU_Q, m["stau1"]) + mb1(mu, M_TAU_Q, m["stau2"]))
    )  # fmt: skip
    return (
        _LOOP * G1_Q**2 * bino,
        _LOOP * G2_Q**2 * wino,
        _LOOP * higgsino,
    )


def _yukawas(tanb: float) -> tuple[float, float, float]:
    beta = math.atan(tanb)
    yt = math.sqrt(2.0) * M_TOP_Q / (V_Q * math.sin(beta))
    yb = math.sqrt(2.0) * M_BOTTOM_Q / (V_Q * math.cos(beta))
    ytau = math.sqrt(2.0) * M_TAU_Q / (V_Q * math.cos(beta))
    return yt, yb, ytau


def neutralino_mixing(
    M1: float, M2: float, mu: float, tanb: float
) -> tuple[np.ndarray, np.ndarray]:
    """Diagonalise the neutralino mass matrix in the SLHA basis (B~, W~3, H~d, H~u).

    The matrix takes the DR-bar m_Z and weak mixing angle at Q.

    Returns:
        ``(masses, N)``: signed masses (GeV) ordered by |m|, shape ``(4,)``, and the
        real mixing matrix ``N`` ``(4, 4)`` with ``N M N^T = diag(masses)``.
    """
    sb, cb, _ = _trig(np.asarray(tanb))
    sw, cw = math.sqrt(SIN2_W_DR), math.sqrt(1.0 - SIN2_W_DR)
    mz = M_Z_DR
    matrix = np.array(
        [
            [M1, 0.0, -mz * cb * sw, mz * sb * sw],
            [0.0, M2, mz * cb * cw, -mz * sb * cw],
            [-mz * cb * sw, mz * cb * cw, 0.0, -mu],
            [mz * sb * sw, -mz * sb * cw, -mu, 0.0],
        ],
        dtype=float,
    )
    values, vectors = np.linalg.eigh(matrix)
    order = np.argsort(np.abs(values))
    return values[order], vectors[:, order].T


def chargino_mixing(
    M2: float, mu: float, tanb: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Diagonalise the chargino mass matrix X = [[M2, sqrt2 mW sb], [sqrt2 mW cb, mu]].

    The matrix takes the DR-bar m_W at Q.

    Returns:
        ``(masses, U, V)``: positive masses ascending ``(2,)`` (GeV) and real ``U``,
        ``V`` ``(2, 2)`` with ``U X V^T = diag(masses)`` (SLHA UMIX, VMIX).
    """
    beta = math.atan(tanb)
    root2mw = math.sqrt(2.0) * M_W_DR
    matrix = np.array(
        [[M2, root2mw * math.sin(beta)], [root2mw * math.cos(beta), mu]], dtype=float
    )
    left, values, right_t = np.linalg.svd(matrix)
    order = np.argsort(values)
    return values[order], left[:, order].T, right_t[order, :]


# ------------------------------------------------------------ Higgs sector


def _third_generation_potential(
    hu: complex, hd: complex, s: Mapping[str, float], q2: float
) -> float:
    """One-loop Coleman-Weinberg potential of t, b, tau and partners (GeV^4).

    ``hu``, ``hd`` are the neutral Higgs fields normalised so that <H> = v/sqrt2,
    v about 246 GeV. V = sum_i c_i (-1)^(2s) (2s+1) m_i^4 (ln(m_i^2/q2) - 3/2)
    / (64 pi^2), with D-terms of the sfermion masses left out (standard in the
    leading approximation).
    """
    _, yb, ytau = _yukawas(s["tanb"])
    yt = math.sqrt(2.0) * M_TOP_MSBAR / (V_Q * math.sin(math.atan(s["tanb"])))
    total = 0.0
    sectors = (
        (3.0, yt, s["mQ3"], s["mU3"], s["At"], hu, hd),
        (3.0, yb, s["mQ3"], s["mD3"], s["Ab"], hd, hu),
        (1.0, ytau, s["mL3"], s["mE3"], s["Atau"], hd, hu),
    )
    for colour, y, m_l, m_r, a_term, own, other in sectors:
        mf2 = y**2 * abs(own) ** 2
        mix2 = y**2 * abs(a_term * own - s["mu"] * np.conj(other)) ** 2
        half_sum = 0.5 * (m_l**2 + m_r**2) + mf2
        root = math.sqrt(0.25 * (m_l**2 - m_r**2) ** 2 + mix2)
        for m2 in (half_sum - root, half_sum + root):
            total += colour * 2.0 * _cw(m2, q2)
        total -= colour * 4.0 * _cw(mf2, q2)
    return total / (64.0 * math.pi**2)


def _cw(m2: float, q2: float) -> float:
    if abs(m2) < 1e-12:
        return 0.0
    return m2**2 * (math.log(abs(m2) / q2) - 1.5)


def _potential_curvature(
    s: Mapping[str, float], q2: float
) -> tuple[np.ndarray, np.ndarray]:
    """Loop parts of the CP-even and CP-odd mass matrices in the (d, u) basis (GeV^2).

    Second derivatives of the potential minus the tadpole terms delta_ij V_i / v_i,
    by central finite differences.
    """
    beta = math.atan(s["tanb"])
    v = np.array([V_Q * math.cos(beta), V_Q * math.sin(beta)])
    h = 0.05

    def pot(re: np.ndarray, im: np.ndarray) -> float:
        fields = (v + re + 1j * im) / math.sqrt(2.0)
        return _third_generation_potential(fields[1], fields[0], s, q2)

    zero = np.zeros(2)
    even, odd = np.zeros((2, 2)), np.zeros((2, 2))
    basis = np.eye(2) * h
    for i in range(2):
        for j in range(2):
            even[i, j] = _mixed_difference(pot, basis[i], basis[j], zero, even=True)
            odd[i, j] = _mixed_difference(pot, basis[i], basis[j], zero, even=False)
    tadpole = np.array(
        [(pot(basis[i], zero) - pot(-basis[i], zero)) / (2 * h) for i in range(2)]
    )
    return even - np.diag(tadpole / v), odd - np.diag(tadpole / v)


def _mixed_difference(
    pot: Callable[[np.ndarray, np.ndarray], float],
    di: np.ndarray,
    dj: np.ndarray,
    zero: np.ndarray,
    *,
    even: bool,
) -> float:
    def at(a: np.ndarray) -> float:
        return pot(a, zero) if even else pot(zero, a)

    step2 = float(np.dot(di, di))
    return (at(di + dj) - at(di - dj) - at(dj - di) + at(-di - dj)) / (4.0 * step2)


def higgs_sector(
    s: Mapping[str, float], m_stop: tuple[float, float]
) -> tuple[float, float, float, list[str]]:
    """CP-even Higgs masses and the mixing angle alpha.

    Args:
        s: Soft parameters of one point (floats).
        m_stop: Stop masses (GeV) setting the scale M_S^2 = m_t~1 m_t~2.

    Returns:
        ``(m_h, m_H, alpha, tachyons)`` in GeV and rad (SLHA: h = -sin(alpha) phi_d
        + cos(alpha) phi_u).
    """
    tanb, ma = s["tanb"], s["mA"]
    beta = math.atan(tanb)
    sb, cb = math.sin(beta), math.cos(beta)
    ms2 = max(_stop_scale(s), (2.0 * M_TOP_MSBAR) ** 2)
    loop_even, loop_odd = _potential_curvature(s, ms2)

    a_hat = np.array([sb, cb])
    b_mu = sb * cb * (ma**2 - a_hat @ loop_odd @ a_hat)
    t = math.log(ms2 / M_TOP_MSBAR**2)
    mz2 = M_Z**2 * (1.0 - 3.0 / (8.0 * math.pi**2) * M_TOP_MSBAR**2 / V_174**2 * t)
    matrix = (
        b_mu * np.array([[tanb, -1.0], [-1.0, 1.0 / tanb]])
        + mz2 * np.array([[cb**2, -sb * cb], [-sb * cb, sb**2]])
        + loop_even
    )
    matrix[1, 1] += (_two_loop_shift(s, ms2) + _spheno_calibration(t)) / sb**2

    values, vectors = np.linalg.eigh(matrix)
    tachyons = [name for name, v in zip(("h0", "H0"), values, strict=True) if v < 0]
    light = vectors[:, 0]
    alpha = math.atan2(-light[0], light[1])
    alpha = (alpha + math.pi / 2) % math.pi - math.pi / 2
    return (
        float(_signed_sqrt(values[0])),
        float(_signed_sqrt(values[1])),
        alpha,
        tachyons,
    )


def _stop_scale(s: Mapping[str, float]) -> float:
    """M_S^2 = sqrt((mQ3^2 + mt^2)(mU3^2 + mt^2)) (GeV^2), mt the MS-bar m_t(m_t)."""
    mt2 = M_TOP_MSBAR**2
    return math.sqrt((s["mQ3"] ** 2 + mt2) * (s["mU3"] ** 2 + mt2))


def _spheno_calibration(t: float) -> float:
    """Empirical shift of m_h^2 (GeV^2) that makes the built-in m_h follow SPheno 4.0.5.

    SPheno evaluates the Higgs mass at fixed order in DR-bar at Q = 1 TeV; its m_h
    grows faster with t = ln(M_S^2/mt^2) than the formula above (by about 6 GeV
    between M_S = 0.5 and 5 TeV). A straight line in t, fitted to the nine valid
    SPheno 4.0.5 reference points, absorbs this: residuals stay below 2.5 GeV there.
    Away from those points the difference is a systematic uncertainty of the
    built-in m_h of a few GeV.
    """
    return SPHENO_MH2_SLOPE * (t - SPHENO_MH2_PIVOT)


def _two_loop_shift(s: Mapping[str, float], ms2: float) -> float:
    """Leading two-loop shift of m_h^2 (GeV^2), hep-ph/0001002 Eq. (2.3).

    (3 mt^4 / (4 pi^2 v^2)) (1/16 pi^2) (3 mt^2 / (2 v^2) - 32 pi alpha_s)
    (Xt~ t + t^2), with t = ln(M_S^2/mt^2), Xt~ = 2 Xt^2/M_S^2 (1 - Xt^2/(12 M_S^2)),
    mt the MS-bar m_t(m_t) and v = 174.1 GeV.
    """
    xt2 = (s["At"] - s["mu"] / s["tanb"]) ** 2 / ms2
    xt_tilde = 2.0 * xt2 * (1.0 - xt2 / 12.0)
    t = math.log(ms2 / M_TOP_MSBAR**2)
    mt, v2 = M_TOP_MSBAR, V_174**2
    prefactor = 3.0 * mt**4 / (4.0 * math.pi**2 * v2) * _LOOP
    coupling = 1.5 * mt**2 / v2 - 32.0 * math.pi * ALPHA_S_MT
    return prefactor * coupling * (xt_tilde * t + t**2)


# ------------------------------------------------------------ assembly


def compute_spectrum(point: Mapping[str, float], model: str) -> Spectrum:
    """Built-in spectrum of one pMSSM point at Q = 1 TeV (see the module docstring).

    Args:
        point: Canonical parameter names to values (GeV; ``tanb`` dimensionless).
        model: ``"pmssm11"`` or ``"pmssm19"``.

    Returns:
        The spectrum in SLHA conventions, ``source="builtin"``; states whose mass
        squared is negative are named in ``tachyons`` (their mass entry holds
        sqrt(|m^2|)). ``low_energy`` is empty: the built-in chain computes no
        flavour or precision observables.

    Raises:
        SpectrumError: Unknown model or missing parameter.
    """
    arrays = soft_parameters(point, model)
    s = {k: float(v[0]) for k, v in arrays.items()}
    sf = {k: float(v[0]) for k, v in _sfermion_sector(arrays).items()}
    masses, tachyons = _sfermion_masses(sf)
    masses[1000021] = float(_gluino_pole(arrays["M3"], _squark_list(_as_arrays(sf)))[0])

    d1, d2, dmu = _gaugino_corrections(s, sf)
    m_chi0, N = neutralino_mixing(
        s["M1"] * (1 + d1), s["M2"] * (1 + d2), s["mu"] * (1 + dmu), s["tanb"]
    )
    m_chipm, U, V = chargino_mixing(s["M2"] * (1 + d2), s["mu"] * (1 + dmu), s["tanb"])
    masses.update(dict(zip(NEUTRALINOS, map(float, m_chi0), strict=True)))
    masses.update(dict(zip(CHARGINOS, map(float, m_chipm), strict=True)))
    masses[CHARGINOS[0]] = _with_radiative_splitting(masses[CHARGINOS[0]], m_chi0[0], N)

    m_stop = (masses[1000006], masses[2000006])
    m_sbottom = (masses[1000005], masses[2000005])
    problems = _bottom_yukawa_problems(s, m_stop, m_sbottom)
    m_h, m_H, alpha, higgs_tachyons = higgs_sector(s, m_stop)
    masses.update(_higgs_and_sm_masses(m_h, m_H, s["mA"]))
    tachyons += higgs_tachyons
    if tachyons:
        logger.debug("tachyonic states %s at %s", tachyons, dict(point))
    return Spectrum(
        masses=masses,
        N=N,
        U=U,
        V=V,
        stop_mix=_rotation(sf["stop_cos"], sf["stop_sin"]),
        sbottom_mix=_rotation(sf["sbottom_cos"], sf["sbottom_sin"]),
        stau_mix=_rotation(sf["stau_cos"], sf["stau_sin"]),
        alpha=alpha,
        tan_beta=s["tanb"],
        mu=s["mu"],
        parameters={k: float(v) for k, v in dict(point).items()},
        couplings=_couplings(s["tanb"]),
        tachyons=tachyons,
        problems=problems,
        low_energy={},
        source="builtin",
    )


#: One-loop chargino-neutralino mass splitting in the pure-wino limit, GeV
#: (Ibe, Matsumoto, Sato, Phys. Lett. B721 (2013) 252, arXiv:1212.5989: 164 MeV).
WINO_SPLITTING_GEV = 0.164
#: The same in the pure-higgsino limit, GeV (Thomas, Wells, Phys. Rev. Lett. 81
#: (1998) 34, hep-ph/9804359: about 340 MeV for higgsinos well above m_Z).
HIGGSINO_SPLITTING_GEV = 0.341


def _with_radiative_splitting(m_chargino: float, m_lsp: float, N: np.ndarray) -> float:
    """Lift a wino- or higgsino-like chargino above the LSP by its loop splitting.

    The tree-level matrices leave a pure wino or higgsino multiplet almost exactly
    degenerate; electroweak loops split the charged state upwards. Where the LSP
    belongs to the same multiplet as the light chargino (its wino or higgsino
    fraction above one half), the loop splitting of the pure multiplet is added to
    the tree-level chargino mass. A bino-like LSP keeps the tree-level gap. The
    loop value of the pure limit is used for mixed states too: an approximation
    that matters only for which soft pions or leptons a chargino decays into.
    """
    wino, higgsino = N[0, 1] ** 2, N[0, 2] ** 2 + N[0, 3] ** 2
    if wino > 0.5:
        splitting = WINO_SPLITTING_GEV
    elif higgsino > 0.5:
        splitting = HIGGSINO_SPLITTING_GEV
    else:
        return m_chargino
    return max(m_chargino, abs(float(m_lsp))) + splitting


def delta_b(
    s: Mapping[str, float], m_stop: tuple[float, float], m_sbottom: tuple[float, float]
) -> float:
    """The tan(beta)-enhanced threshold correction to the bottom Yukawa coupling.

    Delta_b = (2 alpha_s / 3 pi) M3 mu tan(beta) I(m_b1^2, m_b2^2, M3^2)
    + (y_t^2 / 16 pi^2) A_t mu tan(beta) I(m_t1^2, m_t2^2, mu^2) (Carena, Garcia,
    Nierste, Wagner, Nucl. Phys. B577 (2000) 88, hep-ph/9912516, Eq. (5)).
    """
    alpha_s = G3_Q**2 / (4.0 * math.pi)
    yt = math.sqrt(2.0) * M_TOP_Q / (V_Q * math.sin(math.atan(s["tanb"])))
    mu_tanb = s["mu"] * s["tanb"]
    gluino = (
        2.0 * alpha_s / (3.0 * math.pi) * s["M3"] * mu_tanb
        * _loop_i(m_sbottom[0] ** 2, m_sbottom[1] ** 2, s["M3"] ** 2)
    )  # fmt: skip
    higgsino = (
        yt**2 * _LOOP * s["At"] * mu_tanb
        * _loop_i(m_stop[0] ** 2, m_stop[1] ** 2, s["mu"] ** 2)
    )  # fmt: skip
    return gluino + higgsino


def _loop_i(a: float, b: float, c: float) -> float:
    """I(a, b, c) = [ab ln(a/b) + bc ln(b/c) + ca ln(c/a)] / ((a-b)(b-c)(a-c))."""
    a, b, c = sorted(max(x, 1.0) for x in (a, b, c))
    b = max(b, a * (1.0 + 1e-4))
    c = max(c, b * (1.0 + 1e-4))
    numerator = (
        a * b * math.log(a / b) + b * c * math.log(b / c) + c * a * math.log(c / a)
    )
    return numerator / ((a - b) * (b - c) * (a - c))


def _bottom_yukawa_problems(
    s: Mapping[str, float], m_stop: tuple[float, float], m_sbottom: tuple[float, float]
) -> list[str]:
    """A bottom-Yukawa correction above 100 % makes the spectrum unreliable.

    SPheno refuses such points ("more than 100% corrections to Y_d"); the built-in
    calculator reports them the same way so both back-ends reject them.
    """
    correction = delta_b(s, m_stop, m_sbottom)
    if abs(correction) <= 1.0:
        return []
    return [
        f"bottom Yukawa threshold correction Delta_b = {correction:.2f} exceeds 100 %"
    ]


def _as_arrays(sf: Mapping[str, float]) -> dict[str, np.ndarray]:
    return {k: np.array([v]) for k, v in sf.items()}


_SFERMION_PDG: tuple[tuple[int, str, str], ...] = (
    (1000001, "dL", "~d_L"), (2000001, "dR", "~d_R"),
    (1000002, "uL", "~u_L"), (2000002, "uR", "~u_R"),
    (1000003, "dL", "~s_L"), (2000003, "dR", "~s_R"),
    (1000004, "uL", "~c_L"), (2000004, "uR", "~c_R"),
    (1000005, "sbottom1", "~b_1"), (2000005, "sbottom2", "~b_2"),
    (1000006, "stop1", "~t_1"), (2000006, "stop2", "~t_2"),
    (1000011, "eL", "~e_L"), (2000011, "eR", "~e_R"), (1000012, "nu", "~nu_e"),
    (1000013, "eL", "~mu_L"), (2000013, "eR", "~mu_R"), (1000014, "nu", "~nu_mu"),
    (1000015, "stau1", "~tau_1"), (2000015, "stau2", "~tau_2"),
    (1000016, "nu3", "~nu_tau"),
)  # fmt: skip


def _sfermion_masses(sf: Mapping[str, float]) -> tuple[dict[int, float], list[str]]:
    masses, tachyons = {}, []
    for pdg, key, name in _SFERMION_PDG:
        masses[pdg] = math.sqrt(abs(sf[key]))
        if sf[key] < 0.0:
            tachyons.append(name)
    return masses, tachyons


def _higgs_and_sm_masses(m_h: float, m_H: float, m_a: float) -> dict[int, float]:
    return {
        25: m_h,
        35: m_H,
        36: float(m_a),
        37: math.sqrt(m_a**2 + M_W**2),
        5: M_BOTTOM_POLE,
        6: M_TOP_POLE,
        15: M_TAU_POLE,
        23: M_Z,
        24: M_W,
    }


def _rotation(cos_t: float, sin_t: float) -> np.ndarray:
    return np.array([[cos_t, sin_t], [-sin_t, cos_t]])


def _couplings(tanb: float) -> dict[str, float]:
    yt, yb, ytau = _yukawas(tanb)
    return {
        "g1": G1_Q,
        "g2": G2_Q,
        "g3": G3_Q,
        "yt": yt,
        "yb": yb,
        "ytau": ytau,
        "v": V_Q,
    }
