"""Tests of the campaign plots on a tiny campaign with real (small) network ensembles."""

from __future__ import annotations

import contextlib
import logging
import shutil

import h5py
import numpy as np
import pytest
from distributed import Client, LocalCluster

from scynet_al.campaign import Campaign
from scynet_al.cli import main
from scynet_al.config import parse_config
from scynet_al.plots import plot_campaign
from scynet_al.store import CampaignStore, checkpoint_directory
from tests.sim_doubles import AnalyticSimulator
from tests.test_store import damaged_copy, header_address

CONFIG = """
campaign:
  seed: 11
  min_validation_count: 2
  in_flight: 4
  refit_every: 20
  points_per_round: 20
  budget: {max_points: 60, max_wall_time_hours: 1.0}
space: {model: pmssm11}
surrogate: {ensemble_size: 2, max_epochs: 5, patience: 2}
proposer: {candidate_pool: 300, min_distance: 0.01}
"""

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def campaign_store(tmp_path_factory):
    """A store after a 60-point campaign with the default ensemble surrogates."""
    path = tmp_path_factory.mktemp("plots") / "c.h5"
    config = parse_config(CONFIG)
    space = config.build_space()
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
            config, store, client, simulator=AnalyticSimulator.for_space(space)
        ).run()
    return path


def test_plot_writes_every_png(campaign_store, tmp_path):
    written = plot_campaign(campaign_store, tmp_path / "plots")

    names = sorted(p.name for p in written)
    assert names == [
        "chi2_distribution_13TeV.png",
        "learning_curves_13TeV.png",
        "mass_plane_13TeV.png",
    ]
    for path in written:
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert path.stat().st_size > 10_000


def test_campaign_with_ensembles_checkpoints_every_refit(campaign_store):
    from scynet_al import checkpoint

    with CampaignStore.open(campaign_store, mode="r") as store:
        refits = [r for r in store.metrics() if r["kind"] == "refit"]
        latest = store.latest_checkpoint()

    ensemble, meta = checkpoint.load(latest)
    assert len(refits) >= 2
    assert len(ensemble.members_) == 2
    assert meta["energy_tev"] == 13
    assert all(r["energies"]["13"]["knn"]["overall"]["count"] > 0 for r in refits)


def test_plot_into_an_existing_file_is_a_user_error(campaign_store, tmp_path, capsys):
    target = tmp_path / "not_a_directory.png"
    target.write_bytes(b"keep")
    assert main(["plot", str(campaign_store), "--out", str(target)]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert target.read_bytes() == b"keep"


def test_plot_draws_the_rest_when_the_latest_checkpoint_is_damaged(tmp_path, caplog):
    from sampler.space import pmssm11
    from simulators.result import SimulationResult

    damaged = tmp_path / "c.h5.checkpoints" / "round-00001-13TeV.ckpt"
    damaged.parent.mkdir()
    damaged.write_bytes(b"PK\x03\x04" + bytes(100))  # a zip archive cut short
    space = pmssm11()
    with CampaignStore.create(
        tmp_path / "c.h5", config_text=CONFIG, space=space, energies=[13],
        analyses={13: ["a"]},
    ) as store:  # fmt: skip
        X = space.from_unit(np.random.default_rng(3).random((6, 11)))
        ids, _ = store.add_pending(X, origin="validation", round=0)
        for k, point_id in enumerate(ids):
            masses = {1000021: 1000.0 + 100 * k, 1000022: 100.0 + 50 * k}
            result = SimulationResult("ok", chi2={13: 10.0 * k}, masses=masses)
            store.record(int(point_id), result)
        store.append_metrics(
            {"kind": "refit", "round": 1, "n_train": 6, "energies": {"13": {}},
             "checkpoints": {"13": str(damaged)}}
        )  # fmt: skip

    with caplog.at_level(logging.WARNING, logger="scynet_al.plots"):
        written = plot_campaign(tmp_path / "c.h5", tmp_path / "plots")

    assert sorted(p.name for p in written) == [
        "chi2_distribution_13TeV.png",
        "learning_curves_13TeV.png",
        "mass_plane_13TeV.png",
    ]
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in written)
    (warning,) = [r.getMessage() for r in caplog.records]
    assert str(damaged) in warning and "damaged" in warning
    assert warning.endswith("mass plane without the network")


