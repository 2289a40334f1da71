"""Dask clients for a campaign: a LocalCluster, a running scheduler or a batch system.

Three ways to get workers, chosen from the config's ``dask`` section and the command
line (DESIGN.md "Scale-out"):

- ``--scheduler ADDRESS`` or ``dask.scheduler_address``: join a running scheduler;
- ``dask.cluster`` (kind ``slurm``, ``pbs`` or ``htcondor``): start a dask-jobqueue
  cluster with the section's settings and scale it to ``jobs`` batch jobs;
- otherwise a :class:`distributed.LocalCluster` with ``n_workers`` worker processes of
  ``threads_per_worker`` threads each.

The LocalCluster's worker processes are children of the daemon and share its
terminal's process group, so a Ctrl-C reaches them as well as the daemon. They
ignore SIGINT: the daemon alone decides how to stop (its drain lets running jobs
finish, then closes the cluster), and workers killed by the terminal would only
print tracebacks and lose the jobs the drain waits for.

Distributed is imported inside the functions so that importing this module stays
cheap (the CLI's ``--help``).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from scynet_al.errors import CampaignError

logger = logging.getLogger(__name__)

#: Config ``dask.cluster.kind`` to the dask-jobqueue class name.
JOBQUEUE_CLASSES: dict[str, str] = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "htcondor": "HTCondorCluster",
}


@dataclass
class ClusterHandle:
    """A connected client and, when this process started it, the cluster behind it.

    Attributes:
        client: The :class:`distributed.Client` the campaign submits to.
        cluster: The cluster object started here (LocalCluster or a jobqueue
            cluster), or ``None`` when joining a running scheduler.
        kind: ``"local"``, ``"scheduler"`` or the jobqueue kind.
    """

    client: Any
    cluster: Any
    kind: str

    def close(self) -> None:
        """Close the client, then the cluster when this process started it."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> ClusterHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def jobqueue_kwargs(cluster_settings: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for a dask-jobqueue cluster from a ``dask.cluster`` section.

    ``kind`` and ``jobs`` are consumed by :func:`connect`; ``queue`` is passed only
    when set; ``extra`` is merged in last, so any jobqueue keyword (``account``,
    ``job_extra_directives``, ``local_directory``, ...) can be given there.

    Args:
        cluster_settings: The section as a mapping (``kind``, ``jobs``, ``cores``,
            ``memory``, ``walltime``, ``queue``, ``extra``).

    Returns:
        The keyword arguments for the jobqueue cluster class.
    """
    kwargs: dict[str, Any] = {
        "cores": cluster_settings["cores"],
        "memory": cluster_settings["memory"],
        "walltime": cluster_settings["walltime"],
    }
    if cluster_settings.get("queue") is not None:
        kwargs["queue"] = cluster_settings["queue"]
    kwargs.update(dict(cluster_settings.get("extra") or {}))
    return kwargs


def connect(
    dask_settings: Any, *, scheduler_address: str | None = None
) -> ClusterHandle:
    """Start or join the Dask cluster a campaign runs on.

    Args:
        dask_settings: The config's ``dask`` section (attributes ``n_workers``,
            ``threads_per_worker``, ``scheduler_address``, ``cluster``) or a mapping
            with the same keys.
        scheduler_address: A scheduler to join (``tcp://host:8786``); overrides
            the config.

    Returns:
        The client with the cluster started here, if any.

    Raises:
        CampaignError: The scheduler address is malformed or cannot be reached,
            or the cluster kind is unknown.
    """
    settings = _as_mapping(dask_settings)
    address = scheduler_address
    if address is None:
        address = settings.get("scheduler_address")
    if address is not None:  # an empty address is refused, not taken for none
        return _join_scheduler(address)
    if settings.get("cluster"):
        return _start_jobqueue(_as_mapping(settings["cluster"]))
    return _start_local(
        int(settings.get("n_workers", 2)), int(settings.get("threads_per_worker", 1))
    )


def _join_scheduler(address: str) -> ClusterHandle:
    from distributed import Client

    check_scheduler_address(address)
    try:
        client = Client(address, timeout="30s")
    except OSError as exc:
        raise CampaignError(
            f"cannot reach the Dask scheduler at {address}: {exc}"
        ) from exc
    logger.info("joined scheduler %s; dashboard %s", address, client.dashboard_link)
    return ClusterHandle(client=client, cluster=None, kind="scheduler")


def check_scheduler_address(address: str) -> None:
    """Refuse an address that names no Dask scheduler before anything connects.

    A scheduler listens at ``tcp://host:port`` (``tls://``, ``ws://`` ... too;
    a bare ``host:port`` means tcp). Its dashboard's ``http://host:8787`` is a web
    page, not the scheduler.

    Raises:
        CampaignError: No port, an unknown scheme or no host; names the address.
    """
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(address)
        get_backend(scheme)
        host, _ = parse_host_port(location)
    except ValueError as exc:
        raise CampaignError(
            f"{address!r} is not a Dask scheduler address ({exc}); give one such as "
            f"tcp://host:8786, the address the scheduler prints at start (its "
            f"dashboard's http:// address is not it)"
        ) from exc
    if not host:
        raise CampaignError(
            f"{address!r} is not a Dask scheduler address: it names no host; give "
            f"one such as tcp://host:8786"
        )


def _start_jobqueue(cluster_settings: Mapping[str, Any]) -> ClusterHandle:
    import dask_jobqueue
    from distributed import Client

    kind = cluster_settings["kind"]
    if kind not in JOBQUEUE_CLASSES:
        raise CampaignError(
            f"dask.cluster.kind {kind!r} unknown; expected one of {sorted(JOBQUEUE_CLASSES)}"
        )
    cluster_cls = getattr(dask_jobqueue, JOBQUEUE_CLASSES[kind])
    cluster = cluster_cls(**jobqueue_kwargs(cluster_settings))
    cluster.scale(jobs=int(cluster_settings.get("jobs", 1)))
    client = Client(cluster)
    logger.info(
        "started %s with %s batch jobs; dashboard %s",
        JOBQUEUE_CLASSES[kind],
        cluster_settings.get("jobs", 1),
        client.dashboard_link,
    )
    return ClusterHandle(client=client, cluster=cluster, kind=kind)


def _start_local(n_workers: int, threads_per_worker: int) -> ClusterHandle:
    import dask
    from distributed import Client, LocalCluster

    # Workers run this module's dask_setup, after any preloads the user configured.
    preload = [*dask.config.get("distributed.worker.preload", []), __name__]
    logger.info(
        "starting %d local workers; a Ctrl-C while they start (a few seconds) is "
        "ignored",
        n_workers,
    )
    with _sigint_ignored():
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=":0",
            preload=preload,
        )
    client = Client(cluster)
    logger.info(
        "started LocalCluster with %d workers x %d threads; dashboard %s",
        n_workers,
        threads_per_worker,
        client.dashboard_link,
    )
    return ClusterHandle(client=client, cluster=cluster, kind="local")


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT in this process while the block runs, then restore the handler.

    Worker processes spawned meanwhile start with SIGINT ignored: an ignored signal
    stays ignored across fork and exec, Python then installs no KeyboardInterrupt
    handler at start-up, and the asyncio runner of a Dask worker none of its own.
    A Ctrl-C during the block (the few seconds the workers take to start) is lost;
    the next one is handled as usual. Outside the main thread, where signal
    handlers cannot be set, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        # None: a handler not set from Python; the interpreter's default stands in.
        signal.signal(
            signal.SIGINT, signal.default_int_handler if previous is None else previous
        )


def dask_setup(worker: Any) -> None:
    """Preload hook of the LocalCluster's workers: leave SIGINT to the daemon.

    A worker started by :func:`_start_local` inherits an ignored SIGINT already. One
    that its nanny restarts later (after a crash) is spawned while the daemon
    handles SIGINT, so it ignores the signal here, once it has started; a Ctrl-C in
    the second or two before that still stops it.

    Args:
        worker: The :class:`distributed.Worker` being started (unused).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _as_mapping(section: Any) -> dict[str, Any]:
    if section is None:
        return {}
    if isinstance(section, Mapping):
        return dict(section)
    if hasattr(section, "model_dump"):
        return section.model_dump()
    return dict(vars(section))
