"""The 56 reparametrized features on hand-worked decay trees."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.decays import compute_decays
from simulators.features import CATEGORIES, FEATURE_NAMES, compute_features, max_energy
from simulators.spectrum_types import Decay, Spectrum
from tests.test_decays import VALID, _read_spheno

M_GLUINO, M_CHI, M_SQUARK = 1000.0, 100.0, 1500.0
M_B = 4.78  # b-quark mass the features use (PDG pole mass)


def _spectrum() -> Spectrum:
    masses = {1000021: M_GLUINO, 1000022: M_CHI, 1000002: M_SQUARK, 6: 173.1}
    eye2 = np.eye(2)
    return Spectrum(masses, np.eye(4), eye2, eye2, eye2, eye2, eye2, 0.0, 10.0, 500.0)


def _feature(features: np.ndarray, category: str, statistic: str) -> float:
    return float(features[FEATURE_NAMES.index(f"{category}_{statistic}")])


def test_names_are_56_and_unique():
    assert len(FEATURE_NAMES) == 56 == len(set(FEATURE_NAMES))
    assert len(CATEGORIES) == 14


def test_gluino_pair_to_light_quarks_and_bino_by_hand():
    # g~ g~, each g~ -> u ubar chi0_1 at 100 %, gluinos at rest.
    # Jets: 2 + 2 = 4 in every tree. E_max of a quark (massless, recoiling against
    # u + chi, total 100 GeV): sqrt((m^2 - 100^2)^2 / (2m)^2) = (10^6 - 10^4) / 2000
    # = 495 GeV. chi0_1: sqrt(495^2 + 100^2) = 505 GeV; 2 per event, invisible.
    decays = {1000021: Decay(1.0, [(1.0, (1000022, 2, -2))]), 1000022: Decay(0.0, [])}
    f = compute_features(_spectrum(), decays, {(1000021, 1000021): 100.0})

    assert f.shape == (56,)
    assert _feature(f, "jet", "n_mean") == pytest.approx(4.0)
    assert _feature(f, "jet", "n_std") == pytest.approx(0.0, abs=1e-9)
    assert _feature(f, "jet", "emax_mean") == pytest.approx(495.0)
    assert _feature(f, "jet", "emax_std") == pytest.approx(0.0, abs=1e-6)
    assert _feature(f, "invisible", "n_mean") == pytest.approx(2.0)
    assert _feature(f, "invisible", "emax_mean") == pytest.approx(505.0)
    others = [
        i for i, n in enumerate(FEATURE_NAMES) if not n.startswith(("jet", "invisible"))
    ]
    assert np.all(f[others] == 0.0)


def test_two_channels_and_two_processes_by_hand():
    # g~ -> u ubar chi (75 %) or b bbar chi (25 %); u~_L -> u chi (100 %).
    # sigma(g~ g~) = 1 fb, sigma(u~_L u~_L*) = 3 fb.
    decays = {
        1000021: Decay(1.0, [(0.75, (1000022, 2, -2)), (0.25, (1000022, 5, -5))]),
        1000002: Decay(1.0, [(1.0, (1000022, 2))]),
        1000022: Decay(0.0, []),
    }
    sigma = {(1000021, 1000021): 1.0, (1000002, -1000002): 3.0}
    f = compute_features(_spectrum(), decays, sigma)

    # Gluino pair: jets per gluino 2 w.p. 0.75 else 0 -> mean 1.5, var 0.75; two
    # gluinos: mean 3, std sqrt(1.5). b-jets: mean 1, std sqrt(1.5). Squark pair: 2
    # jets, std 0. Averages with weights 1/4 and 3/4.
    assert _feature(f, "jet", "n_mean") == pytest.approx(0.25 * 3 + 0.75 * 2)
    assert _feature(f, "jet", "n_std") == pytest.approx(0.25 * np.sqrt(1.5))
    assert _feature(f, "bjet", "n_mean") == pytest.approx(0.25 * 1.0)
    assert _feature(f, "bjet", "n_std") == pytest.approx(0.25 * np.sqrt(1.5))
    assert _feature(f, "invisible", "n_mean") == pytest.approx(2.0)

    # E_max. Gluino jets 495 GeV; squark jet (1500 -> u + chi): (1500^2 - 100^2) /
    # 3000 = 746.667 GeV. The b from g~ -> b bbar chi (others: 4.78 + 100 GeV):
    m = M_GLUINO
    e_b = np.sqrt(
        (m**2 - (M_B + 104.78) ** 2) * (m**2 - (104.78 - M_B) ** 2) / (2 * m) ** 2
        + M_B**2
    )
    e_u_sq = (M_SQUARK**2 - M_CHI**2) / (2 * M_SQUARK)
    # Jet E_max statistics enter per process with weight sigma x mean jet count:
    # gluinos 1 x 3, squarks 3 x 2; both processes have a single jet energy.
    assert _feature(f, "jet", "emax_mean") == pytest.approx(
        (3 * 495.0 + 6 * e_u_sq) / 9
    )
    assert _feature(f, "jet", "emax_std") == pytest.approx(0.0, abs=1e-6)
    assert _feature(f, "bjet", "emax_mean") == pytest.approx(e_b)

    # Invisible: chi from gluinos, 505 (u channel) or sqrt(p^2 + 100^2) (b channel),
    # and from squarks (1500^2 + 100^2) / 3000 with weight 3 x 2.
    p_b = np.sqrt((m**2 - (2 * M_B + M_CHI) ** 2) * (m**2 - (2 * M_B - M_CHI) ** 2)) / (
        2 * m
    )
    e_chi_b = np.sqrt(p_b**2 + M_CHI**2)
    e_chi_g = np.array([505.0, e_chi_b])
    w_g = np.array([0.75, 0.25])
    mean_g = w_g @ e_chi_g
    std_g = np.sqrt(w_g @ e_chi_g**2 - mean_g**2)
    e_chi_sq = (M_SQUARK**2 + M_CHI**2) / (2 * M_SQUARK)
    assert _feature(f, "invisible", "emax_mean") == pytest.approx(
        (2 * mean_g + 6 * e_chi_sq) / 8
    )
    # std_g is 0.02 GeV on top of 505 GeV: E[E^2] - E[E]^2 cancels to ~1e-12
    # relative, hence an absolute tolerance.
    assert _feature(f, "invisible", "emax_std") == pytest.approx(
        2 * std_g / 8, abs=1e-4
    )


def test_top_quarks_count_resonances_and_their_decays():
    # g~ -> t tbar chi at 100 %, t -> b W+, W+ -> (SM table) l nu or q q'.
    decays = {1000021: Decay(1.0, [(1.0, (1000022, 6, -6))]), 1000022: Decay(0.0, [])}
    f = compute_features(_spectrum(), decays, {(1000021, 1000021): 1.0})
    assert _feature(f, "t", "n_mean") == pytest.approx(2.0)
    assert _feature(f, "tbar", "n_mean") == pytest.approx(2.0)
    assert _feature(f, "W+", "n_mean") == pytest.approx(2.0)
    assert _feature(f, "bjet", "n_mean") == pytest.approx(4.0)
    # Each W+ gives an e+ with BR 0.1071 (PDG), two W+ per event.
    assert _feature(f, "e+", "n_mean") == pytest.approx(2 * 0.1071, rel=1e-3)
    # A top from a gluino at rest can have at most eq. (3) energy.
    e_t = max_energy(M_GLUINO, 173.1, 173.1 + M_CHI)
    assert _feature(f, "t", "emax_mean") == pytest.approx(e_t)


def test_no_process_gives_zeros_and_features_stay_finite():
    decays = {1000021: Decay(1.0, [(1.0, (1000022, 2, -2))]), 1000022: Decay(0.0, [])}
    assert np.all(compute_features(_spectrum(), decays, {}) == 0.0)
    f = compute_features(
        _spectrum(), decays, {(1000021, 1000021): 0.0, (1000002, 1000002): 1.0}
    )
    assert np.all(np.isfinite(f))


def test_max_energy_formula():
    # Two-body at rest: E = (m^2 + m_i^2 - m_j^2) / (2 m).
    assert max_energy(1000.0, 100.0, 300.0) == pytest.approx((1e6 + 1e4 - 9e4) / 2000)


@pytest.mark.skipif(not VALID, reason="SPheno fixtures not found")
@pytest.mark.parametrize("name", VALID)
def test_features_on_spheno_fixtures_are_finite(name):
    spectrum, _ = _read_spheno(name)
    decays = compute_decays(spectrum)
    sigma = {
        (1000021, 1000021): 10.0,
        (1000006, -1000006): 5.0,
        (1000023, 1000024): 20.0,
        (1000002, 1000021): 3.0,
    }
    f = compute_features(spectrum, decays, sigma)
    assert f.shape == (56,) and np.all(np.isfinite(f))
    assert _feature(f, "invisible", "n_mean") >= 1.0


@settings(max_examples=40, deadline=None)
@given(
    br=st.floats(0.02, 0.98),
    scale=st.floats(1e-3, 1e3),
    sigma_a=st.floats(0.1, 100.0),
    sigma_b=st.floats(0.1, 100.0),
)
def test_features_invariant_under_sigma_scale_and_process_order(
    br, scale, sigma_a, sigma_b
):
    decays = {
        1000021: Decay(1.0, [(br, (1000022, 2, -2)), (1.0 - br, (1000022, 6, -6))]),
        1000002: Decay(1.0, [(1.0, (1000022, 2))]),
        1000022: Decay(0.0, []),
    }
    sigma = {(1000021, 1000021): sigma_a, (1000002, 1000021): sigma_b}
    f = compute_features(_spectrum(), decays, sigma)
    scaled = compute_features(
        _spectrum(), decays, {k: scale * v for k, v in sigma.items()}
    )
    swapped = {(1000021, 1000002): sigma_b, (1000021, 1000021): sigma_a}
    assert np.all(np.isfinite(f)) and np.all(f >= 0.0)
    np.testing.assert_allclose(scaled, f, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        compute_features(_spectrum(), decays, swapped), f, rtol=1e-9, atol=1e-9
    )
