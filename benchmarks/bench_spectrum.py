"""Time the built-in spectrum (and decays, when available) per point, and key masses.

Run by hand: ``python benchmarks/bench_spectrum.py [--points 200]``. Prints the
machine, the time per point of compute_spectrum, of compute_decays and of both
together (target below 50 ms), and the throughput of the vectorised key_masses
(target at least 10^4 points/s).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from sampler.space import pmssm11, pmssm19
from simulators.preselection import preselect
from simulators.spectrum import compute_spectrum, key_masses


def _decays_function():
    try:
        from simulators.decays import compute_decays
    except ImportError:
        return None
    return compute_decays


def time_points(model: str, n: int, rng: np.random.Generator) -> dict[str, list[float]]:
    """Per-point wall times (s) of the spectrum, the decays and pre-selection."""
    space = pmssm11() if model == "pmssm11" else pmssm19()
    points = space.array_to_points(space.from_unit(rng.random((n, space.dim))))
    compute_decays = _decays_function()
    times: dict[str, list[float]] = {"spectrum": [], "decays": [], "total": []}
    for p in points:
        start = time.perf_counter()
        spectrum = compute_spectrum(p, model)
        middle = time.perf_counter()
        if compute_decays is not None and preselect(spectrum) is None:
            compute_decays(spectrum)
            end = time.perf_counter()
            times["decays"].append(end - middle)
            times["total"].append(end - start)
        times["spectrum"].append(middle - start)
    return times


def time_key_masses(n: int, rng: np.random.Generator) -> float:
    """Points per second of key_masses on pMSSM-19 points."""
    space = pmssm19()
    X = space.from_unit(rng.random((n, space.dim)))
    start = time.perf_counter()
    key_masses(X, "pmssm19")
    return n / (time.perf_counter() - start)


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cpus, {platform.processor()}"
    )
    print(f"python {platform.python_version()}, numpy {np.__version__}")
    for model in ("pmssm11", "pmssm19"):
        times = time_points(model, args.points, rng)
        for stage, values in times.items():
            if not values:
                print(f"{model} {stage:9s}: not timed (decays module absent)")
                continue
            ms = np.array(values) * 1e3
            print(
                f"{model} {stage:9s}: median {statistics.median(ms):6.2f} ms, "
                f"95% {np.percentile(ms, 95):6.2f} ms, n = {len(ms)}"
            )
    for n in (10_000, 100_000):
        print(f"key_masses: {time_key_masses(n, rng):,.0f} points/s on {n:,} points")


if __name__ == "__main__":
    main()
