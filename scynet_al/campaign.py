"""The campaign daemon: propose, simulate on Dask, fold into the store, refit, repeat.

One :class:`Campaign` drives one store (DESIGN.md "Data flow of one campaign"):

- points are proposed in rounds, enter the store as ``pending`` with their id and
  seed, and only then are sent to Dask as :func:`simulate_point` jobs;
- ``in_flight`` jobs are kept submitted at all times; results are read from one
  ``distributed.as_completed`` iterator to which new work is added, and each result
  is recorded in the store as it arrives;
- every ``refit_every`` new results the surrogate is refitted in a background thread
  of this process, so dispatching never waits for a fit; it is scored on the
  validation points, which also rescale its sigma (``calibrate``, when the
  surrogate has it) before it proposes or is saved; the finished fit is
  folded in by the dispatch loop (metrics row, checkpoint, stop rule), and then the
  checkpoints of older refits are removed as ``campaign.keep_checkpoints`` says;
- failed jobs are retried with the same seed up to ``max_retries`` times, except
  those whose simulator marked the failure final (``extra["retryable"] is False``,
  e.g. a spectrum generator stopping on the physics of the point); a job
  whose future errors (its worker died, ``KilledWorker``) is re-dispatched without
  counting as an attempt, up to :data:`MAX_LOSSES` times;
- the loop stops when the stop rule holds, when the budget is spent, or on
  :meth:`Campaign.request_stop` (the signal handlers of :func:`install_signal_handlers`);
  then no new job is sent and the submitted ones get ``grace_period_s`` to finish,
  except those that no longer can (no worker left, or the worker a job started on
  has gone), which are not waited for; the points of unfinished jobs stay pending.

The store is written only from the thread that calls :meth:`Campaign.run`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scynet_al.errors import CampaignError, ConfigError, ModelError, ScynetError
from scynet_al.store import checkpoint_directory, missing_checkpoints
from simulators.result import SimulationResult

logger = logging.getLogger(__name__)

#: Times a job may be lost with its worker before the point is stored as failed.
MAX_LOSSES = 5

#: Fewest ok training points before a surrogate is fitted.
MIN_TRAINING_POINTS = 10

#: A run whose first this-many results all failed stops with an error: a simulator
#: that fails every point (a missing binary, a wrong setting) would otherwise spend
#: the whole point budget on failures, which count against it.
ALL_FAILED_STOP = 20

#: Seconds the dispatch loop sleeps when nothing is ready.
POLL_INTERVAL_S = 0.02

#: Dask event topic on which jobs announce that they started running.
JOB_START_TOPIC = "scynet-al-job-start"

#: Seconds between checks for jobs running past ``campaign.job_timeout_s``.
WATCHDOG_INTERVAL_S = 1.0

#: Seconds between checks, while stopping, for workers that have gone.
WORKER_CHECK_INTERVAL_S = 1.0

#: Signals that stop a campaign gracefully: Ctrl-C, kill or a batch system's
#: end of job, and the hang-up of a closed terminal or a dropped SSH session.
STOP_SIGNALS: tuple[signal.Signals, ...] = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
)

#: Seconds within which a repeated stop signal counts as the first one again.
SAME_SIGNAL_WINDOW_S = 1.0

#: Exit code of a second interrupt (the shell's convention for SIGINT).
HARD_EXIT_CODE = 130

#: Seconds a hard exit waits for its last log line to be written.
HARD_EXIT_WORDS_S = 1.0


def simulate_point(
    simulator: Any,
    point: Mapping[str, float],
    *,
    seed: int,
    point_id: int,
    scratch_root: str | None = None,
) -> SimulationResult:
    """Run one simulation in its own scratch directory; the Dask task of a campaign.

    The scratch directory is created under ``scratch_root`` (a shared filesystem)
    or else under the Dask worker's local directory, removed when the result is ok
    or rejected and kept on failure (its path is in ``extra["job"]["workdir"]``).
    A simulator that raises, against the backend contract, yields a failed record
    carrying the traceback.

    Args:
        simulator: A backend object with ``simulate(point, *, seed, workdir)``.
        point: Parameter values by canonical name (GeV).
        seed: The point's seed.
        point_id: The point's id in the store (names the scratch directory).
        scratch_root: Directory for scratch directories, or ``None``.

    Returns:
        The result, with ``extra["job"]`` holding ``start``, ``stop`` (Unix seconds),
        ``worker`` and ``workdir``.
    """
    _announce_start()
    base = scratch_root or _worker_local_directory()
    Path(base).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"point-{point_id}-", dir=base))
    start = time.time()
    try:
        result = simulator.simulate(dict(point), seed=seed, workdir=workdir)
    except Exception as exc:
        result = SimulationResult.failed(
            f"simulator raised {type(exc).__name__}: {exc}",
            extra={"traceback": traceback.format_exc()[-4000:]},
        )
    result.extra["job"] = {
        "start": start,
        "stop": time.time(),
        "worker": _worker_address(),
        "workdir": str(workdir),
    }
    if result.status != "failed":
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _worker_local_directory() -> str:
    from distributed import get_worker

    try:
        return str(Path(get_worker().local_directory) / "scynet-scratch")
    except ValueError:
        return tempfile.gettempdir()


def _announce_start() -> None:
    """Tell the daemon (through a Dask event) that this job started, and where."""
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:
        return
    worker.log_event(
        JOB_START_TOPIC,
        {"key": str(worker.get_current_task()), "worker": str(worker.address)},
    )


def _worker_address() -> str:
    from distributed import get_worker

    try:
        return str(get_worker().address)
    except ValueError:
        return "local"


@dataclass
class _Job:
    """A point on its way through Dask."""

    point_id: int
    seed: int
    x: np.ndarray
    origin: str = ""
    attempts: int = 0
    losses: int = 0


@dataclass
class FitOutcome:
    """What a background refit hands back to the dispatch loop."""

    round: int
    surrogates: dict[int, Any]
    row: dict[str, Any]
    checkpoints: dict[int, Path]
    converged: bool


@dataclass
class CampaignSummary:
    """How a campaign run ended.

    Attributes:
        stop_reason: ``converged``, ``max_points``, ``wall_time``, ``interrupted``
            or ``all_failed`` (the first :data:`ALL_FAILED_STOP` results of the run
            failed; :meth:`Campaign.run` then raises).
        converged: Whether the stop rule held at the last refit.
        round: The last refit's round.
        counts: Points by status at the end.
        regions: Latest per-energy region errors, ``{"13": {region: {...}}}``.
        wall_time_s: Seconds this run took.
    """

    stop_reason: str
    converged: bool
    round: int
    counts: dict[str, int]
    regions: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {
            "stop_reason": self.stop_reason,
            "converged": self.converged,
            "round": self.round,
            "counts": dict(self.counts),
            "regions": self.regions,
            "wall_time_s": self.wall_time_s,
        }


class _BackgroundFit:
    """One refit running in a daemon thread; ``done`` once ``outcome`` or ``error`` is set."""

    def __init__(self, work: Callable[[], FitOutcome]) -> None:
        self.outcome: FitOutcome | None = None
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(work,), name="scynet-refit", daemon=True
        )
        self._thread.start()

    def _run(self, work: Callable[[], FitOutcome]) -> None:
        try:
            self.outcome = work()
        except BaseException as exc:
            self.error = exc
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


class Campaign:
    """The active-learning loop of one campaign store on one Dask client.

    Args:
        config: The validated :class:`scynet_al.config.Config`.
        store: The campaign store, open for writing.
        client: A connected :class:`distributed.Client`.
        simulator: A backend object; default ``make_simulator`` from the config.
        proposer: An object with ``propose(n, surrogate, history, rng)``; default
            :class:`sampler.proposers.Proposer` from the config.
        surrogates: Fits, saves and loads surrogates (see :class:`EnsembleSurrogates`
            for the three verbs; ``load`` raises ``ModelError`` for a file it cannot
            read; a surrogate with ``calibrate(U, chi2)`` has its sigma rescaled on
            the validation points after every fit); default :class:`EnsembleSurrogates` from the config's surrogate
            section.
        checkpoint_dir: Where checkpoints go; default ``<store>.checkpoints`` beside
            the store.
        on_result: Called as ``on_result(point_id, result)`` for every result read
            from Dask (before retry decisions); for benchmarks and tests.
        progress: Show a rich progress bar on stderr.
    """

    def __init__(
        self,
        config: Any,
        store: Any,
        client: Any,
        *,
        simulator: Any = None,
        proposer: Any = None,
        surrogates: Any = None,
        checkpoint_dir: str | Path | None = None,
        on_result: Callable[[int, SimulationResult], None] | None = None,
        progress: bool = False,
    ) -> None:
        self.config = config
        self.store = store
        self.client = client
        self.simulator = simulator
        self.proposer = proposer
        self.surrogates = surrogates
        self.checkpoint_dir = checkpoint_dir
        self.on_result = on_result
        self.progress = progress
        self._stop_request: str | None = None
        self._stop_signal: str | None = None
        self._in_store_write = False
        self._hard_exit_pending = False

    # -- public control -------------------------------------------------------------

    def request_stop(
        self, reason: str = "interrupted", signal_name: str | None = None
    ) -> None:
        """Ask the loop to stop dispatching and wind down (thread- and signal-safe).

        Only flags are set here; the loop logs the request (naming ``signal_name``)
        when it next looks, since a signal may arrive in the middle of a log write.
        """
        if self._stop_request is None:
            self._stop_signal = signal_name
            self._stop_request = reason

    def hard_exit(self) -> None:
        """Exit the process now, but never in the middle of a store write."""
        if self._in_store_write:
            self._hard_exit_pending = True
            return
        # Called from a signal handler, the main thread may be stopped inside a
        # write to the terminal (paused with Ctrl-S, a slow link) and hold that
        # stream's locks: logging from here would raise or wait for ever. The
        # last words go out from another thread, given a second; the exit does
        # not wait longer.
        words = threading.Thread(target=self._last_words, daemon=True)
        words.start()
        words.join(timeout=HARD_EXIT_WORDS_S)
        os._exit(HARD_EXIT_CODE)

    def _last_words(self) -> None:
        bar = getattr(self, "_bar", None)
        if bar is not None:
            # The progress bar holds stderr while it draws and would swallow the
            # last line, which os._exit gives it no chance to show.
            with contextlib.suppress(Exception):
                bar.stop()
        logger.warning(
            "second interrupt: exiting at once; unfinished points stay pending,"
            " and resume continues with them"
        )
        logging.shutdown()

    # -- the loop -------------------------------------------------------------------

    def run(self) -> CampaignSummary:
        """Run until the stop rule holds, the budget is spent or a stop is requested.

        The store is first written once the start has succeeded: a config other
        than the one the store last ran with is then recorded for later resumes,
        followed by a ``start`` metrics row.

        Returns:
            How the run ended; the same summary is stored as a metrics row with
            ``"final": true``.

        Raises:
            CampaignError: The campaign cannot start (e.g. a store from another
                parameter space), a refit failed, or the first
                :data:`ALL_FAILED_STOP` results of the run all failed (the summary
                is stored first; the points stay as recorded or pending).
        """
        from distributed import as_completed

        self._prepare()
        self._jobs_ac = as_completed(with_results=True, raise_errors=False)
        self.client.subscribe_topic(JOB_START_TOPIC, self._on_job_start)
        try:
            with self._progress_bar():
                reason = self._loop()
                reason = self._wind_down(reason)
        finally:
            self.client.unsubscribe_topic(JOB_START_TOPIC)
        summary = self._finish(reason)
        if reason == "all_failed":
            raise CampaignError(self._all_failed_message())
        return summary

    def _all_failed_message(self) -> str:
        (why, n), *_ = self.failures_this_run_.most_common(1)
        return (
            f"the first {self.results_this_run_} results of this run all failed"
            f" ({n} of them: {why}); the campaign stopped rather than spend its point"
            f" budget on failures: check the simulator and its settings, then"
            f" continue with scynet-al resume {self.store.path}"
        )

    def _on_job_start(self, event: tuple[float, Mapping[str, Any]]) -> None:
        """Dask event handler (client thread): a job began running on a worker.

        A job the scheduler runs again, because its worker died, starts anew: its
        start time is the latest, its worker stays the first it ran on.
        """
        key = event[1]["key"]
        self.job_starts_[key] = time.monotonic()
        self.job_workers_.setdefault(key, event[1].get("worker"))

    def _prepare(self) -> None:
        cfg = self.config
        self.energies_ = [int(e) for e in cfg.campaign.energies_tev]
        self.space_ = self.store.space
        self.simulator_ = self.simulator or _make_simulator(cfg)
        _warn_if_jobs_may_time_out(cfg, self.simulator_)
        self.regions_ = {
            e: _regions_for(cfg, e, self.simulator_) for e in self.energies_
        }
        self.proposer_ = self.proposer or _make_proposer(
            cfg, self.space_, self.regions_
        )
        self.surrogates_ = self.surrogates or EnsembleSurrogates(cfg.surrogate)
        self.checkpoint_dir_ = Path(
            self.checkpoint_dir or checkpoint_directory(self.store.path)
        )
        _remove_partial_checkpoints(self.checkpoint_dir_)
        self.scratch_root_ = (
            str(Path(f"{self.store.path}.scratch").resolve())
            if cfg.dask.shared_filesystem
            else None
        )
        self.started_ = time.monotonic()
        self.metrics_rows_ = [
            r for r in self.store.metrics() if r.get("kind", "refit") == "refit"
        ]
        self.round_ = max(
            int(self.store.current_round),
            max((int(r.get("round", 0)) for r in self.metrics_rows_), default=0),
        )
        self.surrogate_, latest_loaded = self._load_checkpoint()
        self.converged_ = bool(
            self.metrics_rows_ and self.metrics_rows_[-1].get("converged")
        )
        self.running_: dict[str, _Job] = {}
        self.futures_: dict[str, Any] = {}
        self.job_starts_: dict[str, float] = {}
        self.job_workers_: dict[str, str | None] = {}
        self.next_watchdog_ = 0.0
        self.next_worker_check_ = 0.0
        self.queue_: deque[_Job] = deque()
        self.fit_: _BackgroundFit | None = None
        self.new_results_ = self._results_since_last_refit()
        self.results_this_run_ = 0
        self.failures_this_run_: Counter[str] = Counter()
        self.postponed_at_: int | None = None
        self.n_points_ = sum(self.store.counts().values())
        self._queue_pending()
        self._warn_if_budget_spent()
        self._record_config()
        self._append_start_row()
        if not latest_loaded and self._start_fit():
            logger.info("refitting at once, to replace the latest checkpoint")

    def _results_since_last_refit(self) -> int:
        """Results the store holds that the latest refit has not seen.

        They count toward the next refit as if this run had recorded them, so a
        resume folds in what a stopped run left out: the results after its last
        refit, or all of them when that refit failed (a checkpoint that could not
        be written on a full disk). Without any refit every result counts; a refit
        row that does not hold its counts is taken to have seen them all.
        """
        finished = sum(n for k, n in self.store.counts().items() if k != "pending")
        if not self.metrics_rows_:
            return finished
        seen = self.metrics_rows_[-1].get("counts")
        if not seen:
            return 0
        return max(0, finished - sum(n for k, n in seen.items() if k != "pending"))

    def _warn_if_budget_spent(self) -> None:
        """Warn when a continued store already holds the whole point budget, or more."""
        max_points = int(self.config.campaign.budget.max_points)
        # A resume that still simulates the pending points of an exactly spent
        # budget is recovering from a stop, not starting on nothing.
        exhausted = self.n_points_ == max_points > 0 and not self.queue_
        if self.n_points_ > max_points or exhausted:
            logger.warning(
                "the point budget is already spent: %s holds %d points and "
                "campaign.budget.max_points is %d, so no new point is proposed; "
                "raise max_points to continue the campaign",
                self.store.path,
                self.n_points_,
                max_points,
            )

    def _record_config(self) -> None:
        """Record the config in the store when it is not the one the store ran with.

        Called once the start has succeeded (checks passed, checkpoint loaded or
        fallen back on, cluster connected), so a start that fails leaves the store
        as it was; later resumes run with the config recorded here.
        """
        text = self.config.text
        if not text or self.store.config_text.strip() == text.strip():
            return
        with self._store_write():
            self.store.record_config(text)
        logger.warning(
            "%s ran with another config; continuing with %s, which is recorded in "
            "the store for later resumes",
            self.store.path,
            self.config.source,
        )

    def _append_start_row(self) -> None:
        """Record the run's start and the chi2 regions in use (for status and plots)."""
        row = {
            "kind": "start",
            "time": time.time(),
            "round": self.round_,
            "region_edges": {str(e): list(r.edges) for e, r in self.regions_.items()},
            "pending": len(self.queue_),
        }
        with self._store_write():
            self.store.append_metrics(row)
        logger.info(
            "campaign started at round %d with %d pending points; regions %s",
            self.round_,
            len(self.queue_),
            {e: r.edges for e, r in self.regions_.items()},
        )

    def _load_checkpoint(self) -> tuple[Any, bool]:
        """The first energy's surrogate from the newest checkpoint that loads, if any.

        Every label is in the store, so a latest checkpoint that is missing (the
        store was moved or copied without its checkpoint directory) or damaged (cut
        short by a full disk, overwritten) loses nothing: the newest older
        checkpoint that loads stands in until the next refit, which comes at once
        (see :meth:`_prepare`), and without one proposals fall back to the prior
        until then. A damaged file is left as it is; the refit writes a new round
        beside it, and retention removes it later like any other.

        Returns:
            The surrogate or None, and whether the store's latest checkpoint (if
            it names any) was the one loaded.
        """
        candidates = self.store.checkpoints()
        for k, (path, round_) in enumerate(candidates):
            surrogate = self._read_checkpoint(path, latest=k == 0)
            if surrogate is None:
                continue
            if k == 0:
                logger.info("loaded checkpoint %s (round %d)", path, round_)
            else:
                logger.warning(
                    "falling back on the older checkpoint %s (round %d) until the "
                    "next refit",
                    path,
                    round_,
                )
            return surrogate, k == 0
        if candidates:
            logger.warning(
                "no checkpoint of this campaign loads; continuing without a "
                "surrogate until the next refit"
            )
        return None, not candidates

    def _read_checkpoint(self, path: Path, *, latest: bool) -> Any:
        """The surrogate in ``path``, or None (and why) when it is missing or damaged."""
        if not path.exists():
            if latest:
                reason = missing_checkpoints(self.store.path, path)
                logger.warning("%s", reason or f"latest checkpoint {path} is missing")
            else:  # usually removed by campaign.keep_checkpoints
                logger.debug("older checkpoint %s is gone", path)
            return None
        try:
            return self.surrogates_.load(path)
        except ModelError as exc:
            logger.warning(
                "%s checkpoint unusable, left in place: %s",
                "latest" if latest else "older",
                exc,
            )
            return None

    def _queue_pending(self) -> None:
        ids, X, seeds = self.store.pending()
        for pid, x, seed in zip(ids, X, seeds, strict=True):
            self.queue_.append(_Job(int(pid), int(seed), np.asarray(x, dtype=float)))
        if len(ids):
            logger.info("re-dispatching %d pending points", len(ids))

    def _loop(self) -> str:
        while True:
            self._fold_finished_fit()
            reason = self._stop_reason()
            if reason is not None:
                return reason
            self._dispatch()
            handled = self._read_results()
            self._expire_overdue_jobs()
            self._maybe_start_fit()
            if self._out_of_work():
                return self._final_refit()
            if not handled:
                time.sleep(POLL_INTERVAL_S)

    def _stop_reason(self) -> str | None:
        if self._stop_request is not None:
            if self._stop_signal is not None:
                logger.warning(
                    "%s received: no new jobs; waiting for running ones (again to"
                    " exit now)",
                    self._stop_signal,
                )
                self._stop_signal = None
            return self._stop_request
        if self.converged_:
            return "converged"
        failed = sum(self.failures_this_run_.values())
        if failed >= ALL_FAILED_STOP and failed == self.results_this_run_:
            return "all_failed"
        max_hours = self.config.campaign.budget.max_wall_time_hours
        if (
            max_hours is not None
            and time.monotonic() - self.started_ > max_hours * 3600
        ):
            return "wall_time"
        return None

    def _out_of_work(self) -> bool:
        """True when the point budget is spent and nothing is left to simulate."""
        return not self.running_ and not self.queue_ and self._budget_left() == 0

    def _budget_left(self) -> int:
        return max(0, int(self.config.campaign.budget.max_points) - self.n_points_)

    # -- dispatch -------------------------------------------------------------------

    def _dispatch(self) -> None:
        in_flight = int(self.config.campaign.in_flight)
        if len(self.queue_) < in_flight:
            self._propose()
        while self.queue_ and len(self.running_) < in_flight:
            self._submit(self.queue_.popleft())

    def _propose(self) -> None:
        n = min(int(self.config.campaign.points_per_round), self._budget_left())
        if n <= 0:
            return
        rng = _proposal_rng(self.config, self.round_, self.n_points_)
        proposal = self.proposer_.propose(n, self.surrogate_, self._history(), rng)
        X = np.asarray(proposal.X, dtype=float)
        origins = list(proposal.origins)
        with self._store_write():
            ids, seeds = self.store.add_pending(X, origin=origins, round=self.round_)
        for pid, seed, x, origin in zip(ids, seeds, X, origins, strict=True):
            self.queue_.append(_Job(int(pid), int(seed), x, origin))
        self.n_points_ += len(X)
        logger.info(
            "round %d: proposed %d points (%s)",
            self.round_,
            len(X),
            ", ".join(f"{o} {k}" for o, k in Counter(origins).items()),
        )

    def _history(self) -> dict[str, Any]:
        X, chi2 = self.store.dataset(self.energies_[0])
        history: dict[str, Any] = {"X": X, "chi2": chi2}
        if self.metrics_rows_:
            regions = self.metrics_rows_[-1]["energies"][str(self.energies_[0])]
            if regions.get("ensemble"):
                history["region_errors"] = {
                    name: r["mean_abs_error"]
                    for name, r in regions["ensemble"]["regions"].items()
                    if r["count"] > 0
                }
        return history

    def _submit(self, job: _Job) -> None:
        point = dict(zip(self.space_.names, map(float, job.x), strict=True))
        key = f"simulate-{job.point_id}-{uuid.uuid4().hex[:12]}"
        future = self.client.submit(
            simulate_point,
            self.simulator_,
            point,
            seed=job.seed,
            point_id=job.point_id,
            scratch_root=self.scratch_root_,
            key=key,
            pure=False,
            retries=0,
        )
        self.running_[future.key] = job
        self.futures_[future.key] = future
        self._jobs_ac.add(future)

    # -- results --------------------------------------------------------------------

    def _read_results(self, *, retry: bool = True) -> int:
        batch = self._jobs_ac.next_batch(block=False)
        for future, value in batch:
            job, _ = self._forget(future.key)
            if job is None:
                continue
            if future.status == "finished":
                self._handle_result(job, value, retry=retry)
            else:
                self._handle_lost(job, value, retry=retry)
        return len(batch)

    def _expire_overdue_jobs(self) -> None:
        """Fail jobs running longer than ``job_timeout_s`` (then retried as usual).

        A Python thread cannot be stopped: the worker thread stays busy until the
        simulator returns, so backends should enforce their own timeouts too.
        """
        now = time.monotonic()
        if now < self.next_watchdog_:
            return
        self.next_watchdog_ = now + WATCHDOG_INTERVAL_S
        limit = float(self.config.campaign.job_timeout_s)
        for key, started in list(self.job_starts_.items()):
            if key not in self.running_:
                # A start event that arrived after the job's result.
                self._forget(key)
            elif now - started > limit:
                self._expire(key, limit)

    def _expire(self, key: str, limit: float) -> None:
        job, future = self._forget(key)
        self.client.cancel(future)
        logger.warning(
            "job of point %d ran past job_timeout_s (%g s); cancelled, its worker "
            "thread stays busy until the simulator returns",
            job.point_id,
            limit,
        )
        reason = f"timed out after {limit:g} s (campaign.job_timeout_s)"
        self._handle_result(job, SimulationResult.failed(reason), retry=True)

    def _forget(self, key: str) -> tuple[_Job | None, Any]:
        """Stop tracking a job's future; its job and future, ``None`` if unknown."""
        self.job_starts_.pop(key, None)
        self.job_workers_.pop(key, None)
        return self.running_.pop(key, None), self.futures_.pop(key, None)

    def _handle_result(
        self, job: _Job, result: SimulationResult, *, retry: bool
    ) -> None:
        if self.on_result is not None:
            self.on_result(job.point_id, result)
        job.attempts += 1
        if (
            result.status == "failed"
            and result.extra.get("retryable", True) is not False
            and job.attempts <= self.config.campaign.max_retries
        ):
            logger.info(
                "point %d failed (attempt %d): %s; retrying",
                job.point_id,
                job.attempts,
                result.reason,
            )
            if retry:
                self._submit(job)
            return
        self._record(job, result)

    def _handle_lost(self, job: _Job, error: Any, *, retry: bool) -> None:
        job.losses += 1
        if job.losses > MAX_LOSSES:
            outcome = "giving up"
        else:
            outcome = "re-dispatching" if retry else "its point stays pending"
        logger.warning(
            "job of point %d lost (%s: %s); %s",
            job.point_id,
            type(error).__name__,
            error,
            outcome,
        )
        if job.losses <= MAX_LOSSES:
            if retry:
                self._submit(job)
            return
        reason = (
            f"job lost {job.losses} times; last error {type(error).__name__}: {error}"
        )
        self._record(job, SimulationResult.failed(reason))

    def _record(self, job: _Job, result: SimulationResult) -> None:
        with self._store_write():
            self.store.record(job.point_id, result, attempts=max(job.attempts, 1))
        self.new_results_ += 1
        self.results_this_run_ += 1
        if result.status == "failed":
            self.failures_this_run_[result.reason] += 1
        if self._bar is not None:
            self._bar.advance(self._bar_task)

    # -- refits ---------------------------------------------------------------------

    def _maybe_start_fit(self) -> None:
        if (
            self.fit_ is not None
            or self.new_results_ < self.config.campaign.refit_every
            or self.postponed_at_ == self.results_this_run_
        ):
            return
        self._start_fit()

    def _start_fit(self) -> bool:
        data = self._training_snapshot()
        if data is None:
            return False
        self.new_results_ = 0
        round_ = self.round_ + 1
        self.fit_ = _BackgroundFit(lambda: self._fit(round_, data))
        logger.debug("refit of round %d started", round_)
        return True

    def _training_snapshot(self) -> dict[int, dict[str, np.ndarray]] | None:
        data = {}
        for energy in self.energies_:
            X, y = self.store.training_set(energy)
            Xv, yv = self.store.validation_set(energy)
            data[energy] = {
                "U": self.space_.to_unit(X) if len(X) else X,
                "y": np.asarray(y, dtype=float),
                "Uv": self.space_.to_unit(Xv) if len(Xv) else Xv,
                "yv": np.asarray(yv, dtype=float),
            }
        n_train = len(data[self.energies_[0]]["y"])
        if n_train < MIN_TRAINING_POINTS:
            if self.postponed_at_ is None:
                logger.info(
                    "refit postponed until %d ok training points (now %d)",
                    MIN_TRAINING_POINTS,
                    n_train,
                )
            self.postponed_at_ = self.results_this_run_
            return None
        data["counts"] = self.store.counts()
        return data

    def _fit(self, round_: int, data: dict) -> FitOutcome:
        """Fit, evaluate and checkpoint; runs in the background thread (no store access)."""
        from scynet_al import metrics

        start = time.monotonic()
        surrogates, energies_row = {}, {}
        for energy in self.energies_:
            d = data[energy]
            surrogates[energy] = self.surrogates_.fit(energy, round_, d["U"], d["y"])
            energies_row[str(energy)] = _evaluate(
                metrics, surrogates[energy], d, self.regions_[energy]
            )
        converged = _stop_rule_holds(
            energies_row,
            float(self.config.campaign.target_mean_abs_error),
            int(self.config.campaign.min_validation_count),
        )
        row = {
            "kind": "refit",
            "region_edges": {
                str(e): list(self.regions_[e].edges) for e in self.energies_
            },
            "round": round_,
            "time": time.time(),
            "n_train": len(data[self.energies_[0]]["y"]),
            "n_validation": len(data[self.energies_[0]]["yv"]),
            "counts": data["counts"],
            "energies": energies_row,
            "converged": converged,
            "fit_seconds": time.monotonic() - start,
        }
        checkpoints = self._save_checkpoints(round_, surrogates, energies_row)
        row["checkpoints"] = {str(e): str(p) for e, p in checkpoints.items()}
        return FitOutcome(round_, surrogates, row, checkpoints, converged)

    def _save_checkpoints(
        self, round_: int, surrogates: dict[int, Any], energies_row: dict
    ) -> dict[int, Path]:
        from scynet_al.checkpoint import campaign_name

        self.checkpoint_dir_.mkdir(parents=True, exist_ok=True)
        paths = {}
        for energy, surrogate in surrogates.items():
            path = self.checkpoint_dir_ / campaign_name(round_, energy)
            self.surrogates_.save(
                path,
                surrogate,
                space=self.space_,
                energy_tev=energy,
                metrics=energies_row[str(energy)],
                config_hash=self.config.hash,
            )
            paths[energy] = path
        return paths

    def _fold_finished_fit(self, *, wait: bool = False) -> None:
        if self.fit_ is None or not (self.fit_.done or (wait and self.fit_.wait())):
            return
        fit, self.fit_ = self.fit_, None
        if fit.error is not None:
            reason = _describe_error(fit.error)
            raise CampaignError(f"refit failed: {reason}") from fit.error
        outcome = fit.outcome
        with self._store_write():
            self.store.append_metrics(outcome.row)
            self.store.add_checkpoint(
                outcome.checkpoints[self.energies_[0]], outcome.round
            )
        self.metrics_rows_.append(outcome.row)
        self.round_ = outcome.round
        self.surrogate_ = outcome.surrogates[self.energies_[0]]
        self.converged_ = outcome.converged
        logger.info("%s", _refit_line(outcome.row))
        self._prune_checkpoints()

    def _prune_checkpoints(self) -> None:
        """Remove checkpoints of refits beyond ``campaign.keep_checkpoints``.

        Called once the newest checkpoint is written and referenced in the store.
        """
        keep = self.config.campaign.keep_checkpoints
        if keep is None:
            return
        from scynet_al import checkpoint

        rounds = _rounds_to_keep(
            self.metrics_rows_, self.energies_, keep, self._latest_checkpoint_round()
        )
        removed = checkpoint.prune(self.checkpoint_dir_, rounds)

        if removed:
            logger.info(
                "removed checkpoints of rounds %s (%d files; campaign.keep_checkpoints "
                "%d, and the latest and the best refit are kept too)",
                sorted({checkpoint.parse_campaign_name(p.name)[0] for p in removed}),
                len(removed),
                keep,
            )

    def _latest_checkpoint_round(self) -> int | None:
        """Round of the checkpoint the store names as latest, or None."""
        from scynet_al import checkpoint

        latest = self.store.latest_checkpoint()
        named = None if latest is None else checkpoint.parse_campaign_name(latest.name)
        return None if named is None else named[0]

    def _final_refit(self) -> str:
        """Budget spent: fold in the last results with one more fit, then stop."""
        self._fold_finished_fit(wait=True)
        if self.new_results_ > 0 and self._start_fit():
            self._fold_finished_fit(wait=True)
        return "converged" if self.converged_ else "max_points"

    # -- ending ---------------------------------------------------------------------

    def _wind_down(self, reason: str) -> str:
        """Stop dispatching, give running jobs the grace period, cancel the rest."""
        # Jobs on a simulator that fails every point are not worth waiting for.
        grace = 0.0 if reason == "all_failed" else self.config.campaign.grace_period_s
        deadline = time.monotonic() + float(grace)
        if reason in ("interrupted", "all_failed"):
            self._cancel_jobs_not_started()
        if self.running_:
            logger.info(
                "stopping (%s): waiting up to %.0f s for %d running jobs",
                reason,
                grace,
                len(self.running_),
            )
        while self.running_ and time.monotonic() < deadline:
            if not self._read_results(retry=False):
                self._abandon_jobs_without_worker()
                time.sleep(POLL_INTERVAL_S)
        if self.running_:
            logger.info(
                "cancelling %d jobs; their points stay pending", len(self.running_)
            )
            self.client.cancel(list(self.futures_.values()))
            self.running_.clear()
            self.futures_.clear()
        if reason != "interrupted" and self.fit_ is not None:
            self._fold_finished_fit(wait=True)
        return reason

    def _cancel_jobs_not_started(self) -> None:
        """On an interrupt, cancel the queued jobs no worker has begun; they stay pending.

        ``in_flight`` keeps more jobs queued than workers run, and waiting for those
        would make a stop asked for by hand take several simulations longer. A job
        that starts in the moment before its cancellation reaches the scheduler is
        cancelled all the same and simply runs again on ``resume``.
        """
        queued = [key for key in self.running_ if key not in self.job_starts_]
        if not queued:
            return
        jobs, futures = zip(*(self._forget(key) for key in queued), strict=True)
        self.client.cancel(list(futures))
        logger.info(
            "cancelled %d queued jobs no worker had started; their points stay pending",
            len(jobs),
        )

    def _abandon_jobs_without_worker(self) -> None:
        """While stopping, cancel the jobs that can no longer finish; they stay pending.

        A job cannot finish when no worker is left (all died, e.g. of the terminal's
        Ctrl-C on a cluster the daemon did not start), or when the worker it started
        on has gone: the scheduler would only run it again from the start elsewhere.
        A job the scheduler has not started yet is waited for while workers remain.
        """
        now = time.monotonic()
        if now < self.next_worker_check_:
            return
        self.next_worker_check_ = now + WORKER_CHECK_INTERVAL_S
        alive = self._live_workers()
        lost = [
            key
            for key, worker in ((k, self.job_workers_.get(k)) for k in self.running_)
            if not alive or (worker is not None and worker not in alive)
        ]
        if not lost:
            return
        jobs, futures = zip(*(self._forget(key) for key in lost), strict=True)
        self.client.cancel(list(futures))
        logger.warning(
            "not waiting for %d jobs that cannot finish (%s); their points stay pending",
            len(jobs),
            "no worker is left" if not alive else "the workers they ran on are gone",
        )
        logger.debug("pending again: points %s", sorted(j.point_id for j in jobs))

    def _live_workers(self) -> set[str]:
        """Addresses of the workers the scheduler knows now; none if it is unreachable."""
        try:
            return set(self.client.nthreads())
        except OSError as exc:
            logger.warning("cannot ask the scheduler for its workers: %s", exc)
            return set()

    def _finish(self, reason: str) -> CampaignSummary:
        latest = self.metrics_rows_[-1] if self.metrics_rows_ else {}
        summary = CampaignSummary(
            stop_reason=reason,
            converged=self.converged_,
            round=self.round_,
            counts=self.store.counts(),
            regions={
                e: r["ensemble"]["regions"]
                for e, r in latest.get("energies", {}).items()
                if r.get("ensemble")
            },
            wall_time_s=time.monotonic() - self.started_,
        )
        row = {
            "kind": "summary",
            "final": True,
            "time": time.time(),
            **summary.to_json(),
        }
        with self._store_write():
            self.store.append_metrics(row)
        logger.info(
            "campaign stopped (%s) after round %d; counts %s",
            reason,
            self.round_,
            summary.counts,
        )
        return summary

    # -- helpers --------------------------------------------------------------------

    def _store_write(self) -> _StoreWrite:
        return _StoreWrite(self)

    def _progress_bar(self) -> _ProgressBar:
        return _ProgressBar(self)


