"""Tests of the campaign loop on an in-process Dask cluster with analytic simulators."""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from distributed import Client, LocalCluster

from scynet_al.campaign import Campaign, _stop_rule_holds
from scynet_al.config import parse_config
from scynet_al.store import CampaignStore
from tests.sim_doubles import AnalyticSimulator, KnnSurrogates, ScoredSurrogates

BASE = {
    "campaign": {
        "name": "test",
        "seed": 3,
        "energies_tev": [13],
        "target_mean_abs_error": 0.01,
        "min_validation_count": 3,
        "in_flight": 4,
        "refit_every": 15,
        "max_retries": 2,
        "grace_period_s": 5,
        "points_per_round": 15,
        "budget": {"max_points": 60, "max_wall_time_hours": 1.0},
    },
    "space": {"model": "pmssm11"},
    "proposer": {"candidate_pool": 300, "min_distance": 0.01},
    "dask": {"shared_filesystem": True},
}


def make_config(**sections):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(yaml.safe_dump(data))


def campaign_overrides(**values):
    merged = dict(BASE["campaign"])
    merged.update(values)
    return merged


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def new_store(tmp_path: Path, config) -> CampaignStore:
    return CampaignStore.create(
        tmp_path / "campaign.h5",
        config_text=config.text,
        space=config.build_space(),
        energies=[13],
        analyses={13: ["analytic"]},
        n_features=56,
    )


def run(config, store, client, simulator=None, **kwargs):
    simulator = simulator or AnalyticSimulator.for_space(config.build_space())
    campaign = Campaign(
        config, store, client, simulator=simulator, surrogates=KnnSurrogates(), **kwargs
    )
    return campaign, campaign.run()


def test_tiny_campaign_spends_budget_and_records_everything(tmp_path, client):
    config = make_config()
    simulator = AnalyticSimulator.for_space(
        config.build_space(), reject_fraction=0.15, fail_fraction=0.1
    )

    with new_store(tmp_path, config) as store:
        _, summary = run(config, store, client, simulator)
        table = store.table()
        rows = store.metrics()
        latest = store.latest_checkpoint()

    assert summary.stop_reason == "max_points"
    assert len(table["id"]) == 60
    assert set(table["status"]) <= {"ok", "rejected", "failed"}
    assert sorted(table["id"]) == list(range(60))
    failed = table["status"] == "failed"
    assert failed.any() and (table["status"] == "rejected").any()
    assert np.all(table["attempts"][failed] == 3)
    assert np.all(table["attempts"][table["status"] == "rejected"] == 1)
    refits = [r for r in rows if r["kind"] == "refit"]
    assert len(refits) >= 3
    assert [r["round"] for r in refits] == list(range(1, len(refits) + 1))
    assert rows[-1]["final"] is True and rows[-1]["stop_reason"] == "max_points"
    assert latest is not None and latest.exists()
    assert refits[-1]["n_train"] + refits[-1]["n_validation"] == np.sum(
        table["status"] == "ok"
    )


def test_failure_marked_final_is_not_retried(tmp_path, client):
    config = make_config(campaign=campaign_overrides(budget={"max_points": 30}))
    simulator = AnalyticSimulator.for_space(
        config.build_space(), final_fail_fraction=0.3, fail_fraction=0.15
    )

    with new_store(tmp_path, config) as store:
        run(config, store, client, simulator)
        table = store.table()

    reasons = np.asarray([str(r) for r in table["reason"]])
    final = reasons == "analytic-test: tachyonic stop"
    transient = reasons == "analytic-test: tool crashed"
    assert final.any() and transient.any()
    assert np.all(table["status"][final] == "failed")
    # One attempt for a final failure; 1 + max_retries (= 3) for a transient one.
    assert np.all(table["attempts"][final] == 1)
    assert np.all(table["attempts"][transient] == 3)


def test_scratch_kept_for_failed_attempts_only(tmp_path, client):
    config = make_config(campaign=campaign_overrides(budget={"max_points": 20}))
    simulator = AnalyticSimulator.for_space(config.build_space(), fail_fraction=0.3)

    with new_store(tmp_path, config) as store:
        run(config, store, client, simulator)
        table = store.table()

    kept = sorted((tmp_path / "campaign.h5.scratch").iterdir())
    n_failed = int(np.sum(table["status"] == "failed"))
    assert n_failed > 0
    assert len(kept) == 3 * n_failed
    assert all((d / "crash.log").exists() for d in kept)


def test_failed_job_retried_with_same_seed(tmp_path, client):
    config = make_config(campaign=campaign_overrides(budget={"max_points": 20}))
    flaky = tmp_path / "flaky"
    flaky.mkdir()
    simulator = AnalyticSimulator.for_space(config.build_space(), flaky_dir=str(flaky))

    with new_store(tmp_path, config) as store:
        run(config, store, client, simulator)
        table = store.table()

    assert set(table["status"]) == {"ok"}
    assert np.all(table["attempts"] == 2)
    assert sorted(p.name for p in flaky.iterdir()) == sorted(
        f"seed-{s}" for s in table["seed"]
    )


def test_raising_simulator_becomes_failed_record(tmp_path, client):
    config = make_config(campaign=campaign_overrides(budget={"max_points": 10}))
    simulator = AnalyticSimulator.for_space(config.build_space(), raise_fraction=1.0)

    with new_store(tmp_path, config) as store:
        _, summary = run(config, store, client, simulator)
        table = store.table()

    assert summary.counts["failed"] == 10
    assert all("RuntimeError" in r and "crashed on seed" in r for r in table["reason"])


def test_converges_when_target_is_met(tmp_path, client):
    config = make_config(
        campaign=campaign_overrides(
            target_mean_abs_error=1000.0, budget={"max_points": 400}
        )
    )

    with new_store(tmp_path, config) as store:
        _, summary = run(config, store, client)
        n_points = len(store)
        rows = store.metrics()

    assert summary.stop_reason == "converged" and summary.converged
    assert n_points < 400
    assert rows[-2]["converged"] is True


