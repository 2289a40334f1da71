"""Pre-selection verdicts on the SPheno runs, and the Table 2 window by hand."""

from __future__ import annotations

import math

import pytest

from simulators.preselection import TABLE2, preselect
from simulators.slha import read_spectrum
from simulators.spectrum import compute_spectrum
from simulators.spectrum_types import Spectrum
from tests.spheno_fixtures import FAILED_IN_SPHENO, all_names, fixtures_dir, point

#: The verdict every run must get, worked out from the fixtures by hand: a phrase
#: of the reason, or None when the point passes.
EXPECTED = {
    "light_gluino": None,
    "compressed_gluino": None,
    "light_stop": None,
    "negative_signs": None,
    "light_electroweakinos": None,
    "decoupled": "the LSP is ~nu",  # sneutrinos at 2.9 TeV below a 3.86 TeV bino
    "stau_lsp_valid": "the LSP is ~tau_1",
    "light_chargino": "m(~chi_1+)",
    "light_higgs": "m(h0)",
    "tachyonic_stop": "tachyonic",
    "stau_lsp": "tachyonic",
    "large_mixing": "Delta_b",
}


@pytest.mark.parametrize("name", all_names())
def test_builtin_verdicts(name: str) -> None:
    reason = preselect(compute_spectrum(point(name), "pmssm11"))
    if EXPECTED[name] is None:
        assert reason is None
    else:
        assert reason is not None and EXPECTED[name] in reason


@pytest.mark.parametrize("name", sorted(set(all_names()) - set(FAILED_IN_SPHENO)))
def test_spheno_spectrum_verdicts(name: str) -> None:
    reason = preselect(read_spectrum(fixtures_dir() / name / "SPheno.spc"))
    if EXPECTED[name] is None:
        assert reason is None
    else:
        assert reason is not None and EXPECTED[name] in reason


def test_spheno_and_builtin_agree_on_every_run() -> None:
    for name in all_names():
        builtin_passes = preselect(compute_spectrum(point(name), "pmssm11")) is None
        if name in FAILED_IN_SPHENO:
            assert not builtin_passes, name
            continue
        spheno = read_spectrum(fixtures_dir() / name / "SPheno.spc")
        assert builtin_passes == (preselect(spheno) is None), name


@pytest.fixture
def passing() -> Spectrum:
    spectrum = read_spectrum(fixtures_dir() / "light_gluino" / "SPheno.spc")
    assert preselect(spectrum) is None
    return spectrum


# Total uncertainty sigma = sqrt(sum exp^2 + (fraction * predicted)^2), by hand:
#   m_W = 80.79:  sqrt(0.015^2 + 0.08079^2) = 0.08217 -> (80.79-80.385)/0.08217 = 4.93
#   m_W = 80.80:  sqrt(0.015^2 + 0.08080^2) = 0.08218 -> 0.415/0.08218 = 5.05
#   b->s gamma 9.5e-4: sqrt(0.21^2+0.07^2+1.33^2)e-4 = 1.3483e-4 -> 6.07/1.3483 = 4.50
#   b->s gamma 1.2e-3: sqrt(0.049+1.68^2)e-4 = 1.6945e-4 -> 8.57/1.6945 = 5.06
#   Bs->mu mu 1.2e-8: sqrt(0.7^2 + 3.12^2)e-9 = 3.1976e-9 -> 9.1/3.1976 = 2.85
#   Bu->tau nu 6.0e-4: sqrt(0.25^2+1.2^2)e-4 = 1.2258e-4 -> 4.95/1.2258 = 4.04
#   Bu->tau nu 8.0e-4: sqrt(0.0625+2.56)e-4 = 1.6194e-4 -> 6.95/1.6194 = 4.29
#   Delta M_Bs 6.0: sqrt(0.036^2+0.023^2+1.44^2) = 1.4407 -> 11.719/1.4407 = 8.13
@pytest.mark.parametrize(
    ("key", "value", "passes"),
    [
        ("m_W", 80.79, True),
        ("m_W", 80.80, False),
        ("BR(b->s gamma)", 9.5e-4, True),
        ("BR(b->s gamma)", 1.2e-3, False),
        ("BR(Bs->mu mu)", 1.2e-8, True),
        ("BR(Bu->tau nu)", 6.0e-4, True),
        ("BR(Bu->tau nu)", 8.0e-4, True),
        ("DeltaM_Bs", 6.0, False),
    ],
)
def test_table2_window(passing: Spectrum, key: str, value: float, passes: bool) -> None:
    passing.low_energy[key] = value
    reason = preselect(passing)
    assert (reason is None) == passes
    if not passes:
        assert "sigma" in reason


def test_table2_pull_by_hand() -> None:
    bsg = next(obs for obs in TABLE2 if obs.key == "BR(b->s gamma)")
    expected = math.sqrt(0.21**2 + 0.07**2 + (0.14 * 9.5) ** 2) * 1e-4
    assert bsg.sigma(9.5e-4) == pytest.approx(expected)


def test_missing_observables_are_not_tested(passing: Spectrum) -> None:
    passing.low_energy = {}
    assert preselect(passing) is None


def test_first_failed_criterion_wins(passing: Spectrum) -> None:
    passing.masses[25] = 100.0
    passing.masses[1000022] = 80.0
    passing.masses[1000024] = 90.0
    assert "m(h0)" in preselect(passing)
    passing.masses[25] = 120.0
    assert preselect(passing) == "m(~chi_1+) = 90.0 GeV is below 103.5 GeV"
    passing.tachyons = ["~t_1"]
    assert preselect(passing) == "tachyonic states: ~t_1"


def test_heavy_higgs_bound(passing: Spectrum) -> None:
    passing.masses[35] = 105.0
    assert preselect(passing) == "m(H0) = 105.0 GeV is below 110 GeV"


def test_neutralino_lsp_by_absolute_mass(passing: Spectrum) -> None:
    passing.masses[1000022] = -290.0
    assert preselect(passing) is None
    passing.masses[1000015] = 280.0
    assert "the LSP is ~tau_1 (280.0 GeV)" in preselect(passing)
