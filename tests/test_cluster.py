"""Tests of the Dask connection choices: LocalCluster, scheduler address, jobqueue."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import dask_jobqueue
import numpy as np
import pytest

from scynet_al import cluster
from scynet_al.campaign import Campaign
from scynet_al.config import DaskConfig
from scynet_al.errors import CampaignError
from scynet_al.store import CampaignStore
from tests.sim_doubles import AnalyticSimulator, KnnSurrogates

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"

REPO = Path(__file__).resolve().parents[1]


class _RecordingCluster:
    """Stands in for a jobqueue cluster class; records what it was given."""

    instances: ClassVar[list[_RecordingCluster]] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.scaled = None
        _RecordingCluster.instances.append(self)

    def scale(self, *, jobs):
        self.scaled = jobs


class _RecordingClient:
    dashboard_link = "http://127.0.0.1:0/status"

    def __init__(self, target, **kwargs):
        self.target = target


@pytest.fixture
def recorded(monkeypatch):
    _RecordingCluster.instances.clear()
    for name in cluster.JOBQUEUE_CLASSES.values():
        monkeypatch.setattr(dask_jobqueue, name, type(name, (_RecordingCluster,), {}))
    monkeypatch.setattr("distributed.Client", _RecordingClient)
    return _RecordingCluster.instances


@pytest.mark.parametrize(
    ("kind", "class_name"),
    [("slurm", "SLURMCluster"), ("pbs", "PBSCluster"), ("htcondor", "HTCondorCluster")],
)
def test_jobqueue_class_gets_config_settings(recorded, kind, class_name):
    settings = DaskConfig.model_validate(
        {
            "cluster": {
                "kind": kind,
                "jobs": 3,
                "cores": 8,
                "memory": "16GB",
                "walltime": "48:00:00",
                "queue": "long",
                "extra": {"account": "susy"},
            }
        }
    )

    handle = cluster.connect(settings)

    (made,) = recorded
    assert type(made).__name__ == class_name
    assert made.kwargs == {
        "cores": 8,
        "memory": "16GB",
        "walltime": "48:00:00",
        "queue": "long",
        "account": "susy",
    }
    assert made.scaled == 3
    assert handle.kind == kind and handle.client.target is made


def test_queue_left_out_when_not_set(recorded):
    settings = {
        "cluster": {
            "kind": "slurm",
            "jobs": 1,
            "cores": 2,
            "memory": "4GB",
            "walltime": "1:00:00",
        }
    }

    cluster.connect(settings)

    assert "queue" not in recorded[0].kwargs


def test_scheduler_address_overrides_cluster(recorded):
    settings = DaskConfig.model_validate({"cluster": {"kind": "pbs"}})

    handle = cluster.connect(settings, scheduler_address="tcp://127.0.0.1:1")

    assert recorded == []
    assert handle.kind == "scheduler" and handle.client.target == "tcp://127.0.0.1:1"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("not-a-url", "missing port number"),
        ("tcp://scheduler-host", "missing port number"),
        ("http://127.0.0.1:8787", "unknown address scheme 'http'"),
        ("tcp://:8786", "it names no host"),
        ("", "missing port number"),
    ],
)
def test_a_malformed_scheduler_address_is_refused_before_connecting(
    recorded, address, why
):
    with pytest.raises(CampaignError) as info:
        cluster.connect({}, scheduler_address=address)

    assert str(info.value).startswith(f"{address!r} is not a Dask scheduler address")
    assert why in str(info.value) and "tcp://host:8786" in str(info.value)
    assert recorded == []


def test_run_with_a_dashboard_address_ends_in_one_line_and_no_store(tmp_path, capsys):
    from scynet_al.cli import main as cli_main

    store = tmp_path / "q.h5"
    code = cli_main(
        ["run", str(QUICKSTART), "--store", str(store),
         "--scheduler", "http://127.0.0.1:8787"]
    )  # fmt: skip

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "'http://127.0.0.1:8787' is not a Dask scheduler address" in err[0]
    assert not store.exists()


def test_local_cluster_by_default():
    with cluster.connect({"n_workers": 1, "threads_per_worker": 2}) as handle:
        info = handle.client.scheduler_info()
        assert handle.kind == "local"
        assert [w["nthreads"] for w in info["workers"].values()] == [2]


def test_local_cluster_workers_leave_sigint_to_the_daemon():
    # A terminal's Ctrl-C reaches the whole process group: the workers must ignore
    # it, also one that its nanny restarts after a crash; the daemon keeps its
    # own handler.
    before = signal.getsignal(signal.SIGINT)
    with cluster.connect({"n_workers": 1, "threads_per_worker": 1}) as handle:
        client = handle.client
        ((first, pid),) = client.run(os.getpid).items()
        first_ignores = client.run(_IGNORES_SIGINT)[first]
        os.kill(pid, signal.SIGKILL)
        restarted = _wait_for_a_new_worker(client, first, timeout=60)
        restarted_ignores = client.run(_IGNORES_SIGINT)[restarted]

    assert signal.getsignal(signal.SIGINT) is before
    assert (first_ignores, restarted_ignores) == (True, True)


# A lambda travels to the worker by value. A function would travel by name and import
# this module there, and with it dask_jobqueue, whose import sets a SIGINT handler.
_IGNORES_SIGINT = lambda: signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # noqa: E731


def _wait_for_a_new_worker(client, old: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        workers = set(client.nthreads()) - {old}
        if workers:
            return workers.pop()
        assert time.monotonic() < deadline, "the nanny did not restart its worker"
        time.sleep(0.2)


def _dask_process(args: list[str], log) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), env.get("PYTHONPATH")])
    )
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )


def _wait_for_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.1)


@pytest.fixture
def loopback_scheduler(tmp_path):
    """A real scheduler and two worker processes on 127.0.0.1; yields (file, workers)."""
    scheduler_file = tmp_path / "scheduler.json"
    processes = []
    with (tmp_path / "dask.log").open("ab") as log:
        try:
            processes.append(
                _dask_process(
                    ["scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                    log,
                )
            )  # fmt: skip
            _wait_for_file(scheduler_file, 60)
            workers = [
                _dask_process(
                    ["worker", "--scheduler-file", str(scheduler_file), "--host",
                     "127.0.0.1", "--nthreads", "1", "--no-nanny", "--no-dashboard",
                     "--name", f"w{k}"],
                    log,
                )
                for k in range(2)
            ]  # fmt: skip
            processes.extend(workers)
            yield scheduler_file, workers
        finally:
            for process in processes:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def test_campaign_joins_scheduler_and_survives_a_killed_worker(
    tmp_path, loopback_scheduler
):
    scheduler_file, workers = loopback_scheduler
    address = json.loads(scheduler_file.read_text())["address"]
    config = _campaign_config(max_points=24)
    space = config.build_space()
    simulator = AnalyticSimulator.for_space(space, sleep_s=0.4)
    killed = {}

    def kill_a_busy_worker(point_id, result):
        """Kill worker w0 the first time it is seen running a job."""
        if killed:
            return
        info = handle.client.scheduler_info(n_workers=-1)["workers"]
        victim = next(a for a, w in info.items() if w["name"] == "w0")
        running = handle.client.processing([victim]).get(victim, [])
        if running:
            killed["keys"] = running
            os.killpg(workers[0].pid, signal.SIGKILL)

    with _campaign_on_scheduler(
        tmp_path, config, address, simulator, on_result=kill_a_busy_worker
    ) as (campaign, store, handle):
        summary = campaign.run()
        table = store.table()

    assert handle.kind == "scheduler"
    assert killed["keys"], "the killed worker was running a job"
    assert summary.stop_reason == "max_points"
    assert sorted(table["id"]) == list(range(24))
    assert set(table["status"]) == {"ok"}
    assert np.all(table["attempts"] == 1)


def test_stopping_does_not_wait_for_workers_that_are_gone(tmp_path, loopback_scheduler):
    # Workers the daemon did not start may die of the same Ctrl-C (or of anything
    # else) while it stops: their jobs cannot finish, so the grace period is not
    # spent waiting for them, and their points stay pending for the next run.
    scheduler_file, workers = loopback_scheduler
    address = json.loads(scheduler_file.read_text())["address"]
    config = _campaign_config(max_points=24, grace_period_s=300)
    space = config.build_space()
    simulator = AnalyticSimulator.for_space(space, sleep_s=300.0)

    with _campaign_on_scheduler(tmp_path, config, address, simulator) as (
        campaign,
        store,
        handle,
    ):
        stopper = threading.Thread(
            target=_stop_and_kill_when_busy, args=(campaign, handle.client, workers)
        )
        stopper.start()
        started = time.monotonic()
        summary = campaign.run()
        stopped_after = time.monotonic() - started
        stopper.join(timeout=60)
        table = store.table()
        pending_ids = store.pending()[0]

    assert summary.stop_reason == "interrupted"
    assert stopped_after < 120, "waited for jobs whose workers were gone"
    assert set(table["status"]) == {"pending"}
    assert sorted(pending_ids) == sorted(table["id"]) == list(range(8))


@contextlib.contextmanager
def _campaign_on_scheduler(tmp_path, config, address, simulator, **options):
    """A campaign on the running scheduler at ``address`` once its two workers are
    there, with its new store and the connection: ``(campaign, store, handle)``."""
    with (
        CampaignStore.create(
            tmp_path / "c.h5",
            config_text=config.text,
            space=config.build_space(),
            energies=[13],
            analyses={13: ["analytic"]},
        ) as store,
        cluster.connect(config.dask, scheduler_address=address) as handle,
    ):
        handle.client.wait_for_workers(2, timeout=60)
        campaign = Campaign(
            config, store, handle.client, simulator=simulator,
            surrogates=KnnSurrogates(), **options,
        )  # fmt: skip
        yield campaign, store, handle


def _stop_and_kill_when_busy(campaign, client, workers, timeout: float = 60) -> None:
    """Once both workers run a job: ask the campaign to stop, then kill the workers."""
    deadline = time.monotonic() + timeout
    while sum(map(bool, client.processing().values())) < 2:
        if time.monotonic() > deadline:
            campaign.request_stop()
            return
        time.sleep(0.1)
    campaign.request_stop()
    time.sleep(0.5)  # into the drain
    for process in workers:
        os.killpg(process.pid, signal.SIGKILL)


def _campaign_config(max_points: int, grace_period_s: float = 5):
    from scynet_al.config import parse_config

    return parse_config(
        f"""
campaign:
  min_validation_count: 3
  in_flight: 4
  refit_every: 8
  points_per_round: 8
  grace_period_s: {grace_period_s}
  budget: {{max_points: {max_points}}}
space: {{model: pmssm11}}
proposer: {{candidate_pool: 300, min_distance: 0.01}}
"""
    )
