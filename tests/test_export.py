"""Tests of exported surrogates (torch.export and ONNX) and the export/predict commands."""

from __future__ import annotations

import argparse
import csv
import errno
import io
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sampler.space import pmssm11
from scynet_al import checkpoint
from scynet_al.cli import main as cli_main
from scynet_al.commands import predict as predict_command
from scynet_al.ensemble import Ensemble
from scynet_al.errors import ModelError
from scynet_al.export import export_checkpoint, load_exported
from tests.surrogate_standin import standin_chi2

pytestmark = pytest.mark.usefixtures("restore_logging")

QUICK = {"max_epochs": 2, "batch_size": 200, "n_threads": 1}
SPACE = pmssm11()
M3, MU, TANB = (
    SPACE.names.index("M3"),
    SPACE.names.index("mu"),
    SPACE.names.index("tanb"),
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An ensemble trained on unit-cube points inside [0.1, 0.9]^11, its files."""
    tmp = tmp_path_factory.mktemp("export")
    U = 0.1 + 0.8 * np.random.default_rng(51).random((600, 11))
    U[0], U[1] = 0.1, 0.9  # the training box is exactly [0.1, 0.9]^11
    ensemble = Ensemble(n_members=3, member_params=QUICK).fit(U, standin_chi2(U))
    ckpt = checkpoint.save(
        tmp / "net.ckpt", ensemble, space=SPACE, energy_tev=13,
        metrics={"overall": {"mean_abs_error": 2.0}}, config_hash="f00d",
    )  # fmt: skip
    pt2 = export_checkpoint(ckpt, tmp / "net.pt2")
    onnx = export_checkpoint(ckpt, tmp / "net.onnx", format="onnx")
    return ensemble, ckpt, pt2, onnx, tmp


#: Why each of :func:`mixed_points` is in the domain or not, worked out by hand.
MIXED_DOMAIN = ["ok", "ok", "outside_training"] + ["outside_space"] * 3 + ["ok"]


def mixed_points() -> tuple[np.ndarray, np.ndarray]:
    """Seven points (GeV) and whether each lies in the training domain, by hand."""
    U = np.full((7, 11), 0.5)
    U[1, 0] = 0.12
    U[2, 3] = 0.95  # inside the space, beyond the training box
    X = SPACE.from_unit(U)
    X[3, M3] = 0.0  # in the M3 gap (-400, 400) GeV
    X[4, MU] = 6000.0  # beyond mu <= 5000 GeV
    X[5, TANB] = 0.5  # below tanb >= 1
    X[6, M3] = 450.0  # inside the space: u = (3600 + 50) / 7200 = 0.507
    return X, np.array([True, True, False, False, False, False, True])


def test_pt2_reproduces_the_ensemble(trained):
    ensemble, _, pt2, _, _ = trained
    X, inside = mixed_points()
    X, inside = X[inside], inside[inside]
    chi2, sigma, in_domain = load_exported(pt2).predict(X)
    mean, std = ensemble.predict(SPACE.to_unit(X), return_std=True)
    # The networks compute in float32: through NumPy in the ensemble and through
    # torch in the exported program, which agree to float32 rounding (relative
    # ~1e-7 per member output), for a handful of points and for many.
    np.testing.assert_allclose(chi2, mean, rtol=1e-6)
    np.testing.assert_allclose(sigma, std, rtol=1e-4, atol=1e-4)
    assert in_domain.all()
    many = np.repeat(X, 100, axis=0)
    chi2, sigma, _ = load_exported(pt2).predict(many)
    mean, std = ensemble.predict(SPACE.to_unit(many), return_std=True)
    np.testing.assert_allclose(chi2, mean, rtol=1e-6)
    np.testing.assert_allclose(sigma, std, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_a_calibrated_sigma_is_exported(trained, fmt):
    ensemble, _, _, _, tmp = trained
    U_val = 0.1 + 0.8 * np.random.default_rng(52).random((100, 11))
    calibrated = Ensemble.from_state(ensemble.to_state())
    calibrated.calibrate(U_val, standin_chi2(U_val))
    assert calibrated.sigma_scale_ != pytest.approx(1.0, abs=0.05)
    ckpt = checkpoint.save(
        tmp / f"calibrated-{fmt}.ckpt", calibrated, space=SPACE, energy_tev=13,
        metrics={}, config_hash="f00d",
    )  # fmt: skip
    out = export_checkpoint(ckpt, tmp / f"calibrated.{fmt}", format=fmt)
    model = load_exported(out)

    X = SPACE.from_unit(U_val)
    _, sigma, _ = model.predict(X)
    # The exported sigma is the members' spread, worked out here, times the factor.
    spread = calibrated.predict_members(U_val).std(axis=0, ddof=1)
    np.testing.assert_allclose(
        sigma, spread * calibrated.sigma_scale_, rtol=1e-4, atol=1e-4
    )
    assert model.meta["sigma_scale"] == calibrated.sigma_scale_


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_in_domain_flags_exactly_the_outside_points(trained, fmt):
    model = load_exported(trained[2] if fmt == "pt2" else trained[3])
    X, expected = mixed_points()
    chi2, sigma, in_domain = model.predict(X)
    assert in_domain.tolist() == expected.tolist()
    assert np.all(np.isfinite(chi2)) and np.all(sigma >= 0)


def test_onnx_agrees_with_pt2(trained):
    X, _ = mixed_points()
    X = np.vstack([X, SPACE.from_unit(np.random.default_rng(2).random((200, 11)))])
    a = load_exported(trained[2]).predict(X)
    b = load_exported(trained[3]).predict(X)
    np.testing.assert_allclose(a[0], b[0], atol=1e-3)  # float32 network, chi2 units
    np.testing.assert_allclose(a[1], b[1], atol=1e-3)
    assert np.array_equal(a[2], b[2])
    assert load_exported(trained[3]).meta["inputs"] == list(SPACE.names)


def test_pt2_loads_with_torch_alone(trained):
    pt2 = trained[2]
    X, expected = mixed_points()
    np.save(pt2.with_suffix(".npy"), X)
    script = textwrap.dedent(
        """
        import sys
        for name in ("scynet_al", "sampler", "simulators"):
            sys.modules[name] = None  # any import of the package now fails
        import json, numpy as np, torch
        extra = {"scynet_al.json": ""}
        program = torch.export.load(sys.argv[1], extra_files=extra)
        meta = json.loads(extra["scynet_al.json"])
        X = torch.from_numpy(np.load(sys.argv[2]))
        chi2, sigma, in_domain = program.module()(X)
        print(meta["energy_tev"], meta["inputs"][2], in_domain.tolist())
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(pt2), str(pt2.with_suffix(".npy"))],
        cwd=trained[4], env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(" ", 2)[:2] == ["13", "M3"]
    assert done.stdout.strip().endswith(str(expected.tolist()))