class _StoreWrite:
    """Marks a store write so that a hard exit waits for it to finish."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign

    def __enter__(self) -> None:
        self.campaign._in_store_write = True

    def __exit__(self, *exc_info: object) -> None:
        self.campaign._in_store_write = False
        if self.campaign._hard_exit_pending:
            self.campaign.hard_exit()


class _ProgressBar:
    """A rich progress bar over the point budget, shown only when asked for."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self.progress = None

    def __enter__(self) -> None:
        c = self.campaign
        c._bar, c._bar_task = None, None
        if not c.progress:
            return
        from rich.console import Console
        from rich.progress import Progress

        self.progress = Progress(console=Console(stderr=True), transient=False)
        self.progress.start()
        done = sum(v for k, v in c.store.counts().items() if k != "pending")
        c._bar_task = self.progress.add_task(
            "simulations",
            total=int(c.config.campaign.budget.max_points),
            completed=done,
        )
        c._bar = self.progress

    def __exit__(self, *exc_info: object) -> None:
        if self.progress is None:
            return
        try:
            self.progress.stop()
        except OSError as exc:  # the terminal closed (SIGHUP): nowhere to draw
            logger.debug("progress bar not closed: %s", exc)


def install_signal_handlers(campaign: Campaign) -> None:
    """SIGINT/SIGTERM/SIGHUP: the first stops dispatching gracefully, the second exits.

    SIGHUP comes when the terminal closes or an SSH session drops; it stops the
    campaign like Ctrl-C, and its unfinished points stay pending for ``resume``. A
    SIGHUP already ignored (under ``nohup``) stays ignored. Must be called from the
    main thread.
    """

    first_signal_at: list[float] = []

    def handler(signum: int, frame: object) -> None:
        now = time.monotonic()
        # Nothing here logs or writes: the signal may have interrupted the main
        # thread inside a write to the terminal, whose locks it still holds.
        if campaign._stop_request is None:
            first_signal_at.append(now)
            campaign.request_stop("interrupted", signal.Signals(signum).name)
        elif first_signal_at and now - first_signal_at[0] < SAME_SIGNAL_WINDOW_S:
            # GNU timeout, batch systems and terminals may signal the process and
            # its group at once (a closed terminal: the kernel hangs up the session
            # leader, the shell its jobs): that is one request to stop, not two.
            pass
        else:
            campaign.hard_exit()

    for signum in STOP_SIGNALS:
        # nohup starts a process with SIGHUP ignored so that it outlives its
        # terminal; that choice stands.
        if signum == signal.SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
            continue
        signal.signal(signum, handler)


