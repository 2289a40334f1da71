"""Tests of the pool-based benchmark's pieces and a smoke run on a synthetic pool."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from sampler.regions import ChiSquareRegions
from tests.landscapes import RARE_RATE_UNIFORM

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """benchmarks/pool_benchmark.py as a module."""
    return _load("pool_benchmark")


@pytest.fixture(scope="module")
def pool_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 600-point synthetic pool (analytic landscape), written with the store API."""
    path = tmp_path_factory.mktemp("pool") / "pool.h5"
    return _load("make_synthetic_pool").make_synthetic_pool(path, 600, seed=3)


def test_load_and_split(bench: ModuleType, pool_path: Path) -> None:
    pool = bench.split_pool(bench.load_pool(pool_path), test_size=200)
    assert pool.U.shape == (600, 11)
    assert pool.regions == ChiSquareRegions.paper(13)  # from the stored config
    assert len(pool.test) == 200 and len(pool.candidates) == 400
    assert not set(pool.test) & set(pool.candidates)
    again = bench.split_pool(bench.load_pool(pool_path), test_size=200)
    np.testing.assert_array_equal(pool.test, again.test)  # fixed split
    rare_share = pool.regions.is_rare(pool.chi2).mean()
    # 600 uniform draws: binomial standard deviation sqrt(0.083 * 0.917 / 600) = 0.011
    assert abs(rare_share - RARE_RATE_UNIFORM) < 0.045


def test_relabelled_pool_keeps_only_relabelled_points(
    bench: ModuleType, pool_path: Path, tmp_path: Path
) -> None:
    # relabel_pool.py writes one JSON line per point; a point it could not label
    # ok, or did not reach, leaves the pool, and the others carry the new chi2.
    from scynet_al.store import CampaignStore

    with CampaignStore.open(pool_path, mode="r") as store:
        table = store.table()
    ids, X = table["id"][:3], table["parameters"][:3]
    lines = [
        {"id": int(ids[0]), "status": "ok", "chi2": 12.5},
        {"id": int(ids[2]), "status": "ok", "chi2": 99.0},
        {"id": int(ids[1]), "status": "failed", "chi2": None},
    ]
    labels_path = tmp_path / "labels.jsonl"
    labels_path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    labels = _load("relabel_pool").read_labels(labels_path)
    pool = bench.load_pool(pool_path, labels=labels)

    assert labels == {int(ids[0]): 12.5, int(ids[2]): 99.0}
    np.testing.assert_array_equal(pool.chi2, [12.5, 99.0])
    np.testing.assert_allclose(pool.U, pool.space.to_unit(X[[0, 2]]))


def test_resolve_budgets(bench: ModuleType) -> None:
    assert bench.resolve_budgets([500, "all", 100, 5000], 2000) == [100, 500, 2000]


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ([4.0, 2.0, 0.5], 400.0 * 2.0),  # log-log halfway: error 1 at 100 * 4**1.5
        ([0.8, 0.5, 0.1], 100.0),  # already there at the first budget
        ([4.0, 3.0, 2.0], math.nan),  # never
    ],
)
def test_points_to_reach(
    bench: ModuleType, errors: list[float], expected: float
) -> None:
    # budgets 100, 400, 1600: between 400 (error 2) and 1600 (error 0.5) the error
    # falls by 4 over a factor 4 in points, so it is 1 at 400 * 2 = 800.
    got = bench.points_to_reach([100, 400, 1600], errors, 1.0)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected)


def test_figure_of_merit_saving(bench: ModuleType) -> None:
    rows = []
    curves = {"uniform": [8.0, 4.0, 1.0], "uncertainty": [2.0, 1.0, 0.5]}
    for strategy, errors in curves.items():
        for budget, error in zip([100, 200, 400], errors, strict=True):
            for group in bench.GROUPS:
                rows.append(
                    {"strategy": strategy, "seed": 0, "budget": budget,
                     "group": group, "mean_abs_error": error, "count": 10}
                )  # fmt: skip
    merit = bench.figure_of_merit(rows)
    entry = merit["II"]["strategies"]
    assert merit["II"]["target"] == 1.0
    assert entry["uniform"]["points_mean"] == pytest.approx(400.0)
    assert entry["uncertainty"]["points_mean"] == pytest.approx(200.0)
    assert entry["uncertainty"]["saving_mean"] == pytest.approx(2.0)


