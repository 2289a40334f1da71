"""Time the campaign store: 10^5 points added in batches of 100, then recorded.

Run by hand: ``python benchmarks/bench_store.py [N_POINTS]``. Prints the time per
``add_pending`` batch and per ``record`` call (each record flushes twice, which is
what makes it durable), the time a reader needs to read the whole table, the file
size, and the machine it ran on. Compare ratios within one run, not absolute times
across machines.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sampler.space import pmssm11
from scynet_al.store import KEY_MASS_PDGS, CampaignStore
from simulators.result import SimulationResult

ANALYSES = {13: [f"analysis_{k}" for k in range(12)]}


def typical_result(i: int) -> SimulationResult:
    """An ok result shaped like the built-in simulator's."""
    return SimulationResult(
        "ok",
        chi2={13: float(i % 100)},
        chi2_analysis={13: {name: 1.0 for name in ANALYSES[13]}},
        masses={pdg: 1000.0 for pdg in KEY_MASS_PDGS},
        features=[float(i)] * 56,
        timings={"spectrum": 0.01, "events": 3.0, "total": 3.2},
        simulator="bench",
    )


def main(n_points: int = 100_000) -> None:
    space = pmssm11()
    X = space.from_unit(np.random.default_rng(0).random((n_points, space.dim)))
    results = [typical_result(i) for i in range(100)]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.h5"
        store = CampaignStore.create(
            path, config_text="bench\n", space=space, energies=[13], analyses=ANALYSES
        )
        with store:
            start = time.perf_counter()
            for first in range(0, n_points, 100):
                store.add_pending(X[first : first + 100], "prior", first // 100)
            added = time.perf_counter() - start

            start = time.perf_counter()
            for i in range(n_points):
                store.record(i, results[i % 100])
            recorded = time.perf_counter() - start

        start = time.perf_counter()
        with CampaignStore.open(path) as reader:
            table = reader.table()
        read = time.perf_counter() - start
        size = path.stat().st_size

    assert table["id"].size == n_points
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cpus, {platform.processor() or 'cpu ?'}"
    )
    print(f"python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    print(
        f"add_pending: {n_points // 100} batches of 100 in {added:.2f} s ({added / (n_points // 100) * 1e3:.2f} ms per batch)"
    )
    print(
        f"record: {n_points} calls in {recorded:.1f} s ({recorded / n_points * 1e6:.0f} us per call)"
    )
    print(f"reader table() of {n_points} rows: {read:.2f} s")
    print(f"file size: {size / 1e6:.0f} MB ({size / n_points / 1e3:.1f} kB per point)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
