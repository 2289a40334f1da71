"""Built-in decay tables against SPheno 4.0.5 DECAY blocks and hand-worked widths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sampler.priors import UniformPrior
from sampler.space import pmssm11
from simulators.decays import compute_decays
from simulators.slha import read_decays, read_spectrum
from simulators.spectrum import compute_spectrum
from simulators.spectrum_types import Spectrum

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "spheno"
INDEX = json.loads((FIXTURES / "index.json").read_text()) if FIXTURES.exists() else {}
VALID = sorted(name for name, entry in INDEX.items() if entry["exit_code"] == 0)
COMPARED = (1000021, 1000002, 1000006, 1000023, 1000024)

#: SPheno mixes squark flavours through the CKM matrix; the built-in code does not
#: (only a leading-logarithm estimate of t~ -> c chi0), so these flavour-changing
#: channels are missing and the comparison is expected to fail there.
FLAVOUR_MIXING = {
    ("light_stop", 1000006): "SPheno t~1 -> c chi0_1 (27 %) from squark flavour mixing",
    ("negative_signs", 1000021): "SPheno g~ -> t~1 c (25 %) from squark flavour mixing",
    # SPheno lists chi+_1 -> mu~_L* nu_mu (30 %) but no e~_L* nu_e at all, although
    # the selectron is the lighter of the two: a quirk of that SPheno table.
    ("decoupled", 1000024): "SPheno table lacks chi+_1 -> e~_L* nu_e",
}

needs_fixtures = pytest.mark.skipif(not VALID, reason="SPheno fixtures not found")


def _read_spheno(name: str) -> tuple[Spectrum, dict]:
    """SPheno's spectrum and decay table of one fixture."""
    path = FIXTURES / name / "SPheno.spc"
    return read_spectrum(path), read_decays(path)


def _canonical(daughters) -> tuple[int, ...]:
    """Sorted daughters; chi nu nubar summed over flavours, as SPheno lists it."""
    daughters = [int(d) for d in daughters]
    nu_pair = len(daughters) == 3 and any(
        abs(d) in (12, 14, 16) and -d in daughters for d in daughters
    )
    if nu_pair:
        daughters = [
            int(np.sign(d)) * 12 if abs(d) in (12, 14, 16) else d for d in daughters
        ]
    leptons = [d for d in daughters if abs(d) in (11, 13, 15)]
    neutrinos = [d for d in daughters if abs(d) in (12, 14, 16)]
    if len(daughters) == 2 and len(leptons) == 1 and len(neutrinos) == 1:
        # SPheno labels H+ -> l+ nu with nu_e whatever the lepton flavour.
        lepton = leptons[0]
        daughters = [lepton, -int(np.sign(lepton)) * (abs(lepton) + 1)]
    return tuple(sorted(daughters))


def _branching(channels) -> dict[tuple[int, ...], float]:
    out: dict[tuple[int, ...], float] = {}
    for br, daughters in channels:
        key = _canonical(daughters)
        out[key] = out.get(key, 0.0) + br
    return out


@pytest.fixture(scope="module")
def tables() -> dict[str, tuple[dict, dict]]:
    out = {}
    for name in VALID:
        spectrum, reference = _read_spheno(name)
        out[name] = (compute_decays(spectrum), reference)
    return out


def _cases():
    for name in VALID:
        for pdg in COMPARED:
            marks = []
            if (name, pdg) in FLAVOUR_MIXING:
                marks = [
                    pytest.mark.xfail(strict=True, reason=FLAVOUR_MIXING[name, pdg])
                ]
            yield pytest.param(name, pdg, marks=marks, id=f"{name}-{pdg}")


@needs_fixtures
@pytest.mark.parametrize(("name", "pdg"), list(_cases()))
def test_dominant_branching_ratios_match_spheno(tables, name, pdg):
    ours, reference = tables[name]
    spheno = _branching(reference[pdg].channels)
    built = _branching(ours[pdg].channels)

    dominant = {k for k, br in spheno.items() if br >= 0.05}
    dominant |= {k for k, br in built.items() if br >= 0.05}
    diffs = {k: built.get(k, 0.0) - spheno.get(k, 0.0) for k in dominant}

    assert dominant
    assert max(abs(d) for d in diffs.values()) <= 0.10, diffs