# -- construction from the config ----------------------------------------------------


def preflight(config: Any, simulator: Any) -> None:
    """Check what a campaign needs before its store is created.

    The simulator labels every campaign energy, the chi2 regions can be built
    (centring on the catalogue included), the surrogate kind is supported and the
    proposer can fill a new campaign's first round.

    Raises:
        CampaignError: A campaign energy is not labelled by the simulator, or the
            surrogate kind is not supported.
        ConfigError: The regions cannot be built, or the proposer settings cannot
            fill the first round (a ``proposer.min_distance`` too large).
    """
    labelled = {int(e) for e in simulator.describe()["energies"]}
    missing = [int(e) for e in config.campaign.energies_tev if int(e) not in labelled]
    if missing:
        hint = (
            "set simulator.settings.energies_tev"
            if hasattr(simulator, "energies_tev")
            else "see simulator.settings"
        )
        raise CampaignError(
            f"{config.source}: campaign.energies_tev asks for {missing} TeV, but"
            f" simulator backend {config.simulator.backend!r} labels only"
            f" {sorted(labelled)} TeV ({hint})"
        )
    regions = {
        int(e): _regions_for(config, int(e), simulator)
        for e in config.campaign.energies_tev
    }
    EnsembleSurrogates(config.surrogate)
    _check_first_round(config, regions)


