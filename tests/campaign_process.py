"""A campaign on the analytic test simulator run as its own process, for kill tests.

Usage: ``python -m tests.campaign_process CONFIG STORE [--scheduler ADDRESS]
[--sleep SECONDS]``. Creates the store if it is missing, else continues it; the
simulator and surrogates are the test stand-ins of :mod:`tests.sim_doubles`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from scynet_al.campaign import Campaign, install_signal_handlers
from scynet_al.cluster import ClusterHandle, connect
from scynet_al.commands.run import open_or_create_store
from scynet_al.config import load_config
from tests.sim_doubles import AnalyticSimulator, KnnSurrogates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("store", type=Path)
    parser.add_argument("--scheduler", default=None)
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--reject", type=float, default=0.1)
    parser.add_argument(
        "--thread-workers",
        action="store_true",
        help="run the workers as threads of this process (fast start)",
    )
    parser.add_argument(
        "--ensembles", action="store_true", help="fit the default network ensembles"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    config = load_config(args.config)
    simulator = AnalyticSimulator.for_space(
        config.build_space(), sleep_s=args.sleep, reject_fraction=args.reject
    )
    with (
        open_or_create_store(config, args.store, simulator) as store,
        _cluster(config, args) as handle,
    ):
        campaign = Campaign(
            config,
            store,
            handle.client,
            simulator=simulator,
            surrogates=None if args.ensembles else KnnSurrogates(),
        )
        install_signal_handlers(campaign)
        summary = campaign.run()
    print(json.dumps(summary.to_json()))
    return 0


def _cluster(config, args) -> ClusterHandle:
    if not args.thread_workers:
        return connect(config.dask, scheduler_address=args.scheduler)
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=config.dask.n_workers, processes=False, dashboard_address=":0"
    )
    return ClusterHandle(client=Client(cluster), cluster=cluster, kind="local")


if __name__ == "__main__":
    sys.exit(main())
