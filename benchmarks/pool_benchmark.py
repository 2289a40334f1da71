"""Pool-based benchmark: labelled points active learning saves over uniform sampling.

Usage::

    python benchmarks/pool_benchmark.py POOL.h5 [--budgets 500 1000 2000 all]
        [--seeds 3] [--strategies uniform density local uncertainty mixture]
        [--out DIR] [--test-size 1000] [--initial 100] [--batch 200]
        [--epochs 300] [--patience 20] [--acq-members 3] [--acq-epochs 50] ...

On the 5 074-point pool with the defaults and ``--seeds 5``, on a 2-core machine:
about 2 minutes for ``uniform density local`` and 10-15 minutes for
``uncertainty mixture``, which refit their acquisition ensembles every round (two
processes with disjoint ``--strategies``, one torch thread each, side by side;
their ``results.csv`` concatenated and ``--reanalyse`` make the joint summary).

The pool is a campaign store of prior draws labelled by a simulator (see
``configs/oracle_pool.yaml`` and ``benchmarks/make_oracle_pool.py``). Its ok points
are split once, with a fixed seed, into a held-out test set (prior draws, so the
per-region errors on it are unbiased) and the candidate pool. Per strategy and seed:

- ``uniform``: candidates in a random order (pool-based uniform sampling);
- ``density``, ``local``, ``uncertainty``, ``mixture``: a uniform seed set of
  ``--initial`` points, then rounds of ``--batch`` points chosen by
  :class:`sampler.proposers.Proposer` with that strategy alone (``mixture``: the
  default fractions prior 0.2, density 0.2, local 0.2, uncertainty 0.4).

The proposer works in the unit cube; the pool enters it in two ways. Its prior is
:class:`PoolPrior`, which draws unused pool points, so prior exploration, the
fallback when a strategy has nothing to work on, and the candidates that the
uncertainty strategy scores are all exact pool points (uncertainty sampling thus
scores the unused pool directly). Density and local seeding propose points in the
continuum; each is snapped to its nearest unused pool point
(:func:`simulators.replay.snap_to_pool`). Strategies that need sigma get a bootstrap ensemble
(``--acq-members`` direct networks, :class:`AcquisitionEnsemble`) refitted every
round. Error-driven
adaptation of the fractions is off: it needs validation points, which would cost
labels the uniform baseline does not pay for.

At each budget a fresh direct network (``scynet_al.network.DirectRegressor``; an
ensemble mean with ``--eval-members`` > 1) is trained on the labelled points and
the mean |dchi2| per region is measured on the test set
(``scynet_al.metrics.region_errors``). Two departures from the daemon's training,
both for small training sets: the mini-batch size defaults to about a twentieth of
the training points (at most the paper's 500, see :func:`batch_size_for`), and a
training that collapses to a constant output is redone with another seed
(:func:`fit_with_restarts`; the count is in the results). Labelled sets are nested, so one acquisition
run per strategy and seed serves every budget. The budget ``all`` labels every
candidate, the same set for every strategy: it is trained once per seed and shared.

Figure of merit, per rare region R (I, II, III): the target is a mean |dchi2| of 1,
or the lowest seed-averaged error uniform sampling reaches at any budget if that is
higher. The labelled points each strategy needs to reach it are read off its
learning curve per seed (log-log interpolation between budgets); the saving is
uniform's number over the strategy's, per seed, then averaged. The paper-style
Table 4 shows the best strategy at the largest budget below ``all`` beside the
paper's 13 TeV direct-network errors.

Outputs in ``--out``: ``results.csv`` (one row per strategy, seed, budget and
region, appended as each strategy and seed finishes), ``summary.json`` (settings,
machine, aggregates, figure of merit, Table 4) and ``errors_vs_budget.png``.
Everything is printed as well. ``--continue`` picks up an interrupted run in the
same ``--out``: the strategies and seeds already in ``results.csv`` are kept and
only the rest run (``run.json`` records the pool and settings; a run with others is
refused). ``--reanalyse`` rebuilds the tables, summary and plot
from an existing ``results.csv`` (e.g. of an interrupted run) without training.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sampler.proposers import Proposer
from sampler.regions import RARE_REGIONS, REGION_NAMES, ChiSquareRegions
from sampler.space import ParameterSpace
from simulators.replay import snap_to_pool

#: Paper Table 4, 13 TeV, direct network: mean |dchi2| per range (I, zero, II, III, cap).
PAPER_13TEV_DIRECT: dict[str, float] = {
    "I": 1.8,
    "zero": 0.9,
    "II": 2.4,
    "III": 4.0,
    "cap": 0.5,
}

#: Accuracy a global fit needs (paper Sect. 5): mean |dchi2| below one.
TARGET_ERROR = 1.0

#: Strategy name to proposer fractions; ``uniform`` uses no proposer.
STRATEGY_FRACTIONS: dict[str, dict[str, float] | None] = {
    "uniform": None,
    "density": {"density": 1.0},
    "local": {"local": 1.0},
    "uncertainty": {"uncertainty": 1.0},
    "mixture": {"prior": 0.2, "density": 0.2, "local": 0.2, "uncertainty": 0.4},
}

#: Strategies whose proposals need a surrogate with sigma.
NEEDS_SURROGATE = ("uncertainty", "mixture")

#: Seed of the test/candidate split: fixed, so every run measures on the same points.
SPLIT_SEED = 12345

#: Most retrainings of an evaluation network whose training collapsed.
MAX_RESTARTS = 3

#: A fit whose predictions on its training points spread less than this share of
#: the targets' spread counts as collapsed (constant output).
COLLAPSED_SPREAD = 0.25

#: Aim of the automatic mini-batch size: gradient steps per epoch.
STEPS_PER_EPOCH = 20

#: Smallest automatic mini-batch size, and the paper's 13 TeV size (Sect. 3.1).
MIN_BATCH_SIZE = 8
PAPER_BATCH_SIZE = 500

#: Columns of ``results.csv``, one row per strategy, seed, budget and group.
ROW_FIELDS: tuple[str, ...] = ("strategy", "seed", "budget", "group", "mean_abs_error",
                               "count", "n_rare_labelled", "restarts", "seconds")  # fmt: skip

#: Groups of the results: the five regions and all test points.
GROUPS: tuple[str, ...] = (*REGION_NAMES, "overall")


@dataclass(frozen=True)
class Settings:
    """Benchmark settings (see the module docstring and ``--help``)."""

    budgets: tuple[int | str, ...] = (500, 1000, 2000, "all")
    seeds: int = 3
    strategies: tuple[str, ...] = tuple(STRATEGY_FRACTIONS)
    energy_tev: int = 13
    test_size: int = 1000
    initial: int = 100
    batch: int = 200
    epochs: int = 300
    patience: int = 20
    batch_size: int | None = None
    eval_members: int = 1
    acq_members: int = 3
    acq_epochs: int = 50
    min_distance: float = 0.02
    local_width: float = 0.05
    n_threads: int | None = None
    n_boot: int = 100


@dataclass
class Pool:
    """The labelled pool in unit-cube coordinates.

    Attributes:
        space: The pool's parameter space.
        U: Ok points in unit-cube coordinates, shape ``(n, dim)``.
        chi2: Their chi2, shape ``(n,)``.
        regions: Chi2 regions of the measurement.
        test: Indices of the held-out test set.
        candidates: Indices of the candidate pool.
    """

    space: ParameterSpace
    U: np.ndarray
    chi2: np.ndarray
    regions: ChiSquareRegions
    test: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    candidates: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


class PoolPrior:
    """Draws unused pool points: the proposer's prior in pool-based learning.

    Args:
        U: Pool points in unit-cube coordinates, shape ``(n, dim)``.
        available: Mask of pool points that may still be drawn, shape ``(n,)``;
            the caller updates it in place as points are labelled.
    """

    def __init__(self, U: np.ndarray, available: np.ndarray) -> None:
        self.U = U
        self.available = available

    def sample_unit(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``n`` distinct unused pool points, uniformly, shape ``(<= n, dim)``."""
        free = np.flatnonzero(self.available)
        picked = rng.choice(free, size=min(int(n), free.size), replace=False)
        return self.U[picked]


