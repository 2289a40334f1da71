"""Tests of the Dask connection choices: LocalCluster, scheduler address, jobqueue."""

from __future__ import annotations

from typing import ClassVar

import dask_jobqueue
import pytest

from scynet_al import cluster
from scynet_al.config import DaskConfig


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


def test_local_cluster_by_default():
    with cluster.connect({"n_workers": 1, "threads_per_worker": 2}) as handle:
        info = handle.client.scheduler_info()
        assert handle.kind == "local"
        assert [w["nthreads"] for w in info["workers"].values()] == [2]