def test_resume_redispatches_pending_and_continues_rounds(tmp_path, client):
    config = make_config(campaign=campaign_overrides(budget={"max_points": 30}))
    with new_store(tmp_path, config) as store:
        run(config, store, client)
        first_round = store.current_round
        X = config.build_space().from_unit(np.full((5, 11), 0.42))
        ids, _ = store.add_pending(X, origin="prior", round=first_round)

    bigger = make_config(campaign=campaign_overrides(budget={"max_points": 50}))
    with CampaignStore.open(tmp_path / "campaign.h5", mode="a") as store:
        _, summary = run(bigger, store, client)
        table = store.table()
        refits = [r for r in store.metrics() if r["kind"] == "refit"]

    assert summary.stop_reason == "max_points"
    assert len(table["id"]) == 50
    assert set(table["status"][ids]) == {"ok"}
    assert refits[-1]["round"] > first_round
    assert len({r["round"] for r in refits}) == len(refits)


def test_resume_without_the_checkpoint_directory_refits(tmp_path, client, caplog):
    # A store copied without its <store>.checkpoints/ directory still resumes.
    config = make_config(campaign=campaign_overrides(budget={"max_points": 30}))
    with new_store(tmp_path, config) as store:
        run(config, store, client)
        checkpoint = store.latest_checkpoint()
    assert checkpoint is not None and checkpoint.exists()
    shutil.rmtree(checkpoint.parent)

    bigger = make_config(campaign=campaign_overrides(budget={"max_points": 50}))
    with (
        caplog.at_level(logging.WARNING, logger="scynet_al.campaign"),
        CampaignStore.open(tmp_path / "campaign.h5", mode="a") as store,
    ):
        _, summary = run(bigger, store, client)
        table = store.table()
        latest = store.latest_checkpoint()

    assert "is missing" in caplog.text
    assert summary.stop_reason == "max_points"
    assert len(table["id"]) == 50
    assert latest is not None and latest.exists()


def test_wall_time_budget_stops(tmp_path, client):
    config = make_config(
        campaign=campaign_overrides(
            budget={"max_points": 10000, "max_wall_time_hours": 0.0003}
        )
    )
    simulator = AnalyticSimulator.for_space(config.build_space(), sleep_s=0.05)

    with new_store(tmp_path, config) as store:
        _, summary = run(config, store, client, simulator)

    assert summary.stop_reason == "wall_time"
    assert 1.0 <= summary.wall_time_s < 30.0


def test_a_null_wall_time_budget_sets_no_limit(tmp_path, client):
    config = make_config(
        campaign=campaign_overrides(
            budget={"max_points": 10, "max_wall_time_hours": None}
        )
    )

    with new_store(tmp_path, config) as store:
        _, summary = run(config, store, client)
        n_points = len(store)

    assert summary.stop_reason == "max_points" and n_points == 10


def test_request_stop_leaves_unfinished_points_pending(tmp_path, client):
    config = make_config(
        campaign=campaign_overrides(grace_period_s=0, budget={"max_points": 1000})
    )
    simulator = AnalyticSimulator.for_space(config.build_space(), sleep_s=0.2)

    with new_store(tmp_path, config) as store:
        campaign = Campaign(
            config, store, client, simulator=simulator, surrogates=KnnSurrogates()
        )
        threading.Timer(1.5, campaign.request_stop).start()
        summary = campaign.run()
        counts = store.counts()

    assert summary.stop_reason == "interrupted"
    assert counts["pending"] > 0 and counts["ok"] > 0
    assert sum(counts.values()) < 1000


@pytest.mark.parametrize(
    ("errors", "counts", "expected"),
    [
        ({"I": 0.5, "zero": 0.9}, {"I": 25, "zero": 30}, True),
        ({"I": 1.5, "zero": 0.9}, {"I": 25, "zero": 30}, False),
        ({"I": 1.5, "zero": 0.9}, {"I": 19, "zero": 30}, True),  # I not judged
        ({"I": 1.5, "zero": 0.9}, {"I": 19, "zero": 19}, False),  # nothing judged
        ({"I": 1.0, "zero": 0.2}, {"I": 20, "zero": 20}, False),  # strictly below
    ],
)
def test_stop_rule(errors, counts, expected):
    row = {
        "13": {
            "ensemble": {
                "regions": {
                    name: {"mean_abs_error": errors[name], "count": counts[name]}
                    for name in errors
                }
            }
        }
    }

    assert _stop_rule_holds(row, 1.0, 20) is expected


def test_stop_rule_needs_every_energy():
    met = {"ensemble": {"regions": {"zero": {"mean_abs_error": 0.1, "count": 50}}}}
    unmet = {"ensemble": {"regions": {"zero": {"mean_abs_error": 3.0, "count": 50}}}}

    assert _stop_rule_holds({"8": met, "13": met}, 1.0, 20)
    assert not _stop_rule_holds({"8": met, "13": unmet}, 1.0, 20)
    assert not _stop_rule_holds({"8": met, "13": {"ensemble": None}}, 1.0, 20)


@pytest.mark.parametrize(
    ("simulator", "message"),
    [
        (
            {"backend": "spheno", "settings": {"spheno_binary": "/nonexistent/SPheno"}},
            "SPheno binary",
        ),
        ({"backend": "builtin", "settings": {"no_such_setting": 1}}, "no_such_setting"),
        ({"backend": "nobody"}, "simulator.backend"),
        (
            {"backend": "spheno", "settings": {"spheno_binary": "/bin/true"}},
            "labels only []",
        ),
        (
            {"backend": "builtin", "settings": {}},
            "fits only 'direct'",
        ),
        (
            {"backend": "builtin", "settings": {}},
            "asks for [8] TeV, but simulator backend 'builtin' labels only [13] TeV "
            "(set simulator.settings.energies_tev)",
        ),
    ],
)
def test_misconfigured_backend_stops_before_the_store(
    tmp_path, capsys, simulator, message
):
    from scynet_al.cli import main

    config = tmp_path / "c.yaml"
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data["simulator"] = simulator
    if "fits only 'direct'" in message:
        data["surrogate"] = {"kind": "reparametrized"}
    if "asks for [8] TeV" in message:
        data["campaign"]["energies_tev"] = [8, 13]
    config.write_text(yaml.safe_dump(data))
    store = tmp_path / "c.h5"

    code = main(["run", str(config), "--store", str(store)])

    assert code == 2
    assert message in capsys.readouterr().err
    assert not store.exists()
    assert list(tmp_path.iterdir()) == [config]


