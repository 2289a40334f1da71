"""Tests of the light-stop ordering (paper eq. 7) and the ordered prior sampler.

Key masses come from the analytic stand-in of tests/spectrum_standin.py, and in the
last tests from the built-in spectrum (``simulators.spectrum``).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.stats import ks_2samp

from sampler.errors import ProposalError
from sampler.ordering import (
    LightStopOrdering,
    OrderedPriorSampler,
    coverage,
    light_stop_ordering,
)
from sampler.priors import GaussianPrior, UniformPrior
from sampler.space import pmssm11, pmssm19
from tests.spectrum_standin import key_masses


@pytest.fixture
def space():
    return pmssm19()


def satisfies_eq7(masses) -> np.ndarray:
    """Eq. (7) written out on the key masses, independently of the mask callable."""
    gluino = np.abs(masses["m_gluino"])
    lightest_heavy = np.minimum(masses["m_squark_min"], masses["m_sbottom1"])
    return (masses["m_stop1"] < gluino) & (gluino < lightest_heavy)


def test_light_stop_ordering_on_hand_made_masses():
    masses = {
        # pass; stop above gluino; squark below gluino; sbottom below gluino;
        # negative gluino mass (SLHA sign) that passes; tachyonic stop (nan)
        "m_gluino": np.array([1500.0, 1500.0, 1500.0, 1500.0, -1500.0, 1500.0]),
        "m_stop1": np.array([800.0, 1600.0, 800.0, 800.0, 800.0, np.nan]),
        "m_sbottom1": np.array([2000.0, 2000.0, 2000.0, 1400.0, 2000.0, 2000.0]),
        "m_squark_min": np.array([2500.0, 2500.0, 1450.0, 2500.0, 2500.0, 2500.0]),
    }
    ordering = light_stop_ordering(lambda X: masses)
    got = ordering(np.zeros((6, 19)))
    assert got.tolist() == [True, False, False, False, True, False]


def test_missing_key_mass_raises():
    ordering = LightStopOrdering(lambda X: {"m_gluino": np.ones(len(X))})
    with pytest.raises(ProposalError, match="m_stop1"):
        ordering(np.zeros((2, 19)))


@pytest.mark.parametrize("prior_kind", [UniformPrior, GaussianPrior])
def test_ordered_sampler_satisfies_eq7_and_beats_blind_rejection(space, prior_kind):
    sampler = OrderedPriorSampler(
        space, prior_kind(space), light_stop_ordering(key_masses)
    )
    rng = np.random.default_rng(0)
    sampler.sample(10, rng)  # builds the reference marginals outside the timing

    start = time.perf_counter()
    X = sampler.sample(1000, rng)
    seconds = time.perf_counter() - start

    assert X.shape == (1000, space.dim)
    assert space.contains(X).all()
    assert satisfies_eq7(key_masses(X)).all()
    blind, covered = coverage(sampler, 200_000, rng)
    # Stand-in figures: blind about 3 %, sampler about 40 %, coverage above 98 %.
    assert sampler.acceptance > 10 * blind
    assert covered > 0.95
    assert seconds < 2.0


def test_ordered_sampler_matches_blind_rejection_in_distribution(space):
    """The sampler draws the prior restricted to eq. (7), like blind rejection."""
    prior = UniformPrior(space)
    ordering = light_stop_ordering(key_masses)
    rng = np.random.default_rng(1)
    X_blind = prior.sample(200_000, rng)
    X_blind = X_blind[ordering(X_blind)]
    X = OrderedPriorSampler(space, prior, ordering).sample(4000, rng)

    # Up to the few per cent of extreme-mixing points the sampler never draws.
    for name in ("M3", "mU3", "mQ3", "mQ12", "At", "M1"):
        j = space.names.index(name)
        statistic = ks_2samp(np.abs(X[:, j]), np.abs(X_blind[:, j])).statistic
        assert statistic < 0.05, name


def test_sampler_is_reproducible(space):
    ordering = light_stop_ordering(key_masses)
    first = OrderedPriorSampler(space, UniformPrior(space), ordering)
    second = OrderedPriorSampler(space, UniformPrior(space), ordering)
    np.testing.assert_array_equal(
        first.sample(50, np.random.default_rng(2)),
        second.sample(50, np.random.default_rng(2)),
    )


def test_other_orderings_fall_back_to_rejection():
    space = pmssm11()
    m1, m2 = space.names.index("M1"), space.names.index("M2")

    def bino_lighter(X):
        return np.abs(X[:, m1]) < X[:, m2]

    sampler = OrderedPriorSampler(space, UniformPrior(space), bino_lighter)
    X = sampler.sample(500, np.random.default_rng(3))
    assert not sampler.reparametrised
    assert (np.abs(X[:, m1]) < X[:, m2]).all()
    # P(|M1| < M2) for |M1| ~ U(0, 4000), M2 ~ U(100, 4000):
    # (4000**2 - 100**2) / (2 * 4000 * 3900) = 0.5125 by hand.
    assert sampler.acceptance == pytest.approx(0.5125, abs=0.05)


def test_impossible_ordering_raises(space):
    sampler = OrderedPriorSampler(
        space, UniformPrior(space), lambda X: np.zeros(len(X), bool), max_rounds=3
    )
    with pytest.raises(ProposalError, match="accepted 0"):
        sampler.sample(5, np.random.default_rng(4))


def test_ranges_leaving_no_room_raise():
    # Every heavy squark below the lowest |M3|: the ordering cannot hold.
    low = [(300.0, 350.0)]
    space = pmssm19({n: low for n in ("mQ12", "mU12", "mD12", "mQ3", "mD3")})
    sampler = OrderedPriorSampler(
        space, UniformPrior(space), light_stop_ordering(key_masses)
    )
    with pytest.raises(ProposalError, match="no room"):
        sampler.sample(5, np.random.default_rng(5))


def test_with_the_simulators_key_masses(space):
    from simulators.spectrum import key_masses as spectrum_key_masses

    def masses(X):
        return spectrum_key_masses(X, "pmssm19")

    ordering = light_stop_ordering(masses)
    sampler = OrderedPriorSampler(space, UniformPrior(space), ordering)
    X = sampler.sample(300, np.random.default_rng(6))
    assert satisfies_eq7(masses(X)).all()
    assert sampler.acceptance > 0.1


def test_campaign_proposals_satisfy_eq7_on_the_full_spectrum(space):
    # The ordering as a pMSSM-19 light-stop campaign builds it (the simulators'
    # vectorised key masses), checked on every proposed point's spectrum from
    # simulators.spectrum.compute_spectrum, the calculation the simulation runs.
    import functools

    from sampler.proposers import Proposer
    from sampler.regions import ChiSquareRegions
    from simulators.spectrum import compute_spectrum
    from simulators.spectrum import key_masses as spectrum_key_masses
    from tests import landscapes

    ordering = light_stop_ordering(
        functools.partial(spectrum_key_masses, model="pmssm19")
    )
    regions = ChiSquareRegions.paper(13)
    rng = np.random.default_rng(21)
    seeds = Proposer(
        space, UniformPrior(space), regions, fractions={"prior": 1.0}, ordering=ordering
    ).propose(600, None, None, rng)
    history = {"X": seeds.X, "chi2": landscapes.chi2(space.to_unit(seeds.X))}
    mixed = {"prior": 0.2, "density": 0.2, "local": 0.2, "uncertainty": 0.4}
    proposal = Proposer(
        space,
        UniformPrior(space),
        regions,
        fractions=mixed,
        candidate_pool=1500,
        ordering=ordering,
    ).propose(150, landscapes.OracleSurrogate(), history, rng)
    assert set(proposal.counts()) >= {"prior", "density", "local", "uncertainty"}

    heavy = (1000001, 1000002, 1000003, 1000004, 2000001, 2000002, 2000003, 2000004)
    for x in proposal.X:
        spectrum = compute_spectrum(dict(zip(space.names, x, strict=True)), "pmssm19")
        m = {pdg: abs(mass) for pdg, mass in spectrum.masses.items()}
        lightest_heavy = min(min(m[p] for p in heavy), m[1000005])
        # (Other states may still be tachyonic: pre-selection rejects those later.)
        assert m[1000006] < m[1000021] < lightest_heavy, x

    sampler = OrderedPriorSampler(space, UniformPrior(space), ordering)
    sampler.sample(1000, np.random.default_rng(22))
    blind = ordering(UniformPrior(space).sample(20_000, np.random.default_rng(23)))
    # Blind rejection accepts about 3 % of uniform pMSSM-19 draws.
    assert blind.mean() < 0.06
    assert sampler.acceptance > 5 * blind.mean()
