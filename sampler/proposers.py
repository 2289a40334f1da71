"""The proposer: one batch of new points per round, mixed from several strategies.

A round of ``n`` points is built in this order:

1. ``validation``: ``round(validation_share * n)`` prior draws. They never come from
   an acquisition strategy, so the per-region errors measured on them stay unbiased.
2. ``uncertainty``, ``density`` and ``local``: their shares of the remaining points
   (see :meth:`Proposer.fractions_for`), each from :mod:`sampler.strategies`.
3. ``prior``: its own share plus whatever a strategy could not deliver. A strategy
   with nothing to work on (no surrogate yet, too few rare-range points) hands its
   share to prior exploration and says why, once per call, at INFO and in
   ``Proposal.reasons``.

Every point of a batch, validation points included, lies at least ``min_distance``
from every other point of the same batch (Euclidean distance in unit-cube
coordinates). Points are not kept away from earlier rounds: a candidate close to a
simulated point is unlikely anyway (local steps are several times ``min_distance``)
and the uncertainty score is low there. Every point maps into the space (the unit
cube skips the M3 and mu gaps) and, when an ``ordering`` is given, satisfies it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sampler import strategies
from sampler.errors import ProposalError
from sampler.ordering import OrderedPriorSampler
from sampler.regions import RARE_REGIONS, ChiSquareRegions
from sampler.space import ParameterSpace

logger = logging.getLogger(__name__)

#: Acquisition strategies, in the order a round fills them (prior comes last).
STRATEGIES: tuple[str, ...] = ("prior", "density", "local", "uncertainty")

#: Origin label of the unbiased validation share.
VALIDATION = "validation"

#: Largest share of the prior (or of density + local) that error adaptation may move.
MAX_SHIFT = 0.5

#: Rounds of prior draws before the batch is declared impossible to fill.
_MAX_PRIOR_ROUNDS = 50


class PriorLike(Protocol):
    """Anything that draws unit-cube points like the priors of :mod:`sampler.priors`."""

    def sample_unit(self, n: int, rng: np.random.Generator) -> np.ndarray: ...


class Surrogate(Protocol):
    """A fitted model of chi-square with an uncertainty, on unit-cube coordinates."""

    def predict(self, U: np.ndarray, return_std: bool = ...) -> Any: ...


@dataclass(frozen=True)
class Proposal:
    """One round of proposed points.

    Attributes:
        X: Points of the space, shape ``(n, dim)`` (GeV; tanb dimensionless).
        origins: Strategy label of each point (``validation``, ``prior``, ``density``,
            ``local``, ``uncertainty``), length ``n``.
        reasons: Why a strategy fell back to prior exploration or fell short, one
            line per event.
    """

    X: np.ndarray
    origins: list[str]
    reasons: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.origins)

    def counts(self) -> dict[str, int]:
        """Number of points per origin."""
        labels, numbers = np.unique(
            np.asarray(self.origins, dtype=str), return_counts=True
        )
        return dict(zip(labels.tolist(), numbers.tolist(), strict=True))


class Proposer:
    """Mixes prior exploration, density, local seeding and uncertainty sampling.

    Args:
        space: The parameter space.
        prior: The prior (``UniformPrior`` or ``GaussianPrior``), drawn for the
            validation and prior shares and for the uncertainty candidate pool.
        regions: Chi-square regions; I, II and III are the rare targets.
        fractions: Share of each acquisition strategy (``prior``, ``density``,
            ``local``, ``uncertainty``) among the non-validation points; normalised.
        validation_share: Share of every round drawn from the prior as validation.
        min_distance: Least unit-cube distance between two points of a batch.
        local_width: Standard deviation of local-seeding steps per unit-cube
            coordinate.
        candidate_pool: Prior draws scored by the uncertainty strategy per call.
        adapt_to_errors: Shift fractions with ``history["region_errors"]``.
        ordering: None, or ``ordering(X) -> bool mask`` that every proposed point
            must satisfy (e.g. :func:`sampler.ordering.light_stop_ordering`).
        diversity_length: Damping length of the uncertainty batch selection in
            unit-cube coordinates; default ``2 * local_width``.
        min_density_points: Least rare-range points to fit a density to; default
            ``2 * dim``.
    """

    def __init__(
        self,
        space: ParameterSpace,
        prior: PriorLike,
        regions: ChiSquareRegions,
        *,
        fractions: Mapping[str, float],
        validation_share: float = 0.2,
        min_distance: float = 0.02,
        local_width: float = 0.05,
        candidate_pool: int = 20000,
        adapt_to_errors: bool = True,
        ordering: Callable[[np.ndarray], np.ndarray] | None = None,
        diversity_length: float | None = None,
        min_density_points: int | None = None,
    ) -> None:
        self.space = space
        self.prior = prior
        self.regions = regions
        self.fractions = dict(fractions)
        self.validation_share = validation_share
        self.min_distance = min_distance
        self.local_width = local_width
        self.candidate_pool = candidate_pool
        self.adapt_to_errors = adapt_to_errors
        self.ordering = ordering
        self.diversity_length = diversity_length
        self.min_density_points = min_density_points

    def fractions_for(
        self, region_errors: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        """Strategy fractions for this round, adapted to the current errors.

        Rule (when ``adapt_to_errors`` and errors are given): let ``e_rare`` be the
        largest error among I, II, III and ``e_common`` the largest among zero and
        cap; ``tilt = (e_rare - e_common) / (e_rare + e_common)`` in ``[-1, 1]``.
        A positive tilt moves ``MAX_SHIFT * tilt`` of the prior fraction to density
        and local seeding (split in their configured ratio, equally if both are
        zero); a negative tilt moves ``MAX_SHIFT * |tilt|`` of the density + local
        fraction to prior exploration. Uncertainty sampling keeps its fraction: it
        already follows the surrogate. Which rare region gets the seeds is decided
        by :func:`sampler.strategies.rare_seed_weights`.

        Args:
            region_errors: Region name to mean ``|Δχ²|``; missing or non-finite
                entries are ignored.

        Returns:
            Strategy name to fraction, summing to one.

        Raises:
            ProposalError: The configured fractions are unknown, negative or all zero.
        """
        base = self._base_fractions()
        errors = _finite_errors(region_errors)
        if not self.adapt_to_errors or not errors:
            return base
        e_rare = max((errors[r] for r in RARE_REGIONS if r in errors), default=0.0)
        e_common = max((errors[r] for r in ("zero", "cap") if r in errors), default=0.0)
        if e_rare + e_common <= 0.0:
            return base
        tilt = (e_rare - e_common) / (e_rare + e_common)
        return _tilted(base, tilt)

    def propose(
        self,
        n: int,
        surrogate: Surrogate | None,
        history: Mapping[str, Any] | None,
        rng: np.random.Generator,
    ) -> Proposal:
        """Propose ``n`` new points.

        Args:
            n: Number of points.
            surrogate: None, or a model with ``predict(U, return_std=True) ->
                (mean, std)`` on unit-cube coordinates ``(m, dim)``.
            history: None, or a mapping with ``"X"`` (simulated ok points, GeV,
                ``(h, dim)``), ``"chi2"`` (``(h,)``) and optionally
                ``"region_errors"`` (region name to mean ``|Δχ²|``).
            rng: Random generator; the whole proposal follows from its state.

        Returns:
            The proposal, exactly ``n`` points.

        Raises:
            ProposalError: Bad settings, or the batch cannot be filled (e.g. a
                minimum distance too large for ``n`` points).
        """
        if n < 0:
            raise ProposalError(f"cannot propose {n} points")
        history = history or {}
        batch = _Batch(self.space.dim, n, self.min_distance)
        reasons: list[str] = []
        n_validation = round(self._validation_share() * n)
        counts = _allocate(
            n - n_validation, self.fractions_for(history.get("region_errors"))
        )

        self._fill_from_prior(batch, n_validation, VALIDATION, rng)
        U_rare, weights = self._rare_points(history)
        for name in ("uncertainty", "density", "local"):
            if counts[name]:
                reason = self._run(
                    name, counts[name], batch, surrogate, U_rare, weights, rng
                )
                if reason:
                    logger.info("%s; the rest comes from prior exploration", reason)
                    reasons.append(reason)
        self._fill_from_prior(batch, n - len(batch), "prior", rng)

        X = self.space.from_unit(batch.U)
        self.space.check(X)
        proposal = Proposal(X, list(batch.origins), reasons)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("proposed %d points by origin %s", n, proposal.counts())
        return proposal

    # -- strategies -----------------------------------------------------------------

    def _run(
        self,
        name: str,
        k: int,
        batch: _Batch,
        surrogate: Surrogate | None,
        U_rare: np.ndarray,
        weights: np.ndarray,
        rng: np.random.Generator,
    ) -> str | None:
        """Add up to ``k`` points of one strategy; return a reason when short."""
        if name == "uncertainty":
            candidates = self._uncertainty_candidates(k, batch, surrogate, rng)
        elif name == "density":
            candidates = self._density_candidates(k, U_rare, weights, rng)
        else:
            candidates = self._local_candidates(k, U_rare, weights, rng)
        if isinstance(candidates, str):
            return candidates

        added = batch.extend(candidates[self._allowed(candidates)], name, k)
        if added < k:
            return f"{name} strategy: {added} of {k} points kept after ordering and minimum distance"
        return None

    def _uncertainty_candidates(
        self,
        k: int,
        batch: _Batch,
        surrogate: Surrogate | None,
        rng: np.random.Generator,
    ) -> np.ndarray | str:
        if surrogate is None:
            return "uncertainty strategy: no surrogate yet"
        pool = self._prior_sampler().sample_unit(self.candidate_pool, rng)
        mean, std = surrogate.predict(pool, return_std=True)
        scores = strategies.acquisition_score(
            np.ravel(mean), np.ravel(std), self.regions
        )
        if not np.any(scores > 0.0):
            return "uncertainty strategy: the surrogate gives no rare-range probability anywhere in the candidate pool"
        picked = strategies.select_diverse(
            pool,
            scores,
            k,
            min_distance=self.min_distance,
            length=self.diversity_length or 2.0 * self.local_width,
            U_taken=batch.U,
        )
        return pool[picked]

    def _density_candidates(
        self, k: int, U_rare: np.ndarray, weights: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray | str:
        need = self.min_density_points or 2 * self.space.dim
        if len(U_rare) < need:
            return f"density strategy: {len(U_rare)} rare-range points, need {need}"
        mixture = strategies.fit_rare_density(U_rare, weights, rng)
        return strategies.sample_density(mixture, 2 * k + 8, rng)

    def _local_candidates(
        self, k: int, U_rare: np.ndarray, weights: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray | str:
        if len(U_rare) == 0:
            return "local strategy: no rare-range points yet"
        return strategies.sample_local(
            U_rare, weights, 2 * k + 8, self.local_width, rng
        )

    def _fill_from_prior(
        self, batch: _Batch, k: int, origin: str, rng: np.random.Generator
    ) -> None:
        sampler = self._prior_sampler()
        target = len(batch) + k
        for _ in range(_MAX_PRIOR_ROUNDS):
            missing = target - len(batch)
            if missing <= 0:
                return
            batch.extend(sampler.sample_unit(missing + 4, rng), origin, missing)
        raise ProposalError(
            f"cannot place {target - len(batch)} more {origin} points at least"
            f" {self.min_distance:g} apart (unit cube); lower proposer.min_distance"
        )

    # -- helpers --------------------------------------------------------------------

    def _prior_sampler(self) -> PriorLike:
        if self.ordering is None:
            return self.prior
        if getattr(self, "ordered_sampler_", None) is None:
            self.ordered_sampler_ = OrderedPriorSampler(
                self.space, self.prior, self.ordering
            )
        return self.ordered_sampler_

    def _allowed(self, U: np.ndarray) -> np.ndarray:
        if self.ordering is None or len(U) == 0:
            return np.ones(len(U), dtype=bool)
        return np.asarray(self.ordering(self.space.from_unit(U)), dtype=bool)

    def _rare_points(self, history: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Rare-range points of the history in unit coordinates, and seed weights."""
        if "X" not in history or "chi2" not in history:
            return np.empty((0, self.space.dim)), np.empty(0)
        X = np.asarray(history["X"], dtype=float).reshape(-1, self.space.dim)
        chi2 = np.asarray(history["chi2"], dtype=float)
        rare = np.isfinite(chi2) & self.regions.is_rare(chi2)
        inside = self.space.contains(X[rare])
        if not inside.all():
            logger.warning(
                "%d rare-range history points lie outside the space and are ignored",
                int((~inside).sum()),
            )
        X_rare, chi2_rare = X[rare][inside], chi2[rare][inside]
        if len(X_rare) == 0:
            return np.empty((0, self.space.dim)), np.empty(0)
        errors = (
            _finite_errors(history.get("region_errors"))
            if self.adapt_to_errors
            else None
        )
        weights = strategies.rare_seed_weights(chi2_rare, self.regions, errors)
        return self.space.to_unit(X_rare), weights

    def _base_fractions(self) -> dict[str, float]:
        unknown = sorted(set(self.fractions) - set(STRATEGIES))
        values = [float(self.fractions.get(s, 0.0)) for s in STRATEGIES]
        if unknown or min(values) < 0.0 or sum(values) <= 0.0:
            raise ProposalError(
                f"proposer.fractions {self.fractions} must map {list(STRATEGIES)} to"
                " non-negative numbers with a positive sum"
            )
        total = sum(values)
        return {s: v / total for s, v in zip(STRATEGIES, values, strict=True)}

    def _validation_share(self) -> float:
        share = float(self.validation_share)
        if not 0.0 <= share <= 1.0:
            raise ProposalError(
                f"proposer.validation_share = {share} must lie in [0, 1]"
            )
        return share


