"""Tests of the campaign status report: content, estimate, and reads while writing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from distributed import Client, LocalCluster

from scynet_al.campaign import Campaign
from scynet_al.cli import main as cli_main
from scynet_al.config import parse_config
from scynet_al.status import campaign_status, estimate_remaining, format_status
from scynet_al.store import CampaignStore, writer_pid
from tests.sim_doubles import AnalyticSimulator, KnnSurrogates
from tests.test_store import damaged_copy, first_chunk_address, header_address

REPO = Path(__file__).resolve().parents[1]

CONFIG = """
campaign:
  seed: 7
  min_validation_count: 2
  in_flight: 4
  refit_every: 12
  points_per_round: 12
  budget: {max_points: MAX_POINTS, max_wall_time_hours: 1.0}
space: {model: pmssm11}
proposer: {candidate_pool: 300, min_distance: 0.01}
dask: {n_workers: 2, threads_per_worker: 1}
"""


@pytest.fixture(scope="module")
def finished_store(tmp_path_factory):
    """A store after a 60-point campaign on the analytic simulator."""
    path = tmp_path_factory.mktemp("status") / "c.h5"
    config = parse_config(CONFIG.replace("MAX_POINTS", "60"))
    space = config.build_space()
    simulator = AnalyticSimulator.for_space(space, reject_fraction=0.2)
    with (
        LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
        CampaignStore.create(
            path,
            config_text=config.text,
            space=space,
            energies=[13],
            analyses={13: ["a"]},
        ) as store,
    ):
        Campaign(
            config, store, client, simulator=simulator, surrogates=KnnSurrogates()
        ).run()
    return path


def test_status_json_keys_and_counts(finished_store):
    status = campaign_status(finished_store)
    with CampaignStore.open(finished_store, mode="r") as store:
        counts = store.counts()
        n_refits = sum(r.get("kind") == "refit" for r in store.metrics())

    text = json.dumps(status)
    assert {
        "counts",
        "origins",
        "round",
        "refits",
        "regions",
        "estimated_remaining",
    } <= set(json.loads(text))
    assert status["counts"] == counts and sum(counts.values()) == 60
    assert sum(sum(r.values()) for r in status["origins"].values()) == counts["ok"]
    assert set(status["origins"]) <= {
        "validation",
        "prior",
        "density",
        "local",
        "uncertainty",
    }
    assert len(status["refits"]) == n_refits >= 3
    assert status["round"] == status["refits"][-1]["round"]
    assert set(status["regions"]["13"]) == {"I", "zero", "II", "III", "cap"}
    assert all(
        {"time", "n_train", "overall", "regions"} <= set(r) for r in status["refits"]
    )
    assert status["stopped"]["stop_reason"] == "max_points"
    assert status["running"] is None
    assert "simulations still needed" in format_status(status)


def test_status_tells_a_running_a_stopped_and_a_killed_campaign(tmp_path):
    # The writer lock says whether a campaign writes the store now; without one,
    # a last run with no final summary was killed (kill -9, a machine gone down).
    from sampler.space import pmssm11

    path = tmp_path / "c.h5"
    space = pmssm11()
    with CampaignStore.create(
        path, config_text=CONFIG.replace("MAX_POINTS", "10"), space=space,
        energies=[13], analyses={13: ["a"]},
    ) as store:  # fmt: skip
        store.add_pending(
            space.from_unit(np.full((2, 11), 0.5)), origin="prior", round=0
        )
        store.append_metrics({"kind": "start", "time": 0.0})
        assert writer_pid(path) == os.getpid()
    killed = campaign_status(path)

    assert writer_pid(path) is None
    assert killed["running"] is None and killed["stopped"] is None
    assert format_status(killed).splitlines()[-1] == (
        "last run ended without stopping (killed, or its machine went down);"
        " resume continues it"
    )
    running = {**killed, "running": 4321}
    assert format_status(running).splitlines()[-1] == (
        "a campaign is running on this store (pid 4321)"
    )


def test_recent_shows_that_many_refits_and_rejects_a_negative_count(
    finished_store, capsys
):
    status = campaign_status(finished_store)
    rounds = [r["round"] for r in status["refits"]]
    two = format_status(status, recent=2)
    trend = two[two.index("recent refits") :].splitlines()[1:3]
    assert [int(line.split()[0]) for line in trend] == rounds[-2:]
    assert "recent refits" not in format_status(status, recent=0)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["status", str(finished_store), "--recent", "-3"])
    assert exit_info.value.code == 2
    assert "-3 is negative" in capsys.readouterr().err


def test_status_says_how_honest_sigma_is(finished_store):
    status = campaign_status(finished_store)
    with CampaignStore.open(finished_store, mode="r") as store:
        refits = [r for r in store.metrics() if r.get("kind") == "refit"]
    shares = refits[-1]["energies"]["13"]["ensemble"]["calibration"]

    assert status["sigma"]["13"] == {
        "within_1sigma": shares["within_1sigma"],
        "within_2sigma": shares["within_2sigma"],
        "sigma_scale": shares["sigma_scale"],
        "raw": shares["raw"],
    }
    line = next(x for x in format_status(status).splitlines() if "sigma:" in x)
    measured = shares["within_1sigma"] or shares["raw"]["within_1sigma"]
    assert f"{measured:.2f} of validation points within 1 sigma" in line


def _status_with_sigma(*, within, sigma_scale, raw, round_, ok):
    """A status of one energy (13 TeV) with no refit rows, only a sigma entry."""
    return {
        "round": round_, "counts": {"ok": ok}, "origins": {}, "refits": [],
        "regions": {"13": {}},
        "sigma": {"13": {
            "within_1sigma": within[0], "within_2sigma": within[1],
            "sigma_scale": sigma_scale,
            "raw": {"within_1sigma": raw[0], "within_2sigma": raw[1]},
        }},
        "estimated_remaining": None, "estimate": {"reason": "r"},
    }  # fmt: skip


def test_sigma_line_gives_the_factor_and_the_unscaled_shares():
    status = _status_with_sigma(
        within=(0.671, 0.93), sigma_scale=1.94, raw=(0.38, 0.7), round_=3, ok=10
    )
    text = format_status(status, recent=0)
    assert (
        "  sigma: 0.67 of validation points within 1 sigma, 0.93 within 2 (Gaussian"
        " 0.68, 0.95; each half of them checked with the factor the other half sets);"
        " ensemble spread x 1.94, unscaled 0.38 and 0.70"
    ) in text.splitlines()


def test_sigma_line_on_too_few_points_to_measure_the_rescaled_coverage():
    # 28 validation points set a factor, but its coverage is measured on halves
    # that must each set one too: the line gives the plain spread's coverage as
    # such, and the factor, without calling either the rescaled one's.
    status = _status_with_sigma(
        within=(None, None), sigma_scale=6.04, raw=(0.21, 0.54), round_=3, ok=10
    )
    assert (
        "  sigma: the plain ensemble spread covers 0.21 of validation points within 1"
        " sigma, 0.54 within 2 (Gaussian 0.68, 0.95); sigma is that spread x 6.04;"
        " how well it covers is measured once there are 40 validation points"
    ) in format_status(status, recent=0).splitlines()
    status["sigma"]["13"]["sigma_scale"] = None
    assert (
        "  sigma: the plain ensemble spread covers 0.21 of validation points within 1"
        " sigma, 0.54 within 2 (Gaussian 0.68, 0.95); not yet rescaled (that needs 20)"
    ) in format_status(status, recent=0).splitlines()


#: HDF5's reason when a compressed chunk no longer inflates.
FILTER_FAILED = "filter returned failure during read"


def one_line_error(capsys) -> str:
    """The CLI's stderr, checked to be one error line without a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.splitlines()
    return line