# ---------------------------------------------------------------- the pool


def load_pool(
    path: str | Path,
    energy_tev: int = 13,
    regions: ChiSquareRegions | None = None,
    labels: dict[int, float] | None = None,
) -> Pool:
    """Read the ok points of a pool (campaign store) at one energy.

    Args:
        path: The pool file.
        energy_tev: Energy of the chi2 labels.
        regions: Chi2 regions; default those of the pool's stored config.
        labels: New chi2 per point id (``relabel_pool.py``); when given, only the
            points it labels are kept, with its labels.

    Returns:
        The pool, not yet split.
    """
    from scynet_al.store import CampaignStore

    with CampaignStore.open(path, mode="r") as store:
        X, chi2 = store.dataset(energy_tev)
        space = store.space
        config_text = store.config_text
        analyses = store.analyses.get(energy_tev)
        if labels is not None:
            table = store.table()
            column = list(store.energies).index(energy_tev)
            ok = (table["status"] == "ok") & np.isfinite(table["chi2"][:, column])
            ids = table["id"][ok]
    if regions is None:
        regions = regions_of_config(config_text, energy_tev, analyses)
    if labels is not None:
        keep = np.array([int(i) in labels for i in ids], dtype=bool)
        X = X[keep]
        chi2 = np.array([labels[int(i)] for i in ids[keep]])
    return Pool(space, space.to_unit(X), np.asarray(chi2, dtype=float), regions)


def regions_of_config(
    config_text: str, energy_tev: int, analyses: Sequence[str] | None = None
) -> ChiSquareRegions:
    """The chi2 regions a campaign config defines at an energy.

    A config centred on the catalogue uses the zero-signal chi2 of the catalogue its
    simulator names (the shipped one by default), restricted to ``analyses``: the
    analyses the pool's labels combine (the store records them). These are the
    regions the campaign itself used.
    """
    from scynet_al.config import parse_config

    config = parse_config(config_text, source="pool config")
    zero = None
    if config.regions.centre_on_catalogue:
        from simulators.catalogue import load_catalogue

        catalogue = load_catalogue(
            config.simulator.settings.get("catalogue"),
            energy_tev=float(energy_tev),
            analyses=analyses,
        )
        zero = catalogue.zero_signal_chi2(float(energy_tev))
    return config.regions.build(energy_tev, zero_chi2=zero)


def split_pool(pool: Pool, test_size: int, seed: int = SPLIT_SEED) -> Pool:
    """Split the pool into a held-out test set and candidates (seeded, in place).

    Raises:
        ValueError: The pool is too small for the test set.
    """
    n = len(pool.chi2)
    if not 0 < test_size < n:
        raise ValueError(f"test set of {test_size} points needs a larger pool than {n}")
    order = np.random.default_rng(seed).permutation(n)
    pool.test, pool.candidates = np.sort(order[:test_size]), np.sort(order[test_size:])
    return pool


