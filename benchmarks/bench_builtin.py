"""Cost per point of the builtin backend at 13 TeV, per stage, and its χ² MC error.

Run by hand: ``python benchmarks/bench_builtin.py [--seeds 8] [--jobs 2]``. Prints
the machine, the wall and CPU time of every stage for a few representative points
at default statistics without adaptive refinement (one core each), and the
spread of the total χ² over seeds for a point near the exclusion boundary (χ²
between 60 and 90) with the default adaptive statistics: its standard deviation
over seeds is the Monte Carlo statistical error of the label. Each seed's line
shows the bootstrap estimate of that error before and after refinement, the
statistics reached (multiple of the first pass) and its CPU time; each analysis'
χ² spread and how often each signal region was chosen follow. A point at χ² ≈ 50,
outside the refinement window, shows the error without refinement.
``--refine-target 0`` switches refinement off; ``--max-events 2500
--event-factor 5 --replicas 1`` reproduces the earlier statistics.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from simulators.builtin import BuiltinSimulator

BASE = dict(M1=200.0, M2=1500.0, M3=650.0, mQ12=3000.0, mQ3=3000.0, mL12=3000.0)
BASE.update(mL3=3000.0, mA=3000.0, A=0.0, mu=2000.0, tanb=10.0)
POINTS = {
    "light gluino (797 GeV, LSP 203 GeV)": dict(BASE),
    "gluino at the boundary (1013 GeV)": dict(BASE, M3=850.0),
    "compressed gluino (764 / 710 GeV)": dict(BASE, M1=700.0, M3=620.0, mu=2500.0),
    "light stop (522 GeV, LSP 100 GeV)": dict(
        BASE, M1=100.0, M3=2500.0, mQ3=800.0, A=-1600.0, mu=1200.0, mL12=2000.0
    ),
    "heavy gluino (1.35 TeV)": dict(BASE, M3=1150.0),
    "decoupled": dict(BASE, M1=2500.0, M2=3000.0, M3=4000.0, mQ12=5000.0, mQ3=5000.0),
}
#: χ² 60-90, the paper's boundary range (m(g̃) = 1013 GeV, χ² ≈ 71 mean over seeds).
BOUNDARY_POINT = dict(BASE, M3=850.0)
#: m(g̃) ≈ 1.15 TeV, χ² ≈ 50. The shipped catalogue combines one region per
#: analysis, so its zero-signal χ² is about 10 rather than the paper's 54: both
#: points lie well inside the excluded region, where χ² is steep in the signal.
MODERATE_POINT = dict(BASE, M3=950.0)


def _machine() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"{platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cpus, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )


def _stage_table(simulator: BuiltinSimulator) -> None:
    print(
        "\ncost per point, 13 TeV, default statistics without refinement, one process (s)"
    )
    for name, point in POINTS.items():
        start, start_cpu = time.perf_counter(), time.process_time()
        with tempfile.TemporaryDirectory() as workdir:
            result = simulator.simulate(point, seed=1, workdir=Path(workdir))
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        events = sum(result.extra.get("n_events_13", {}).values())
        chi2 = result.chi2.get(13, float("nan"))
        print(
            f"  {name}: wall {wall:.2f}, cpu {cpu:.2f}; {events} events; chi2 {chi2:.1f}"
        )
        print("      wall: " + _stages(result.timings))
        print("      cpu:  " + _stages(result.extra.get("cpu_timings_13", {})))


def _stages(timings: dict) -> str:
    return ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in timings.items())


def _one_seed(simulator: BuiltinSimulator, point: dict, seed: int) -> dict:
    start = time.process_time()
    with tempfile.TemporaryDirectory() as workdir:
        result = simulator.simulate(point, seed=seed, workdir=Path(workdir))
    return dict(
        seed=seed,
        cpu=time.process_time() - start,
        chi2=result.chi2[13],
        per_analysis=result.chi2_analysis[13],
        chosen=result.chosen_regions[13],
        refinement=result.extra["refinement_13"],
        events=sum(result.extra["n_events_13"].values()),
    )


def _seed_spread(
    simulator: BuiltinSimulator, point: dict, label: str, n_seeds: int, jobs: int
) -> None:
    seeds = range(100, 100 + n_seeds)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        runs = list(
            pool.map(_one_seed, [simulator] * n_seeds, [point] * n_seeds, seeds)
        )
    print(f"\n{label}, {n_seeds} seeds:")
    for run in runs:
        info = run["refinement"]
        print(
            f"  seed {run['seed']}: chi2 {run['chi2']:.2f}; first pass "
            f"{info['first_chi2']:.2f} +- {info['first_mc_error']:.2f} (bootstrap), "
            f"now +- {info['mc_error']:.2f} with {info['factor']:.1f}x the events "
            f"({run['events']} events, {info['stopped']}); CPU {run['cpu']:.0f} s"
        )
    values = np.array([run["chi2"] for run in runs])
    cpu = np.array([run["cpu"] for run in runs])
    print(
        f"  mean {values.mean():.2f}, MC error (std over seeds) {values.std(ddof=1):.2f}, "
        f"mean bootstrap estimate {np.mean([r['refinement']['mc_error'] for r in runs]):.2f}; "
        f"mean CPU per point {cpu.mean():.1f} s (max {cpu.max():.1f} s); "
        f"max_events {simulator.max_events}, event_factor {simulator.event_factor}, "
        f"detector_replicas {simulator.detector_replicas}, "
        f"refine_target_error {simulator.refine_target_error}"
    )
    for name in runs[0]["per_analysis"]:
        chi2 = np.array([run["per_analysis"][name] for run in runs])
        regions = Counter("+".join(run["chosen"][name]) for run in runs)
        print(
            f"    {name}: chi2 mean {chi2.mean():.2f}, std {chi2.std(ddof=1):.2f}; "
            f"chosen {dict(regions.most_common())}"
        )


def main() -> None:
    """Print the machine, the per-stage cost and the χ² spread over seeds."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=1, help="processes for the seeds")
    parser.add_argument("--max-events", type=int, default=4000)
    parser.add_argument("--event-factor", type=float, default=8.0)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--refine-target", type=float, default=0.5)
    parser.add_argument("--skip-stages", action="store_true")
    parser.add_argument("--skip-moderate", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"machine: {_machine()}")
    options = dict(
        max_events=args.max_events,
        event_factor=args.event_factor,
        detector_replicas=args.replicas,
    )
    if not args.skip_stages:
        _stage_table(BuiltinSimulator(**options, refine_target_error=None))
    simulator = BuiltinSimulator(
        **options, refine_target_error=args.refine_target or None
    )
    _seed_spread(
        simulator,
        BOUNDARY_POINT,
        "chi2 60-90 (m_gluino 1013 GeV)",
        args.seeds,
        args.jobs,
    )
    if not args.skip_moderate:
        _seed_spread(
            simulator,
            MODERATE_POINT,
            "chi2 about 50 (m_gluino 1.15 TeV), outside the refinement window",
            args.seeds,
            args.jobs,
        )
    print(f"\nmachine at the end: {_machine()}")


if __name__ == "__main__":
    main()