@pytest.mark.parametrize(
    ("where", "verb", "detail"),
    [
        ("/", "status", "reading the root attributes: incorrect metadata checksum"),
        ("status", "status", "reading dataset 'status': incorrect metadata checksum"),
        ("chi2", "status", "reading dataset 'chi2': incorrect metadata checksum"),
        ("metrics", "status", f"reading dataset 'metrics': {FILTER_FAILED}"),
        ("/", "export", "reading the root attributes: incorrect metadata checksum"),
        ("metrics", "resume", f"reading dataset 'metrics': {FILTER_FAILED}"),
    ],
)
def test_a_damaged_store_ends_the_command_in_one_line(
    finished_store, tmp_path, capsys, where, verb, detail
):
    # Object headers are damaged 20 bytes in (their checksum no longer matches),
    # the compressed metrics 2 bytes into their first chunk (deflate fails).
    bad = tmp_path / "bad.h5"
    if where == "metrics":
        offset, n = first_chunk_address(finished_store, where) + 2, 64
    else:
        offset, n = header_address(finished_store, where) + 20, 16
    damaged = damaged_copy(finished_store, bad, offset, n)
    argv = {"export": ["export", str(bad), "--out", str(tmp_path / "m.pt2")]}

    code = cli_main(argv.get(verb, [verb, str(bad)]))

    assert code == 2
    assert one_line_error(capsys) == (
        f"scynet-al {verb}: error: {bad}: the store is damaged ({detail}); restore"
        " it from a copy"
    )
    assert bad.read_bytes() == damaged
    assert not (tmp_path / "m.pt2").exists()