def resolve_budgets(budgets: Iterable[int | str], n_candidates: int) -> list[int]:
    """Budgets as sorted distinct point counts; ``all`` (or more) means every candidate."""
    out = set()
    for budget in budgets:
        if str(budget) == "all" or int(budget) >= n_candidates:
            out.add(n_candidates)
        elif int(budget) > 0:
            out.add(int(budget))
    return sorted(out)


# ------------------------------------------------------------- acquisition


def acquisition_order(
    strategy: str, pool: Pool, n_max: int, settings: Settings, seed: int
) -> np.ndarray:
    """Pool indices in the order a strategy labels them, ``n_max`` of them.

    Args:
        strategy: A key of ``STRATEGY_FRACTIONS``.
        pool: The split pool.
        n_max: Labelled points wanted (at most the candidate count).
        settings: Benchmark settings.
        seed: Seed of this run.

    Returns:
        Distinct candidate indices into the pool arrays, shape ``(n_max,)``.
    """
    n_max = min(n_max, len(pool.candidates))
    # The same uniform order for every strategy of a seed: active strategies start
    # from the first points uniform sampling takes.
    first = np.random.default_rng(seed).permutation(pool.candidates)
    rng = np.random.default_rng([seed, _strategy_salt(strategy)])
    if STRATEGY_FRACTIONS[strategy] is None:
        return first[:n_max]

    order = list(first[: min(settings.initial, n_max)])
    available = np.zeros(len(pool.chi2), dtype=bool)
    available[pool.candidates] = True
    available[order] = False
    proposer = _pool_proposer(strategy, pool, available, settings)
    while len(order) < n_max:
        k = min(settings.batch, n_max - len(order))
        picked = _acquire(
            proposer, pool, np.asarray(order), k, strategy, settings, seed, rng
        )
        available[picked] = False
        order.extend(picked.tolist())
    return np.asarray(order[:n_max], dtype=np.int64)


def _pool_proposer(
    strategy: str, pool: Pool, available: np.ndarray, settings: Settings
) -> Proposer:
    return Proposer(
        pool.space,
        PoolPrior(pool.U, available),
        pool.regions,
        fractions=STRATEGY_FRACTIONS[strategy],
        validation_share=0.0,
        min_distance=settings.min_distance,
        local_width=settings.local_width,
        candidate_pool=len(pool.candidates),
        adapt_to_errors=False,
    )


