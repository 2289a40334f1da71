"""How busy the daemon keeps its workers: 1-second simulations on 2 workers, refits included.

Runs a campaign of ``--jobs`` points with a simulator that sleeps ``--sleep`` seconds
per point on a LocalCluster of 2 single-thread worker processes, refitting the
default network ensemble (small settings) every ``--refit-every`` results. From the
per-job start and stop times the workers record, it prints the busy fraction:
summed job time over (workers x the span from the first job start to the last job
stop). Usage: ``python benchmarks/bench_daemon.py [--jobs 200]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CONFIG = """
campaign:
  seed: 1
  target_mean_abs_error: 0.001
  min_validation_count: 5
  in_flight: {in_flight}
  refit_every: {refit_every}
  points_per_round: {per_round}
  budget: {{max_points: {jobs}, max_wall_time_hours: 2.0}}
space: {{model: pmssm11}}
surrogate: {{ensemble_size: 3, max_epochs: 100, patience: 10}}
proposer: {{candidate_pool: 5000}}
dask: {{n_workers: 2, threads_per_worker: 1}}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--refit-every", type=int, default=25)
    parser.add_argument("--in-flight", type=int, default=8)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))

    from scynet_al.campaign import Campaign
    from scynet_al.cluster import connect
    from scynet_al.config import parse_config
    from scynet_al.store import CampaignStore
    from tests.sim_doubles import AnalyticSimulator

    config = parse_config(
        CONFIG.format(
            jobs=args.jobs,
            refit_every=args.refit_every,
            per_round=args.refit_every,
            in_flight=args.in_flight,
        )
    )
    space = config.build_space()
    simulator = AnalyticSimulator.for_space(space, sleep_s=args.sleep)
    jobs: list[tuple[str, float, float]] = []

    def on_result(point_id, result):
        job = result.extra["job"]
        jobs.append((job["worker"], job["start"], job["stop"]))

    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(tmp) / "bench.h5"
        start = time.monotonic()
        with (
            CampaignStore.create(
                store_path,
                config_text=config.text,
                space=space,
                energies=[13],
                analyses={13: ["analytic"]},
            ) as store,
            connect(config.dask) as handle,
        ):
            campaign = Campaign(
                config, store, handle.client, simulator=simulator, on_result=on_result
            )
            summary = campaign.run()
            refits = [r for r in store.metrics() if r.get("kind") == "refit"]
        wall = time.monotonic() - start

    report(jobs, refits, summary, wall, args, config.dask.n_workers)
    return 0


def report(jobs, refits, summary, wall, args, n_workers: int) -> None:
    """Print the busy fraction of all ``n_workers`` configured workers and the machine.

    A worker that never got a job counts as idle, so the fraction cannot look
    better by leaving one out.
    """
    first = min(s for _, s, _ in jobs)
    last = max(e for _, _, e in jobs)
    busy = sum(e - s for _, s, e in jobs)
    workers = sorted({w for w, _, _ in jobs})
    fraction = busy / (n_workers * (last - first))
    fit_s = [r["fit_seconds"] for r in refits]
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"jobs: {len(jobs)} of {args.sleep:g} s on {len(workers)} of {n_workers} workers, in_flight {args.in_flight}"
    )
    print(
        f"refits: {len(refits)} (fit time mean {sum(fit_s) / max(len(fit_s), 1):.1f} s, max {max(fit_s, default=0):.1f} s)"
    )
    print(
        f"span first start -> last stop: {last - first:.1f} s; run wall time {wall:.1f} s"
    )
    print(f"busy fraction: {fraction:.3f}")
    print(f"stop reason: {summary.stop_reason}")


if __name__ == "__main__":
    sys.exit(main())