def _check_first_round(config: Any, regions: Mapping[int, Any]) -> None:
    """Propose a new campaign's first round once, and discard it.

    With no surrogate and no history yet, every strategy hands its share to the
    prior, so the first round is prior draws kept ``proposer.min_distance`` apart.
    Drawn here with the campaign's random generator and the prior alone (which
    spares the log the strategies' reasons), these are the very points a new store
    starts with, made in milliseconds: a distance the batch cannot keep fails here
    rather than after the store exists.
    """
    from sampler.errors import SamplerError

    budget = int(config.campaign.budget.max_points)
    n = min(int(config.campaign.points_per_round), budget)
    proposer = _make_proposer(
        config, config.build_space(), regions, fractions={"prior": 1.0}
    )
    try:
        proposer.propose(n, None, None, _proposal_rng(config, 0, 0))
    except SamplerError as exc:
        raise ConfigError(
            f"{config.source}: proposer: cannot propose the first round of {n} "
            f"points: {exc}"
        ) from exc


def _proposal_rng(config: Any, round_: int, n_points: int) -> np.random.Generator:
    """The random generator of the proposal made in ``round_`` after ``n_points``."""
    return np.random.default_rng([int(config.campaign.seed), round_, n_points])


def _warn_if_jobs_may_time_out(config: Any, simulator: Any) -> None:
    """Warn when a simulation may legitimately run longer than the job timeout,
    which would cancel it and count it as failed."""
    longest = getattr(simulator, "max_seconds_per_point", None)
    limit = float(config.campaign.job_timeout_s)
    if isinstance(longest, (int, float)) and longest > limit:
        logger.warning(
            "campaign.job_timeout_s is %g s but one %s simulation may take up to "
            "%g s (its own time limits); such points would be cancelled as failed: "
            "raise job_timeout_s or lower the simulator's limits",
            limit,
            getattr(simulator, "name", "simulator"),
            longest,
        )


