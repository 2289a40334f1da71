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
default bootstrap (``scynet_al.ensemble.Ensemble``), its mean as the prediction,
and how well its sigma covers the test errors, as it comes and rescaled as a
campaign rescales it on its validation points
(``scynet_al.metrics.cross_fitted_calibration``).

``--n-train N`` trains on the first N points of each training set only (the
test set stays), for the factor's dependence on the training size, and
``--network KEY=VALUE`` changes a setting of the network and of the members
(``--network batch_size=64 --network learning_rate=3e-4``).

With ``--labels FILE`` (written by ``relabel_pool.py``: the same points labelled
again at the built-in chain's default event statistics) only the relabelled points
are used, and their new labels replace the pool's for training and testing
(``--relabelled all``) or for testing only (``--relabelled test``: the models learn
from the pool's labels and are judged against the cleaner ones). The mean
|Δχ²| between the two labellings is printed per region first.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

# The repository (for its packages) and this folder (for relabel_pool).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from relabel_pool import read_labels

from sampler.regions import REGION_NAMES, ChiSquareRegions
from scynet_al.config import read_yaml
from scynet_al.ensemble import Ensemble
from scynet_al.metrics import cross_fitted_calibration, knn_baseline, region_errors
from scynet_al.network import DirectRegressor
from scynet_al.store import CampaignStore

ENERGY_TEV = 13


def load(
    store_path: Path,
) -> tuple[np.ndarray, np.ndarray, ChiSquareRegions, np.ndarray]:
    """Unit-cube inputs, chi2 and ids of the ok points, and the campaign's regions."""
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
    return U, chi2[finite], regions, table["id"][ok][finite]


def relabelled(path: Path, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``ids`` of the points ``path`` labels ok, and their new chi2."""
    new = read_labels(path)
    where = np.array([i for i, point in enumerate(ids) if int(point) in new], dtype=int)
    return where, np.array([new[int(ids[i])] for i in where])


def print_label_shift(old: np.ndarray, new: np.ndarray, regions) -> None:
    """Mean |new - old| per region of the old labels: how far the two labellings differ."""
    names = regions.classify(old)
    cells = []
    for name in REGION_NAMES:
        group = names == name
        shift = np.mean(np.abs(new[group] - old[group])) if group.any() else np.nan
        cells.append(f"{name} {shift:.2f} ({group.sum()})")
    print(
        f"mean |relabelled - pool| chi2 per pool region (points): {', '.join(cells)}; "
        f"overall {np.mean(np.abs(new - old)):.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=30)
    parser.add_argument("--members", type=int, default=5, help="ensemble size, 0: none")
    parser.add_argument(
        "--labels", type=Path, default=None, help="relabel_pool.py output"
    )
    parser.add_argument("--relabelled", choices=("all", "test"), default="all")
    parser.add_argument(
        "--n-train",
        type=int,
        default=None,
        help="train on only the first N points of each split's training set",
    )
    parser.add_argument(
        "--network",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=network_setting,
        help="a DirectRegressor setting for the network and the ensemble members "
        "(YAML value: batch_size=64, hidden=[100,100,100]); repeatable",
    )
    args = parser.parse_args()
    settings = dict(args.network)

    U, y, regions, ids = load(args.store)
    y_test_labels = y
    if args.labels is not None:
        where, new = relabelled(args.labels, ids)
        print(f"{args.labels}: {len(where)} of {len(y)} ok points relabelled ok")
        print_label_shift(y[where], new, regions)
        U, y = U[where], (new if args.relabelled == "all" else y[where])
        y_test_labels = new
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}"
    )
    print(
        f"{args.store}: {len(y)} ok points at {ENERGY_TEV} TeV; region edges {regions.edges}"
    )
    print(
        f"network: DirectRegressor, max_epochs {args.max_epochs}, patience "
        f"{args.patience}, other settings {settings or 'as default'}; training "
        f"points per split {args.n_train or 'all'}"
    )
    header = f"{'seed':>4} {'model':<8} {'overall':>8} " + " ".join(
        f"{name:>7}" for name in REGION_NAMES
    )
    print(header)
    ratios: dict[str, list[tuple[float, float]]] = {}
    for seed in range(args.seeds):
        order = np.random.default_rng(seed).permutation(len(y))
        n_test = len(y) // 5
        test, train = order[:n_test], order[n_test:][: args.n_train]
        start = time.perf_counter()
        network_params = {
            "max_epochs": args.max_epochs, "patience": args.patience, "n_threads": 2,
            **settings,
        }  # fmt: skip
        network = DirectRegressor(seed=seed, **network_params).fit(U[train], y[train])
        fit_s = time.perf_counter() - start
        results = {
            "network": region_errors(
                y_test_labels[test], network.predict(U[test]), regions
            ),
            "1-NN": knn_baseline(
                U[train], y[train], U[test], y_test_labels[test], regions, 1
            ),
            "5-NN": knn_baseline(
                U[train], y[train], U[test], y_test_labels[test], regions, 5
            ),
        }
        ensemble_s = 0.0
        if args.members > 0:
            start = time.perf_counter()
            ensemble = Ensemble(
                n_members=args.members, seed=seed, member_params=network_params
            ).fit(U[train], y[train])
            ensemble_s = time.perf_counter() - start
            mean, sigma = ensemble.predict(U[test], return_std=True)
            results["ensemble"] = region_errors(
                y_test_labels[test], mean, regions, std=sigma
            )
        for label, result in results.items():
            cells = " ".join(
                _cell(result["regions"][name]["mean_abs_error"])
                for name in REGION_NAMES
            )
            print(
                f"{seed:>4} {label:<8} {result['overall']['mean_abs_error']:8.2f} {cells}"
            )
        overall = {k: r["overall"]["mean_abs_error"] for k, r in results.items()}
        best_knn = min(overall["1-NN"], overall["5-NN"])
        models = ["network", "ensemble"] if "ensemble" in results else ["network"]
        for model in models:
            ratios.setdefault(model, []).append(
                (overall["1-NN"] / overall[model], best_knn / overall[model])
            )
        redone = sum(m.n_restarts_ for m in ensemble.members_) if args.members else 0
        if "ensemble" in results:
            shares = results["ensemble"]["calibration"]
            scaled = cross_fitted_calibration(y_test_labels[test], mean, sigma)
            print(
                f"     ensemble sigma: |dchi2| < sigma for "
                f"{shares['within_1sigma']:.2f} of the test points, < 2 sigma for "
                f"{shares['within_2sigma']:.2f} (Gaussian: 0.68, 0.95); rescaled as "
                f"a campaign does (x {scaled['sigma_scale']:.2f}, each half of the "
                f"test points by the factor of the other): "
                f"{scaled['within_1sigma']:.2f} and {scaled['within_2sigma']:.2f}"
            )
        print(
            f"     train {len(train)}, test {n_test}; network fit {fit_s:.0f} s "
            f"({network.n_epochs_} epochs, {network.n_restarts_} trainings redone), "
            f"ensemble of {args.members} fit {ensemble_s:.0f} s ({redone} redone); "
            + "; ".join(
                f"1-NN / {m} = {ratios[m][-1][0]:.2f}, best kNN / {m} = "
                f"{ratios[m][-1][1]:.2f}"
                for m in models
            )
        )
    for model, pairs in ratios.items():
        first, best = np.array(pairs).T
        print(
            f"over seeds: 1-NN / {model} = {first.mean():.2f} +- {first.std():.2f}, "
            f"best kNN / {model} = {best.mean():.2f} +- {best.std():.2f}"
        )
    return 0


def network_setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--network``, the value read as configs read YAML (``3e-4``
    is a number)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), read_yaml(value)


def _cell(value: float | None) -> str:
    return f"{value:7.2f}" if value is not None else f"{'-':>7}"


if __name__ == "__main__":
    sys.exit(main())
