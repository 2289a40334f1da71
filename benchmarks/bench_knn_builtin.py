"""The direct network against the nearest-neighbour baseline on built-in chain labels.

Run by hand: ``python benchmarks/bench_knn_builtin.py STORE [--seeds 3]``, with a
campaign store whose points are prior draws labelled by the built-in chain (the
oracle pool of ``configs/oracle_pool.yaml`` is one). Per seed, the ok points at
13 TeV are split 80 / 20 into training and test sets; one direct network
(paper Sect. 3.1, the mini-batch shrunk for small sets) and a k-nearest-neighbour
regressor (k = 1, the paper's baseline in Fig. 5, and k = 5) are trained on the
same points in unit-cube coordinates; the mean |dchi2| on the test points is
printed overall and per chi2 region (the regions the campaign used), with the
ratio kNN / network. With ``--members K`` (default 5, 0 to leave it out) the
campaign's own model is measured too: an ensemble of K direct networks with the
default bootstrap (``scynet_al.ensemble.Ensemble``), its mean as the prediction.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sampler.regions import REGION_NAMES, ChiSquareRegions
from scynet_al.ensemble import Ensemble
from scynet_al.metrics import knn_baseline, region_errors
from scynet_al.network import DirectRegressor
from scynet_al.store import CampaignStore

ENERGY_TEV = 13


def load(store_path: Path) -> tuple[np.ndarray, np.ndarray, ChiSquareRegions]:
    """Unit-cube inputs and chi2 of the ok points, and the campaign's regions."""
    with CampaignStore.open(store_path, mode="r") as store:
        table = store.table()
        space = store.space
        column = list(store.energies).index(ENERGY_TEV)
        edges = None
        for row in reversed(store.metrics()):
            edges = row.get("region_edges", {}).get(str(ENERGY_TEV)) or edges
            if edges:
                break
    ok = table["status"] == "ok"
    chi2 = table["chi2"][ok, column]
    finite = np.isfinite(chi2)
    U = space.to_unit(table["parameters"][ok][finite])
    regions = ChiSquareRegions(tuple(edges)) if edges else ChiSquareRegions.paper(13)
    return U, chi2[finite], regions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=30)
    parser.add_argument("--members", type=int, default=5, help="ensemble size, 0: none")
    args = parser.parse_args()

    U, y, regions = load(args.store)
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}"
    )
    print(
        f"{args.store}: {len(y)} ok points at {ENERGY_TEV} TeV; region edges {regions.edges}"
    )
    header = f"{'seed':>4} {'model':<8} {'overall':>8} " + " ".join(
        f"{name:>7}" for name in REGION_NAMES
    )
    print(header)
    ratios, ensemble_ratios = [], []
    for seed in range(args.seeds):
        order = np.random.default_rng(seed).permutation(len(y))
        n_test = len(y) // 5
        test, train = order[:n_test], order[n_test:]
        start = time.perf_counter()
        network = DirectRegressor(
            max_epochs=args.max_epochs, patience=args.patience, seed=seed, n_threads=2
        ).fit(U[train], y[train])
        fit_s = time.perf_counter() - start
        results = {
            "network": region_errors(y[test], network.predict(U[test]), regions),
            "1-NN": knn_baseline(U[train], y[train], U[test], y[test], regions, 1),
            "5-NN": knn_baseline(U[train], y[train], U[test], y[test], regions, 5),
        }
        ensemble_s = 0.0
        if args.members > 0:
            start = time.perf_counter()
            member_params = {
                "max_epochs": args.max_epochs, "patience": args.patience, "n_threads": 2
            }  # fmt: skip
            ensemble = Ensemble(
                n_members=args.members, seed=seed, member_params=member_params
            ).fit(U[train], y[train])
            ensemble_s = time.perf_counter() - start
            results["ensemble"] = region_errors(
                y[test], ensemble.predict(U[test]), regions
            )
        for label, result in results.items():
            cells = " ".join(
                _cell(result["regions"][name]["mean_abs_error"])
                for name in REGION_NAMES
            )
            print(
                f"{seed:>4} {label:<8} {result['overall']['mean_abs_error']:8.2f} {cells}"
            )
        best_knn = min(
            results[k]["overall"]["mean_abs_error"] for k in ("1-NN", "5-NN")
        )
        ratio = best_knn / results["network"]["overall"]["mean_abs_error"]
        ratios.append(ratio)
        print(
            f"     train {len(train)}, test {n_test}, network fit {fit_s:.0f} s "
            f"({network.n_epochs_} epochs, {network.n_restarts_} trainings redone); "
            f"best kNN / network = {ratio:.2f}"
        )
        if "ensemble" in results:
            ensemble_ratios.append(
                best_knn / results["ensemble"]["overall"]["mean_abs_error"]
            )
            redone = sum(m.n_restarts_ for m in ensemble.members_)
            print(
                f"     ensemble of {args.members} fit {ensemble_s:.0f} s "
                f"({redone} trainings redone); best kNN / ensemble = "
                f"{ensemble_ratios[-1]:.2f}"
            )
    print(
        f"best kNN / network over seeds: {np.mean(ratios):.2f} +- {np.std(ratios):.2f}"
    )
    if ensemble_ratios:
        print(
            f"best kNN / ensemble over seeds: {np.mean(ensemble_ratios):.2f} "
            f"+- {np.std(ensemble_ratios):.2f}"
        )
    return 0


def _cell(value: float | None) -> str:
    return f"{value:7.2f}" if value is not None else f"{'-':>7}"


if __name__ == "__main__":
    sys.exit(main())