def test_status_refuses_an_unknown_status_code(finished_store, tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    shutil.copy(finished_store, bad)
    with h5py.File(bad, "r+") as file:
        file["status"][17] = 7
    before = bad.read_bytes()

    assert cli_main(["status", str(bad), "--json"]) == 2

    assert one_line_error(capsys) == (
        f"scynet-al status: error: {bad}: the store is damaged (reading dataset"
        " 'status': row 17 (point id 17) holds unknown status code 7; known codes"
        " are 0 to 4); restore it from a copy"
    )
    assert bad.read_bytes() == before


def test_status_of_a_directory_is_one_line(tmp_path, capsys):
    assert cli_main(["status", str(tmp_path)]) == 2

    assert one_line_error(capsys) == (
        f"scynet-al status: error: {tmp_path} is a directory, not a campaign store"
    )


@pytest.fixture
def store_with_small_region(tmp_path):
    """A store whose one refit row has 12 validation points in region I, 4 in zero."""
    path = tmp_path / "c.h5"
    text = CONFIG.replace("MAX_POINTS", "60").replace(
        "min_validation_count: 2", "min_validation_count: 10"
    )
    config = parse_config(text)
    regions = {
        "I": {"mean_abs_error": 2.5, "count": 12, "interval": [2.0, 3.0]},
        "zero": {"mean_abs_error": 0.5, "count": 4, "interval": [0.25, 0.75]},
        "II": {"mean_abs_error": None, "count": 0, "interval": None},
    }
    row = {"kind": "refit", "round": 1, "n_train": 40, "time": 1.0,
           "energies": {"13": {"ensemble": {"regions": regions}}}}  # fmt: skip
    with CampaignStore.create(
        path, config_text=config.text, space=config.build_space(), energies=[13],
        analyses={13: ["a"]},
    ) as store:  # fmt: skip
        X = config.build_space().from_unit(np.random.default_rng(0).random((3, 11)))
        store.add_pending(X, origin="validation", round=0)
        store.append_metrics(row)
    return path


def test_a_region_with_too_few_validation_points_is_marked_not_judged(
    store_with_small_region,
):
    status = campaign_status(store_with_small_region)

    regions = status["regions"]["13"]
    assert {name: r["judged"] for name, r in regions.items()} == {
        "I": True,
        "zero": False,
        "II": False,
    }
    assert regions["zero"] == {
        "mean_abs_error": 0.5, "count": 4, "interval": [0.25, 0.75], "judged": False
    }  # fmt: skip
    lines = format_status(status, recent=0).splitlines()
    assert "  I        2.50  [2.00, 3.00]  n=12" in lines
    assert (
        "  zero     0.50  [0.25, 0.75]  n=4  (fewer than 10 validation points:"
        " not judged)"
    ) in lines
    assert "  II    no validation points" in lines
    assert status["estimate"]["min_validation_count"] == 10


def test_sigma_line_says_when_the_spread_is_not_yet_rescaled():
    status = _status_with_sigma(
        within=(0.5, 1.0), sigma_scale=None, raw=(0.5, 1.0), round_=1, ok=8
    )
    assert (
        "  sigma: 0.50 of validation points within 1 sigma, 1.00 within 2 (Gaussian"
        " 0.68, 0.95); the plain ensemble spread, not yet rescaled (that needs 20"
        " validation points)"
    ) in format_status(status, recent=0).splitlines()


def _refit(n_train: int, errors: dict[str, float], count: int = 30) -> dict:
    regions = {
        name: {"mean_abs_error": e, "count": count} for name, e in errors.items()
    }
    return {"n_train": n_train, "energies": {"13": {"ensemble": {"regions": regions}}}}


def test_estimate_follows_power_law():
    # error 10 at 100 points falling as n^-1/2: 1.0 is reached at 100 * 10^2 points
    refits = [
        _refit(n, {"II": 10.0 * (n / 100) ** -0.5, "zero": 0.5})
        for n in (100, 200, 400)
    ]
    counts = {"ok": 400, "rejected": 100, "failed": 0, "pending": 3}

    estimate = estimate_remaining(refits, counts, target=1.0, min_count=20)

    assert estimate["per_region"]["13/zero"] == 0
    assert estimate["per_region"]["13/II"] == pytest.approx(10000 - 400, abs=1)
    assert estimate["simulations"] == pytest.approx((10000 - 400) / 0.8, abs=2)


@pytest.mark.parametrize(
    ("refits", "reason"),
    [
        ([], "no refit yet"),
        ([_refit(100, {"II": 5.0}), _refit(200, {"II": 4.0})], "no falling"),
        ([_refit(n, {"II": 5.0}) for n in (100, 200, 300)], "no falling"),
        # error 30 -> 28 over 100 -> 300 points: alpha ~ 0.06, so reaching 1.0
        # would take ~10^24 points; no estimate rather than that number.
        (
            [_refit(n, {"II": e}) for n, e in ((100, 30.0), (200, 29.0), (300, 28.0))],
            "over 100x",
        ),
        (
            [_refit(n, {"II": 5.0}, count=3) for n in (100, 200, 300)],
            "enough validation",
        ),
    ],
)
def test_no_estimate_without_a_falling_curve(refits, reason):
    estimate = estimate_remaining(refits, {"ok": 10}, target=1.0, min_count=20)

    assert estimate["simulations"] is None
    assert reason in estimate["reason"]


def test_status_while_daemon_writes(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.replace("MAX_POINTS", "400"))
    store = tmp_path / "c.h5"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), env.get("PYTHONPATH")])
    )
    with (tmp_path / "daemon.log").open("ab") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "tests.campaign_process", str(config), str(store),
             "--sleep", "0.01"],
            cwd=REPO, env=env, stdout=log, stderr=log,
        )  # fmt: skip
        try:
            latencies, cli_latency = _poll_status(store, daemon, polls=25)
            daemon.terminate()
            assert daemon.wait(timeout=60) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()

    assert len(latencies) >= 10
    print(
        f"status latency in-process: max {max(latencies):.3f} s; CLI {cli_latency:.2f} s"
    )
    assert max(latencies) < 2.0
    assert cli_latency < 10.0  # CLI start-up included; the 2 s figure is in-process


