"""Monte Carlo noise of a pool's labels, per χ² region, and whether they reproduce.

Usage::

    python benchmarks/pool_label_noise.py POOL.h5 [--per-region 8] [--jobs 2]

Draws up to ``--per-region`` ok points of every χ² region (the regions of the
pool's config), simulates each again with the pool's own simulator settings and
the point's stored seed, and prints per region:

- the bootstrap estimate of the χ² Monte Carlo error of one label (the spread
  that the finite event sample causes; see :mod:`simulators.tally`), its mean and
  largest value, and the mean |Δχ²| that this noise alone puts between a perfect
  surrogate and the labels, about 0.8 × the error for Gaussian noise: the floor
  below which no network's error on these labels can go;
- the largest |χ²_again − χ²_stored|: zero up to rounding when the chain
  reproduces its labels from the seed.

Adaptive refinement is switched off: the noise measured is that of the labels as
the pool made them (its config predates refinement or switches it off).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pool_benchmark import regions_of_config


def _again(backend: str, settings: dict, point: dict, seed: int) -> tuple:
    from simulators.backends import make_simulator

    simulator = make_simulator(backend, settings)
    start = time.process_time()
    with tempfile.TemporaryDirectory() as workdir:
        result = simulator.simulate(point, seed=seed, workdir=Path(workdir))
    energy = next(iter(result.chi2), None)
    info = result.extra.get(f"refinement_{energy}", {})
    return (
        result.status,
        result.chi2.get(energy, np.nan),
        info.get("mc_error", np.nan),
        time.process_time() - start,
    )


def main(argv: list[str] | None = None) -> int:
    """Print the per-region label noise of a pool."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pool", type=Path)
    parser.add_argument("--per-region", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="which points are drawn")
    args = parser.parse_args(argv)

    from scynet_al.config import parse_config
    from scynet_al.store import CampaignStore

    with CampaignStore.open(args.pool, "r") as store:
        config = parse_config(store.config_text, source=f"{args.pool} (stored config)")
        table = store.table()
        names = store.space.names
        energy = store.energies[0]
        config_text = store.config_text
        analyses = store.analyses.get(energy)
    regions = regions_of_config(config_text, energy, analyses)
    settings = dict(config.simulator.settings, refine_target_error=None)
    ok = np.flatnonzero(table["status"] == "ok")
    chi2 = table["chi2"][ok, 0]
    rng = np.random.default_rng(args.seed)
    chosen = []
    labels = regions.classify(chi2)
    for region in regions.names:
        members = np.flatnonzero(labels == region)
        picks = rng.permutation(members)[: args.per_region]
        chosen.extend((region, int(i)) for i in picks)
    jobs = [
        (
            config.simulator.backend,
            settings,
            dict(zip(names, map(float, table["parameters"][ok[i]]), strict=True)),
            int(table["seed"][ok[i]]),
        )
        for _, i in chosen
    ]
    print(f"pool {args.pool}: {len(ok)} ok points; simulating {len(jobs)} again")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(_again, *zip(*jobs, strict=True)))
    print(
        f"{'region':>8} {'n':>3} {'stored chi2':>16} {'MC error mean':>14} "
        f"{'max':>6} {'noise floor':>12} {'max |again-stored|':>19} {'CPU s':>6}"
    )
    for region in regions.names:
        rows = [
            (i, run) for (r, i), run in zip(chosen, runs, strict=True) if r == region
        ]
        if not rows:
            print(f"{region:>8}   0")
            continue
        stored = np.array([chi2[i] for i, _ in rows])
        again = np.array([run[1] for _, run in rows])
        error = np.array([run[2] for _, run in rows])
        cpu = np.array([run[3] for _, run in rows])
        print(
            f"{region:>8} {len(rows):>3} {stored.min():7.2f}-{stored.max():<7.2f} "
            f"{error.mean():>14.3f} {error.max():>6.2f} "
            f"{0.8 * error.mean():>12.3f} {np.max(np.abs(again - stored)):>19.2e} "
            f"{cpu.mean():>6.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