#: Fixture input names to the canonical pMSSM-11 names.
_CANONICAL = {"MQ12": "mQ12", "MQ3": "mQ3", "ML12": "mL12", "ML3": "mL3", "MA": "mA"}


@pytest.fixture(scope="module")
def builtin_tables() -> dict[str, dict]:
    out = {}
    for name in VALID:
        point = {_CANONICAL.get(k, k): v for k, v in INDEX[name]["parameters"].items()}
        out[name] = compute_decays(compute_spectrum(point, "pmssm11"))
    return out


@needs_fixtures
@pytest.mark.parametrize(("name", "pdg"), list(_cases()))
def test_builtin_chain_branching_ratios_match_spheno(builtin_tables, tables, name, pdg):
    # Built-in spectrum and decays of the fixture's input point against SPheno.
    spheno = _branching(tables[name][1][pdg].channels)
    built = _branching(builtin_tables[name][pdg].channels)
    dominant = {k for k, br in spheno.items() if br >= 0.05}
    dominant |= {k for k, br in built.items() if br >= 0.05}
    diffs = {k: built.get(k, 0.0) - spheno.get(k, 0.0) for k in dominant}
    assert max(abs(d) for d in diffs.values()) <= 0.10, diffs


@needs_fixtures
@pytest.mark.parametrize("name", VALID)
@pytest.mark.parametrize("pdg", [35, 36, 37])
def test_heavy_higgs_branching_ratios_match_spheno(tables, name, pdg):
    ours, reference = tables[name]
    spheno = _branching(reference[pdg].channels)
    built = _branching(ours[pdg].channels)
    dominant = {k for k, br in spheno.items() if br >= 0.05}
    dominant |= {k for k, br in built.items() if br >= 0.05}
    diffs = {k: built.get(k, 0.0) - spheno.get(k, 0.0) for k in dominant}
    assert max(abs(d) for d in diffs.values()) <= 0.10, diffs
    assert ours[pdg].width == pytest.approx(reference[pdg].width, rel=0.15)


@needs_fixtures
def test_two_body_widths_match_spheno_where_tree_level(tables):
    # u~_L has only tree-level two-body decays in both codes: widths agree closely.
    for name in VALID:
        ours, reference = tables[name]
        assert ours[1000002].width == pytest.approx(reference[1000002].width, rel=0.01)


@needs_fixtures
@pytest.mark.parametrize("name", VALID)
def test_every_table_sums_to_one(tables, name):
    ours, _ = tables[name]
    for pdg, decay in ours.items():
        if decay.width > 0:
            assert sum(br for br, _ in decay.channels) == pytest.approx(1.0, abs=1e-12)
            assert all(br > 0 for br, _ in decay.channels), pdg
        else:
            assert decay.channels == []


#: Electric charge in units of e/3, by PDG code (particles; antiparticles negate).
_CHARGE3 = {1: -1, 2: 2, 3: -1, 4: 2, 5: -1, 6: 2, 11: -3, 12: 0, 13: -3, 14: 0}
_CHARGE3 |= {15: -3, 16: 0, 21: 0, 22: 0, 23: 0, 24: 3, 25: 0, 35: 0, 36: 0, 37: 3}
_CHARGE3 |= {211: 3, 1000021: 0, 1000022: 0, 1000023: 0, 1000025: 0, 1000035: 0}
_CHARGE3 |= {1000024: 3, 1000037: 3}


def _charge3(pdg: int) -> int:
    code = abs(pdg)
    base = _CHARGE3.get(code)
    if base is None:
        base = _CHARGE3[code % 1000000]
    return int(np.sign(pdg)) * base


@needs_fixtures
@pytest.mark.parametrize("name", VALID)
def test_every_channel_conserves_charge(tables, name):
    ours, _ = tables[name]
    for pdg, decay in ours.items():
        for _, daughters in decay.channels:
            assert sum(_charge3(d) for d in daughters) == _charge3(pdg), (
                pdg,
                daughters,
            )


@needs_fixtures
def test_lightest_sparticle_is_stable(tables):
    ours, _ = tables["light_gluino"]
    assert ours[1000022].width == 0.0 and ours[1000022].channels == []


# Hand-worked limits on a synthetic spectrum: pure states, everything else at 5 TeV.

G1, G2, G3 = 0.36, 0.64, 1.04  # g', g, g3 near 1 TeV (SPheno GAUGE block values)


