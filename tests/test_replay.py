"""Tests of the replay backend against small stores written with the store API."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from sampler.space import pmssm11
from scynet_al.store import CampaignStore
from simulators.backends import make_simulator
from simulators.errors import SimulatorConfigError
from simulators.replay import ReplaySimulator, read_pool, snap_to_pool
from simulators.result import SimulationResult

ANALYSES = {8: ["atlas_a"], 13: ["atlas_b", "cms_c"]}
N_FEATURES = 4


def _ok(k: int) -> SimulationResult:
    """An ok result whose every number follows from ``k``."""
    return SimulationResult(
        "ok",
        chi2={8: 30.0 + k, 13: 50.0 + k},
        chi2_analysis={
            8: {"atlas_a": 30.0 + k},
            13: {"atlas_b": 20.0 + k, "cms_c": 30.0},
        },
        masses={1000021: 1500.0 + k, 1000022: 100.0 + k},
        features=[float(k), 1.0, 2.0, 3.0],
    )


@pytest.fixture
def points() -> np.ndarray:
    """Six pMSSM-11 points (GeV)."""
    space = pmssm11()
    return space.from_unit(np.random.default_rng(3).random((6, space.dim)))


@pytest.fixture
def pool(tmp_path: Path, points: np.ndarray) -> Path:
    """Rows 0-2 ok, 3 rejected, 4 failed, 5 pending."""
    path = tmp_path / "pool.h5"
    with CampaignStore.create(
        path,
        config_text="campaign: {seed: 4}\n",
        space=pmssm11(),
        energies=[8, 13],
        analyses=ANALYSES,
        n_features=N_FEATURES,
    ) as store:
        ids, _ = store.add_pending(points, origin="prior", round=0)
        for k in range(3):
            store.record(int(ids[k]), _ok(k))
        store.record(int(ids[3]), SimulationResult.rejected("tachyonic states: ~t_1"))
        store.record(int(ids[4]), SimulationResult.failed("Pythia timed out"))
    return path


def _point(x: np.ndarray) -> dict[str, float]:
    return pmssm11().array_to_points(x[None, :])[0]


def test_ok_point_returns_stored_labels(pool: Path, points: np.ndarray) -> None:
    sim = ReplaySimulator(pool=pool, energies_tev=[13])
    result = sim.simulate(_point(points[2]), seed=99, workdir=Path("."))
    assert result.status == "ok"
    assert result.chi2 == {13: 52.0}
    assert result.chi2_analysis == {13: {"atlas_b": 22.0, "cms_c": 30.0}}
    assert result.masses == {1000021: 1502.0, 1000022: 102.0}
    assert result.features == [2.0, 1.0, 2.0, 3.0]
    assert result.simulator == "replay"
    assert result.extra["pool_id"] == 2


def test_both_energies(pool: Path, points: np.ndarray) -> None:
    sim = ReplaySimulator(pool=str(pool), energies_tev=[8.0, 13.0])
    result = sim.simulate(_point(points[1]), seed=0, workdir=Path("."))
    assert result.chi2 == {8: 31.0, 13: 51.0}


def test_rejected_failed_and_pending(pool: Path, points: np.ndarray) -> None:
    sim = ReplaySimulator(pool=pool)
    rejected = sim.simulate(_point(points[3]), seed=0, workdir=Path("."))
    failed = sim.simulate(_point(points[4]), seed=0, workdir=Path("."))
    pending = sim.simulate(_point(points[5]), seed=0, workdir=Path("."))
    assert (rejected.status, rejected.reason) == ("rejected", "tachyonic states: ~t_1")
    assert failed.status == "failed" and "Pythia timed out" in failed.reason
    assert pending.status == "failed" and "pending" in pending.reason


def test_tolerance_is_relative(pool: Path, points: np.ndarray) -> None:
    sim = ReplaySimulator(pool=pool, tolerance=1e-6)
    near = _point(points[0] * (1.0 + 1e-8))
    far = _point(points[0] * (1.0 + 1e-4))
    assert sim.simulate(near, seed=0, workdir=Path(".")).chi2 == {13: 50.0}
    missed = sim.simulate(far, seed=0, workdir=Path("."))
    assert missed.status == "failed" and "not in replay pool" in missed.reason


def test_point_with_wrong_names_fails(pool: Path, points: np.ndarray) -> None:
    point = _point(points[0])
    point["M4"] = point.pop("M1")
    result = ReplaySimulator(pool=pool).simulate(point, seed=0, workdir=Path("."))
    assert result.status == "failed"
    assert "missing parameters ['M1']" in result.reason
    assert "unknown parameters ['M4']" in result.reason


def test_describe(pool: Path) -> None:
    shape = ReplaySimulator(pool=pool, energies_tev=[13]).describe()
    assert shape == {
        "energies": [13],
        "analyses": {13: ["atlas_b", "cms_c"]},
        "n_features": N_FEATURES,
    }


def test_check_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SimulatorConfigError, match="no pool file"):
        ReplaySimulator(pool=tmp_path / "absent.h5").check()


def test_check_foreign_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("x", data=[1, 2])
    with pytest.raises(SimulatorConfigError, match="not a scynet-al campaign store"):
        ReplaySimulator(pool=path).check()


def test_check_energy_not_in_pool(pool: Path) -> None:
    with pytest.raises(SimulatorConfigError, match="energies"):
        ReplaySimulator(pool=pool, energies_tev=[14]).check()


def test_pickles_after_use(pool: Path, points: np.ndarray) -> None:
    sim = make_simulator("replay", {"pool": str(pool), "energies_tev": [13]})
    sim.simulate(_point(points[0]), seed=0, workdir=Path("."))
    copy = pickle.loads(pickle.dumps(sim))
    assert copy.simulate(_point(points[1]), seed=0, workdir=Path(".")).chi2 == {
        13: 51.0
    }


def test_reads_while_writer_is_open(tmp_path: Path, points: np.ndarray) -> None:
    path = tmp_path / "live.h5"
    with CampaignStore.create(
        path, config_text="", space=pmssm11(), energies=[13], analyses={13: ["a"]},
        n_features=0,
    ) as store:  # fmt: skip
        ids, _ = store.add_pending(points[:2], origin="prior", round=0)
        store.record(int(ids[0]), SimulationResult("ok", chi2={13: 7.5}))
        result = ReplaySimulator(pool=path).simulate(
            _point(points[0]), seed=0, workdir=Path(".")
        )
    assert result.chi2 == {13: 7.5}
    assert result.features is None


def test_read_pool(pool: Path) -> None:
    table = read_pool(pool, 13)
    assert table.status.tolist() == ["ok"] * 3 + ["rejected", "failed", "pending"]
    np.testing.assert_array_equal(table.chi2[:3], [50.0, 51.0, 52.0])
    assert np.isnan(table.chi2[3:]).all()
    assert table.labelled().tolist() == [True] * 3 + [False] * 3
    assert table.names == pmssm11().names


def test_snap_to_pool_nearest_distinct_available() -> None:
    pool = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.1, 0.0]])
    available = np.array([True, True, True, False])
    # (0.1, 0) is the nearest to the first proposal but unavailable: (0, 0) it is;
    # the second proposal also wants (0, 0), which is taken, so it gets (1, 0)
    # at distance 0.7 rather than (0, 1) at distance sqrt(0.09 + 1).
    proposed = np.array([[0.1, 0.01], [0.3, 0.0], [0.0, 0.9]])
    assert snap_to_pool(proposed, pool, available).tolist() == [0, 1, 2]


def test_snap_to_pool_runs_out() -> None:
    pool = np.array([[0.0], [1.0]])
    chosen = snap_to_pool(np.array([[0.0], [0.0], [0.0]]), pool, np.array([1, 1]))
    assert chosen.tolist() == [0, 1]


def test_campaign_replayed_from_its_own_store(tmp_path: Path) -> None:
    """A prior-only campaign re-run on the replay backend stores the same answers.

    With all proposals from the prior and no refit in between, the proposals follow
    from the campaign seed alone, so the second campaign asks for exactly the points
    of the first, and the replay backend must answer each as the first run stored it.
    """
    import yaml
    from distributed import Client, LocalCluster

    from scynet_al.campaign import Campaign
    from scynet_al.config import parse_config
    from tests.sim_doubles import AnalyticSimulator, KnnSurrogates

    config = parse_config(
        yaml.safe_dump(
            {
                "campaign": {"seed": 5, "in_flight": 4, "refit_every": 1000,
                             "max_retries": 0, "points_per_round": 10,
                             "budget": {"max_points": 30}},
                "space": {"model": "pmssm11"},
                "proposer": {"validation_share": 0.2, "adapt_to_errors": False,
                             "fractions": {"prior": 1.0, "density": 0.0,
                                           "local": 0.0, "uncertainty": 0.0}},
            }
        )
    )  # fmt: skip
    space = config.build_space()
    original = AnalyticSimulator.for_space(
        space, reject_fraction=0.2, fail_fraction=0.1
    )
    tables = []
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        for name, simulator in [
            ("first.h5", original),
            ("replayed.h5", ReplaySimulator(pool=tmp_path / "first.h5")),
        ]:
            with CampaignStore.create(
                tmp_path / name, config_text=config.text, space=space,
                energies=[13], analyses={13: ["analytic"]}, n_features=56,
            ) as store:  # fmt: skip
                Campaign(
                    config, store, client, simulator=simulator,
                    surrogates=KnnSurrogates(),
                ).run()  # fmt: skip
                tables.append(store.table())

    first, replayed = tables
    assert len(first["id"]) == 30
    np.testing.assert_array_equal(first["parameters"], replayed["parameters"])
    np.testing.assert_array_equal(first["status"], replayed["status"])
    np.testing.assert_array_equal(first["chi2"], replayed["chi2"])
    rejected = first["status"] == "rejected"
    assert rejected.any() and (first["status"] == "failed").any()
    np.testing.assert_array_equal(
        first["reason"][rejected], replayed["reason"][rejected]
    )


def test_a_replay_without_its_pool_names_the_missing_setting() -> None:
    from simulators.backends import MissingSettingError

    with pytest.raises(MissingSettingError) as info:
        make_simulator("replay", {"tolerance": 1e-3})

    assert info.value.backend == "replay" and info.value.names == ["pool"]
    assert str(info.value) == (
        "simulator backend 'replay' needs the setting(s) ['pool']; give"
        " simulator.settings.pool in the config"
    )
    assert isinstance(info.value, SimulatorConfigError)