def test_metadata_carries_domain_and_metrics(trained):
    meta = load_exported(trained[2]).meta
    assert meta["kind"] == "direct"
    assert meta["config_hash"] == "f00d"
    assert meta["metrics"] == {"overall": {"mean_abs_error": 2.0}}
    np.testing.assert_allclose(meta["domain"]["low"], 0.1)
    np.testing.assert_allclose(meta["domain"]["high"], 0.9)
    assert meta["space"] == SPACE.to_dict()


def _write_csv(path, header, rows) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def test_predict_command_flags_and_warns_once(trained, caplog):
    tmp = trained[4]
    X, expected = mixed_points()
    order = list(reversed(SPACE.names))  # columns in any order
    _write_csv(tmp / "points.csv", order, X[:, ::-1].tolist())
    args = argparse.Namespace(
        model=trained[2], points=tmp / "points.csv", out=tmp / "out.csv"
    )
    with caplog.at_level(logging.WARNING):
        assert predict_command.main(args) == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "4 of 7 points" in message
    assert "3 outside the parameter space, 1 outside the training box" in message
    with open(tmp / "out.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [*SPACE.names, "chi2", "sigma", "in_domain", "domain"]
    assert [r["in_domain"] == "true" for r in rows] == expected.tolist()
    assert [r["domain"] for r in rows] == MIXED_DOMAIN
    assert float(rows[6]["M3"]) == 450.0
    chi2 = load_exported(trained[2]).predict(X)[0]
    np.testing.assert_array_equal([float(r["chi2"]) for r in rows], chi2)


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        (list(SPACE.names[:-1]), ["1"] * 10, "missing columns ['tanb']"),
        (list(SPACE.names), ["100"] * 5 + ["abc"] + ["100"] * 5, "line 3, column mL12: 'abc' is not a number"),
    ],
)  # fmt: skip
def test_predict_command_names_row_and_column_of_bad_csv(
    trained, capsys, header, row, message
):
    tmp = trained[4]
    good = ["100"] * len(header)
    _write_csv(tmp / "bad.csv", header, [good, row])
    code = cli_main(
        ["predict", str(trained[2]), str(tmp / "bad.csv"), "--out", str(tmp / "o.csv")]
    )
    assert code == 2
    assert message in capsys.readouterr().err