def _toy_spectrum(light: dict[int, float], tan_beta: float = 10.0) -> Spectrum:
    heavy = [1000021, 1000023, 1000025, 1000035, 1000024, 1000037, 35, 36, 37]
    heavy += [p + n for n in (1000000, 2000000) for p in (1, 2, 3, 4, 5, 6, 11, 13, 15)]
    heavy += [1000012, 1000014, 1000016]
    masses = {p: 5000.0 + 10.0 * i for i, p in enumerate(heavy)}
    masses |= {6: 173.1, 23: 91.19, 24: 80.38, 25: 125.0, 1000022: 100.0}
    masses |= light
    # The neutralino ordering (B~, W~, H~d, H~u) makes N the identity.
    return Spectrum(
        masses=masses,
        N=np.eye(4),
        U=np.eye(2),
        V=np.eye(2),
        stop_mix=np.eye(2),
        sbottom_mix=np.eye(2),
        stau_mix=np.eye(2),
        alpha=-np.arctan(1 / tan_beta),
        tan_beta=tan_beta,
        mu=5000.0,
        parameters={"M3": 5000.0},
        couplings={
            "g1": G1,
            "g2": G2,
            "g3": G3,
            "yt": 0.85,
            "yb": 0.14,
            "ytau": 0.1,
            "v": 246.0,
        },
    )


def _p(m, m1, m2):
    return np.sqrt((m**2 - (m1 + m2) ** 2) * (m**2 - (m1 - m2) ** 2)) / (2 * m)


def test_right_selectron_decays_to_electron_and_bino_only():
    # e~_R couples to the bino through its hypercharge |Y| = 1 only:
    # Gamma = g'^2 Y^2 m (1 - x)^2 / (8 pi), x = m_chi^2 / m^2.
    table = compute_decays(_toy_spectrum({2000011: 300.0}))
    decay = table[2000011]
    x = (100.0 / 300.0) ** 2
    assert decay.channels == [(1.0, (1000022, 11))]
    assert decay.width == pytest.approx(
        G1**2 * 300.0 * (1 - x) ** 2 / (8 * np.pi), rel=1e-9
    )


def test_right_up_squark_to_bino_width():
    # Same formula with Y = 2/3 for u~_R (the gluino is heavier, so u chi0_1 only).
    table = compute_decays(_toy_spectrum({2000002: 800.0}))
    x = (100.0 / 800.0) ** 2
    expected = G1**2 * (2 / 3) ** 2 * 800.0 * (1 - x) ** 2 / (8 * np.pi)
    assert table[2000002].width == pytest.approx(expected, rel=1e-9)
    assert table[2000002].channels == [(1.0, (1000022, 2))]


def test_right_stop_to_top_and_bino_width():
    # Pure t~_R and pure bino: only the P_L coupling b = sqrt(2) g' (2/3) survives,
    # Gamma = p / (8 pi m^2) b^2 (m^2 - m_t^2 - m_chi^2), with the chirality-flip
    # term absent because a = 0. m = 600 GeV: p = 212.63 GeV.
    m, mt, mchi = 600.0, 173.1, 100.0
    spectrum = _toy_spectrum({1000006: 600.0, 2000006: 5500.0})
    spectrum.stop_mix = np.array([[0.0, 1.0], [-1.0, 0.0]])
    b2 = 2 * G1**2 * (2 / 3) ** 2
    expected = _p(m, mt, mchi) / (8 * np.pi * m**2) * b2 * (m**2 - mt**2 - mchi**2)
    table = compute_decays(spectrum)
    assert table[1000006].width == pytest.approx(expected, rel=1e-9)
    assert table[1000006].channels == [(1.0, (1000022, 6))]


def test_pseudoscalar_to_tau_pair_width():
    # A tau tau coupling y_tau sin(beta) / sqrt(2), pseudoscalar:
    # Gamma = y^2 m beta / (8 pi), beta = sqrt(1 - 4 m_tau^2 / m^2).
    spectrum = _toy_spectrum({36: 1000.0}, tan_beta=10.0)
    table = compute_decays(spectrum)
    sb = 10.0 / np.sqrt(101.0)
    y = 0.1 * sb / np.sqrt(2)
    beta = np.sqrt(1 - 4 * 1.77686**2 / 1000.0**2)
    expected = y**2 * 1000.0 * beta / (8 * np.pi)
    tau = dict((d, br) for br, d in table[36].channels)[(15, -15)]
    # Ratios are renormalised after dropping channels below 1e-5: rel 1e-4.
    assert tau * table[36].width == pytest.approx(expected, rel=1e-4)


