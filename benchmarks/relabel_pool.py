"""Label a pool's ok points again with the built-in chain's default event statistics.

Usage::

    python benchmarks/relabel_pool.py POOL.h5 --out LABELS.jsonl [--jobs 2]
        [--setting KEY=VALUE ...] [--limit N]

The oracle pool was labelled with reduced event statistics (its config: at most
1 000 events per production group, twice the expected number) to make it in
hours rather than a day. Those labels scatter by about 9 in χ² near the exclusion
boundary and sit low there: a signal with a large Monte Carlo error weakens the
exclusion, so points that the default statistics put at the cap of 100 come out at
75-92. This script simulates every ok point of the pool again with the built-in
backend's default settings (8x the expected events, 500-4 000 per group), so the
benchmarks can train and test on labels of the quality a campaign with the
default config produces. Adaptive refinement near the boundary is off unless
asked for (``--setting refine_target_error=0.5``): it costs about four minutes of
CPU per refined point.

Each point gets a fresh seed derived from its stored seed, so its new label's
Monte Carlo noise is independent of the stored one. Points are done in the order
of the seed-0 split of ``bench_knn_builtin.py`` (its test points first), one JSON
line per point appended as soon as it is done: ``id``, ``status``, ``reason``,
``chi2`` (at the pool's energy), ``mc_error`` (the chain's bootstrap estimate of
that χ²'s Monte Carlo error), ``cpu_s`` and ``seed``. An interrupted run continues
where it stopped when started again with the same ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Second word of the seed sequence that derives a point's relabelling seed from its
#: stored one (any fixed number other than the campaign's own derivation).
RELABEL_STREAM = 20261204


def relabel_seed(stored_seed: int) -> int:
    """The seed of a point's new label: independent of ``stored_seed``'s stream."""
    state = np.random.SeedSequence([int(stored_seed), RELABEL_STREAM]).generate_state(1)
    return int(state[0])


def simulate_point(
    settings: dict[str, Any], point: dict[str, float], seed: int, energy: int
) -> dict[str, Any]:
    """One point through the built-in chain; the fields of one output line."""
    from simulators.backends import make_simulator

    simulator = make_simulator("builtin", settings)
    start = time.process_time()
    with tempfile.TemporaryDirectory() as workdir:
        result = simulator.simulate(point, seed=seed, workdir=Path(workdir))
    refinement = result.extra.get(f"refinement_{energy}", {})
    chi2 = result.chi2.get(energy)
    return {
        "status": result.status,
        "reason": result.reason,
        "chi2": None if chi2 is None else float(chi2),
        "mc_error": refinement.get("mc_error"),
        "cpu_s": time.process_time() - start,
        "seed": seed,
    }


def pool_points(pool: Path) -> tuple[list[dict[str, Any]], int]:
    """The pool's ok points in the seed-0 split order, and the pool's energy (TeV)."""
    from scynet_al.store import CampaignStore

    with CampaignStore.open(pool, mode="r") as store:
        table = store.table()
        names = store.space.names
        energy = int(store.energies[0])
    ok = np.flatnonzero(table["status"] == "ok")
    finite = np.isfinite(table["chi2"][ok, 0])
    ok = ok[finite]
    order = np.random.default_rng(0).permutation(len(ok))
    points = [
        {
            "id": int(table["id"][i]),
            "seed": relabel_seed(int(table["seed"][i])),
            "point": dict(zip(names, map(float, table["parameters"][i]), strict=True)),
        }
        for i in ok[order]
    ]
    return points, energy


def done_ids(out: Path) -> set[int]:
    """Ids already in ``out``; a last line cut short by a kill is dropped."""
    if not out.exists():
        return set()
    lines = out.read_text().splitlines()
    ids = set()
    for number, line in enumerate(lines, start=1):
        try:
            ids.add(int(json.loads(line)["id"]))
        except (json.JSONDecodeError, KeyError, TypeError):
            if number != len(lines):
                raise SystemExit(
                    f"{out}: line {number} is not a label record"
                ) from None
    if lines and not lines[-1].endswith("}"):
        out.write_text("\n".join(lines[:-1]) + ("\n" if len(lines) > 1 else ""))
    return ids


def read_labels(path: Path) -> dict[int, float]:
    """The ok labels of a file this script wrote: point id -> chi2."""
    labels = {}
    for line in Path(path).read_text().splitlines():
        record = json.loads(line)
        if record["status"] == "ok" and record["chi2"] is not None:
            labels[int(record["id"])] = float(record["chi2"])
    return labels


def main(argv: list[str] | None = None) -> int:
    """Relabel the pool's ok points, appending to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="points at most")
    parser.add_argument(
        "--setting", action="append", default=[], metavar="KEY=VALUE",
        help="built-in backend setting (VALUE read as JSON); repeatable",
    )  # fmt: skip
    args = parser.parse_args(argv)

    points, energy = pool_points(args.pool)
    settings: dict[str, Any] = {
        "energies_tev": [energy],
        "compute_features": False,
        "refine_target_error": None,
    }
    for item in args.setting:
        key, _, value = item.partition("=")
        settings[key] = json.loads(value)
    done = done_ids(args.out)
    todo = [p for p in points[: args.limit] if p["id"] not in done]
    print(
        f"machine: {os.cpu_count()} cpus, {platform.platform()}; {args.pool}: "
        f"{len(points)} ok points at {energy} TeV, {len(done)} done, {len(todo)} to do; "
        f"settings {settings}",
        flush=True,
    )
    _run(todo, settings, energy, args.out, args.jobs)
    return 0


def _run(
    todo: list[dict[str, Any]],
    settings: dict[str, Any],
    energy: int,
    out: Path,
    jobs: int,
) -> None:
    start, cpu, count = time.monotonic(), 0.0, 0
    queue = iter(todo)
    with ProcessPoolExecutor(max_workers=jobs) as executor, out.open("a") as sink:
        running = {}
        for item in queue:
            running[_submit(executor, settings, item, energy)] = item
            if len(running) >= 2 * jobs:
                break
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                item = running.pop(future)
                record = {"id": item["id"], **future.result()}
                sink.write(json.dumps(record) + "\n")
                sink.flush()
                cpu, count = cpu + record["cpu_s"], count + 1
                following = next(queue, None)
                if following is not None:
                    running[_submit(executor, settings, following, energy)] = following
            if count and count % 50 < len(finished):
                elapsed = time.monotonic() - start
                print(
                    f"{count} of {len(todo)} done, {elapsed / 60:.1f} min, "
                    f"{cpu / count:.2f} CPU s per point",
                    flush=True,
                )
    print(f"finished: {count} points, {cpu:.0f} CPU s", flush=True)


def _submit(executor, settings, item, energy):
    return executor.submit(
        simulate_point, settings, item["point"], item["seed"], energy
    )


if __name__ == "__main__":
    sys.exit(main())