def test_export_command_takes_the_store_checkpoint(trained):
    from scynet_al.store import CampaignStore

    tmp = trained[4]
    with CampaignStore.create(
        tmp / "campaign.h5", config_text="campaign: {}\n", space=SPACE,
        energies=[13], analyses={13: []},
    ) as store:  # fmt: skip
        store.add_checkpoint(trained[1], round=1)
    out = tmp / "from_store.pt2"
    assert cli_main(["export", str(tmp / "campaign.h5"), "--out", str(out)]) == 0
    X, _ = mixed_points()
    np.testing.assert_array_equal(
        load_exported(out).predict(X)[0], load_exported(trained[2]).predict(X)[0]
    )


def test_export_energy_picks_that_networks_checkpoint(trained, capsys):
    # A two-energy campaign writes one checkpoint per energy and refit, named by
    # round and energy, and lists those of its first energy in the store. Two
    # distinct networks stand for them here: the 8 TeV one is a different fit.
    import shutil

    from scynet_al.store import CampaignStore

    tmp = trained[4] / "two_energies"
    (tmp / "ckpt").mkdir(parents=True)
    U = 0.1 + 0.8 * np.random.default_rng(7).random((300, 11))
    other = Ensemble(n_members=2, member_params=QUICK).fit(U, 2.0 * standin_chi2(U))
    for round_ in (1, 2):
        checkpoint.save(
            tmp / "ckpt" / checkpoint.campaign_name(round_, 8), other, space=SPACE,
            energy_tev=8, metrics={}, config_hash="f00d",
        )  # fmt: skip
        shutil.copy(trained[1], tmp / "ckpt" / checkpoint.campaign_name(round_, 13))
    with CampaignStore.create(
        tmp / "c.h5", config_text="campaign: {}\n", space=SPACE,
        energies=[13, 8], analyses={13: [], 8: []},
    ) as store:  # fmt: skip
        for round_ in (1, 2):
            name = tmp / "ckpt" / checkpoint.campaign_name(round_, 13)
            store.add_checkpoint(name, round=round_)
    X, inside = mixed_points()
    X = X[inside]

    def exported(*extra: str) -> np.ndarray:
        out = tmp / f"model{len(extra)}.pt2"
        assert cli_main(["export", str(tmp / "c.h5"), "--out", str(out), *extra]) == 0
        assert checkpoint.campaign_name(2, 13 if not extra else int(extra[1])) in (
            capsys.readouterr().out
        )
        return load_exported(out).predict(X)[0]

    first = load_exported(trained[2]).predict(X)[0]
    out = tmp / "default.pt2"
    assert cli_main(["export", str(tmp / "c.h5"), "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "this is the 13 TeV network; the campaign also trains one at 8 TeV (export it"
        " with --energy)"
    )
    np.testing.assert_array_equal(exported(), first)
    np.testing.assert_array_equal(exported("--energy", "13"), first)
    at_8 = exported("--energy", "8")
    np.testing.assert_allclose(at_8, other.predict(SPACE.to_unit(X)), rtol=1e-6)
    assert not np.allclose(at_8, first)

    assert cli_main(["export", str(tmp / "c.h5"), "--out", str(tmp / "x.pt2"),
                     "--energy", "7"]) != 0  # fmt: skip
    assert "--energy 7: the campaign trains networks at 13, 8 TeV" in (
        capsys.readouterr().err
    )
    assert cli_main(["export", str(trained[1]), "--out", str(tmp / "y.pt2"),
                     "--energy", "8"]) != 0  # fmt: skip
    assert "leave --energy out" in capsys.readouterr().err


def test_reparametrized_export_flags_the_feature_box(tmp_path):
    rng = np.random.default_rng(3)
    F = rng.normal(size=(300, 56))
    y = 60.0 + 5.0 * F[:, 0]
    ensemble = Ensemble(kind="reparametrized", n_members=2, member_params=QUICK).fit(
        F, y
    )
    ckpt = checkpoint.save(
        tmp_path / "r.ckpt",
        ensemble,
        space=None,
        energy_tev=13,
        metrics={},
        config_hash="",
    )
    probe = np.vstack([F[:3], F[:1] + 100.0])
    mean, std = ensemble.predict(probe, return_std=True)
    for fmt in ("pt2", "onnx"):
        model = load_exported(
            export_checkpoint(ckpt, tmp_path / f"r.{fmt}", format=fmt)
        )
        chi2, sigma, in_domain = model.predict(probe)
        assert in_domain.tolist() == [True, True, True, False]
        np.testing.assert_allclose(chi2, mean, atol=1e-3)
        np.testing.assert_allclose(sigma, std, atol=1e-3)
        assert len(model.input_names) == 56


def test_missing_and_foreign_model_files(tmp_path):
    with pytest.raises(ModelError, match="no such model file"):
        load_exported(tmp_path / "none.pt2")
    junk = tmp_path / "junk.pt2"
    junk.write_bytes(b"PK junk")
    with pytest.raises(ModelError, match=r"not a torch\.export model"):
        load_exported(junk)
    with pytest.raises(ModelError, match="unknown export format"):
        export_checkpoint(tmp_path / "x.ckpt", tmp_path / "x.bin", format="tflite")


def test_predict_on_a_store_says_to_export_first(tmp_path):
    from scynet_al.errors import ModelError
    from scynet_al.export import load_exported

    store = tmp_path / "campaign.h5"
    # The 8-byte HDF5 signature is enough for the check; nothing else is read.
    store.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.raises(ModelError, match=r"scynet-al export .*campaign\.h5 --out"):
        load_exported(store)


def test_export_of_a_text_file_is_one_clear_error(tmp_path):
    from scynet_al.errors import ModelError
    from scynet_al.export import export_checkpoint

    text = tmp_path / "notes.h5"
    text.write_text("hello\n")
    with pytest.raises(ModelError, match="neither a campaign store nor"):
        export_checkpoint(text, tmp_path / "x.pt2")


def test_export_and_predict_create_missing_output_directories(trained, capsys):
    _, ckpt, _, _, tmp = trained
    X, _ = mixed_points()
    _write_csv(tmp / "one.csv", list(SPACE.names), X[:1].tolist())
    model = tmp / "new" / "dir" / "model.pt2"
    assert cli_main(["export", str(ckpt), "--out", str(model)]) == 0
    out = tmp / "other" / "out.csv"
    assert (
        cli_main(["predict", str(model), str(tmp / "one.csv"), "--out", str(out)]) == 0
    )
    assert "wrote 1 prediction to" in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 2


def test_export_and_predict_onto_a_directory_fail_with_its_name(trained, capsys):
    _, ckpt, model, _, tmp = trained
    X, _ = mixed_points()
    _write_csv(tmp / "one.csv", list(SPACE.names), X[:1].tolist())
    directory = tmp / "taken.pt2"
    directory.mkdir()
    (directory / "keep.txt").write_text("kept\n")

    assert cli_main(["export", str(ckpt), "--out", str(directory)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al export: error: --out {directory} is a directory; give a file name"
    ]
    code = cli_main(
        ["predict", str(model), str(tmp / "one.csv"), "--out", str(directory)]
    )
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al predict: error: --out {directory} is a directory; give a file name"
    ]
    assert [p.name for p in directory.iterdir()] == ["keep.txt"]
    assert (directory / "keep.txt").read_text() == "kept\n"


@pytest.mark.parametrize(
    ("name", "fmt", "suggested"),
    [("m.onnx", "pt2", "m.pt2"), ("m.pt", None, "m.pt2"), ("m.pt2", "onnx", "m.onnx")],
)
def test_export_refuses_a_name_that_is_not_its_format(
    trained, capsys, name, fmt, suggested
):
    # predict tells the formats apart by the suffix, and torch warns about a .pt2
    # archive under another name: a mismatch is refused before anything is written.
    _, ckpt, _, _, tmp = trained
    out = tmp / "mismatch" / name
    args = ["export", str(ckpt), "--out", str(out)]
    assert cli_main(args + (["--format", fmt] if fmt else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith("scynet-al export: error:")
    assert name in err and suggested in err
    assert not out.parent.exists()


def test_predict_reads_a_csv_that_starts_with_a_byte_order_mark(trained, capsys):
    # Spreadsheet programs save "CSV UTF-8" with the bytes EF BB BF in front.
    _, _, model, _, tmp = trained
    X, _ = mixed_points()
    _write_csv(tmp / "plain.csv", list(SPACE.names), X[:2].tolist())
    marked = tmp / "marked.csv"
    marked.write_bytes(b"\xef\xbb\xbf" + (tmp / "plain.csv").read_bytes())
    for name in ("plain", "marked"):
        args = ["predict", str(model), str(tmp / f"{name}.csv")]
        assert cli_main([*args, "--out", str(tmp / f"{name}-out.csv")]) == 0
    capsys.readouterr()
    assert (tmp / "marked-out.csv").read_text() == (tmp / "plain-out.csv").read_text()


def test_predict_reads_points_from_a_pipe(trained, tmp_path):
    # A pipe can be read once; the points file is read for its header and again
    # for its rows. Predicting from standard input gives what the file gives.
    _, _, model, _, _ = trained
    X, _ = mixed_points()
    _write_csv(tmp_path / "points.csv", list(SPACE.names), X.tolist())
    script = "import sys; from scynet_al.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for source, out in (("/dev/stdin", "piped.csv"), ("points.csv", "file.csv")):
        done = subprocess.run(
            [sys.executable, "-c", script, "predict", str(model), source,
             "--out", out],
            input=(tmp_path / "points.csv").read_text(), cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    piped = (tmp_path / "piped.csv").read_text()
    assert piped == (tmp_path / "file.csv").read_text()
    assert len(piped.splitlines()) == 1 + len(X)


@pytest.mark.parametrize(
    ("name", "hinted"),
    [("round-00002-13TeV.ckpt", True), ("elsewhere.ckpt", False)],
)
def test_export_of_a_removed_checkpoint_names_the_retention_setting(
    tmp_path, capsys, name, hinted
):
    directory = tmp_path / "campaign.h5.checkpoints"
    directory.mkdir()
    missing = directory / name

    assert cli_main(["export", str(missing), "--out", str(tmp_path / "m.pt2")]) == 2

    err = capsys.readouterr().err
    assert str(missing) in err and len(err.strip().splitlines()) == 1
    assert ("campaign.keep_checkpoints" in err) is hinted
    assert not (tmp_path / "m.pt2").exists()


@pytest.mark.parametrize("older_left", [True, False])
def test_export_of_a_store_whose_latest_checkpoint_is_damaged(
    trained, tmp_path, capsys, older_left
):
    from scynet_al.store import CampaignStore

    directory = tmp_path / "campaign.h5.checkpoints"
    directory.mkdir()
    older, latest = (
        directory / "round-00001-13TeV.ckpt",
        directory / "round-00002-13TeV.ckpt",
    )
    whole = trained[1].read_bytes()
    older.write_bytes(whole)
    latest.write_bytes(whole[: len(whole) // 3])  # cut short, as by a full disk
    with CampaignStore.create(
        tmp_path / "campaign.h5", config_text="campaign: {}\n", space=SPACE,
        energies=[13], analyses={13: []},
    ) as store:  # fmt: skip
        store.add_checkpoint(older, round=1)
        store.add_checkpoint(latest, round=2)
    if not older_left:
        older.unlink()  # removed by campaign.keep_checkpoints
    out = tmp_path / "m.pt2"

    code = cli_main(["export", str(tmp_path / "campaign.h5"), "--out", str(out)])

    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"checkpoint {latest}: the file is damaged" in err
    assert f"`scynet-al resume {tmp_path / 'campaign.h5'}` refits" in err
    hint = f"export an older checkpoint by path: scynet-al export {older} --out {out}"
    assert (hint in err) is older_left
    assert ("no older checkpoint" in err) is not older_left
    assert not out.exists()
    if older_left:  # the way out it names works
        assert cli_main(["export", str(older), "--out", str(out)]) == 0
        assert out.exists()


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_domain_says_why_a_point_is_outside(trained, fmt):
    model = load_exported(trained[2] if fmt == "pt2" else trained[3])
    X, _ = mixed_points()
    _, _, in_domain = model.predict(X)

    assert model.domain(X, in_domain).tolist() == MIXED_DOMAIN


def test_predict_carries_extra_columns_through(trained, capsys):
    _, _, model, _, tmp = trained
    X, _ = mixed_points()
    header = ["id", *reversed(SPACE.names), "note"]
    rows = [
        [f"p{i}", *x[::-1].tolist(), f"run {i}, as typed "] for i, x in enumerate(X)
    ]
    _write_csv(tmp / "ids.csv", header, rows)
    out = tmp / "ids-out.csv"

    assert (
        cli_main(["predict", str(model), str(tmp / "ids.csv"), "--out", str(out)]) == 0
    )

    with open(out, newline="") as handle:
        written = list(csv.reader(handle))
    outputs = ["chi2", "sigma", "in_domain", "domain"]
    assert written[0] == ["id", "note", *SPACE.names, *outputs]
    assert [r[:2] for r in written[1:]] == [
        [f"p{i}", f"run {i}, as typed "] for i in range(7)
    ]
    np.testing.assert_array_equal(np.array([r[2:13] for r in written[1:]], float), X)
    assert [r[-1] for r in written[1:]] == MIXED_DOMAIN


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["id", "M_1", *SPACE.names[1:]], "missing columns ['M1'], other columns ['id', 'M_1']"),
        (["chi2", *SPACE.names], "columns ['chi2'] are written by predict"),
    ],
)  # fmt: skip
def test_predict_refuses_a_misspelt_or_output_column(trained, capsys, header, message):
    _, _, model, _, tmp = trained
    _write_csv(tmp / "typo.csv", header, [["1"] * len(header)])
    out = tmp / "typo-out.csv"

    assert (
        cli_main(["predict", str(model), str(tmp / "typo.csv"), "--out", str(out)]) == 2
    )

    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_predict_of_a_checkpoint_says_to_export_it(trained, capsys):
    _, ckpt, _, _, tmp = trained
    _write_csv(tmp / "one.csv", list(SPACE.names), mixed_points()[0][:1].tolist())

    code = cli_main(
        ["predict", str(ckpt), str(tmp / "one.csv"), "--out", str(tmp / "o.csv")]
    )

    assert code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"scynet-al predict: error: {ckpt} is a checkpoint, not an exported model;"
        f" export its network first: scynet-al export {ckpt} --out model.pt2"
    ]


@pytest.mark.parametrize("which", ["points", "model"])
def test_predict_refuses_to_write_over_an_input(trained, capsys, which):
    _, _, model, _, tmp = trained
    points = tmp / "keep.csv"
    _write_csv(points, list(SPACE.names), mixed_points()[0][:1].tolist())
    target = {"points": points, "model": model}[which]
    before = target.read_bytes()
    # The same file under another name: a path through a symbolic link.
    alias = tmp / f"alias-of-{which}"
    alias.unlink(missing_ok=True)
    alias.symlink_to(target)

    assert cli_main(["predict", str(model), str(points), "--out", str(alias)]) == 2

    err = capsys.readouterr().err
    assert f"--out {alias} is the input file {target}" in err
    assert target.read_bytes() == before


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_export_into_a_missing_directory_names_the_file_and_leaves_nothing(
    trained, tmp_path, fmt
):
    from scynet_al.errors import FileWriteError

    out = tmp_path / "absent" / f"m.{fmt}"

    with pytest.raises(FileWriteError) as info:
        export_checkpoint(trained[1], out, format=fmt)

    # torch and onnx say it in their own words; the temporary file is not named.
    message = str(info.value)
    assert message.startswith(f"cannot write {fmt} model {out}: ")
    assert "does not exist" in message or "No such file or directory" in message
    assert ".tmp" not in message
    assert isinstance(info.value, OSError)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_export_on_a_full_disk_keeps_the_older_model(
    trained, tmp_path, capsys, full_disk, fmt
):
    out = tmp_path / f"m.{fmt}"
    out.write_bytes(b"an older model\n")

    assert cli_main(["export", str(trained[1]), "--out", str(out)]) == 2

    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al export: error: cannot write {fmt} model {out}: No space left on"
        f" device; the file system holding {tmp_path} is nearly full (8,192 bytes"
        " free)"
    ]
    assert out.read_bytes() == b"an older model\n"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_export_hands_torch_and_onnx_no_file(trained, tmp_path, monkeypatch):
    # On a full disk torch's zip writer throws from its destructor and aborts the
    # process (exit code 134); serialised into memory it never meets the disk.
    import onnx
    import torch

    targets = []
    save = torch.export.save

    def spy(program, f, **kwargs):
        targets.append(type(f))
        save(program, f, **kwargs)

    def refuse(*args, **kwargs):
        raise AssertionError("onnx.save was handed a file")

    monkeypatch.setattr(torch.export, "save", spy)
    monkeypatch.setattr(onnx, "save", refuse)
    monkeypatch.setattr(onnx, "save_model", refuse)

    for fmt in ("pt2", "onnx"):
        export_checkpoint(trained[1], tmp_path / f"m.{fmt}", format=fmt)

    assert targets == [io.BytesIO]
    X, _ = mixed_points()
    for fmt, index in (("pt2", 2), ("onnx", 3)):
        got = load_exported(tmp_path / f"m.{fmt}").predict(X)
        want = load_exported(trained[index]).predict(X)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


def test_predict_on_a_full_disk_keeps_the_older_csv(
    trained, tmp_path, capsys, full_disk
):
    X, inside = mixed_points()
    points = tmp_path / "points.csv"
    _write_csv(points, list(SPACE.names), X[inside].tolist())  # no domain warning
    out = tmp_path / "o.csv"
    out.write_text("an,older\nresult,file\n")

    code = cli_main(["predict", str(trained[2]), str(points), "--out", str(out)])

    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al predict: error: cannot write predictions CSV {out}: No space"
        f" left on device; the file system holding {tmp_path} is nearly full (8,192"
        " bytes free)"
    ]
    assert out.read_text() == "an,older\nresult,file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv", "points.csv"]


