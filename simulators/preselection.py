"""Pre-selection of spectra before any LHC simulation (paper Sect. 2, Table 2).

A point is simulated only when its spectrum has no tachyon (and no other sign of an
unphysical spectrum, see ``Spectrum.problems``), the lightest neutralino
is the lightest supersymmetric particle, both CP-even Higgs bosons are heavier than
110 GeV, the lighter chargino is heavier than 103.5 GeV and, when the spectrum
carries them, m_W, |Delta M_Bs|, BR(B_s -> mu mu), BR(b -> s gamma) and
BR(B_u -> tau nu) lie within 5 sigma of the values of Table 2.

The flavour and precision observables come only from a spectrum generator that
computes them (SPheno's SPhenoLowEnergy block, read into ``Spectrum.low_energy``).
The built-in spectrum calculator does not compute them, so built-in spectra are
not tested against Table 2: points that the flavour constraints would reject are
kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulators.spectrum_types import Spectrum

#: Lower mass bounds (GeV), paper Sect. 2 (the chargino bound from LEP, ref. [20]).
M_HIGGS_MIN = 110.0
M_CHARGINO_MIN = 103.5
#: Allowed distance from the measured value, in units of the total uncertainty.
N_SIGMA = 5.0


@dataclass(frozen=True)
class Observable:
    """A precision observable of paper Table 2.

    Attributes:
        key: Key in ``Spectrum.low_energy``.
        label: Name in reasons.
        value: Measured value.
        exp_errors: Experimental uncertainties, combined in quadrature.
        theory_fraction: Theoretical uncertainty as a fraction of the predicted
            value.
    """

    key: str
    label: str
    value: float
    exp_errors: tuple[float, ...]
    theory_fraction: float

    def sigma(self, predicted: float) -> float:
        """Total uncertainty: experimental and theoretical errors in quadrature."""
        exp2 = sum(e**2 for e in self.exp_errors)
        return math.sqrt(exp2 + (self.theory_fraction * predicted) ** 2)

    def pull(self, predicted: float) -> float:
        """|predicted - measured| / total uncertainty."""
        return abs(predicted - self.value) / self.sigma(predicted)


#: Paper Table 2 (m_W in GeV, Delta M_Bs in ps^-1, branching ratios plain).
TABLE2: tuple[Observable, ...] = (
    Observable("m_W", "m_W", 80.385, (0.015,), 0.001),
    Observable("DeltaM_Bs", "|Delta M_Bs|", 17.719, (0.036, 0.023), 0.24),
    Observable("BR(Bs->mu mu)", "BR(Bs -> mu mu)", 2.9e-9, (0.7e-9,), 0.26),
    Observable("BR(b->s gamma)", "BR(b -> s gamma)", 3.43e-4, (0.21e-4, 0.07e-4), 0.14),
    Observable("BR(Bu->tau nu)", "BR(Bu -> tau nu)", 1.05e-4, (0.25e-4,), 0.20),
)

#: Readable names of the states the reasons mention.
STATE_NAMES: dict[int, str] = {
    1000001: "~d_L", 2000001: "~d_R", 1000002: "~u_L", 2000002: "~u_R",
    1000003: "~s_L", 2000003: "~s_R", 1000004: "~c_L", 2000004: "~c_R",
    1000005: "~b_1", 2000005: "~b_2", 1000006: "~t_1", 2000006: "~t_2",
    1000011: "~e_L", 2000011: "~e_R", 1000012: "~nu_e", 1000013: "~mu_L",
    2000013: "~mu_R", 1000014: "~nu_mu", 1000015: "~tau_1", 2000015: "~tau_2",
    1000016: "~nu_tau", 1000021: "~g", 1000022: "~chi_10", 1000023: "~chi_20",
    1000025: "~chi_30", 1000035: "~chi_40", 1000024: "~chi_1+", 1000037: "~chi_2+",
    1000039: "~G", 25: "h0", 35: "H0",
}  # fmt: skip


def preselect(spectrum: Spectrum) -> str | None:
    """Apply the paper's pre-selection; the first failed criterion wins.

    Args:
        spectrum: A built-in or SPheno spectrum.

    Returns:
        ``None`` when the point passes, else the reason in words, e.g.
        ``"m(h0) = 72.6 GeV is below 110 GeV"``.
    """
    checks = (_tachyons, _problems, _lsp, _higgs_masses, _chargino_mass, _flavour)
    for check in checks:
        reason = check(spectrum)
        if reason is not None:
            return reason
    return None


def _tachyons(spectrum: Spectrum) -> str | None:
    if spectrum.tachyons:
        return f"tachyonic states: {', '.join(spectrum.tachyons)}"
    return None


def _problems(spectrum: Spectrum) -> str | None:
    if spectrum.problems:
        return "; ".join(spectrum.problems)
    return None


def _lsp(spectrum: Spectrum) -> str | None:
    sparticles = {pdg: abs(m) for pdg, m in spectrum.masses.items() if pdg >= 1000000}
    if 1000022 not in sparticles:
        return "the spectrum has no lightest neutralino mass"
    lightest = min(sparticles, key=lambda pdg: (sparticles[pdg], pdg != 1000022))
    if lightest == 1000022:
        return None
    name = STATE_NAMES.get(lightest, str(lightest))
    return (
        f"the LSP is {name} ({sparticles[lightest]:.1f} GeV), not the lightest "
        f"neutralino ({sparticles[1000022]:.1f} GeV)"
    )


def _higgs_masses(spectrum: Spectrum) -> str | None:
    for pdg in (25, 35):
        mass = spectrum.masses.get(pdg)
        if mass is None:
            return f"the spectrum has no {STATE_NAMES[pdg]} mass"
        if abs(mass) <= M_HIGGS_MIN:
            return f"m({STATE_NAMES[pdg]}) = {abs(mass):.1f} GeV is below {M_HIGGS_MIN:g} GeV"
    return None


def _chargino_mass(spectrum: Spectrum) -> str | None:
    mass = spectrum.masses.get(1000024)
    if mass is None:
        return "the spectrum has no lighter chargino mass"
    if abs(mass) <= M_CHARGINO_MIN:
        return f"m(~chi_1+) = {abs(mass):.1f} GeV is below {M_CHARGINO_MIN:g} GeV"
    return None


def _flavour(spectrum: Spectrum) -> str | None:
    for obs in TABLE2:
        predicted = spectrum.low_energy.get(obs.key)
        if predicted is None:
            continue
        pull = obs.pull(abs(predicted))
        if not pull < N_SIGMA:
            return (
                f"{obs.label} = {predicted:.4g} lies {pull:.1f} sigma from the "
                f"measured {obs.value:.4g} (more than {N_SIGMA:g} sigma)"
            )
    return None
