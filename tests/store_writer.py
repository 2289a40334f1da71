"""A store writer run as its own process by tests/test_store.py.

Usage: python -m tests.store_writer STORE N_POINTS BATCH. Appends points in batches and records
each one; after each record returns it prints ``recorded ID`` (flushed), so the test
knows which records must survive a kill. Every value is a function of the id, so a
reader can tell a whole row from a partial one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sampler.space import pmssm11
from scynet_al.store import CampaignStore
from simulators.result import SimulationResult

N_FEATURES = 56


def expected_points(n: int) -> np.ndarray:
    """The points the writer stores, shape ``(n, 11)``."""
    space = pmssm11()
    return space.from_unit(np.random.default_rng(0).random((n, space.dim)))


def result_for(point_id: int) -> SimulationResult:
    """The result recorded for a point; every number derives from its id."""
    return SimulationResult(
        "ok",
        chi2={13: float(point_id % 100) + 0.5},
        chi2_analysis={13: {"a": float(point_id), "b": -float(point_id)}},
        masses={1000021: float(point_id)},
        features=[float(point_id + k) for k in range(N_FEATURES)],
        timings={"total": 1.0},
    )


def main() -> None:
    path, n_points, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    X = expected_points(n_points)
    store = CampaignStore.create(
        path,
        config_text="campaign: {seed: 11}\n",
        space=pmssm11(),
        energies=[13],
        analyses={13: ["a", "b"]},
        n_features=N_FEATURES,
    )
    print("created", flush=True)
    with store:
        for start in range(0, n_points, batch):
            ids, _ = store.add_pending(
                X[start : start + batch], "prior", start // batch
            )
            for point_id in ids:
                store.record(int(point_id), result_for(int(point_id)))
                print(f"recorded {point_id}", flush=True)
    print("closed", flush=True)


if __name__ == "__main__":
    main()