def _describe_error(exc: BaseException) -> str:
    """A failure in words: the message of one of ours or of the file system (it
    names the file), the type and message of anything else."""
    if isinstance(exc, ScynetError | OSError):
        return str(exc)
    return repr(exc)


def _make_simulator(config: Any) -> Any:
    from simulators.backends import make_simulator

    return make_simulator(
        config.simulator.backend, config.simulator.settings, model=config.space.model
    )


def _regions_for(config: Any, energy: int, simulator: Any) -> Any:
    zero_chi2 = None
    if config.regions.centre_on_catalogue:
        zero_chi2 = _zero_signal_chi2(simulator, energy)
    return config.regions.build(energy, zero_chi2=zero_chi2)


def _zero_signal_chi2(simulator: Any, energy: int) -> float:
    """The zero-signal chi2 of the simulator's signal-region catalogue at one energy.

    Asks the backend (``zero_signal_chi2(energy)``) when it offers that; otherwise
    loads the catalogue it names (attribute ``catalogue``, None for the shipped
    one) restricted to the analyses it labels (``describe()``).
    """
    if hasattr(simulator, "zero_signal_chi2"):
        return float(simulator.zero_signal_chi2(energy))
    from simulators.catalogue import load_catalogue

    analyses = simulator.describe()["analyses"].get(energy)
    if not analyses:
        raise CampaignError(
            f"regions.centre_on_catalogue: simulator backend "
            f"{getattr(simulator, 'name', simulator)!r} runs no analysis at {energy} TeV"
        )
    catalogue = load_catalogue(
        getattr(simulator, "catalogue", None), energy_tev=energy, analyses=analyses
    )
    return float(catalogue.zero_signal_chi2(energy))


