"""Tests of the proposer and its strategies on a synthetic landscape (tests/landscapes.py)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist

from sampler.errors import ProposalError
from sampler.ordering import light_stop_ordering
from sampler.priors import GaussianPrior, UniformPrior
from sampler.proposers import Proposer
from sampler.regions import ChiSquareRegions
from sampler.space import pmssm11, pmssm19
from sampler.strategies import (
    rare_probability,
    rare_seed_weights,
    reflect_into_cube,
    select_diverse,
)
from tests import landscapes
from tests.spectrum_standin import key_masses

ALL = ("prior", "density", "local", "uncertainty")
MIXED = {"prior": 0.2, "density": 0.2, "local": 0.2, "uncertainty": 0.4}


def only(strategy: str) -> dict[str, float]:
    return {name: float(name == strategy) for name in ALL}


@pytest.fixture
def space():
    return pmssm11()


@pytest.fixture
def regions():
    return ChiSquareRegions.paper(13)


@pytest.fixture
def history(space):
    """3000 uniform prior points labelled by the landscape (about 250 rare)."""
    U = np.random.default_rng(11).random((3000, space.dim))
    return {"X": space.from_unit(U), "chi2": landscapes.chi2(U)}


def rare_rate(space, regions, X) -> float:
    return float(regions.is_rare(landscapes.chi2(space.to_unit(X))).mean())


def test_landscape_prior_rate_matches_hand_computation(regions):
    U = np.random.default_rng(0).random((400_000, 11))
    chi2 = landscapes.chi2(U)
    assert regions.is_rare(chi2).mean() == pytest.approx(
        landscapes.RARE_RATE_UNIFORM, abs=0.002
    )
    band = (chi2 >= 56.0) & (chi2 < 95.0)
    assert band.mean() == pytest.approx(landscapes.BAND_RATE_UNIFORM, abs=0.002)
    assert (chi2 < 53.5).mean() == pytest.approx(landscapes.DIP_RATE_UNIFORM, abs=0.002)


def test_prior_strategy_keeps_the_prior_rate(space, regions, history):
    proposer = Proposer(
        space, UniformPrior(space), regions, fractions=only("prior"), validation_share=0
    )
    proposal = proposer.propose(2000, None, history, np.random.default_rng(1))
    # Binomial standard deviation at n = 2000, p = 0.083: 0.0062; allow 4 sigma.
    assert rare_rate(space, regions, proposal.X) == pytest.approx(
        landscapes.RARE_RATE_UNIFORM, abs=0.025
    )


@pytest.mark.parametrize("strategy", ["density", "local", "uncertainty"])
def test_strategy_hits_rare_ranges_three_times_the_prior_rate(
    space, regions, history, strategy
):
    proposer = Proposer(
        space,
        UniformPrior(space),
        regions,
        fractions=only(strategy),
        validation_share=0.0,
        candidate_pool=5000,
    )
    surrogate = landscapes.OracleSurrogate(std=8.0, noise=4.0)
    proposal = proposer.propose(400, surrogate, history, np.random.default_rng(2))

    assert proposal.origins == [strategy] * 400
    assert proposal.reasons == []
    assert rare_rate(space, regions, proposal.X) >= 3.0 * landscapes.RARE_RATE_UNIFORM


def test_uncertainty_with_a_learned_ensemble_hits_rare_ranges(space, regions, history):
    U = space.to_unit(history["X"])
    surrogate = landscapes.TreeEnsemble().fit(U, history["chi2"])
    proposer = Proposer(
        space,
        UniformPrior(space),
        regions,
        fractions=only("uncertainty"),
        validation_share=0.0,
        candidate_pool=5000,
    )
    proposal = proposer.propose(200, surrogate, history, np.random.default_rng(16))
    assert proposal.origins == ["uncertainty"] * 200
    assert rare_rate(space, regions, proposal.X) >= 3.0 * landscapes.RARE_RATE_UNIFORM


@pytest.mark.parametrize("prior_kind", [UniformPrior, GaussianPrior])
def test_every_point_lies_in_the_space_off_the_gaps(space, regions, prior_kind):
    # Rare points sit right at the M3 and mu gap edges, so local steps cross them.
    rng = np.random.default_rng(3)
    X = space.from_unit(rng.random((200, space.dim)))
    X[:, space.names.index("M3")] = rng.choice([-400.5, 400.5], 200)
    X[:, space.names.index("mu")] = rng.choice([-100.5, 100.5], 200)
    history = {"X": X, "chi2": np.full(200, 60.0)}
    proposer = Proposer(
        space, prior_kind(space), regions, fractions=MIXED, local_width=0.1
    )
    proposal = proposer.propose(300, None, history, rng)

    assert space.contains(proposal.X).all()
    assert np.abs(proposal.X[:, space.names.index("M3")]).min() >= 400.0
    assert np.abs(proposal.X[:, space.names.index("mu")]).min() >= 100.0
    # 300 points: 60 validation, 240 * 0.2 = 48 local (no surrogate: the
    # uncertainty share goes to prior); local points fall on both sides of the gap.
    assert proposal.counts()["local"] == 48
    local_m3 = proposal.X[
        np.asarray(proposal.origins) == "local", space.names.index("M3")
    ]
    assert (local_m3 < 0).any() and (local_m3 > 0).any()


@pytest.mark.parametrize("min_distance", [0.02, 0.4, 0.7])
def test_no_two_points_closer_than_min_distance(space, regions, history, min_distance):
    # Narrow local steps (0.01) and a pool of 2000 make the larger bounds bite.
    proposer = Proposer(
        space,
        UniformPrior(space),
        regions,
        fractions=MIXED,
        min_distance=min_distance,
        local_width=0.01,
        candidate_pool=2000,
    )
    surrogate = landscapes.OracleSurrogate()
    proposal = proposer.propose(150, surrogate, history, np.random.default_rng(4))

    assert len(proposal) == 150
    assert pdist(space.to_unit(proposal.X)).min() >= min_distance


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(0, 60),
    min_distance=st.floats(0.0, 0.6),
    share=st.floats(0.0, 1.0),
    weights=st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4).filter(
        lambda w: sum(w) > 0.01
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_batch_has_n_points_in_the_space_apart(
    n, min_distance, share, weights, seed
):
    space, regions = pmssm11(), ChiSquareRegions.paper(13)
    U = np.random.default_rng(seed).random((300, space.dim))
    history = {"X": space.from_unit(U), "chi2": landscapes.chi2(U)}
    proposer = Proposer(
        space,
        UniformPrior(space),
        regions,
        fractions=dict(zip(ALL, weights, strict=True)),
        validation_share=share,
        min_distance=min_distance,
        candidate_pool=300,
    )
    proposal = proposer.propose(
        n, landscapes.OracleSurrogate(), history, np.random.default_rng(seed)
    )

    assert proposal.X.shape == (n, space.dim)
    assert space.contains(proposal.X).all()
    assert proposal.origins.count("validation") == round(share * n)
    if n > 1:
        assert pdist(space.to_unit(proposal.X)).min() >= min_distance


def test_shortfall_from_min_distance_is_filled_by_prior_and_reported(
    space, regions, history, caplog
):
    proposer = Proposer(
        space,
        UniformPrior(space),
        regions,
        fractions=only("local"),
        validation_share=0.0,
        min_distance=0.5,
        local_width=0.01,
    )
    # A single rare seed: 0.01-wide steps around it cannot be 0.5 apart.
    one_seed = {"X": history["X"][:1], "chi2": np.array([60.0])}
    with caplog.at_level(logging.INFO, logger="sampler.proposers"):
        proposal = proposer.propose(20, None, one_seed, np.random.default_rng(5))

    assert proposal.counts() == {"local": 1, "prior": 19}
    assert proposal.reasons == [
        "local strategy: 1 of 20 points kept after ordering and minimum distance"
    ]
    assert len(caplog.records) == 1


def test_impossible_min_distance_raises(space, regions):
    proposer = Proposer(
        space, UniformPrior(space), regions, fractions=MIXED, min_distance=10.0
    )
    with pytest.raises(ProposalError, match="min_distance"):
        proposer.propose(5, None, None, np.random.default_rng(6))


def test_fallbacks_go_to_prior_and_are_logged_once_each(space, regions, caplog):
    proposer = Proposer(space, UniformPrior(space), regions, fractions=MIXED)
    no_rare = {"X": np.empty((0, space.dim)), "chi2": np.empty(0)}
    with caplog.at_level(logging.INFO, logger="sampler.proposers"):
        proposal = proposer.propose(50, None, no_rare, np.random.default_rng(7))

    assert proposal.counts() == {"validation": 10, "prior": 40}
    assert proposal.reasons == [
        "uncertainty strategy: no surrogate yet",
        "density strategy: 0 rare-range points, need 22",
        "local strategy: no rare-range points yet",
    ]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(messages) == 3
    assert all("prior exploration" in m for m in messages)


def test_density_needs_enough_rare_points(space, regions, history):
    rare = np.flatnonzero(regions.is_rare(history["chi2"]))[:5]
    few = {"X": history["X"][rare], "chi2": history["chi2"][rare]}
    proposer = Proposer(
        space,
        UniformPrior(space),
        regions,
        fractions=only("density"),
        validation_share=0,
    )
    proposal = proposer.propose(10, None, few, np.random.default_rng(8))
    assert proposal.counts() == {"prior": 10}
    assert proposal.reasons == ["density strategy: 5 rare-range points, need 22"]


def test_flat_surrogate_makes_uncertainty_fall_back(space, regions, history):
    class Confident:
        def predict(self, U, return_std=False):
            return np.full(len(U), 100.0), np.zeros(len(U))

    proposer = Proposer(
        space,
        UniformPrior(space),
        regions,
        fractions=only("uncertainty"),
        validation_share=0,
        candidate_pool=500,
    )
    proposal = proposer.propose(10, Confident(), history, np.random.default_rng(9))
    assert proposal.counts() == {"prior": 10}
    assert "no rare-range probability" in proposal.reasons[0]


def test_counts_follow_shares(space, regions, history):
    # 20 points, 25 % validation: 5; the other 15 split 0.2/0.2/0.2/0.4 = 3/3/3/6.
    proposer = Proposer(
        space,
        UniformPrior(space),
        regions,
        fractions=MIXED,
        validation_share=0.25,
        candidate_pool=2000,
    )
    proposal = proposer.propose(
        20, landscapes.OracleSurrogate(), history, np.random.default_rng(10)
    )
    assert proposal.counts() == {
        "validation": 5,
        "prior": 3,
        "density": 3,
        "local": 3,
        "uncertainty": 6,
    }


def test_validation_points_are_unbiased_prior_draws(space, regions, history):
    proposer = Proposer(
        space,
        UniformPrior(space),
        regions,
        fractions=only("local"),
        validation_share=0.5,
    )
    proposal = proposer.propose(2000, None, history, np.random.default_rng(12))
    origins = np.asarray(proposal.origins)
    validation = proposal.X[origins == "validation"]
    local = proposal.X[origins == "local"]

    assert len(validation) == 1000
    # Binomial sd at n = 1000, p = 0.083: 0.0087; 4 sigma.
    assert rare_rate(space, regions, validation) == pytest.approx(
        landscapes.RARE_RATE_UNIFORM, abs=0.035
    )
    assert rare_rate(space, regions, local) > 0.25


def test_same_seed_same_proposal(space, regions, history):
    proposer = Proposer(
        space, UniformPrior(space), regions, fractions=MIXED, candidate_pool=1000
    )
    surrogate = landscapes.OracleSurrogate()
    first = proposer.propose(30, surrogate, history, np.random.default_rng(13))
    second = proposer.propose(30, surrogate, history, np.random.default_rng(13))
    np.testing.assert_array_equal(first.X, second.X)
    assert first.origins == second.origins


def test_zero_points(space, regions):
    proposer = Proposer(space, UniformPrior(space), regions, fractions=MIXED)
    proposal = proposer.propose(0, None, None, np.random.default_rng(0))
    assert proposal.X.shape == (0, space.dim)
    assert proposal.origins == []


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ({"prior": 1.0, "random": 1.0}, "fractions"),
        ({"prior": -1.0, "local": 2.0}, "fractions"),
        ({"prior": 0.0}, "fractions"),
    ],
)
def test_bad_fractions_raise(space, regions, fractions, message):
    proposer = Proposer(space, UniformPrior(space), regions, fractions=fractions)
    with pytest.raises(ProposalError, match=message):
        proposer.propose(5, None, None, np.random.default_rng(0))


def test_bad_validation_share_raises(space, regions):
    proposer = Proposer(
        space, UniformPrior(space), regions, fractions=MIXED, validation_share=1.5
    )
    with pytest.raises(ProposalError, match="validation_share"):
        proposer.propose(5, None, None, np.random.default_rng(0))


# -- adaptation of the fractions ---------------------------------------------------


def make_proposer(space, regions, **kwargs):
    return Proposer(space, UniformPrior(space), regions, fractions=MIXED, **kwargs)


def test_fractions_without_errors_are_the_configured_ones(space, regions):
    assert make_proposer(space, regions).fractions_for(None) == pytest.approx(MIXED)


def test_fractions_shift_to_targeted_strategies_when_a_rare_region_dominates(
    space, regions
):
    # e_rare = 4, e_common = 1: tilt 0.6, moved 0.5 * 0.6 * 0.2 = 0.06 from prior,
    # split evenly between density and local (equal configured shares).
    errors = {"I": 4.0, "zero": 1.0, "II": 2.0, "III": 3.0, "cap": 0.5}
    got = make_proposer(space, regions).fractions_for(errors)
    assert got == pytest.approx(
        {"prior": 0.14, "density": 0.23, "local": 0.23, "uncertainty": 0.4}
    )


def test_fractions_shift_to_exploration_when_zero_or_cap_dominate(space, regions):
    # e_rare = 1, e_common = 3: tilt -0.5, moved 0.5 * 0.5 * 0.4 = 0.1 to prior.
    errors = {"I": 1.0, "zero": 3.0, "II": 1.0, "III": float("nan"), "cap": 1.0}
    got = make_proposer(space, regions).fractions_for(errors)
    assert got == pytest.approx(
        {"prior": 0.3, "density": 0.15, "local": 0.15, "uncertainty": 0.4}
    )


def test_fractions_accept_metric_dicts_and_can_be_frozen(space, regions):
    errors = {"I": {"mean_abs_error": 4.0}, "zero": {"mean_abs_error": 1.0}}
    adapted = make_proposer(space, regions).fractions_for(errors)
    assert adapted["prior"] == pytest.approx(0.14)
    frozen = make_proposer(space, regions, adapt_to_errors=False).fractions_for(errors)
    assert frozen == pytest.approx(MIXED)


def test_fractions_are_normalised(space, regions):
    proposer = Proposer(
        space,
        UniformPrior(space),
        regions,
        fractions={"prior": 1, "local": 3},
    )
    assert proposer.fractions_for() == pytest.approx(
        {"prior": 0.25, "density": 0.0, "local": 0.75, "uncertainty": 0.0}
    )


def test_local_seeds_follow_the_worst_rare_region(space, regions, history):
    # Region I (the dip) has the largest error: nearly all seeds come from it.
    history = dict(history, region_errors={"I": 9.0, "II": 0.5, "III": 0.5})
    proposer = Proposer(
        space,
        UniformPrior(space),
        regions,
        fractions=only("local"),
        validation_share=0.0,
        local_width=0.02,
    )
    proposal = proposer.propose(200, None, history, np.random.default_rng(14))
    U = space.to_unit(proposal.X)
    near_dip = np.hypot(U[:, 2] - 0.8, U[:, 3] - 0.8) < 0.2
    # Seed weights: I gets 9 / 10 of the mass.
    assert near_dip.mean() > 0.8


# -- strategy helpers, against hand-worked values ---------------------------------


def test_reflect_into_cube():
    got = reflect_into_cube(np.array([[-0.1, 1.2, 2.3, 0.5, -1.25]]))
    np.testing.assert_allclose(got, [[0.1, 0.8, 0.3, 0.5, 0.75]])


def test_rare_probability_by_hand(regions):
    # Zero window 53.5-56 centred at 54.75 with sd 0.5: each rare side holds
    # Phi(-2.5) = 0.0062097; a mean deep inside II with a tiny sd gives 1.
    got = rare_probability(
        np.array([54.75, 63.0, 100.0]), np.array([0.5, 1e-3, 1e-3]), regions
    )
    np.testing.assert_allclose(got, [2 * 0.0062097, 1.0, 0.0], atol=1e-6)


def test_rare_seed_weights_by_hand(regions):
    chi2 = np.array([10.0, 20.0, 60.0, 80.0])  # I, I, II, III
    uniform = rare_seed_weights(chi2, regions, None)
    np.testing.assert_allclose(uniform, [0.25] * 4)
    # Region totals 4 : 1 : 3 out of 8, I shared by two points.
    tilted = rare_seed_weights(chi2, regions, {"I": 4.0, "II": 1.0, "III": 3.0})
    np.testing.assert_allclose(tilted, [2 / 8, 2 / 8, 1 / 8, 3 / 8])


def test_select_diverse_respects_scores_and_distance():
    pool = np.array([[0.0], [0.01], [0.5], [0.52], [1.0]])
    scores = np.array([5.0, 4.9, 3.0, 2.9, 0.1])
    picked = select_diverse(pool, scores, 4, min_distance=0.05, length=0.1)
    # 0.01 and 0.52 sit within 0.05 of a better point and are never taken.
    assert picked.tolist() == [0, 2, 4]


def test_select_diverse_avoids_points_already_taken():
    pool = np.array([[0.0], [0.5]])
    picked = select_diverse(
        pool,
        np.array([2.0, 1.0]),
        2,
        min_distance=0.1,
        length=0.1,
        U_taken=np.array([[0.02]]),
    )
    assert picked.tolist() == [1]


# -- with the pMSSM-19 light-stop ordering ----------------------------------------


def test_every_proposed_point_satisfies_the_ordering(regions):
    space = pmssm19()
    ordering = light_stop_ordering(key_masses)
    rng = np.random.default_rng(15)
    seeds = Proposer(
        space, UniformPrior(space), regions, fractions=only("prior"), ordering=ordering
    ).propose(1500, None, None, rng)
    U_seeds = space.to_unit(seeds.X)
    history = {"X": seeds.X, "chi2": landscapes.chi2(U_seeds)}
    proposer = Proposer(
        space,
        UniformPrior(space),
        regions,
        fractions=MIXED,
        candidate_pool=3000,
        ordering=ordering,
    )
    proposal = proposer.propose(200, landscapes.OracleSurrogate(), history, rng)

    masses = key_masses(proposal.X)
    assert np.all(masses["m_stop1"] < masses["m_gluino"])
    lightest = np.minimum(masses["m_squark_min"], masses["m_sbottom1"])
    assert np.all(masses["m_gluino"] < lightest)
    assert set(proposal.counts()) == {
        "validation",
        "prior",
        "density",
        "local",
        "uncertainty",
    }
