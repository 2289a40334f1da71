"""Time 10^5 pMSSM-11 and pMSSM-19 prior samples with both priors.

Run by hand: ``python benchmarks/bench_priors.py``. Prints the best of five
wall times per prior and space, and the machine it ran on.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from sampler.priors import make_prior
from sampler.space import pmssm11, pmssm19

N = 100_000


def best_time(prior, repeats: int = 5) -> float:
    times = []
    for seed in range(repeats):
        rng = np.random.default_rng(seed)
        start = time.perf_counter()
        prior.sample(N, rng)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus")
    print(f"python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    for space in (pmssm11(), pmssm19()):
        for kind in ("uniform", "gaussian"):
            seconds = best_time(make_prior(kind, space))
            print(f"{space.model} {kind:8s}: {N} samples in {seconds * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