def test_regions_centred_on_the_builtin_catalogue():
    from scynet_al.campaign import _regions_for
    from simulators.builtin import BuiltinSimulator
    from simulators.catalogue import load_catalogue

    config = make_config(regions={"paper": False, "centre_on_catalogue": True})
    simulator = BuiltinSimulator()
    names = simulator.describe()["analyses"][13]
    zero = load_catalogue(None, energy_tev=13, analyses=names).zero_signal_chi2(13)

    regions = _regions_for(config, 13, simulator)

    assert 0.0 < zero < 54.0
    assert regions.edges == pytest.approx(
        (0.0, zero - 2.0, zero + 2.0, 70.0, 95.0, 100.0)
    )


def test_job_past_timeout_is_failed_and_retried(tmp_path, client):
    config = make_config(
        campaign=campaign_overrides(
            job_timeout_s=0.5, max_retries=1, in_flight=2, budget={"max_points": 2}
        )
    )
    simulator = AnalyticSimulator.for_space(config.build_space(), sleep_s=2.5)

    with new_store(tmp_path, config) as store:
        _, summary = run(config, store, client, simulator)
        table = store.table()

    assert summary.counts["failed"] == 2
    assert np.all(table["attempts"] == 2)
    assert all("timed out after 0.5 s" in r for r in table["reason"])


def test_refit_waits_for_enough_training_points(tmp_path, client):
    config = make_config(
        campaign=campaign_overrides(refit_every=2, budget={"max_points": 30})
    )
    simulator = AnalyticSimulator.for_space(config.build_space(), reject_fraction=0.5)
    surrogates = KnnSurrogates()

    with new_store(tmp_path, config) as store:
        Campaign(
            config, store, client, simulator=simulator, surrogates=surrogates
        ).run()

    assert surrogates.fits, "no refit at all"
    assert min(n for _, _, n in surrogates.fits) >= 10


class _StopStub:
    """Stands in for a campaign to the signal handlers: counts what they ask."""

    _stop_request = None
    hard_exits = 0

    def request_stop(self, reason, signal_name=None):
        self._stop_request = reason
        self.signal_name = signal_name

    def hard_exit(self):
        self.hard_exits += 1


@contextlib.contextmanager
def _signal_handlers_of(stub):
    """The stop handlers installed for ``stub``, by signal; the old ones restored."""
    import signal

    from scynet_al import campaign as campaign_module

    signums = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    saved = [signal.getsignal(s) for s in signums]
    try:
        campaign_module.install_signal_handlers(stub)
        yield {s: signal.getsignal(s) for s in signums}
    finally:
        for signum, previous in zip(signums, saved, strict=True):
            signal.signal(signum, previous)


def test_a_signal_repeated_at_once_is_one_request(monkeypatch):
    # GNU timeout sends SIGTERM to the daemon and to its process group: the second
    # copy, a moment later, must not skip the grace period.
    import signal

    from scynet_al import campaign as campaign_module

    clock = [100.0]
    monkeypatch.setattr(campaign_module.time, "monotonic", lambda: clock[0])
    stub = _StopStub()
    with _signal_handlers_of(stub) as handlers:
        handler = handlers[signal.SIGTERM]
        handler(signal.SIGTERM, None)
        clock[0] += 0.01
        handler(signal.SIGTERM, None)
        assert stub._stop_request == "interrupted"
        assert stub.hard_exits == 0
        clock[0] += 5.0
        handler(signal.SIGINT, None)
        assert stub.hard_exits == 1


def test_a_closed_terminal_stops_the_campaign_like_ctrl_c(monkeypatch):
    # The kernel hangs up the session leader, and the shell then signals its job's
    # process group: two SIGHUPs at once, one graceful stop.
    import signal

    from scynet_al import campaign as campaign_module

    monkeypatch.setattr(campaign_module.time, "monotonic", lambda: 100.0)
    stub = _StopStub()
    with _signal_handlers_of(stub) as handlers:
        handlers[signal.SIGHUP](signal.SIGHUP, None)
        handlers[signal.SIGHUP](signal.SIGHUP, None)

    assert len(set(handlers.values())) == 1
    assert stub._stop_request == "interrupted" and stub.hard_exits == 0


def test_a_signal_inside_a_log_write_stops_the_campaign_once_the_write_ends(caplog):
    # Ctrl-C reaches the main thread wherever it is, also inside a write to a
    # terminal that is not being read (paused, slow link): that write holds the
    # stream's lock, and logging from the handler re-entered it (RuntimeError:
    # reentrant call) and lost the stop or hung. The handler only sets flags; the
    # loop says what came when it next looks.
    import signal

    from scynet_al.logs import TerminalHandler

    campaign = Campaign(None, None, None)

    class Terminal:
        writing = False
        reentered = False

        def write(self, text):
            if self.writing:
                self.reentered = True
                raise RuntimeError("reentrant call inside the stream")
            self.writing = True
            try:
                if "working" in text:  # the signal comes during this write
                    handlers[signal.SIGINT](signal.SIGINT, None)
            finally:
                self.writing = False

        def flush(self):
            pass

    terminal = Terminal()
    logger = logging.getLogger("scynet_al.campaign")
    handler = TerminalHandler(terminal)
    logger.addHandler(handler)
    try:
        with _signal_handlers_of(campaign) as handlers:
            logger.warning("working")
            assert not terminal.reentered
            assert campaign._stop_request == "interrupted"
            with caplog.at_level(logging.WARNING, logger="scynet_al.campaign"):
                assert campaign._stop_reason() == "interrupted"
                assert campaign._stop_reason() == "interrupted"
    finally:
        logger.removeHandler(handler)
    said = [r.getMessage() for r in caplog.records if "received" in r.getMessage()]
    assert said == [
        "SIGINT received: no new jobs; waiting for running ones (again to exit now)"
    ]