def test_gluino_three_body_matches_heavy_squark_limit():
    # Massless quarks, pure bino, degenerate squarks M >> m_gluino: per flavour
    # Gamma(g~ -> q qbar B~) = alpha_s alpha' (Y_L^2 + Y_R^2) m^5 / (96 pi M^4)
    # (the photino result of Haber and Kane with e_q^2 -> Y^2).
    mg, msq = 600.0, 20000.0
    light = {1000021: mg, 1000022: 0.5}
    for n in (1000000, 2000000):
        for q in (1, 2, 3, 4, 5, 6):
            light[n + q] = msq
    table = compute_decays(_toy_spectrum(light))
    width_u = dict((d, br) for br, d in table[1000021].channels)[(1000022, 2, -2)]
    width_u *= table[1000021].width
    alpha_s, alpha_y = G3**2 / (4 * np.pi), G1**2 / (4 * np.pi)
    expected = (
        alpha_s
        * alpha_y
        * ((1 / 6) ** 2 + (2 / 3) ** 2)
        * mg**5
        / (96 * np.pi * msq**4)
    )
    assert width_u == pytest.approx(expected, rel=0.01)


def _builtin_points(n: int, seed: int) -> list[dict[str, float]]:
    space = pmssm11()
    X = UniformPrior(space).sample(n, np.random.default_rng(seed))
    return space.array_to_points(X)


@pytest.mark.parametrize("point", _builtin_points(12, seed=7))
def test_builtin_spectra_give_complete_tables(point):
    spectrum = compute_spectrum(point, "pmssm11")
    if spectrum.tachyons:
        pytest.skip("tachyonic spectrum is rejected before decays")
    table = compute_decays(spectrum)
    stable = [pdg for pdg, d in table.items() if d.width == 0.0]
    assert _lightest(spectrum) in stable
    for pdg, decay in table.items():
        assert np.isfinite(decay.width) and decay.width >= 0.0
        if decay.width > 0:
            assert sum(br for br, _ in decay.channels) == pytest.approx(1.0, abs=1e-12)
            for _, daughters in decay.channels:
                assert sum(_charge3(d) for d in daughters) == _charge3(pdg)
    for pdg in (1000021, 1000002, 1000006, 1000024, 35, 36, 37):
        assert table[pdg].width > 0 or pdg == _lightest(spectrum)


def _lightest(spectrum: Spectrum) -> int:
    susy = {p: abs(m) for p, m in spectrum.masses.items() if p > 1000000}
    return min(susy, key=susy.get)


def test_degenerate_wino_chargino_decays_to_pion_with_known_lifetime():
    # Tree-level degenerate wino pair: the one-loop splitting of 164 MeV is assumed
    # and chi+ -> chi0 pi+ dominates with Gamma = (2 G_F^2 / pi) |V_ud|^2 f_pi^2
    # dm^3 sqrt(1 - m_pi^2 / dm^2) (Ibe, Matsumoto, Sato 2013): c tau = 6.1 cm.
    spectrum = _toy_spectrum({1000022: 500.0, 1000024: 500.0, 1000023: 5000.0})
    spectrum.N = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    table = compute_decays(spectrum)
    assert table[1000022].width == 0.0
    assert table[1000024].channels == [(1.0, (1000022, 211))]
    hbar_c_m = 1.97327e-16  # GeV m
    assert hbar_c_m / table[1000024].width == pytest.approx(0.061, rel=0.05)


def test_stop_below_top_threshold_decays_through_off_shell_top():
    # t~1 = t~_R at 300 GeV, bino at 150 GeV: t chi0 closed, b W chi0 open
    # (300 > 4.78 + 80.4 + 150); the flavour-changing c chi0 is a small remainder.
    spectrum = _toy_spectrum({1000006: 300.0, 1000022: 150.0})
    spectrum.stop_mix = np.array([[0.0, 1.0], [-1.0, 0.0]])
    channels = dict((d, br) for br, d in compute_decays(spectrum)[1000006].channels)
    assert channels[(1000022, 24, 5)] > 0.9
    assert set(channels) <= {(1000022, 24, 5), (1000022, 4)}