def one_line_error(capsys) -> str:
    """The CLI's stderr, checked to be one error line without a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.splitlines()
    return line


@pytest.mark.parametrize("key", ["masses", "origin", "chi2_analysis/13"])
def test_plot_of_a_damaged_store_is_one_line(campaign_store, tmp_path, capsys, key):
    # 16 bytes 20 bytes into the dataset's object header: its checksum fails.
    bad, offset = tmp_path / "bad.h5", header_address(campaign_store, key) + 20
    damaged = damaged_copy(campaign_store, bad, offset)

    assert main(["plot", str(bad), "--out", str(tmp_path / "plots")]) == 2

    assert one_line_error(capsys) == (
        f"scynet-al plot: error: {bad}: the store is damaged (reading dataset"
        f" {key!r}: incorrect metadata checksum); restore it from a copy"
    )
    assert bad.read_bytes() == damaged
    assert not (tmp_path / "plots").exists()


def test_plot_refuses_an_unknown_status_code(campaign_store, tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    shutil.copy(campaign_store, bad)
    with h5py.File(bad, "r+") as file:
        file["status"][3] = 7
    before = bad.read_bytes()

    assert main(["plot", str(bad), "--out", str(tmp_path / "plots")]) == 2

    assert one_line_error(capsys) == (
        f"scynet-al plot: error: {bad}: the store is damaged (reading dataset"
        " 'status': row 3 (point id 3) holds unknown status code 7; known codes"
        " are 0 to 4); restore it from a copy"
    )
    assert bad.read_bytes() == before


def test_plot_refuses_a_negative_chi2(campaign_store, tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    shutil.copy(campaign_store, bad)
    with h5py.File(bad, "r+") as file:
        row = int(np.flatnonzero(file["status"][:] == 2)[0])  # the first ok point
        file["chi2"][row, 0] = -12.5
    before = bad.read_bytes()

    assert main(["plot", str(bad), "--out", str(tmp_path / "plots")]) == 2

    assert one_line_error(capsys) == (
        f"scynet-al plot: error: {bad}: the store is damaged (dataset 'chi2' row"
        f" {row} (point id {row}) holds -12.5 at 13 TeV: a chi2 is never negative);"
        " restore it from a copy"
    )
    assert bad.read_bytes() == before
    assert not (tmp_path / "plots").exists()


def test_plot_on_a_full_disk_keeps_the_older_png(
    campaign_store, tmp_path, capsys, full_disk
):
    out = tmp_path / "plots"
    out.mkdir()
    older = out / "learning_curves_13TeV.png"  # the first plot written
    older.write_bytes(PNG_MAGIC + b"an older plot")

    assert main(["plot", str(campaign_store), "--out", str(out)]) == 2

    assert one_line_error(capsys) == (
        f"scynet-al plot: error: cannot write plot {older}: No space left on device;"
        f" the file system holding {out} is nearly full (8,192 bytes free)"
    )
    assert older.read_bytes() == PNG_MAGIC + b"an older plot"
    assert [p.name for p in out.iterdir()] == [older.name]  # no temporary file left


def test_plot_replaces_an_older_png_whole(campaign_store, tmp_path):
    out = tmp_path / "plots"
    out.mkdir()
    (out / "mass_plane_13TeV.png").write_bytes(b"an older plot")

    written = plot_campaign(campaign_store, out)

    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)
    assert (out / "mass_plane_13TeV.png").read_bytes()[:8] == PNG_MAGIC


def test_plot_into_a_directory_that_cannot_be_made_names_it(
    campaign_store, tmp_path, capsys, monkeypatch
):
    free = shutil._ntuple_diskusage(10**12, 0, 10**12)  # no "nearly full" remark
    monkeypatch.setattr(shutil, "disk_usage", lambda path: free)
    (tmp_path / "notes").write_text("a file, not a directory")
    out = tmp_path / "notes" / "plots"

    assert main(["plot", str(campaign_store), "--out", str(out)]) == 2

    assert one_line_error(capsys) == (
        f"scynet-al plot: error: cannot write plot directory {out}: Not a directory"
    )


def test_plot_of_a_directory_is_one_line(tmp_path, capsys):
    store = tmp_path / "c.h5"
    store.mkdir()

    assert main(["plot", str(store), "--out", str(tmp_path / "plots")]) == 2

    assert one_line_error(capsys) == (
        f"scynet-al plot: error: {store} is a directory, not a campaign store"
    )


@contextlib.contextmanager
def hidden(directory):
    """``directory`` renamed away for the block, so only copies can be found."""
    away = directory.with_name(directory.name + ".away")
    directory.rename(away)
    try:
        yield
    finally:
        away.rename(directory)


def test_plot_finds_the_checkpoints_of_a_renamed_store(
    campaign_store, tmp_path, caplog
):
    # README: a store is moved or copied together with its <store>.checkpoints/.
    renamed = tmp_path / "renamed.h5"
    shutil.copy(campaign_store, renamed)
    shutil.copytree(checkpoint_directory(campaign_store), checkpoint_directory(renamed))

    with hidden(checkpoint_directory(campaign_store)), caplog.at_level(logging.WARNING):
        written = plot_campaign(renamed, tmp_path / "plots")

    assert "missing" not in caplog.text
    with CampaignStore.open(renamed, mode="r") as store:
        assert store.latest_checkpoint().parent == checkpoint_directory(renamed)
    # With the network the mass plane has three panels of 5 inches at 110 dpi
    # (simulated, network, difference), without it one.
    mass_plane = next(p for p in written if p.name == "mass_plane_13TeV.png")
    assert png_width(mass_plane) == 3 * 5 * 110


def test_plot_of_a_store_copied_without_checkpoints_says_so(
    campaign_store, tmp_path, caplog
):
    copy = tmp_path / "copy.h5"
    shutil.copy(campaign_store, copy)

    with hidden(checkpoint_directory(campaign_store)), caplog.at_level(logging.WARNING):
        plot_campaign(copy, tmp_path / "plots")

    assert (
        f"the checkpoint directory {checkpoint_directory(copy)} is missing beside the"
        " store" in caplog.text
    )
    assert png_width(tmp_path / "plots" / "mass_plane_13TeV.png") == 5 * 110


def png_width(path) -> int:
    """Width in pixels from the IHDR chunk that follows the 8-byte signature."""
    return int.from_bytes(path.read_bytes()[16:20], "big")


def test_plot_of_an_empty_store_draws_quietly(tmp_path, capsys):
    # A store created by a run that labelled nothing yet (budget spent at once,
    # or stopped during its first round): empty figures, no warning.
    import warnings

    from sampler.space import pmssm11

    with CampaignStore.create(
        tmp_path / "c.h5", config_text=CONFIG, space=pmssm11(), energies=[13],
        analyses={13: ["a"]},
    ):  # fmt: skip
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["plot", str(tmp_path / "c.h5"), "--out", str(tmp_path / "p")]) == 0
    assert "Warning" not in capsys.readouterr().err
    assert (tmp_path / "p" / "chi2_distribution_13TeV.png").read_bytes()[
        :8
    ] == PNG_MAGIC