def _make_proposer(
    config: Any,
    space: Any,
    regions: Mapping[int, Any],
    fractions: Mapping[str, float] | None = None,
) -> Any:
    from sampler.priors import make_prior
    from sampler.proposers import Proposer

    p = config.proposer
    return Proposer(
        space,
        make_prior(config.prior, space),
        regions[int(config.campaign.energies_tev[0])],
        fractions=dict(fractions or p.fractions.as_dict()),
        validation_share=p.validation_share,
        min_distance=p.min_distance,
        local_width=p.local_width,
        candidate_pool=p.candidate_pool,
        adapt_to_errors=p.adapt_to_errors,
        ordering=_make_ordering(config, space),
    )


def _make_ordering(
    config: Any, space: Any
) -> Callable[[np.ndarray], np.ndarray] | None:
    if config.space.ordering == "none":
        return None
    from sampler.ordering import light_stop_ordering
    from simulators.spectrum import key_masses

    return light_stop_ordering(functools.partial(key_masses, model=config.space.model))


class EnsembleSurrogates:
    """Fits, checkpoints and reloads the campaign's ensembles (the default).

    Args:
        settings: The config's ``surrogate`` section.

    Raises:
        CampaignError: ``kind`` is not ``direct`` (see :meth:`fit`).
    """

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        if settings.kind != "direct":
            raise CampaignError(
                f"surrogate.kind {settings.kind!r}: the campaign loop fits only 'direct' "
                "surrogates, because acquisition needs predictions for unsimulated "
                "points, which have no reparametrized features yet"
            )

    def fit(self, energy: int, round_: int, U: np.ndarray, chi2: np.ndarray) -> Any:
        """A fitted ensemble on unit-cube points ``U`` ``(n, dim)`` and their chi2 ``(n,)``."""
        from scynet_al.ensemble import Ensemble

        s = self.settings
        ensemble = Ensemble(
            kind=s.kind,
            n_members=s.ensemble_size,
            bootstrap=s.bootstrap,
            seed=s.seed + 1000 * round_ + energy,
            member_params={
                "energy_tev": energy,
                "max_epochs": s.max_epochs,
                "patience": s.patience,
                "batch_size": s.batch_size,
            },
        )
        return ensemble.fit(U, chi2)

    def save(self, path: Path, surrogate: Any, **meta: Any) -> None:
        """Write a checkpoint atomically (``scynet_al.checkpoint.save``)."""
        from scynet_al import checkpoint

        checkpoint.save(path, surrogate, **meta)

    def load(self, path: Path) -> Any:
        """The surrogate of a checkpoint.

        Raises:
            ModelError: The file is missing, damaged or not a checkpoint.
        """
        from scynet_al import checkpoint

        surrogate, _ = checkpoint.load(path)
        return surrogate