def test_a_hang_up_ignored_under_nohup_stays_ignored():
    import signal

    from scynet_al import campaign as campaign_module

    signums = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    saved = [signal.getsignal(s) for s in signums]
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        campaign_module.install_signal_handlers(Campaign(None, None, None))
        installed = [signal.getsignal(s) for s in signums]
    finally:
        for signum, previous in zip(signums, saved, strict=True):
            signal.signal(signum, previous)

    assert installed[2] == signal.SIG_IGN
    assert callable(installed[0]) and installed[0] == installed[1]


class _WorkersClient:
    """Stands in for the Dask client while a campaign stops: fixed live workers."""

    def __init__(self, workers):
        self.workers = workers
        self.cancelled = []

    def nthreads(self):
        if self.workers is None:
            raise OSError("scheduler unreachable")
        return dict.fromkeys(self.workers, 1)

    def cancel(self, futures):
        self.cancelled.extend(futures)


@pytest.mark.parametrize(
    ("workers", "started_on", "waited_for"),
    [
        (["tcp://a:1", "tcp://b:1"], "tcp://a:1", True),
        (["tcp://a:1"], None, True),  # not started yet, a worker is left to run it
        (["tcp://b:1"], "tcp://a:1", False),  # its worker has gone
        ([], None, False),  # no worker left
        (None, "tcp://a:1", False),  # the scheduler cannot be asked
    ],
)
def test_stopping_waits_only_for_jobs_that_can_finish(workers, started_on, waited_for):
    from scynet_al.campaign import _Job

    client = _WorkersClient(workers)
    campaign = Campaign(config=None, store=None, client=client)
    campaign.running_ = {"job": _Job(point_id=7, seed=1, x=np.zeros(11))}
    campaign.futures_ = {"job": "future of point 7"}
    campaign.job_starts_ = {"job": 0.0} if started_on else {}
    campaign.job_workers_ = {"job": started_on} if started_on else {}
    campaign.next_worker_check_ = 0.0

    campaign._abandon_jobs_without_worker()

    assert ("job" in campaign.running_) is waited_for
    assert client.cancelled == ([] if waited_for else ["future of point 7"])
    if not waited_for:
        assert not campaign.futures_ and not campaign.job_workers_


def test_an_interrupt_cancels_the_queued_jobs_and_waits_for_running_ones():
    from scynet_al.campaign import _Job

    client = _WorkersClient(["tcp://a:1", "tcp://b:1"])
    campaign = Campaign(config=None, store=None, client=client)
    campaign.running_ = {
        k: _Job(point_id=i, seed=1, x=np.zeros(11))
        for i, k in enumerate(["run-a", "run-b", "queued-1", "queued-2"])
    }
    campaign.futures_ = {k: f"future {k}" for k in campaign.running_}
    campaign.job_starts_ = {"run-a": 0.0, "run-b": 0.0}
    campaign.job_workers_ = {"run-a": "tcp://a:1", "run-b": "tcp://b:1"}

    campaign._cancel_jobs_not_started()

    # The two queued jobs go at once; the running ones are left to the grace period.
    assert sorted(campaign.running_) == ["run-a", "run-b"]
    assert client.cancelled == ["future queued-1", "future queued-2"]


def test_a_simulator_that_may_outlast_the_job_timeout_is_warned_about(caplog) -> None:
    from types import SimpleNamespace

    from scynet_al.campaign import _warn_if_jobs_may_time_out

    config = SimpleNamespace(campaign=SimpleNamespace(job_timeout_s=900.0))
    with caplog.at_level(logging.WARNING, logger="scynet_al.campaign"):
        _warn_if_jobs_may_time_out(
            config, SimpleNamespace(name="builtin", max_seconds_per_point=1800.0)
        )
        _warn_if_jobs_may_time_out(
            config, SimpleNamespace(name="quick", max_seconds_per_point=600.0)
        )
        _warn_if_jobs_may_time_out(config, SimpleNamespace(name="unbounded"))

    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "900 s" in warnings[0] and "1800 s" in warnings[0]


# -- checkpoint retention ----------------------------------------------------------


def ckpt_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def round_names(rounds, energy: int) -> list[str]:
    return [f"round-{r:05d}-{energy}TeV.ckpt" for r in rounds]


def run_scored(config, store, client, error, energies=(13,), **kwargs):
    space = config.build_space()
    simulator = AnalyticSimulator.for_space(space, energies=energies)
    surrogates = ScoredSurrogates(space, simulator, error)
    campaign = Campaign(
        config, store, client, simulator=simulator, surrogates=surrogates, **kwargs
    )
    return surrogates, campaign.run()


