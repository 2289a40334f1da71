"""m_T2 and am_T2 on hand-worked configurations with closed-form values."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.mt2 import W_MASS_GEV, amt2, mt2


def test_massless_perpendicular_visibles_without_upstream_momentum() -> None:
    # Massless visibles and invisibles, p_miss = −(a + b): m_T2² = 2 A_T with
    # A_T = |a||b| + a·b (Lester, arXiv:1103.5682) = 100·100 + 0.
    value = mt2(100.0, 0.0, 0.0, 0.0, 100.0, 0.0, -100.0, -100.0)

    assert value[0] == pytest.approx(np.sqrt(2.0e4), abs=1e-4)


def test_massless_parallel_visibles() -> None:
    # A_T = 100·50 + 100·50 = 10⁴ → m_T2 = √(2·10⁴).
    value = mt2(100.0, 0.0, 0.0, 50.0, 0.0, 0.0, -150.0, 0.0)

    assert value[0] == pytest.approx(np.sqrt(2.0e4), abs=1e-4)


def test_back_to_back_visibles_without_missing_momentum_give_zero() -> None:
    # A_T = 100·100 − 100·100 = 0; q_a = q_b = 0 makes both m_T vanish.
    value = mt2(100.0, 0.0, 0.0, -100.0, 0.0, 0.0, 0.0, 0.0)

    assert value[0] == pytest.approx(0.0, abs=1e-4)


def test_massive_invisibles() -> None:
    # Massless visibles, invisible mass χ, no upstream momentum:
    # m_T2² = χ² + A_T + √(A_T (A_T + 2χ²)); A_T = 10⁴, χ = 100 GeV.
    expected = np.sqrt(1.0e4 + 1.0e4 + np.sqrt(1.0e4 * 3.0e4))

    value = mt2(100.0, 0.0, 0.0, 0.0, 100.0, 0.0, -100.0, -100.0, 100.0, 100.0)

    assert value[0] == pytest.approx(expected, abs=1e-4)


def test_unbalanced_minimum_at_the_visible_mass() -> None:
    # a: mass 100 GeV at rest, so m_T,a ≥ 100 for any q_a; q_a = 0 leaves
    # q_b = p_miss parallel to the massless b, where m_T,b = 0.
    value = mt2(0.0, 0.0, 100.0, 50.0, 0.0, 0.0, 50.0, 0.0)

    assert value[0] == pytest.approx(100.0, abs=1e-4)


def test_asymmetric_invisible_masses() -> None:
    # b has no transverse momentum and no mass: m_T,b = χ_b = 80.4 GeV for any
    # q_b; a (mass 50 at rest, χ_a = 0) reaches its minimum 50 at q_a = 0.
    value = mt2(0.0, 0.0, 50.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, W_MASS_GEV)

    assert value[0] == pytest.approx(W_MASS_GEV, abs=1e-4)


def test_batches_and_rotations() -> None:
    # The same three configurations in one call, then rotated by 1 rad: m_T2 is
    # invariant under a common rotation of all transverse vectors.
    a = np.array([[100.0, 0.0], [100.0, 0.0], [0.0, 0.0]])
    b = np.array([[0.0, 100.0], [50.0, 0.0], [50.0, 0.0]])
    miss = np.array([[-100.0, -100.0], [-150.0, 0.0], [50.0, 0.0]])
    a_mass = np.array([0.0, 0.0, 100.0])
    expected = [np.sqrt(2.0e4), np.sqrt(2.0e4), 100.0]
    c, s = np.cos(1.0), np.sin(1.0)
    rotation = np.array([[c, -s], [s, c]])

    for matrix in (np.eye(2), rotation):
        ra, rb, rm = a @ matrix.T, b @ matrix.T, miss @ matrix.T
        values = mt2(ra[:, 0], ra[:, 1], a_mass, rb[:, 0], rb[:, 1], 0.0, *rm.T)
        assert values == pytest.approx(expected, abs=1e-4)


def test_amt2_takes_the_smaller_assignment() -> None:
    # Lepton (0, 0, 30, 30) and b1 (0, 0, −100, 100) have no transverse momentum;
    # b2 is a 90 GeV mass at rest; p_miss = 0, so the q = 0 split is optimal.
    # b1 with the lepton: m(ℓb1) = √(130² − 70²) = 109.5 on side a, and b2 with
    # the invisible W: m_T = 90 + 80.4 = 170.4 → 170.4.
    # b2 with the lepton: m(ℓb2) = √(120² − 30²) = 116.2, b1 massless at rest with
    # the W: m_T = 80.4 → 116.2. am_T2 is the smaller, √13500.
    lepton = tuple(np.array([x]) for x in (0.0, 0.0, 30.0, 30.0))
    b1 = tuple(np.array([x]) for x in (0.0, 0.0, -100.0, 100.0))
    b2 = tuple(np.array([x]) for x in (0.0, 0.0, 0.0, 90.0))

    value = amt2(lepton, b1, b2, np.zeros(1), np.zeros(1))

    assert value[0] == pytest.approx(np.sqrt(13500.0), abs=1e-4)


def test_mt2_is_bounded_below_by_both_sides_minima() -> None:
    # Each side's m_T is at least its visible plus invisible mass, so
    # m_T2 ≥ max(m_a + χ_a, m_b + χ_b) on any event.
    rng = np.random.default_rng(5)
    n = 200
    a = rng.normal(0.0, 80.0, (2, n))
    b = rng.normal(0.0, 80.0, (2, n))
    miss = rng.normal(0.0, 120.0, (2, n))
    masses = rng.uniform(0.0, 120.0, (2, n))

    values = mt2(*a, masses[0], *b, masses[1], *miss, 0.0, W_MASS_GEV)

    assert np.all(values >= np.maximum(masses[0], masses[1] + W_MASS_GEV) - 1e-6)