def test_predict_replaces_an_older_csv_whole(trained, tmp_path, capsys):
    points = tmp_path / "points.csv"
    _write_csv(points, list(SPACE.names), mixed_points()[0][:2].tolist())
    out = tmp_path / "o.csv"
    out.write_text("a much longer older file than two predictions\n" * 100)

    assert cli_main(["predict", str(trained[2]), str(points), "--out", str(out)]) == 0

    lines = out.read_text().splitlines()
    assert len(lines) == 3 and lines[0].endswith(",chi2,sigma,in_domain,domain")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv", "points.csv"]


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_export_into_an_unwritable_directory_names_the_file_asked_for(
    trained, tmp_path, capsys, monkeypatch, fmt
):
    from scynet_al import files

    def refuse(path):
        # What os.open says in a directory without write permission.
        tmp = path.with_name(f".{path.name}.0123abcd.tmp")
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp))

    monkeypatch.setattr(files, "new_temporary", refuse)
    out = tmp_path / f"m.{fmt}"

    assert cli_main(["export", str(trained[1]), "--out", str(out)]) == 2

    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al export: error: cannot write {fmt} model {out}: Permission denied"
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root writes into a read-only directory",
)
def test_export_into_a_read_only_directory_names_the_file(trained, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    out = locked / "m.pt2"
    try:
        code = cli_main(["export", str(trained[1]), "--out", str(out)])
    finally:
        locked.chmod(0o755)

    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al export: error: cannot write pt2 model {out}: Permission denied"
    ]
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("source", ["pt2", "onnx", "directory"])
def test_export_says_what_a_wrong_source_is(trained, tmp_path, capsys, source):
    path = {"pt2": trained[2], "onnx": trained[3], "directory": tmp_path}[source]
    out = tmp_path / "x.pt2"

    assert cli_main(["export", str(path), "--out", str(out)]) == 2

    wanted = {
        "pt2": f"{path} is an exported pt2 model, not a campaign store or checkpoint;"
        f" predict takes it: scynet-al predict {path} POINTS.csv --out OUT.csv",
        "onnx": f"{path} is an exported onnx model, not a campaign store or"
        f" checkpoint; predict takes it: scynet-al predict {path} POINTS.csv --out"
        " OUT.csv",
        "directory": f"{path} is a directory; give a campaign store (.h5) or a"
        " checkpoint file (.ckpt)",
    }[source]
    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al export: error: {wanted}"
    ]
    assert not out.exists()


