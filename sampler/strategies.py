"""Proposal strategies in unit-cube coordinates: density, local seeding, uncertainty.

Every function here works on unit-cube coordinates ``U`` of shape ``(n, dim)``, where
the space's gaps (M3 and mu near zero) are already squeezed out: a point that stays
inside ``[0, 1]^dim`` maps into the space. None of them knows about origins, batches
or fallbacks; the proposer in :mod:`sampler.proposers` combines them.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping

import numpy as np
from scipy.special import ndtr
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from sampler.regions import RARE_REGIONS, ChiSquareRegions

logger = logging.getLogger(__name__)

#: Most rare-range points a density model is fitted to (a random subset beyond this).
MAX_DENSITY_FIT_POINTS = 4000

#: Rare-range points per mixture component per dimension (sets the component count).
POINTS_PER_COMPONENT_PER_DIM = 10

#: Most Gaussian-mixture components of the density strategy.
MAX_COMPONENTS = 8

#: Variance added to every mixture covariance diagonal (unit-cube coordinates squared),
#: so that a component fitted to a thin band of points stays non-singular.
MIXTURE_REG_COVAR = 1e-4


def reflect_into_cube(U: np.ndarray) -> np.ndarray:
    """Fold coordinates back into ``[0, 1]`` by mirroring at the cube faces.

    A Gaussian step that leaves the cube through a face comes back in as its mirror
    image, so the density near a face keeps its shape instead of piling up on the face
    (clipping) or thinning out (rejection).

    Args:
        U: Coordinates, any real values, shape ``(n, dim)``.

    Returns:
        Coordinates in ``[0, 1]``, shape ``(n, dim)``.
    """
    folded = np.mod(U, 2.0)
    return np.where(folded > 1.0, 2.0 - folded, folded)


def rare_seed_weights(
    chi2: np.ndarray,
    regions: ChiSquareRegions,
    region_errors: Mapping[str, float] | None,
) -> np.ndarray:
    """Sampling weights of rare-range points, tilted toward the worst-learned region.

    Without errors every rare-range point weighs the same. With errors, each rare
    region receives a total weight proportional to its current mean absolute error,
    shared equally by its points, so the region the surrogate gets most wrong seeds
    the most new points however few points it holds.

    Args:
        chi2: Chi-square of the rare-range points, shape ``(m,)``.
        regions: The chi-square regions.
        region_errors: Region name to mean ``|Δχ²|``, or None.

    Returns:
        Probabilities summing to one, shape ``(m,)``.
    """
    names = regions.classify(chi2)
    if not region_errors:
        return np.full(chi2.size, 1.0 / chi2.size)
    weights = np.zeros(chi2.size)
    for name in RARE_REGIONS:
        members = names == name
        if members.any():
            error = max(float(region_errors.get(name, 0.0)), 0.0)
            weights[members] = error / members.sum()
    if weights.sum() <= 0.0:
        return np.full(chi2.size, 1.0 / chi2.size)
    return weights / weights.sum()


def fit_rare_density(
    U_rare: np.ndarray, weights: np.ndarray, rng: np.random.Generator
) -> GaussianMixture:
    """Fit a Gaussian mixture to rare-range points (paper Sect. 3.2, strategy 1).

    The number of components grows with the number of points (ten points per
    dimension per component, at most eight components); beyond
    ``MAX_DENSITY_FIT_POINTS`` points, a subset drawn with ``weights`` is fitted.

    Args:
        U_rare: Rare-range points in unit-cube coordinates, shape ``(m, dim)``.
        weights: Probability of each point in the fit subset, shape ``(m,)``.
        rng: Random generator (also seeds the mixture's initialisation).

    Returns:
        The fitted mixture.
    """
    m, dim = U_rare.shape
    size = min(m, MAX_DENSITY_FIT_POINTS)
    if size < m or not np.allclose(weights, 1.0 / m):
        U_rare = U_rare[rng.choice(m, size=size, replace=True, p=weights)]
    n_components = int(
        np.clip(size // (POINTS_PER_COMPONENT_PER_DIM * dim), 1, MAX_COMPONENTS)
    )
    mixture = GaussianMixture(
        n_components=n_components,
        covariance_type="full",
        reg_covar=MIXTURE_REG_COVAR,
        max_iter=100,
        random_state=int(rng.integers(2**31 - 1)),
    )
    # The many tiny linear-algebra calls of the fit run far slower, not faster, when
    # BLAS spreads each over threads on a busy machine: keep them on one thread.
    # A fit stopped by max_iter is still a usable density, so no warning escapes.
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mixture.fit(U_rare)
    if not mixture.converged_:
        logger.debug("rare-range mixture stopped after %d iterations", mixture.n_iter_)
    return mixture


def sample_density(
    mixture: GaussianMixture, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw ``k`` points from a fitted mixture, folded into the unit cube.

    Returns:
        Coordinates, shape ``(k, dim)``, in random order.
    """
    mixture.set_params(random_state=int(rng.integers(2**31 - 1)))
    U, _ = mixture.sample(k)
    return reflect_into_cube(U[rng.permutation(k)])


def sample_local(
    U_seeds: np.ndarray,
    weights: np.ndarray,
    k: int,
    width: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw ``k`` points from narrow Gaussians around seeds (paper Sect. 3.2, strategy 2).

    Seeds are picked with ``weights``, without repetition while there are enough of
    them; each new point is its seed plus an isotropic normal step of standard
    deviation ``width`` per unit-cube coordinate, folded back into the cube.

    Args:
        U_seeds: Rare-range points, shape ``(m, dim)``.
        weights: Seed probabilities, shape ``(m,)``.
        k: Number of points to draw.
        width: Standard deviation per unit-cube coordinate.
        rng: Random generator.

    Returns:
        Coordinates, shape ``(k, dim)``.
    """
    m, dim = U_seeds.shape
    n_nonzero = int(np.count_nonzero(weights))
    picks = rng.choice(m, size=k, replace=k > n_nonzero, p=weights)
    steps = rng.normal(0.0, width, size=(k, dim))
    return reflect_into_cube(U_seeds[picks] + steps)


def rare_probability(
    mean: np.ndarray, std: np.ndarray, regions: ChiSquareRegions
) -> np.ndarray:
    """Probability mass of ``N(mean, std)`` inside the rare ranges I, II and III.

    The surrogate's prediction is read as a normal distribution of the true
    chi-square; the rare ranges are disjoint intervals, so their masses add.

    Args:
        mean: Predicted chi-square, shape ``(n,)``.
        std: Predicted standard deviation, shape ``(n,)``; floored at 1e-6.
        regions: The chi-square regions.

    Returns:
        Probabilities in ``[0, 1]``, shape ``(n,)``.
    """
    std = np.maximum(np.asarray(std, dtype=float), 1e-6)
    mean = np.asarray(mean, dtype=float)
    mass = np.zeros_like(mean)
    for name in RARE_REGIONS:
        lo, hi = regions.bounds(name)
        mass += ndtr((hi - mean) / std) - ndtr((lo - mean) / std)
    return np.clip(mass, 0.0, 1.0)


def acquisition_score(
    mean: np.ndarray, std: np.ndarray, regions: ChiSquareRegions
) -> np.ndarray:
    """Uncertainty acquisition: ensemble spread times the rare-range probability.

    ``score = std * P(chi2 in I ∪ II ∪ III | N(mean, std))``. A point scores high
    when the surrogate is unsure about it and the plausible values reach into a rare
    range; a confident zero-signal or capped prediction scores near zero.

    Returns:
        Scores, shape ``(n,)``, in chi-square units.
    """
    return np.maximum(std, 0.0) * rare_probability(mean, std, regions)


def select_diverse(
    U_pool: np.ndarray,
    scores: np.ndarray,
    k: int,
    *,
    min_distance: float,
    length: float,
    U_taken: np.ndarray | None = None,
) -> np.ndarray:
    """Pick up to ``k`` high-scoring, mutually distant pool points.

    Greedy: each step takes the pool point maximising
    ``score * (1 - exp(-d² / (2 length²)))``, where ``d`` is its distance to the
    nearest point already taken (``U_taken`` and earlier picks); points closer than
    ``min_distance`` are never taken. The damping spreads a batch over several
    promising regions instead of stacking it on one peak of the score.

    Args:
        U_pool: Candidate coordinates, shape ``(m, dim)``.
        scores: Non-negative scores, shape ``(m,)``.
        k: Most points to pick.
        min_distance: Hard lower bound on pairwise unit-cube distance.
        length: Damping length in unit-cube coordinates.
        U_taken: Points already in the batch, shape ``(t, dim)``, or None.

    Returns:
        Indices into the pool, at most ``k``, in the order picked.
    """
    nearest_sq = np.full(len(U_pool), np.inf)
    if U_taken is not None and len(U_taken):
        for U_point in U_taken:
            np.minimum(nearest_sq, _sq_distance(U_pool, U_point), out=nearest_sq)
    picked: list[int] = []
    scale = 2.0 * length**2
    for _ in range(min(k, len(U_pool))):
        damped = scores * -np.expm1(-nearest_sq / scale)
        damped[nearest_sq < min_distance**2] = -np.inf
        best = int(np.argmax(damped))
        if not np.isfinite(damped[best]):
            break
        picked.append(best)
        np.minimum(nearest_sq, _sq_distance(U_pool, U_pool[best]), out=nearest_sq)
    return np.asarray(picked, dtype=np.int64)


def _sq_distance(U: np.ndarray, u: np.ndarray) -> np.ndarray:
    diff = U - u
    return np.einsum("ij,ij->i", diff, diff)


__all__ = [
    "acquisition_score",
    "fit_rare_density",
    "rare_probability",
    "rare_seed_weights",
    "reflect_into_cube",
    "sample_density",
    "sample_local",
    "select_diverse",
]