def _poll_status(
    store: Path, daemon: subprocess.Popen, polls: int
) -> tuple[list, float]:
    deadline = time.monotonic() + 60
    while not store.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    latencies, cli_latency = [], float("nan")
    for k in range(polls):
        start = time.monotonic()
        status = campaign_status(store)
        latencies.append(time.monotonic() - start)
        assert sum(status["counts"].values()) >= 0
        assert status["running"] == daemon.pid
        if k == polls // 2:
            cli_latency = _cli_status(store)
        assert daemon.poll() is None, "the daemon ended before the status polls did"
        time.sleep(0.1)
    return latencies, cli_latency


def _cli_status(store: Path) -> float:
    start = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "scynet_al.cli", "status", str(store), "--json"],
        check=True,
        capture_output=True,
        timeout=60,
        cwd=REPO,
    )
    elapsed = time.monotonic() - start
    assert "counts" in json.loads(out.stdout)
    return elapsed


def test_status_says_why_points_failed(tmp_path):
    from simulators.result import SimulationResult

    config = parse_config(CONFIG.replace("MAX_POINTS", "60"))
    space = config.build_space()
    path = tmp_path / "failing.h5"
    with CampaignStore.create(
        path, config_text=config.text, space=space, energies=[13],
        analyses={13: ["a"]},
    ) as store:  # fmt: skip
        store.add_pending(space.from_unit(np.full((6, space.dim), 0.5)), "prior", 0)
        reasons = ["lacks parameters ['A']"] * 4 + ["timeout after 60 s", "crash"]
        for point_id, why in enumerate(reasons):
            store.record(point_id, SimulationResult.failed(why))

    status = campaign_status(path)

    assert status["failures"] == [
        {"reason": "lacks parameters ['A']", "count": 4},
        {"reason": "crash", "count": 1},
        {"reason": "timeout after 60 s", "count": 1},
    ]
    lines = format_status(status, recent=0).splitlines()
    assert lines[1:4] == [
        "  failed 4 x: lacks parameters ['A']",
        "  failed 1 x: crash",
        "  failed 1 x: timeout after 60 s",
    ]