def test_old_checkpoints_are_removed_but_the_latest_and_the_best_stay(
    tmp_path, client, caplog
):
    # The best refit is round 2 at 8 TeV and round 3 at 13 TeV; every other refit
    # scores worse the later it comes, so with keep_checkpoints 2 exactly rounds
    # {2, R-1, R} stay at 8 TeV and {3, R-1, R} at 13 TeV.
    config = make_config(
        campaign=campaign_overrides(
            energies_tev=[8, 13],
            refit_every=10,
            points_per_round=10,
            keep_checkpoints=2,
            budget={"max_points": 110, "max_wall_time_hours": 1.0},
        )
    )
    best = {8: 2, 13: 3}

    def error(energy, round_):
        return 0.5 if round_ == best[energy] else 2.0 + round_

    directory = tmp_path / "campaign.h5.checkpoints"
    directory.mkdir()
    (directory / "notes.txt").write_text("kept by hand")
    store = CampaignStore.create(
        tmp_path / "campaign.h5",
        config_text=config.text,
        space=config.build_space(),
        energies=[8, 13],
        analyses={8: ["analytic"], 13: ["analytic"]},
    )
    with caplog.at_level(logging.DEBUG, logger="scynet_al"), store:
        run_scored(config, store, client, error, energies=(8, 13))
        refits = [r for r in store.metrics() if r["kind"] == "refit"]
        latest = store.latest_checkpoint()

    last = len(refits)
    assert [r["round"] for r in refits] == list(range(1, last + 1))
    assert last >= 6, "too few refits to tell kept from removed rounds"
    for energy, round_ in best.items():
        scored = refits[round_ - 1]["energies"][str(energy)]["ensemble"]["overall"]
        assert scored["mean_abs_error"] == pytest.approx(0.5)
    kept = {8: [2, last - 1, last], 13: [3, last - 1, last]}
    assert ckpt_names(directory) == sorted(
        ["notes.txt", *round_names(kept[8], 8), *round_names(kept[13], 13)]
    )
    assert latest == directory / f"round-{last:05d}-8TeV.ckpt"
    removals = [
        r
        for r in caplog.records
        if r.levelno == logging.DEBUG
        and r.getMessage().startswith("removed checkpoint")
    ]
    assert len(removals) == 2 * (last - 3)
    summaries = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and "keep_checkpoints 2" in r.getMessage()
    ]
    assert summaries and all(s.startswith("removed ") for s in summaries)


def test_keep_checkpoints_null_keeps_every_refit(tmp_path, client):
    config = make_config(
        campaign=campaign_overrides(
            refit_every=10,
            points_per_round=10,
            keep_checkpoints=None,
            budget={"max_points": 50, "max_wall_time_hours": 1.0},
        )
    )

    with new_store(tmp_path, config) as store:
        run_scored(config, store, client, lambda energy, round_: 1.0 + round_)
        rounds = [r["round"] for r in store.metrics() if r["kind"] == "refit"]

    assert len(rounds) >= 3
    assert ckpt_names(tmp_path / "campaign.h5.checkpoints") == round_names(
        range(1, len(rounds) + 1), 13
    )


def test_a_resumed_campaign_loads_its_latest_checkpoint_after_pruning(
    tmp_path, client, caplog
):
    # Later refits score better, so the newest is also the best: one file stays.
    def error(energy, round_):
        return 10.0 / round_

    overrides = {"refit_every": 10, "points_per_round": 10, "keep_checkpoints": 1}
    config = make_config(
        campaign=campaign_overrides(**overrides, budget={"max_points": 40})
    )
    directory = tmp_path / "campaign.h5.checkpoints"
    with new_store(tmp_path, config) as store:
        run_scored(config, store, client, error)
        first = store.current_round
    assert first >= 2
    assert ckpt_names(directory) == round_names([first], 13)

    bigger = make_config(
        campaign=campaign_overrides(**overrides, budget={"max_points": 60})
    )
    with (
        caplog.at_level(logging.INFO, logger="scynet_al.campaign"),
        CampaignStore.open(tmp_path / "campaign.h5", mode="a") as store,
    ):
        surrogates, summary = run_scored(bigger, store, client, error)
        last = store.current_round

    assert surrogates.loads == [directory / f"round-{first:05d}-13TeV.ckpt"]
    assert f"(round {first})" in caplog.text and "is missing" not in caplog.text
    assert summary.stop_reason == "max_points"
    assert last > first
    assert ckpt_names(directory) == round_names([last], 13)


def test_leftovers_of_cut_short_checkpoint_writes_are_removed_at_start(
    tmp_path, client, caplog
):
    config = make_config(campaign=campaign_overrides(budget={"max_points": 0}))
    directory = tmp_path / "campaign.h5.checkpoints"
    directory.mkdir()
    leftovers = [
        ".round-00002-13TeV.ckpt.k3j9x_2a.tmp",
        ".round-00010-8TeV.ckpt.q_1.tmp",
    ]
    others = [
        "round-00001-13TeV.ckpt",
        "notes.txt",
        "scratch.tmp",
        ".other.ckpt.k3j9x_2a.tmp",
        ".round-00001-13TeV.ckpt.tmp",
    ]
    for name in leftovers + others:
        (directory / name).write_bytes(b"x")
    (directory / ".round-00003-13TeV.ckpt.dir.tmp").mkdir()

    with (
        caplog.at_level(logging.INFO, logger="scynet_al.checkpoint"),
        new_store(tmp_path, config) as store,
    ):
        run(config, store, client)

    assert ckpt_names(directory) == sorted([*others, ".round-00003-13TeV.ckpt.dir.tmp"])
    removed = [
        r.getMessage() for r in caplog.records if r.name == "scynet_al.checkpoint"
    ]
    assert len(removed) == 2
    assert all(any(name in m for m in removed) for name in leftovers)


def refit_row(round_, errors):
    """A refit metrics row with an overall validation error per energy (or none)."""
    return {
        "kind": "refit",
        "round": round_,
        "energies": {
            str(e): {
                "ensemble": None
                if err is None
                else {"overall": {"mean_abs_error": err}}
            }
            for e, err in errors.items()
        },
    }


def test_rounds_to_keep_are_the_newest_the_latest_and_the_best_per_energy():
    from scynet_al.campaign import _rounds_to_keep

    refits = [
        refit_row(1, {8: None, 13: None}),  # no validation points yet
        refit_row(2, {8: 3.0, 13: 0.7}),
        refit_row(3, {8: 1.0, 13: 2.0}),
        refit_row(4, {8: 1.0, 13: 2.5}),  # ties with round 3: the newer one wins
        refit_row(5, {8: 2.0, 13: 1.5}),
        refit_row(6, {8: 4.0, 13: 0.9}),
    ]

    # The store names round 5 as latest (round 6 was written but not referenced).
    assert _rounds_to_keep(refits, [8, 13], 1, 5) == {8: {4, 5, 6}, 13: {2, 5, 6}}
    assert _rounds_to_keep(refits, [8, 13], 3, 6) == {8: {4, 5, 6}, 13: {2, 4, 5, 6}}
    assert _rounds_to_keep(refits[:1], [13], 2, None) == {13: {1}}
    assert _rounds_to_keep([], [13], 2, None) == {13: set()}