def test_predict_with_the_points_file_in_the_models_place(trained, capsys):
    _, _, _, _, tmp = trained
    X, _ = mixed_points()
    points = tmp / "swapped.csv"
    _write_csv(points, list(SPACE.names), X[:2].tolist())
    out = tmp / "swapped-out.csv"
    assert cli_main(["predict", str(points), str(points), "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al predict: error: {points}: not an exported model (scynet-al export"
        " writes a .pt2 or .onnx file)"
    ]
    assert not out.exists()


def test_an_onnx_file_of_another_program_is_not_called_exported(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1])
    graph = helper.make_graph([helper.make_node("Neg", ["x"], ["y"])], "g", [x], [
        helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1])
    ])  # fmt: skip
    foreign = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(foreign))

    with pytest.raises(ModelError, match="neither a campaign store nor"):
        export_checkpoint(foreign, tmp_path / "x.pt2")


def test_export_command_names_the_path_it_cannot_write(trained, tmp_path, capsys):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a directory\n")
    out = in_the_way / "m.pt2"

    assert cli_main(["export", str(trained[1]), "--out", str(out)]) == 2

    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"scynet-al export: error: cannot write pt2 model {out}: cannot create"
        f" directory {in_the_way}: File exists"
    ]


def test_export_command_refuses_an_empty_name(trained, capsys):
    with pytest.raises(SystemExit) as info:
        cli_main(["export", str(trained[1]), "--out", ""])

    assert info.value.code == 2
    assert "argument --out: an empty file name" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "fmt"), [("m.ONNX", "onnx"), ("m.Pt2", "pt2")])