def test_pool_prior_draws_only_unused(bench: ModuleType) -> None:
    U = np.arange(10, dtype=float).reshape(5, 2)
    available = np.array([True, False, True, False, True])
    drawn = bench.PoolPrior(U, available).sample_unit(10, np.random.default_rng(0))
    assert sorted(drawn[:, 0].tolist()) == [0.0, 4.0, 8.0]


@pytest.mark.parametrize("strategy", ["density", "local", "mixture"])
def test_acquisition_order_distinct_candidates(
    bench: ModuleType, pool_path: Path, strategy: str
) -> None:
    pool = bench.split_pool(bench.load_pool(pool_path), test_size=200)
    settings = bench.Settings(initial=40, batch=30, acq_members=2, acq_epochs=5,
                              epochs=5, patience=3, n_threads=1)  # fmt: skip
    order = bench.acquisition_order(strategy, pool, 100, settings, seed=0)
    assert len(order) == 100 == len(set(order.tolist()))
    assert set(order.tolist()) <= set(pool.candidates.tolist())


def test_smoke_run_writes_table_plot_and_numbers(
    bench: ModuleType, pool_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = [str(pool_path), "--budgets", "100", "200", "--seeds", "1",
            "--strategies", "uniform", "uncertainty", "--test-size", "200",
            "--initial", "50", "--batch", "50", "--epochs", "15", "--patience", "5",
            "--acq-members", "2", "--acq-epochs", "5", "--threads", "1",
            "--out", str(out)]  # fmt: skip
    assert bench.main(argv) == 0

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["aggregate"]) == {"uniform", "uncertainty"}
    for by_budget in summary["aggregate"].values():
        assert sorted(by_budget) == ["100", "200"]
        cell = by_budget["200"]["overall"]
        assert cell["count"] == 200 and 0.0 <= cell["mean"] < 100.0
    assert set(summary["figure_of_merit"]) <= {"I", "II", "III"}
    assert summary["table4"]["regions"]["III"]["paper_13tev_direct"] == 4.0
    lines = (out / "results.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 2 * len(bench.GROUPS)
    assert (out / "errors_vs_budget.png").read_bytes()[:4] == b"\x89PNG"

    (out / "summary.json").unlink()
    assert bench.main([*argv, "--reanalyse"]) == 0  # from results.csv, no training
    again = json.loads((out / "summary.json").read_text())
    assert again["aggregate"] == summary["aggregate"]


def test_figure_of_merit_two_seeds(bench: ModuleType) -> None:
    curves = {
        ("uniform", 0): [8.0, 4.0, 2.0],
        ("uniform", 1): [8.0, 4.0, 1.0],
        ("uncertainty", 0): [2.0, 1.0, 0.5],
        ("uncertainty", 1): [4.0, 2.0, 1.0],
    }
    rows = [
        {"strategy": strategy, "seed": seed, "budget": budget, "group": "III",
         "mean_abs_error": error, "count": 10}
        for (strategy, seed), errors in curves.items()
        for budget, error in zip([100, 200, 400], errors, strict=True)
    ]  # fmt: skip
    merit = bench.figure_of_merit(rows)["III"]
    # Seed-averaged: uniform 8, 4, 1.5 sets the target 1.5, reached at 400;
    # uncertainty 3, 1.5, 0.75 reaches it at 200: saving 2.
    assert merit["target"] == pytest.approx(1.5)
    s = merit["strategies"]["uncertainty"]
    assert s["points_mean_curve"] == pytest.approx(200.0)
    assert s["saving_mean_curve"] == pytest.approx(2.0)
    # Per seed: targets 2 and 1; uncertainty needs 100 (uniform 400) and 400
    # (uniform 400): savings 4 and 1.
    assert merit["seed_targets"] == pytest.approx([2.0, 1.0])
    assert s["points"] == pytest.approx([100.0, 400.0])
    assert s["saving"] == pytest.approx([4.0, 1.0])
    assert s["saving_mean"] == pytest.approx(2.5)


def test_regions_centre_on_the_zero_signal_chi2_of_the_pools_analyses(
    bench: ModuleType,
) -> None:
    from simulators.catalogue import load_catalogue

    text = "campaign: {name: pool}\nspace: {model: pmssm11}\nregions: {centre_on_catalogue: true}\n"
    analyses = ["atlas_conf_2015_067", "atlas_1602_09058", "cms_pas_sus_15_011"]
    subset = load_catalogue(energy_tev=13.0, analyses=analyses)
    # the zero-signal χ² is a sum over analyses, so the subset's is smaller than the
    # whole catalogue's: the window must follow the analyses the labels combine
    zero = sum(
        load_catalogue(energy_tev=13.0, analyses=[name]).zero_signal_chi2(13.0)
        for name in analyses
    )
    assert subset.zero_signal_chi2(13.0) == pytest.approx(zero)

    regions = bench.regions_of_config(text, 13, analyses)

    assert regions.edges[1] == pytest.approx(zero - 2.0)
    assert regions.edges[2] == pytest.approx(zero + 2.0)
    everything = bench.regions_of_config(text, 13)
    assert everything.edges[1] > regions.edges[1]


def test_an_interrupted_run_continues_with_the_missing_strategies_only(
    bench: ModuleType, pool_path: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "out"
    argv = [str(pool_path), "--budgets", "100", "all", "--seeds", "1",
            "--strategies", "uniform", "density", "--test-size", "200",
            "--initial", "50", "--batch", "50", "--epochs", "10", "--patience", "5",
            "--threads", "1", "--out", str(out)]  # fmt: skip
    assert bench.main(argv) == 0
    csv_path = out / "results.csv"
    complete = bench.read_rows(csv_path)
    # an interruption after uniform: only its rows reached the file
    lines = csv_path.read_text().splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if line.startswith("uniform,")]
    csv_path.write_text("\n".join(kept) + "\n")
    ran = []
    original = bench._strategy_rows
    monkeypatch.setattr(
        bench,
        "_strategy_rows",
        lambda pool, settings, strategy, *rest: (
            ran.append(strategy) or original(pool, settings, strategy, *rest)
        ),
    )
    monkeypatch.setattr(
        bench, "_all_rows", lambda *a: pytest.fail("the shared budget ran again")
    )

    assert bench.main([*argv, "--continue"]) == 0

    assert ran == ["density"]
    again = bench.read_rows(csv_path)
    assert len(again) == len(complete)
    key = lambda r: (r["strategy"], r["budget"], r["group"])  # noqa: E731
    before = {key(r): r["mean_abs_error"] for r in complete}
    after = {key(r): r["mean_abs_error"] for r in again}
    assert after.keys() == before.keys()
    for k in before:  # uniform kept, density measured again with the same seed
        assert after[k] == pytest.approx(before[k], rel=1e-6, nan_ok=True)


def test_continuing_with_other_settings_is_refused(
    bench: ModuleType, pool_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = [str(pool_path), "--budgets", "100", "--seeds", "1", "--strategies",
            "uniform", "--test-size", "200", "--epochs", "5", "--patience", "3",
            "--threads", "1", "--out", str(out)]  # fmt: skip
    assert bench.main(argv) == 0
    changed = [*argv, "--epochs", "6", "--continue"]

    with pytest.raises(SystemExit, match="settings"):
        bench.main(changed)


def test_repacked_pool_holds_the_same_data_and_still_grows(
    pool_path: Path, tmp_path: Path
) -> None:
    import h5py

    from scynet_al.store import CampaignStore

    target = tmp_path / "repacked.h5"
    _load("repack_pool").repack(pool_path, target)

    with h5py.File(pool_path, "r") as a, h5py.File(target, "r") as b:
        assert sorted(a.attrs) == sorted(b.attrs)
        for key in a.attrs:
            np.testing.assert_array_equal(a.attrs[key], b.attrs[key])
        names = []
        a.visit(names.append)
        for name in names:
            if isinstance(a[name], h5py.Dataset):
                assert b[name].compression == "gzip"
                assert b[name].maxshape == a[name].maxshape
                np.testing.assert_array_equal(a[name][()], b[name][()])
    with CampaignStore.open(pool_path, "r") as store:
        counts = store.counts()
    with CampaignStore.open(target, "a") as store:
        assert store.counts() == counts
        centre = store.space.from_unit(np.full((1, store.space.dim), 0.5))
        store.add_pending(centre, origin="prior", round=0)
        assert store.counts()["pending"] == counts.get("pending", 0) + 1