# -- unusable checkpoints, continued configs, spent budgets ---------------------------


def damage(path: Path, how: str) -> bytes:
    """Cut a checkpoint file short or overwrite its start; return what it holds now."""
    data = path.read_bytes()
    if how == "cut":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"\x00" * 64 + data[64:])
    return path.read_bytes()


@pytest.mark.parametrize(
    ("damaged", "loaded"),
    [
        ({0: "cut"}, 1),  # the newest older checkpoint stands in
        ({0: "cut", 1: "overwritten"}, 2),  # ... the newest older one that loads
        ({0: "cut", 1: "cut", 2: "overwritten"}, None),  # none: no surrogate
    ],
)
def test_an_unusable_latest_checkpoint_is_replaced_without_losing_its_evidence(
    tmp_path, client, caplog, damaged, loaded
):
    # Each refit predicts the exact chi2 plus its own round number, so the
    # surrogate read back tells which checkpoint it came from.
    def error(energy, round_):
        return float(round_)

    config = make_config(
        campaign=campaign_overrides(
            refit_every=10,
            points_per_round=10,
            keep_checkpoints=None,
            budget={"max_points": 30},
        )
    )
    with new_store(tmp_path, config) as store:
        run_scored(config, store, client, error)
        listed = store.checkpoints()
    assert [r for _, r in listed] == [3, 2, 1]
    evidence = {listed[k][0]: damage(listed[k][0], how) for k, how in damaged.items()}

    with (
        caplog.at_level(logging.DEBUG, logger="scynet_al.campaign"),
        CampaignStore.open(tmp_path / "campaign.h5", mode="a") as store,
    ):
        surrogates, summary = run_scored(config, store, client, error)
        refits = [r["round"] for r in store.metrics() if r.get("kind") == "refit"]
        latest = store.latest_checkpoint()

    tried = len(damaged) + (loaded is not None)
    assert surrogates.loads == [path for path, _ in listed[:tried]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for path in evidence:
        assert any(str(path) in w and "unusable" in w for w in warnings), warnings
    if loaded is None:
        assert any("without a surrogate until the next refit" in w for w in warnings)
    else:
        assert any(
            f"older checkpoint {listed[loaded][0]} (round {3 - loaded})" in w
            for w in warnings
        )
    # The budget is spent, yet the campaign refits at once to replace the latest
    # checkpoint; the damaged files stay as they were, beside the new round.
    assert summary.stop_reason == "max_points"
    assert refits == [1, 2, 3, 4] and surrogates.fits == [
        (13, 4, surrogates.fits[0][2])
    ]
    assert latest == tmp_path / "campaign.h5.checkpoints" / "round-00004-13TeV.ckpt"
    assert {path: path.read_bytes() for path in evidence} == evidence


def test_a_continued_campaign_records_its_new_config_once_started(tmp_path, client):
    config = make_config(campaign=campaign_overrides(budget={"max_points": 20}))
    with new_store(tmp_path, config) as store:
        run(config, store, client)

    bigger = make_config(campaign=campaign_overrides(budget={"max_points": 30}))
    with CampaignStore.open(tmp_path / "campaign.h5", mode="a") as store:
        run(bigger, store, client)
    with CampaignStore.open(tmp_path / "campaign.h5", mode="a") as store:
        run(bigger, store, client)  # the same config again: nothing more to record

    with CampaignStore.open(tmp_path / "campaign.h5") as store:
        kinds = [r.get("kind") for r in store.metrics()]
        assert store.config_text == bigger.text != config.text
        assert store.original_config_text == config.text
        assert len(store) == 30
    assert kinds.count("config") == 1
    assert kinds.index("config") == kinds.index("start", kinds.index("summary")) - 1


class _BrokenLoader(KnnSurrogates):
    """Surrogates whose checkpoint reader fails for a reason other than the file."""

    def load(self, path):
        raise RuntimeError("out of memory while reading the checkpoint")


def test_a_start_that_fails_leaves_the_store_as_it_was(tmp_path, client):
    config = make_config(campaign=campaign_overrides(budget={"max_points": 20}))
    with new_store(tmp_path, config) as store:
        run(config, store, client)
        before = (store.metrics(), store.config_text, store.table()["status"])

    bigger = make_config(campaign=campaign_overrides(budget={"max_points": 30}))
    with CampaignStore.open(tmp_path / "campaign.h5", mode="a") as store:
        campaign = Campaign(bigger, store, client, surrogates=_BrokenLoader())
        with pytest.raises(RuntimeError, match="out of memory"):
            campaign.run()

    with CampaignStore.open(tmp_path / "campaign.h5") as store:
        after = (store.metrics(), store.config_text, store.table()["status"])
    assert after[:2] == before[:2]
    assert after[2].tolist() == before[2].tolist()


@pytest.mark.parametrize(
    ("max_points", "warned"), [(20, True), (30, True), (40, False)]
)
def test_continuing_on_a_spent_budget_says_so(
    tmp_path, client, caplog, max_points, warned
):
    config = make_config(campaign=campaign_overrides(budget={"max_points": 30}))
    with new_store(tmp_path, config) as store:
        run(config, store, client)

    again = make_config(campaign=campaign_overrides(budget={"max_points": max_points}))
    with (
        caplog.at_level(logging.WARNING, logger="scynet_al.campaign"),
        CampaignStore.open(tmp_path / "campaign.h5", mode="a") as store,
    ):
        _, summary = run(again, store, client)
        n_points = len(store)

    spent = [
        r.getMessage() for r in caplog.records if "already spent" in r.getMessage()
    ]
    assert spent == (
        [
            f"the point budget is already spent: {tmp_path / 'campaign.h5'} holds 30"
            f" points and campaign.budget.max_points is {max_points}, so no new point"
            " is proposed; raise max_points to continue the campaign"
        ]
        if warned
        else []
    )
    assert summary.stop_reason == "max_points"
    assert n_points == max(30, max_points)


def test_a_resume_that_finishes_the_pending_points_of_its_budget_is_not_warned(
    tmp_path, client, caplog
):
    config = make_config(campaign=campaign_overrides(budget={"max_points": 30}))
    with new_store(tmp_path, config) as store:
        run(config, store, client)
        X = config.build_space().from_unit(np.full((5, 11), 0.42))
        store.add_pending(X, origin="prior", round=store.current_round)

    bigger = make_config(campaign=campaign_overrides(budget={"max_points": 35}))
    with (
        caplog.at_level(logging.WARNING, logger="scynet_al.campaign"),
        CampaignStore.open(tmp_path / "campaign.h5", mode="a") as store,
    ):
        run(bigger, store, client)
        counts = store.counts()

    assert "already spent" not in caplog.text
    assert counts["pending"] == 0 and sum(counts.values()) == 35


# -- nothing written by a start that fails -------------------------------------------


def write_config(tmp_path: Path, name: str = "c.yaml", **sections) -> Path:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_first_round_the_proposer_cannot_fill_stops_before_the_store(
    tmp_path, capsys
):
    from scynet_al.cli import main

    config = write_config(tmp_path, proposer={"min_distance": 5.0})

    code = main(["run", str(config), "--store", str(tmp_path / "c.h5")])

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"{config}: proposer: cannot propose the first round of 15 points" in err
    assert "lower proposer.min_distance" in err
    assert list(tmp_path.iterdir()) == [config]


def test_the_preflight_proposal_is_the_first_round_of_a_new_store(tmp_path, client):
    # What the preflight checks is what the campaign then proposes, point by point.
    from scynet_al.campaign import _make_proposer, _proposal_rng

    config = make_config(campaign=campaign_overrides(budget={"max_points": 15}))
    regions = {13: config.regions.build(13)}
    proposer = _make_proposer(
        config, config.build_space(), regions, fractions={"prior": 1.0}
    )
    checked = proposer.propose(15, None, None, _proposal_rng(config, 0, 0))

    with new_store(tmp_path, config) as store:
        run(config, store, client)
        table = store.table()

    np.testing.assert_array_equal(table["parameters"], checked.X)
    assert sorted(table["origin"]) == sorted(
        o if o == "validation" else "prior" for o in checked.origins
    )


@pytest.fixture
def unreachable_cluster(monkeypatch):
    from scynet_al import cluster
    from scynet_al.errors import CampaignError

    def connect(dask_settings, *, scheduler_address=None):
        raise CampaignError("cannot reach the Dask scheduler at tcp://127.0.0.1:1")

    monkeypatch.setattr(cluster, "connect", connect)


def test_an_unreachable_cluster_creates_no_store(tmp_path, capsys, unreachable_cluster):
    from scynet_al.cli import main

    config = write_config(tmp_path)

    assert main(["run", str(config), "--store", str(tmp_path / "c.h5")]) == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [config]


def test_an_unreachable_cluster_leaves_a_continued_store_as_it_was(
    tmp_path, capsys, unreachable_cluster
):
    from scynet_al.cli import main

    config = write_config(tmp_path)
    more = write_config(tmp_path, "more.yaml", campaign={"budget": {"max_points": 90}})
    store_path = tmp_path / "campaign.h5"
    with new_store(tmp_path, parse_config(config.read_text())) as store:
        store.add_pending(store.space.from_unit(np.full((2, 11), 0.5)), "prior", 0)
    before = (store_path.read_bytes(), store_path.stat().st_mtime_ns)

    assert main(["run", str(more), "--store", str(store_path)]) == 2

    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
    assert (store_path.read_bytes(), store_path.stat().st_mtime_ns) == before
    with CampaignStore.open(store_path) as store:
        assert store.config_text == config.read_text()


@pytest.mark.parametrize("existed", [False, True])
def test_a_new_store_goes_again_when_its_campaign_fails_before_the_first_point(
    tmp_path, capsys, monkeypatch, existed
):
    # The store exists and its start row is written when the campaign fails (say,
    # its workers vanish): a store this command created leaves nothing behind,
    # while one that was there before stays.
    from types import SimpleNamespace

    from scynet_al import cluster
    from scynet_al.cli import main
    from scynet_al.errors import CampaignError

    def connect(dask_settings, *, scheduler_address=None):
        client = SimpleNamespace(close=lambda: None)
        return cluster.ClusterHandle(client=client, cluster=None, kind="scheduler")

    def fail_after_start(self):
        self._prepare()
        raise CampaignError("every worker left before the first job")

    monkeypatch.setattr(cluster, "connect", connect)
    monkeypatch.setattr(Campaign, "run", fail_after_start)
    config = write_config(tmp_path)
    store_path = tmp_path / "campaign.h5"
    if existed:
        new_store(tmp_path, parse_config(config.read_text())).close()
    files = sorted(p.name for p in tmp_path.iterdir())

    assert main(["run", str(config), "--store", str(store_path)]) == 2

    assert "every worker left" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    if existed:
        with CampaignStore.open(store_path) as store:
            assert [r["kind"] for r in store.metrics()] == ["start"]


class FullDiskSurrogates(KnnSurrogates):
    """kNN fits whose checkpoints meet a full disk."""

    def save(self, path: Path, surrogate, **meta) -> None:
        """Fail as :func:`scynet_al.checkpoint.save` does on a full disk."""
        from scynet_al.files import write_failure

        raise write_failure(path, "checkpoint", OSError(28, "No space left on device"))


def test_a_checkpoint_that_cannot_be_written_stops_the_campaign_in_words(
    tmp_path, client
):
    from scynet_al.errors import CampaignError

    config = make_config(campaign=campaign_overrides(budget={"max_points": 30}))
    with new_store(tmp_path, config) as store:
        campaign = Campaign(
            config, store, client,
            simulator=AnalyticSimulator.for_space(config.build_space()),
            surrogates=FullDiskSurrogates(),
        )  # fmt: skip
        with pytest.raises(CampaignError) as info:
            campaign.run()

    path = tmp_path / "campaign.h5.checkpoints" / "round-00001-13TeV.ckpt"
    assert str(info.value).startswith(
        f"refit failed: cannot write checkpoint {path}: No space left on device"
    )


class CalibratedKnn:
    """A kNN surrogate that says when its sigma was calibrated, and on what."""

    def __init__(self, model) -> None:
        self.model = model
        self.calibrated_on: np.ndarray | None = None

    def predict(self, U: np.ndarray, return_std: bool = False):
        """The kNN prediction; sigma doubled once calibrated."""
        if not return_std:
            return self.model.predict(U)
        mean, std = self.model.predict(U, return_std=True)
        return mean, std * (1.0 if self.calibrated_on is None else 2.0)

    def calibrate(self, U: np.ndarray, chi2: np.ndarray) -> CalibratedKnn:
        """Remember the points."""
        self.calibrated_on = np.array(U)
        return self


class CalibratedKnnSurrogates(KnnSurrogates):
    """kNN fits with a ``calibrate`` verb; every fit and every saved one is kept."""

    def __init__(self) -> None:
        super().__init__()
        self.fitted: list[CalibratedKnn] = []
        self.saved: list[bool] = []

    def fit(self, energy: int, round_: int, U: np.ndarray, chi2: np.ndarray):
        """A kNN fit, not yet calibrated."""
        self.fitted.append(CalibratedKnn(super().fit(energy, round_, U, chi2)))
        return self.fitted[-1]

    def save(self, path: Path, surrogate, **meta) -> None:
        """Note whether the fit was calibrated before it was saved, then save it."""
        self.saved.append(surrogate.calibrated_on is not None)
        super().save(path, surrogate, **meta)


def test_every_refit_is_calibrated_on_the_validation_points_before_it_is_saved(
    tmp_path, client
):
    config = make_config()
    surrogates = CalibratedKnnSurrogates()
    with new_store(tmp_path, config) as store:
        Campaign(
            config, store, client,
            simulator=AnalyticSimulator.for_space(config.build_space()),
            surrogates=surrogates,
        ).run()  # fmt: skip
        X_val, _ = store.validation_set(13)
        refits = [r for r in store.metrics() if r["kind"] == "refit"]

    assert surrogates.saved and all(surrogates.saved)
    last = surrogates.fitted[-1].calibrated_on
    np.testing.assert_allclose(last, config.build_space().to_unit(X_val))
    # The row holds the shares of sigma once rescaled (each by a factor learned on
    # the other half of the points), the factor and the shares of the spread as fitted.
    shares = refits[-1]["energies"]["13"]["ensemble"]["calibration"]
    assert set(shares) == {"within_1sigma", "within_2sigma", "sigma_scale", "raw"}
    assert set(shares["raw"]) == {"within_1sigma", "within_2sigma"}


class DiskFillsUpSurrogates(KnnSurrogates):
    """kNN fits whose checkpoint writes fail from the ``fail_from``-th on."""

    def __init__(self, fail_from: int) -> None:
        super().__init__()
        self.fail_from, self.saves = fail_from, 0

    def save(self, path: Path, surrogate, **meta) -> None:
        """Save, or fail as a full disk does once enough checkpoints were written."""
        from scynet_al.files import write_failure

        self.saves += 1
        if self.saves >= self.fail_from:
            raise write_failure(path, "checkpoint", OSError(28, "No space left"))
        super().save(path, surrogate, **meta)


def test_a_resume_refits_on_the_results_a_failed_last_refit_left_out(tmp_path, client):
    from scynet_al.errors import CampaignError

    config = make_config()
    simulator = AnalyticSimulator.for_space(config.build_space())
    with new_store(tmp_path, config) as store:
        first = Campaign(
            config, store, client, simulator=simulator,
            surrogates=DiskFillsUpSurrogates(fail_from=4),
        )  # fmt: skip
        with pytest.raises(CampaignError, match="No space left"):
            first.run()
    with CampaignStore.open(tmp_path / "campaign.h5", mode="a") as store:
        before = [r for r in store.metrics() if r["kind"] == "refit"]
        surrogates = KnnSurrogates()
        _, summary = run_with(config, store, client, simulator, surrogates)
        refits = [r for r in store.metrics() if r["kind"] == "refit"]
        counts = store.counts()

    # Three refits were saved and the last, on the whole budget, failed: the
    # resume has no point left to simulate and still folds in the results the
    # network has not seen.
    seen = sum(n for k, n in before[-1]["counts"].items() if k != "pending")
    assert len(before) == 3 and seen < 60
    assert surrogates.fits and len(refits) > len(before)
    assert refits[-1]["counts"] == counts and counts.get("pending", 0) == 0
    assert summary.stop_reason == "max_points"


def run_with(config, store, client, simulator, surrogates):
    """Run a campaign with the given surrogates; the campaign and its summary."""
    campaign = Campaign(
        config, store, client, simulator=simulator, surrogates=surrogates
    )
    return campaign, campaign.run()


def test_a_simulator_that_fails_every_point_stops_the_run_early(tmp_path, client):
    from scynet_al.campaign import ALL_FAILED_STOP
    from scynet_al.errors import CampaignError

    config = make_config(
        campaign=campaign_overrides(budget={"max_points": 200}, max_retries=0)
    )
    simulator = AnalyticSimulator.for_space(config.build_space(), fail_fraction=1.0)
    with new_store(tmp_path, config) as store:
        with pytest.raises(CampaignError) as info:
            run(config, store, client, simulator)
        counts = store.counts()
        final = store.metrics()[-1]

    assert str(info.value).startswith(
        f"the first {counts['failed']} results of this run all failed ("
    )
    assert "scynet-al resume" in str(info.value)
    # The run stops at the first check after the limit: a few more may have
    # finished by then, and most of the budget is left.
    assert ALL_FAILED_STOP <= counts["failed"] < ALL_FAILED_STOP + 10
    assert counts["ok"] == counts["rejected"] == 0
    assert sum(counts.values()) < 60
    assert final["final"] is True and final["stop_reason"] == "all_failed"
