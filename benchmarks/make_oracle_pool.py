"""Produce (or continue) the oracle pool of the pool-based benchmark with the daemon.

Usage::

    python benchmarks/make_oracle_pool.py [--store benchmarks/data/oracle_pool_13tev.h5]
        [--config configs/oracle_pool.yaml] [--scheduler ADDRESS] [--dry-run]

A missing store is started with ``scynet-al run CONFIG --store STORE``; an existing
one is continued with ``scynet-al resume STORE`` (pending points re-run, nothing
stored is lost), so the script can be stopped (Ctrl-C) and started again as often
as needed. The run is long: with the shipped config, 19 000 prior draws of which
~32 % pass pre-selection, each ok point 2.6-4.3 s of simulation (idle or busy
machine), 2 workers: 2-3.5 hours (see the config's comments). ``--dry-run`` prints the command and the
estimate without running anything.

The default store is the pool kept in the repository
(``benchmarks/data/oracle_pool_13tev.h5``), so running the script without arguments
continues it from where it was last stopped. The progress refits' checkpoints are
not kept with it; a resume without them refits at the next refit.

Before committing a grown pool, ``python benchmarks/repack_pool.py STORE`` compresses
it (15 MB to 4 MB at 10 000 points); it still resumes afterwards.

Then: ``python benchmarks/pool_benchmark.py STORE``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

#: The pool kept in the repository (under 20 MB).
DEFAULT_STORE = REPO / "benchmarks" / "data" / "oracle_pool_13tev.h5"

#: Share of uniform pMSSM-11 draws passing the built-in pre-selection: 565 of the
#: first 1 759 pool points.
PASS_RATE = 0.32

#: Worker time per ok point with the config's reduced event statistics, the
#: rejected draws' share included (s): 248 ok points in 5.4 min on 2 workers with
#: the machine otherwise idle. It was 4.3 s over the first 565 ok pool points,
#: while the machine did other work too.
SECONDS_PER_OK_POINT = 2.6

#: The benchmark needs at least this many ok points (1 000 test + 4 000 candidates).
MIN_OK_POINTS = 5000


def main(argv: list[str] | None = None) -> int:
    """Run or resume the pool campaign; print the estimate and the final counts."""
    args = _parser().parse_args(argv)
    print(f"machine: {os.cpu_count()} cpus, {platform.platform()}")
    config = _load(args.config)
    _print_estimate(config, args.store)
    command = _command(args)
    print("command:", " ".join(command))
    if args.dry_run:
        return 0

    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        print(f"campaign exited with code {completed.returncode}", file=sys.stderr)
        return completed.returncode
    return _report(args.store, int(config.campaign.budget.max_points))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE)
    parser.add_argument(
        "--config", type=Path, default=REPO / "configs" / "oracle_pool.yaml"
    )
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the command and estimate only"
    )
    return parser


def _load(path: Path) -> Any:
    from scynet_al.config import load_config

    return load_config(path)


def _command(args: argparse.Namespace) -> list[str]:
    cli = [sys.executable, "-m", "scynet_al.cli"]
    if args.store.exists():
        command = [*cli, "resume", str(args.store)]
    else:
        command = [*cli, "run", str(args.config), "--store", str(args.store)]
    if args.scheduler:
        command += ["--scheduler", args.scheduler]
    return command


def _print_estimate(config: Any, store: Path) -> None:
    max_points = int(config.campaign.budget.max_points)
    done = _counts(store) if store.exists() else {}
    left = max(0, max_points - sum(done.values()))
    workers = int(config.dask.n_workers) * int(config.dask.threads_per_worker)
    hours = left * PASS_RATE * SECONDS_PER_OK_POINT / workers / 3600.0
    print(
        f"pool {store}: {done.get('ok', 0)} ok of {sum(done.values())} stored; "
        f"{left} of {max_points} draws to go, expected {left * PASS_RATE:.0f} more ok "
        f"points in about {hours:.1f} h on {workers} workers"
    )


def _counts(store: Path) -> dict[str, int]:
    from scynet_al.store import CampaignStore

    with CampaignStore.open(store, mode="r") as pool:
        return pool.counts()


def _report(store: Path, max_points: int) -> int:
    counts = _counts(store)
    print(json.dumps({"store": str(store), "counts": counts}))
    ok = counts.get("ok", 0)
    if ok >= MIN_OK_POINTS:
        return 0
    if counts.get("pending", 0) or sum(counts.values()) < max_points:
        print(
            f"{ok} of the {MIN_OK_POINTS} ok points needed: run this script again to continue"
        )
    else:
        print(
            f"budget spent with only {ok} ok points, fewer than {MIN_OK_POINTS}: raise "
            "campaign.budget.max_points in the stored config (run the edited config on "
            "the store) and run this script again"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