def test_export_takes_the_suffix_in_any_case(trained, tmp_path, capsys, name, fmt):
    _, ckpt, pt2, onnx, _ = trained
    out = tmp_path / name

    assert cli_main(["export", str(ckpt), "--out", str(out)]) == 0

    assert f"({fmt})" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == [name]
    X, _ = mixed_points()
    same = load_exported(pt2 if fmt == "pt2" else onnx).predict(X)
    for got, want in zip(load_exported(out).predict(X), same, strict=True):
        np.testing.assert_array_equal(got, want)


def test_export_of_a_store_copied_without_its_checkpoints(tmp_path, capsys):
    from scynet_al.store import CampaignStore, checkpoint_directory

    store = tmp_path / "copy.h5"
    with CampaignStore.create(
        store, config_text="campaign: {}\n", space=SPACE, energies=[13],
        analyses={13: []},
    ) as writer:  # fmt: skip
        writer.add_checkpoint(checkpoint_directory(store) / "round-00004-13TeV.ckpt", 4)

    assert cli_main(["export", str(store), "--out", str(tmp_path / "m.pt2")]) == 2

    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"scynet-al export: error: {store}: the checkpoint directory"
        f" {checkpoint_directory(store)} is missing beside the store; a store is moved"
        " or copied together with its copy.h5.checkpoints directory"
    ]