class _Batch:
    """Unit-cube points of one round, kept at least ``min_distance`` apart."""

    def __init__(self, dim: int, capacity: int, min_distance: float) -> None:
        self._U = np.empty((capacity, dim))
        self.origins: list[str] = []
        self._min_sq = float(min_distance) ** 2

    def __len__(self) -> int:
        return len(self.origins)

    @property
    def U(self) -> np.ndarray:
        """Accepted points, shape ``(len(self), dim)``."""
        return self._U[: len(self)]

    def extend(self, candidates: np.ndarray, origin: str, k: int) -> int:
        """Accept up to ``k`` candidates in order, skipping those too close; return count."""
        room = min(k, len(self._U) - len(self))
        added = 0
        for candidate in candidates:
            if added >= room:
                break
            diff = self.U - candidate
            if len(diff) and np.einsum("ij,ij->i", diff, diff).min() < self._min_sq:
                continue
            self._U[len(self)] = candidate
            self.origins.append(origin)
            added += 1
        return added


def _allocate(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Split ``n`` points by fractions with the largest-remainder rule."""
    exact = {s: n * f for s, f in fractions.items()}
    counts = {s: int(np.floor(v)) for s, v in exact.items()}
    by_remainder = sorted(exact, key=lambda s: exact[s] - counts[s], reverse=True)
    for s in by_remainder[: n - sum(counts.values())]:
        counts[s] += 1
    return counts


def _tilted(base: Mapping[str, float], tilt: float) -> dict[str, float]:
    out = dict(base)
    targeted = base["density"] + base["local"]
    if tilt > 0.0:
        moved = MAX_SHIFT * tilt * base["prior"]
        share = base["density"] / targeted if targeted > 0.0 else 0.5
        out["prior"] -= moved
        out["density"] += moved * share
        out["local"] += moved * (1.0 - share)
    elif tilt < 0.0 and targeted > 0.0:
        moved = MAX_SHIFT * -tilt * targeted
        out["prior"] += moved
        out["density"] -= moved * base["density"] / targeted
        out["local"] -= moved * base["local"] / targeted
    return out


def _finite_errors(region_errors: Mapping[str, Any] | None) -> dict[str, float]:
    """Region name to finite error; accepts plain numbers or metric dicts."""
    if not region_errors:
        return {}
    out = {}
    for name, value in region_errors.items():
        if isinstance(value, Mapping):
            value = value.get("mean_abs_error")
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if np.isfinite(value):
            out[str(name)] = value
    return out
