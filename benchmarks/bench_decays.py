"""Time of the built-in decay tables and features per point (run by hand).

Usage: ``python benchmarks/bench_decays.py [N_POINTS]``. Prints the median and 90th
percentile per point of compute_spectrum, compute_decays (on built-in spectra of
uniform pMSSM-11 draws and on the SPheno fixtures) and compute_features, and the
machine they ran on.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from sampler.priors import UniformPrior
from sampler.space import pmssm11
from simulators.decays import compute_decays
from simulators.features import compute_features
from simulators.slha import read_spectrum
from simulators.spectrum import compute_spectrum

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "spheno"
SIGMA_FB = {
    (1000021, 1000021): 10.0,
    (1000021, 1000002): 5.0,
    (1000006, -1000006): 3.0,
    (1000023, 1000024): 20.0,
}


def _timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = function(*args)
    return time.perf_counter() - start, out


def _report(label: str, seconds: list[float]) -> None:
    ms = np.array(seconds) * 1e3
    print(
        f"{label:34s} n={ms.size:4d}  median {np.median(ms):7.2f} ms  "
        f"p90 {np.percentile(ms, 90):7.2f} ms  max {ms.max():7.2f} ms"
    )


def main(n_points: int = 200) -> None:
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cpus, Python {platform.python_version()}"
    )
    space = pmssm11()
    points = space.array_to_points(
        UniformPrior(space).sample(n_points, np.random.default_rng(1))
    )
    t_spec, t_dec, t_feat, t_both = [], [], [], []
    for point in points:
        ts, spectrum = _timed(compute_spectrum, point, "pmssm11")
        if spectrum.tachyons:
            continue
        td, decays = _timed(compute_decays, spectrum)
        tf, _ = _timed(compute_features, spectrum, decays, SIGMA_FB)
        t_spec.append(ts)
        t_dec.append(td)
        t_feat.append(tf)
        t_both.append(ts + td)
    _report("compute_spectrum (built-in)", t_spec)
    _report("compute_decays (built-in spectra)", t_dec)
    _report("spectrum + decays", t_both)
    _report("compute_features (4 processes)", t_feat)

    fixtures = sorted(p.parent for p in FIXTURES.glob("*/SPheno.spc"))
    t_fix = []
    for path in fixtures:
        try:
            spectrum = read_spectrum(path / "SPheno.spc")
        except Exception:  # the failed SPheno runs carry no spectrum
            continue
        for _ in range(5):
            t_fix.append(_timed(compute_decays, spectrum)[0])
    if t_fix:
        _report("compute_decays (SPheno spectra)", t_fix)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