# -- checkpoint files ----------------------------------------------------------------


def _remove_partial_checkpoints(directory: Path) -> None:
    """Remove what checkpoint writes cut short left behind (see ``checkpoint``).

    Only the daemon holding the store's writer lock writes to ``directory``, and at
    its start no write of its own is under way.
    """
    from scynet_al import checkpoint

    checkpoint.remove_partial_writes(directory)


def _rounds_to_keep(
    refits: list[Mapping[str, Any]],
    energies: list[int],
    keep: int,
    latest_round: int | None,
) -> dict[int, set[int]]:
    """Rounds whose checkpoints stay, by energy.

    Args:
        refits: The campaign's refit metrics rows, oldest first.
        energies: The campaign's energies (TeV).
        keep: How many of the newest refits keep their checkpoints.
        latest_round: Round of the checkpoint the store names as latest, if any.

    Returns:
        Per energy: the newest ``keep`` refit rounds, the latest round and the
        round of the best refit at that energy.
    """
    newest = set(sorted({int(r["round"]) for r in refits})[-keep:])
    if latest_round is not None:
        newest.add(latest_round)
    kept = {}
    for energy in energies:
        best = _best_round(refits, energy)
        kept[energy] = newest | ({best} if best is not None else set())
    return kept


def _best_round(refits: list[Mapping[str, Any]], energy: int) -> int | None:
    """Round of the refit with the lowest overall validation error at one energy.

    Refits are compared by the error each scored when it was made; the validation
    set grows between refits, so an early refit scored on few points may win. Of
    equal errors the newest refit wins; refits without validation points take no
    part.
    """
    scored = []
    for row in refits:
        entry = row.get("energies", {}).get(str(energy)) or {}
        error = (entry.get("ensemble") or {}).get("overall", {}).get("mean_abs_error")
        if error is not None:
            scored.append((float(error), -int(row["round"])))
    return -min(scored)[1] if scored else None


