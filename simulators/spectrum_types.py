"""The spectrum record shared by the built-in calculator, SLHA I/O and decays."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Spectrum:
    """A pMSSM spectrum at Q = 1 TeV in SLHA conventions.

    Masses are pole masses in GeV keyed by PDG code; neutralino masses carry their
    SLHA sign (a negative mass means the physical state has a CP phase absorbed in
    the sign, with a real mixing matrix ``N``).

    Attributes:
        masses: PDG code to mass (GeV), all SUSY and Higgs states, SM W/Z/t/b.
        N: Neutralino mixing, shape ``(4, 4)``, rows mass states, columns
            (B~, W~3, H~d, H~u) (SLHA NMIX).
        U: Chargino mixing of the negative states, shape ``(2, 2)`` (SLHA UMIX).
        V: Chargino mixing of the positive states, shape ``(2, 2)`` (SLHA VMIX).
        stop_mix: ``(2, 2)`` SLHA STOPMIX; rows t~1, t~2, columns (t~L, t~R).
        sbottom_mix: ``(2, 2)`` SLHA SBOTMIX.
        stau_mix: ``(2, 2)`` SLHA STAUMIX.
        alpha: CP-even Higgs mixing angle (rad), SLHA ALPHA.
        tan_beta: tan beta at Q.
        mu: Higgsino mass parameter (GeV).
        parameters: The input point, canonical names (GeV).
        couplings: Hypercharge ``g1`` (g', not GUT-normalised), ``g2``, ``g3``,
            Yukawas ``yt``, ``yb``, ``ytau`` and ``v`` (GeV, about 246), at Q.
        tachyons: Names of states whose mass squared came out negative.
        problems: Reasons the spectrum is unphysical or unreliable other than
            tachyons (e.g. a bottom-Yukawa threshold correction above 100 %), in
            words; the pre-selection rejects such spectra.
        low_energy: Flavour and precision observables when the spectrum generator
            provides them (SPheno's SPhenoLowEnergy block), else empty.
        source: ``"builtin"`` or ``"spheno"``.
    """

    masses: dict[int, float]
    N: np.ndarray
    U: np.ndarray
    V: np.ndarray
    stop_mix: np.ndarray
    sbottom_mix: np.ndarray
    stau_mix: np.ndarray
    alpha: float
    tan_beta: float
    mu: float
    parameters: dict[str, float] = field(default_factory=dict)
    couplings: dict[str, float] = field(default_factory=dict)
    tachyons: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    low_energy: dict[str, float] = field(default_factory=dict)
    source: str = "builtin"


@dataclass
class Decay:
    """Total width and branching ratios of one particle (an SLHA DECAY block).

    Attributes:
        width: Total width in GeV.
        channels: ``(branching_ratio, daughters)`` pairs; daughters are signed PDG
            codes (an antiparticle is negative). Ratios sum to 1 when ``width > 0``.
    """

    width: float
    channels: list[tuple[float, tuple[int, ...]]] = field(default_factory=list)


#: PDG code of the decaying particle to its decay (the particle, not its charge
#: conjugate; conjugate decays follow by CP).
DecayTable = dict[int, Decay]