def _campaign_store(path):
    from scynet_al.store import CampaignStore

    with CampaignStore.create(
        path, config_text="campaign: {}\n", space=SPACE, energies=[13],
        analyses={13: []},
    ):  # fmt: skip
        pass


@pytest.mark.parametrize(
    ("which", "called"),
    [("store", "a campaign store"), ("checkpoint", "a checkpoint"),
     ("pt2", "an exported pt2 model"), ("onnx", "an exported onnx model")],
)  # fmt: skip
def test_predict_refuses_to_write_over_a_campaign_file(
    trained, tmp_path, capsys, which, called
):
    _, ckpt, model, onnx, _ = trained
    points = tmp_path / "points.csv"
    _write_csv(points, list(SPACE.names), mixed_points()[0][:1].tolist())
    victim = tmp_path / "victim.h5"  # named as a store, whatever it holds
    if which == "store":
        _campaign_store(victim)
    else:
        victim.write_bytes(
            {"checkpoint": ckpt, "pt2": model, "onnx": onnx}[which].read_bytes()
        )
    before, entries = victim.read_bytes(), sorted(tmp_path.iterdir())

    code = cli_main(["predict", str(model), str(points), "--out", str(victim)])

    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al predict: error: --out {victim} is {called}, which writing would"
        " destroy; give another file name"
    ]
    assert victim.read_bytes() == before
    assert sorted(tmp_path.iterdir()) == entries  # no temporary file