# -- metrics and stop rule -----------------------------------------------------------


def _evaluate(
    metrics: Any, surrogate: Any, data: Mapping[str, np.ndarray], regions: Any
) -> dict:
    """Metrics of a fresh fit on the validation points; then its sigma is
    calibrated on them, when the surrogate has a ``calibrate(U, chi2)``."""
    out: dict[str, Any] = {
        "n_train": len(data["y"]),
        "n_validation": len(data["yv"]),
        "ensemble": None,
        "knn": None,
    }
    if len(data["yv"]) == 0:
        return out
    mean, std = surrogate.predict(data["Uv"], return_std=True)
    errors = metrics.region_errors(data["yv"], np.asarray(mean), regions)
    # The coverage of sigma once rescaled, measured on validation points that
    # did not set the factor; then the surrogate learns it from all of them.
    errors["calibration"] = metrics.cross_fitted_calibration(
        data["yv"], np.asarray(mean), np.asarray(std)
    )
    out["ensemble"] = _jsonable(errors)
    calibrate = getattr(surrogate, "calibrate", None)
    if calibrate is not None:
        calibrate(data["Uv"], data["yv"])
    out["knn"] = _jsonable(
        metrics.knn_baseline(data["U"], data["y"], data["Uv"], data["yv"], regions)
    )
    return out


def _stop_rule_holds(
    energies_row: Mapping[str, Any], target: float, min_count: int
) -> bool:
    """Mean |dchi2| below target in every region with enough validation points, per energy.

    A region holding fewer than ``min_count`` validation points is not judged; an
    energy with no region judged fails the rule.
    """
    for entry in energies_row.values():
        if not entry.get("ensemble"):
            return False
        judged = [
            r for r in entry["ensemble"]["regions"].values() if r["count"] >= min_count
        ]
        if not judged or any(r["mean_abs_error"] >= target for r in judged):
            return False
    return True


def _refit_line(row: Mapping[str, Any]) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in row["counts"].items())
    parts = [f"refit round {row['round']}: {row['n_train']} training points ({counts})"]
    for energy, entry in row["energies"].items():
        ens = entry.get("ensemble")
        if not ens:
            parts.append(f"{energy} TeV: no validation points yet")
            continue
        regions = " ".join(
            f"{name} {r['mean_abs_error']:.2f} (n={r['count']})"
            for name, r in ens["regions"].items()
            if r["count"]
        )
        parts.append(
            f"{energy} TeV mean|dchi2| {ens['overall']['mean_abs_error']:.2f}: {regions}"
        )
    return "; ".join(parts)


def _jsonable(value: Any) -> Any:
    """Plain Python numbers and containers (numpy scalars and arrays converted)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else None
    return value