def _acquire(
    proposer: Proposer,
    pool: Pool,
    labelled: np.ndarray,
    k: int,
    strategy: str,
    settings: Settings,
    seed: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """One round: ``k`` new pool indices chosen by the proposer and snapped."""
    surrogate = None
    if strategy in NEEDS_SURROGATE:
        surrogate = _acquisition_ensemble(settings, seed + len(labelled)).fit(
            pool.U[labelled], pool.chi2[labelled]
        )
    history = {
        "X": pool.space.from_unit(pool.U[labelled]),
        "chi2": pool.chi2[labelled],
    }
    proposal = proposer.propose(k, surrogate, history, rng)
    U_proposed = pool.space.to_unit(proposal.X)
    return snap_to_pool(U_proposed, pool.U, proposer.prior.available)


def _acquisition_ensemble(settings: Settings, seed: int) -> AcquisitionEnsemble:
    return AcquisitionEnsemble(settings, seed)


class AcquisitionEnsemble:
    """Bootstrap ensemble of direct networks for sigma, each member restarted if collapsed.

    Like ``scynet_al.ensemble.Ensemble`` with bootstrap (member k fits a resample
    and stops on its out-of-bag points), but each member is trained through
    :func:`fit_with_restarts`, so one collapsed member (constant cap prediction)
    does not inflate sigma everywhere. Its sigma is the plain spread: a campaign
    rescales the spread on its validation points (``Ensemble.calibrate``), which
    here would cost labels the uniform baseline does not pay for, so the
    uncertainty strategy of this benchmark reads rare-range probabilities off a
    sigma about half the size of the campaign's.

    Args:
        settings: Benchmark settings (``acq_members``, ``acq_epochs``, ...).
        seed: Root seed of members and resamples.
    """

    def __init__(self, settings: Settings, seed: int) -> None:
        self.settings = settings
        self.seed = seed

    def fit(self, U: np.ndarray, chi2: np.ndarray) -> AcquisitionEnsemble:
        """Fit every member on a bootstrap resample of ``U`` ``(n, dim)``, ``chi2`` ``(n,)``."""
        member_settings = replace(
            self.settings, epochs=self.settings.acq_epochs, eval_members=1
        )
        seeds = np.random.SeedSequence(self.seed).generate_state(
            self.settings.acq_members
        )
        self.members_ = []
        for s in seeds:
            rng = np.random.default_rng(int(s))
            train = rng.integers(0, len(chi2), size=len(chi2))
            oob = np.setdiff1d(np.arange(len(chi2)), train)
            validation = (U[oob], chi2[oob]) if oob.size else None
            model, _ = fit_with_restarts(
                U[train], chi2[train], member_settings, int(s), validation
            )
            self.members_.append(model)
        return self

    def predict(self, U: np.ndarray, return_std: bool = False) -> Any:
        """Mean chi2 ``(m,)`` over members; with ``return_std`` also their spread."""
        values = np.stack([m.predict(U) for m in self.members_])
        mean = values.mean(axis=0)
        if not return_std:
            return mean
        std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros_like(mean)
        return mean, std


def _strategy_salt(strategy: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(strategy))


# -------------------------------------------------------------- evaluation


def evaluate(
    pool: Pool, labelled: np.ndarray, settings: Settings, seed: int
) -> tuple[dict[str, dict[str, Any]], int]:
    """Train the evaluation network on labelled points; errors per group on the test set.

    Returns:
        Group name (five regions and ``overall``) to ``{"mean_abs_error", "count",
        "interval"}``, and the number of restarts the training needed
        (:func:`fit_with_restarts`).
    """
    from scynet_al.metrics import region_errors

    model, restarts = fit_with_restarts(
        pool.U[labelled], pool.chi2[labelled], settings, seed
    )
    prediction = model.predict(pool.U[pool.test])
    errors = region_errors(
        pool.chi2[pool.test],
        prediction,
        pool.regions,
        n_boot=settings.n_boot,
        seed=seed,
    )
    return {**errors["regions"], "overall": errors["overall"]}, restarts


def fit_with_restarts(
    U: np.ndarray,
    chi2: np.ndarray,
    settings: Settings,
    seed: int,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Any, int]:
    """Fit the evaluation model, restarting with a new seed when training collapses.

    A direct network sometimes starts with its tanh output saturated, predicts the
    cap everywhere and stops early without ever improving. Such a fit is recognised
    by a validation error no better than the constant prediction (the median of the
    targets) or by predictions that hardly vary, and redone with another seed, at
    most ``MAX_RESTARTS`` times. The network redoes the first kind itself
    (``scynet_al.network.MAX_RESTARTS``); the count reported with the results is
    the sum of both.

    Args:
        U: Unit-cube points, shape ``(n, dim)``.
        chi2: Targets, shape ``(n,)``.
        settings: Benchmark settings (epochs, members, ...).
        seed: Seed of the first attempt.
        validation: ``(U_val, chi2_val)`` for early stopping; default the model's
            own held-out share.

    Returns:
        The fitted model and the number of restarts.
    """
    baseline = float(np.mean(np.abs(chi2 - np.median(chi2))))
    inner = 0
    for restart in range(MAX_RESTARTS + 1):
        model = _evaluation_model(settings, seed + 1000 * restart, len(chi2))
        model.fit(U, chi2, *(validation or ()))
        members = getattr(model, "members_", [model])
        inner += sum(getattr(m, "n_restarts_", 0) for m in members)
        if not _collapsed(model, U, chi2, baseline):
            break
    return model, restart + inner


def _collapsed(model: Any, U: np.ndarray, chi2: np.ndarray, baseline: float) -> bool:
    """A fit no better than a constant, or whose predictions hardly vary."""
    members = getattr(model, "members_", [model])
    error = float(np.mean([m.best_validation_error_ for m in members]))
    spread = float(np.std(model.predict(U)))
    return error >= baseline or spread < COLLAPSED_SPREAD * float(np.std(chi2))


def _evaluation_model(settings: Settings, seed: int, n_train: int) -> Any:
    from scynet_al.ensemble import Ensemble
    from scynet_al.network import DirectRegressor

    params = _network_params(settings, settings.epochs, n_train)
    if settings.eval_members > 1:
        return Ensemble("direct", settings.eval_members, True, seed, params)
    return DirectRegressor(**params, seed=seed)


def _network_params(settings: Settings, epochs: int, n_train: int) -> dict[str, Any]:
    return {
        "energy_tev": settings.energy_tev,
        "max_epochs": int(epochs),
        "patience": settings.patience,
        "batch_size": batch_size_for(n_train, settings),
        "n_threads": settings.n_threads,
    }


def batch_size_for(n_train: int, settings: Settings) -> int:
    """Mini-batch size: the setting, else about ``STEPS_PER_EPOCH`` steps per epoch.

    The paper's 500 (13 TeV) suits its 10^5 training points; at a budget of 500 it
    would make one gradient step per epoch, and early stopping after ``patience``
    epochs would end training after a few dozen steps. Capped at the paper's value.
    """
    if settings.batch_size is not None:
        return int(settings.batch_size)
    return int(np.clip(n_train // STEPS_PER_EPOCH, MIN_BATCH_SIZE, PAPER_BATCH_SIZE))


# --------------------------------------------------------------------- runs


def run_benchmark(
    pool: Pool,
    settings: Settings,
    log: Callable[[str], None] = print,
    on_rows: Callable[[list[dict[str, Any]]], None] | None = None,
    done: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Every strategy, seed and budget: one result row per group.

    ``on_rows`` receives the rows of each strategy and seed as soon as they exist
    (the command line appends them to ``results.csv``, so an interrupted run keeps
    what it measured). ``done`` holds rows of an earlier, interrupted run with the
    same pool and settings: their strategies and seeds are not run again (the
    shared ``all`` budget of a seed is taken from them too) and they lead the
    returned rows.

    Returns:
        Rows with ``strategy``, ``seed``, ``budget``, ``group``, ``mean_abs_error``,
        ``count``, ``n_rare_labelled`` (labelled points in I, II or III),
        ``restarts`` (of a collapsed training) and ``seconds`` (training and
        evaluation of that budget's network).
    """
    budgets = resolve_budgets(settings.budgets, len(pool.candidates))
    n_all = len(pool.candidates)
    finite = [b for b in budgets if b < n_all]
    rows: list[dict[str, Any]] = [dict(row) for row in done]
    finished = {(row["strategy"], int(row["seed"])) for row in done}
    for seed in range(settings.seeds):
        todo = [s for s in settings.strategies if (s, seed) not in finished]
        if not todo:
            continue
        shared = []
        if n_all in budgets:
            earlier = [
                {k: v for k, v in row.items() if k != "strategy"}
                for row in done
                if int(row["seed"]) == seed and int(row["budget"]) == n_all
            ]
            kept = {row["group"]: row for row in earlier}  # one strategy's copy
            shared = list(kept.values()) or _all_rows(pool, settings, seed, log)
        for strategy in todo:
            new = _strategy_rows(pool, settings, strategy, seed, finite, log)
            new += [{**row, "strategy": strategy} for row in shared]
            rows += new
            if on_rows is not None:
                on_rows(new)
    return rows


def _strategy_rows(
    pool: Pool,
    settings: Settings,
    strategy: str,
    seed: int,
    budgets: Sequence[int],
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    if not budgets:
        return []
    start = time.perf_counter()
    order = acquisition_order(strategy, pool, max(budgets), settings, seed)
    log(
        f"{strategy} seed {seed}: {len(order)} points chosen in {time.perf_counter() - start:.1f} s"
    )
    rows = []
    for budget in budgets:
        rows += _budget_rows(pool, settings, strategy, seed, order[:budget], log)
    return rows


def _all_rows(
    pool: Pool, settings: Settings, seed: int, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    return _budget_rows(pool, settings, "all", seed, pool.candidates, log)


def _budget_rows(
    pool: Pool,
    settings: Settings,
    strategy: str,
    seed: int,
    labelled: np.ndarray,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    start = time.perf_counter()
    errors, restarts = evaluate(pool, labelled, settings, seed)
    seconds = time.perf_counter() - start
    n_rare = int(np.count_nonzero(pool.regions.is_rare(pool.chi2[labelled])))
    log(
        f"{strategy} seed {seed} budget {len(labelled)}: {n_rare} rare labelled, "
        + " ".join(f"{g} {_fmt(errors[g]['mean_abs_error'])}" for g in GROUPS)
        + f" ({seconds:.1f} s, {restarts} restarts)"
    )
    return [
        {
            "strategy": strategy,
            "seed": seed,
            "budget": len(labelled),
            "group": group,
            "mean_abs_error": errors[group]["mean_abs_error"],
            "count": errors[group]["count"],
            "n_rare_labelled": n_rare,
            "restarts": restarts,
            "seconds": seconds,
        }
        for group in GROUPS
    ]


# ----------------------------------------------------------------- analysis


def aggregate(
    rows: Sequence[Mapping[str, Any]],
) -> dict[str, dict[int, dict[str, dict]]]:
    """Mean and spread (standard deviation) over seeds.

    Returns:
        ``{strategy: {budget: {group: {"mean", "std", "n_seeds", "count"}}}}``; a
        group with no test points has mean None.
    """
    cells: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["strategy"], row["budget"], row["group"]), []).append(row)
    out: dict[str, dict[int, dict[str, dict]]] = {}
    for (strategy, budget, group), members in sorted(cells.items()):
        values = np.array([_nan(r["mean_abs_error"]) for r in members])
        finite = values[np.isfinite(values)]
        out.setdefault(strategy, {}).setdefault(int(budget), {})[group] = {
            "mean": float(finite.mean()) if finite.size else None,
            "std": float(finite.std(ddof=1))
            if finite.size > 1
            else 0.0
            if finite.size
            else None,
            "n_seeds": int(finite.size),
            "count": int(members[0]["count"]),
        }
    return out


def points_to_reach(
    budgets: Sequence[int], errors: Sequence[float], target: float
) -> float:
    """Labelled points at which a learning curve first reaches ``target``.

    Log-log interpolation between the budgets around the first crossing; the first
    budget when already there; NaN when never reached.

    Args:
        budgets: Increasing budgets.
        errors: Mean |dchi2| at each budget (NaN where not measured).
        target: The error to reach.
    """
    previous = None
    for n, e in zip(budgets, errors, strict=True):
        if not np.isfinite(e):
            continue
        if e <= target:
            if previous is None or previous[1] <= 0 or e <= 0:
                return float(n)
            (n0, e0), t = previous, math.log(target)
            f = (t - math.log(e0)) / (math.log(e) - math.log(e0))
            return float(math.exp(math.log(n0) + f * (math.log(n) - math.log(n0))))
        previous = (n, e)
    return float("nan")


def figure_of_merit(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Labelled points needed to reach the target in I, II, III and the saving.

    Two readings, both against uniform sampling. On the seed-averaged learning
    curves, the target is a mean |dchi2| of 1, or the lowest error uniform reaches
    if higher; each strategy's points to reach it and uniform's over them (the
    saving). Per seed, paired: the target is 1 or the lowest error uniform reaches
    in that seed, so uniform always reaches it; points and saving per seed, then
    their mean and spread.

    Returns:
        ``{region: {"target", "seed_targets", "strategies": {strategy:
        {"points_mean_curve", "saving_mean_curve", "points": [per seed],
        "points_mean", "points_std", "saving": [per seed], "saving_mean",
        "saving_std", "seeds_not_reaching"}}}}``.
    """
    curves = _curves(rows)
    out: dict[str, Any] = {}
    for region in RARE_REGIONS:
        uniform = curves.get(("uniform", region))
        if uniform is None or not np.isfinite(uniform[1]).any():
            continue
        out[region] = _merit_of_region(curves, region, uniform)
    return out


def _merit_of_region(
    curves: Mapping[tuple[str, str], tuple], region: str, uniform: tuple
) -> dict[str, Any]:
    budgets_u, errors_u = uniform
    target = max(TARGET_ERROR, _lowest_mean_error(errors_u))
    n_uniform_mean = points_to_reach(budgets_u, _seed_mean(errors_u), target)
    seed_targets = [max(TARGET_ERROR, float(np.nanmin(e))) for e in errors_u]
    n_uniform = [
        points_to_reach(budgets_u, e, t)
        for e, t in zip(errors_u, seed_targets, strict=True)
    ]
    entry = {"target": target, "seed_targets": seed_targets, "strategies": {}}
    for (strategy, group), (budgets, errors) in sorted(curves.items()):
        if group != region:
            continue
        n_mean = points_to_reach(budgets, _seed_mean(errors), target)
        points = [
            points_to_reach(budgets, e, t)
            for e, t in zip(errors, seed_targets, strict=False)
        ]
        saving = [u / p for u, p in zip(n_uniform, points, strict=False)]
        entry["strategies"][strategy] = {
            "points_mean_curve": _none(n_mean),
            "saving_mean_curve": _none(n_uniform_mean / n_mean),
            **_spread(points, saving),
        }
    return entry


def _seed_mean(errors: np.ndarray) -> np.ndarray:
    """Mean over seeds per budget, NaN where no seed measured; shape ``(n_budgets,)``."""
    measured = np.isfinite(errors).any(axis=0)
    out = np.full(errors.shape[1], np.nan)
    out[measured] = np.nanmean(errors[:, measured], axis=0)
    return out


def paper_table(summary: Mapping[str, Any], n_all: int) -> dict[str, Any]:
    """Paper Table 4 style: the best strategy at the largest budget below ``all``.

    The best strategy has the lowest seed-mean error averaged over I, II and III.
    With no budget below ``all`` (``n_all`` candidates), the largest one counts.
    """
    candidates = []
    for strategy, by_budget in summary.items():
        finite = [b for b in sorted(by_budget) if b < n_all] or sorted(by_budget)
        budget = finite[-1]
        rare = [by_budget[budget][r]["mean"] for r in RARE_REGIONS]
        if all(v is not None for v in rare):
            candidates.append((float(np.mean(rare)), strategy, budget))
    if not candidates:
        return {}
    _, strategy, budget = min(candidates)
    return {
        "strategy": strategy,
        "budget": budget,
        "regions": {
            r: {
                **summary[strategy][budget][r],
                "paper_13tev_direct": PAPER_13TEV_DIRECT[r],
            }
            for r in REGION_NAMES
        },
    }


def _curves(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], tuple]:
    """(strategy, group) to (budgets, errors (n_seeds, n_budgets))."""
    table: dict[tuple[str, str], dict[int, dict[int, float]]] = {}
    for row in rows:
        cell = table.setdefault((row["strategy"], row["group"]), {})
        cell.setdefault(int(row["seed"]), {})[int(row["budget"])] = _nan(
            row["mean_abs_error"]
        )
    out = {}
    for key, by_seed in table.items():
        budgets = sorted({b for errors in by_seed.values() for b in errors})
        errors = np.array(
            [[by_seed[s].get(b, np.nan) for b in budgets] for s in sorted(by_seed)]
        )
        out[key] = (budgets, errors)
    return out


def _lowest_mean_error(errors: np.ndarray) -> float:
    """Lowest seed-averaged error over budgets; errors shape ``(n_seeds, n_budgets)``."""
    measured = np.isfinite(errors).any(axis=0)
    return float(np.nanmean(errors[:, measured], axis=0).min())


def _spread(points: list[float], saving: list[float]) -> dict[str, Any]:
    p, s = np.array(points), np.array(saving)
    return {
        "points": [_none(v) for v in p],
        "points_mean": _none(np.nanmean(p)) if np.isfinite(p).any() else None,
        "points_std": _none(np.nanstd(p, ddof=1)) if np.isfinite(p).sum() > 1 else None,
        "saving": [_none(v) for v in s],
        "saving_mean": _none(np.nanmean(s)) if np.isfinite(s).any() else None,
        "saving_std": _none(np.nanstd(s, ddof=1)) if np.isfinite(s).sum() > 1 else None,
        "seeds_not_reaching": int(np.count_nonzero(~np.isfinite(p))),
    }


# ------------------------------------------------------------------ output


def write_outputs(out: Path, report: Mapping[str, Any]) -> dict[str, Path]:
    """Write ``summary.json`` and ``errors_vs_budget.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "summary.json", "png": out / "errors_vs_budget.png"}
    paths["json"].write_text(json.dumps(report, indent=2, default=_json_default))
    plot(report["aggregate"], paths["png"], report.get("regions_edges"))
    return paths


def plot(
    summary: Mapping[str, Any], path: Path, edges: Sequence[float] | None = None
) -> None:
    """Mean |dchi2| per region vs labelled points, one line per strategy."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5), sharex=True)
    for ax, group in zip(axes.ravel(), GROUPS, strict=True):
        for strategy, by_budget in summary.items():
            budgets = sorted(by_budget)
            cells = [by_budget[b][group] for b in budgets]
            mean = np.array([_nan(c["mean"]) for c in cells])
            std = np.array([_nan(c["std"]) for c in cells])
            ax.errorbar(budgets, mean, yerr=std, marker="o", capsize=3, label=strategy)
        ax.axhline(TARGET_ERROR, color="grey", linestyle="--", linewidth=1)
        if len(budgets) == 1:  # a log axis needs a range around a single budget
            ax.set_xlim(budgets[0] / 1.5, budgets[0] * 1.5)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.set_yscale("log")
        ax.set_title(_group_title(group, edges))
        ax.set_xlabel("labelled points")
        ax.set_ylabel("mean |Δχ²| on test set")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def format_report(report: Mapping[str, Any]) -> str:
    """The printed tables: errors, figure of merit and Table 4."""
    lines = ["", "mean |dchi2| on the test set (mean ± spread over seeds)"]
    header = f"{'strategy':<12}{'budget':>7}" + "".join(f"{g:>15}" for g in GROUPS)
    lines += [header, "-" * len(header)]
    for strategy, by_budget in report["aggregate"].items():
        for budget, cells in sorted(by_budget.items()):
            lines.append(
                f"{strategy:<12}{budget:>7}"
                + "".join(f"{_pm(cells[g]):>15}" for g in GROUPS)
            )
    lines += ["", "test points per region: " + _counts_line(report["aggregate"])]
    lines += _merit_lines(report["figure_of_merit"])
    lines += _table4_lines(report["table4"])
    return "\n".join(lines)


def _merit_lines(merit: Mapping[str, Any]) -> list[str]:
    lines = [
        "",
        "labelled points to reach the target, and the saving vs uniform: on the"
        " seed-averaged curves; per seed (paired targets) mean ± spread",
    ]
    for region, entry in merit.items():
        seed_targets = ", ".join(f"{t:.2f}" for t in entry["seed_targets"])
        lines.append(
            f"range {region}: target mean |dchi2| < {entry['target']:.2f}"
            f" (per seed: {seed_targets})"
        )
        for strategy, s in entry["strategies"].items():
            lines.append(
                f"  {strategy:<12} averaged: points {_pm_num(s['points_mean_curve'], None, '.0f'):>6}"
                f" saving {_pm_num(s['saving_mean_curve'], None, '.2f'):>5}"
                f" | per seed: points {_pm_num(s['points_mean'], s['points_std'], '.0f'):>12}"
                f" saving {_pm_num(s['saving_mean'], s['saving_std'], '.2f'):>12}"
                f" not reaching {s['seeds_not_reaching']}"
            )
    return lines


def _table4_lines(table: Mapping[str, Any]) -> list[str]:
    if not table:
        return []
    lines = [
        "",
        f"Table 4 style: best strategy {table['strategy']} at {table['budget']} labelled points",
        f"{'range':<8}{'test points':>12}{'this work':>16}{'paper 13 TeV direct':>22}",
    ]
    for region, cell in table["regions"].items():
        lines.append(
            f"{region:<8}{cell['count']:>12}{_pm(cell):>16}{cell['paper_13tev_direct']:>22.1f}"
        )
    return lines


def _counts_line(summary: Mapping[str, Any]) -> str:
    first = next(iter(summary.values()))
    cells = next(iter(first.values()))
    return ", ".join(f"{g} {cells[g]['count']}" for g in GROUPS)


def _group_title(group: str, edges: Sequence[float] | None) -> str:
    if edges is None or group == "overall":
        return group
    k = REGION_NAMES.index(group)
    return f"{group}: χ² {edges[k]:.3g}–{edges[k + 1]:.3g}"


# -------------------------------------------------------------------- CLI


def build_report(
    pool: Pool, settings: Settings, rows: Sequence[Mapping[str, Any]], seconds: float
) -> dict[str, Any]:
    """Everything written to ``summary.json``."""
    summary = aggregate(rows)
    return {
        "settings": asdict(settings),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "pool": {
            "n_ok": len(pool.chi2),
            "n_test": len(pool.test),
            "n_candidates": len(pool.candidates),
            "rare_share": float(np.mean(pool.regions.is_rare(pool.chi2))),
        },
        "regions_edges": list(pool.regions.edges),
        "wall_time_s": seconds,
        "aggregate": summary,
        "figure_of_merit": figure_of_merit(rows),
        "table4": paper_table(summary, len(pool.candidates)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line."""
    args = _parser().parse_args(argv)
    settings = _settings(args)
    print(f"machine: {os.cpu_count()} cpus, {platform.platform()}")
    regions = ChiSquareRegions.paper(args.energy) if args.paper_regions else None
    labels = None
    if args.labels:
        from relabel_pool import read_labels  # this script's folder is on sys.path

        labels = read_labels(args.labels)
    pool = split_pool(
        load_pool(args.pool, args.energy, regions, labels), settings.test_size
    )
    print(
        f"pool {args.pool}: {len(pool.chi2)} ok points, test {len(pool.test)}, "
        f"candidates {len(pool.candidates)}, regions {pool.regions.as_dict()}"
    )
    csv_path = args.out / "results.csv"
    start = time.perf_counter()
    if args.reanalyse:
        rows = read_rows(csv_path)
    else:
        done = _earlier_rows(args, pool, settings) if args.continue_run else []
        rows = _run_to_csv(
            pool, settings, csv_path, done, _run_identity(args, pool, settings)
        )
    report = build_report(pool, settings, rows, time.perf_counter() - start)
    print(format_report(report))
    paths = write_outputs(args.out, report)
    outcome = (
        f"reanalysed {csv_path} without training"
        if args.reanalyse
        else f"wall time {report['wall_time_s']:.0f} s; results in {csv_path}"
    )
    print(f"\n{outcome};", *map(str, paths.values()))
    return 0


def _run_identity(args: argparse.Namespace, pool: Pool, settings: Settings) -> dict:
    """What an interrupted run must share with its continuation."""
    return {
        "pool": str(Path(args.pool).resolve()),
        "ok_points": len(pool.chi2),
        "energy": int(args.energy),
        "paper_regions": bool(args.paper_regions),
        "labels": str(Path(args.labels).resolve()) if args.labels else None,
        "settings": json.loads(json.dumps(asdict(settings), default=str)),
    }


def _earlier_rows(
    args: argparse.Namespace, pool: Pool, settings: Settings
) -> list[dict[str, Any]]:
    """Rows of an interrupted run in ``--out`` that this one continues.

    Raises:
        SystemExit: The earlier run used another pool (or the pool has grown) or
            other settings, so its rows cannot be mixed with new ones.
    """
    csv_path, identity_path = args.out / "results.csv", args.out / "run.json"
    if not csv_path.exists():
        return []
    identity = _run_identity(args, pool, settings)
    earlier = json.loads(identity_path.read_text()) if identity_path.exists() else None
    if earlier != identity:
        changed = sorted(
            key for key in identity if (earlier or {}).get(key) != identity[key]
        )
        raise SystemExit(
            f"{identity_path}: the earlier run differs in {', '.join(changed)}; "
            f"its results cannot be continued (use another --out)"
        )
    rows = read_rows(csv_path)
    print(f"continuing {csv_path}: {len(rows)} rows already measured")
    return rows


def _run_to_csv(
    pool: Pool,
    settings: Settings,
    path: Path,
    done: Sequence[Mapping[str, Any]] = (),
    identity: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    if identity is not None:
        (path.parent / "run.json").write_text(json.dumps(identity, indent=2) + "\n")
    # Continuing appends to the rows already on disk, so a second interruption
    # loses nothing either.
    with path.open("a" if done else "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ROW_FIELDS)
        if not done:
            writer.writeheader()

        def append(rows: list[dict[str, Any]]) -> None:
            writer.writerows(rows)
            handle.flush()

        log = lambda line: print(line, flush=True)  # noqa: E731
        return run_benchmark(pool, settings, log=log, on_rows=append, done=done)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Result rows back from ``results.csv`` (numbers as numbers, blanks as None)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key in ("seed", "budget", "count", "n_rare_labelled", "restarts"):
            row[key] = int(row[key])
        for key in ("mean_abs_error", "seconds"):
            row[key] = float(row[key]) if row[key] else None
    return rows


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pool", type=Path, help="campaign store of labelled prior draws"
    )
    parser.add_argument("--budgets", nargs="+", default=["500", "1000", "2000", "all"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--strategies",
        nargs="+",
        default=list(STRATEGY_FRACTIONS),
        choices=list(STRATEGY_FRACTIONS),
    )
    parser.add_argument("--out", type=Path, default=Path("pool_benchmark_out"))
    parser.add_argument(
        "--reanalyse",
        action="store_true",
        help="no training: rebuild tables, summary and plot from OUT/results.csv (give the run's --test-size; other settings are only recorded)",
    )
    parser.add_argument(
        "--continue",
        dest="continue_run",
        action="store_true",
        help="keep the strategies and seeds already in OUT/results.csv (same pool and settings) and run only the rest",
    )
    parser.add_argument("--energy", type=int, default=13, help="TeV")
    parser.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="relabel_pool.py output: use only the points it labels, with its labels",
    )
    parser.add_argument(
        "--paper-regions",
        action="store_true",
        help="paper Table 4 regions instead of the pool config's",
    )
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument(
        "--initial", type=int, default=100, help="uniform seed set of active strategies"
    )
    parser.add_argument(
        "--batch", type=int, default=200, help="points per acquisition round"
    )
    parser.add_argument(
        "--epochs", type=int, default=300, help="evaluation network epochs at most"
    )
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="default: the paper's 500 at 13 TeV",
    )
    parser.add_argument("--eval-members", type=int, default=1)
    parser.add_argument(
        "--acq-members", type=int, default=3, help="ensemble size for sigma"
    )
    parser.add_argument("--acq-epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    budgets = tuple(b if b == "all" else int(b) for b in args.budgets)
    return Settings(
        budgets=budgets,
        seeds=args.seeds,
        strategies=tuple(args.strategies),
        energy_tev=args.energy,
        test_size=args.test_size,
        initial=args.initial,
        batch=args.batch,
        epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        eval_members=args.eval_members,
        acq_members=args.acq_members,
        acq_epochs=args.acq_epochs,
        n_threads=args.threads,
    )


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _none(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _pm(cell: Mapping[str, Any]) -> str:
    return _pm_num(cell["mean"], cell["std"], ".2f")


def _pm_num(mean: float | None, std: float | None, spec: str) -> str:
    if mean is None:
        return "-"
    return f"{mean:{spec}}" + ("" if std is None else f" ± {std:{spec}}")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-able")


if __name__ == "__main__":
    sys.exit(main())