def test_predict_through_a_link_writes_its_target(trained, tmp_path, capsys):
    points = tmp_path / "points.csv"
    _write_csv(points, list(SPACE.names), mixed_points()[0][:2].tolist())
    target = tmp_path / "results.csv"
    target.write_text("an,older\nresult,file\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(target.name)

    assert cli_main(["predict", str(trained[2]), str(points), "--out", str(link)]) == 0

    assert link.is_symlink() and os.readlink(link) == "results.csv"
    lines = target.read_text().splitlines()
    assert len(lines) == 3 and lines[0].endswith(",chi2,sigma,in_domain,domain")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "latest.csv", "points.csv", "results.csv",
    ]  # fmt: skip


def test_predict_refuses_a_number_with_an_underscore(trained, tmp_path, capsys):
    points = tmp_path / "points.csv"
    rows = [["100"] * 11, ["100"] * 3 + ["1_0"] + ["100"] * 7]
    _write_csv(points, list(SPACE.names), rows)
    out = tmp_path / "out.csv"

    code = cli_main(["predict", str(trained[2]), str(points), "--out", str(out)])

    assert code == 2
    column = SPACE.names[3]
    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al predict: error: {points}: line 3, column {column}: '1_0' is not"
        " a number"
    ]
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "fmt", "article"), [("m.pt2", "onnx", "an"), ("m.onnx", "pt2", "a")]
)
def test_a_mismatched_name_is_named_with_its_article(
    trained, tmp_path, capsys, name, fmt, article
):
    out = tmp_path / name

    code = cli_main(["export", str(trained[1]), "--out", str(out), "--format", fmt])

    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al export: error: {out}: {article} {fmt} model file must end in"
        f" .{fmt} (name it m.{fmt})"
    ]
    assert list(tmp_path.iterdir()) == []
