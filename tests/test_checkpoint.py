"""Tests of surrogate checkpoints: contents, atomic writes, reload in a new process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from sampler.space import pmssm11
from scynet_al import checkpoint
from scynet_al.ensemble import Ensemble
from scynet_al.errors import CheckpointReadError, FileWriteError, ModelError
from tests.conftest import REPO_ROOT
from tests.surrogate_standin import standin_dataset

QUICK = {"max_epochs": 2, "batch_size": 200, "n_threads": 1}
METRICS = {"overall": {"mean_abs_error": 1.5, "count": 10, "interval": [1.2, 1.8]}}

#: Trains, saves, writes its predictions, then dies by SIGKILL (no clean exit).
WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from sampler.space import pmssm11
    from scynet_al import checkpoint
    from scynet_al.ensemble import Ensemble
    from tests.surrogate_standin import standin_dataset

    path, points = sys.argv[1], sys.argv[2]
    U, y = standin_dataset(500, seed=41)
    ensemble = Ensemble(n_members=2, member_params={QUICK!r}).fit(U, y)
    checkpoint.save(path, ensemble, space=pmssm11(), energy_tev=13,
                    metrics={{}}, config_hash="cafe")
    np.save(points, ensemble.predict(np.load(points + ".in.npy"), return_std=True))
    os.kill(os.getpid(), signal.SIGKILL)
    """
).format(QUICK=QUICK)

READER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from scynet_al import checkpoint

    ensemble, meta = checkpoint.load(sys.argv[1])
    np.save(sys.argv[2], ensemble.predict(np.load(sys.argv[3]), return_std=True))
    """
)


@pytest.fixture(scope="module")
def fitted():
    U, y = standin_dataset(500, seed=42)
    return U, Ensemble(n_members=2, member_params=QUICK).fit(U, y)


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_reload_after_kill_predicts_bit_identically(tmp_path):
    path = tmp_path / "net.ckpt"
    written = str(tmp_path / "written.npy")
    U_val, _ = standin_dataset(300, seed=43)
    np.save(written + ".in.npy", U_val)

    writer = _run(WRITER, str(path), written)
    assert writer.returncode == -signal.SIGKILL, writer.stderr
    reader = _run(READER, str(path), str(tmp_path / "read.npy"), written + ".in.npy")
    assert reader.returncode == 0, reader.stderr

    before, after = np.load(written), np.load(tmp_path / "read.npy")
    assert before.shape == (2, 300)
    assert np.array_equal(before, after)
    in_this_process, _ = checkpoint.load(path)
    assert np.array_equal(in_this_process.predict(U_val, return_std=True), before)


def test_checkpoint_carries_domain_space_metrics_and_hash(tmp_path, fitted):
    U, ensemble = fitted
    path = checkpoint.save(
        tmp_path / "a.ckpt", ensemble, space=pmssm11(), energy_tev=13,
        metrics=METRICS, config_hash="beef",
    )  # fmt: skip
    _, meta = checkpoint.load(path)
    assert meta["space"] == pmssm11()
    assert meta["energy_tev"] == 13
    assert meta["config_hash"] == "beef"
    assert meta["metrics"] == METRICS
    assert meta["domain"]["kind"] == "direct"
    np.testing.assert_array_equal(meta["domain"]["input_low"], U.min(axis=0))
    np.testing.assert_array_equal(meta["domain"]["input_high"], U.max(axis=0))


def test_a_checkpoint_is_as_readable_as_the_umask_lets_any_file_be(tmp_path, fitted):
    _, ensemble = fitted
    old = os.umask(0o022)
    try:
        path = checkpoint.save(
            tmp_path / "a.ckpt", ensemble, space=pmssm11(), energy_tev=13,
            metrics={}, config_hash="1",
        )  # fmt: skip
    finally:
        os.umask(old)
    # 0o666 less the umask's 0o022: readable by group and others, as the store.
    assert path.stat().st_mode & 0o777 == 0o644


def test_failed_write_leaves_the_old_checkpoint(tmp_path, fitted, monkeypatch):
    _, ensemble = fitted
    path = tmp_path / "a.ckpt"
    checkpoint.save(
        path, ensemble, space=pmssm11(), energy_tev=13, metrics={}, config_hash="1"
    )
    before = path.read_bytes()

    def broken_save(obj, fh):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(
            path, ensemble, space=pmssm11(), energy_tev=13, metrics={}, config_hash="2"
        )
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ckpt"]


#: What torch.save raised when the disk filled up during a refit.
CUT_SHORT = (
    "[enforce fail at inline_container.cc:672] . unexpected pos 2226432 vs 2226368"
)


@pytest.mark.parametrize(
    ("free", "note"),
    [
        (12_288, "; the file system holding {dir} is nearly full (12,288 bytes free)"),
        (50 * 2**30, ""),
    ],
)
def test_a_write_cut_short_names_the_checkpoint_and_a_full_disk(
    tmp_path, fitted, monkeypatch, free, note
):
    import shutil

    _, ensemble = fitted
    path = tmp_path / "round-00012-13TeV.ckpt"

    def cut_short(obj, fh):
        fh.write(b"PK" + bytes(4096))
        raise RuntimeError(CUT_SHORT)

    def usage(directory):
        assert directory == tmp_path
        return shutil._ntuple_diskusage(100 * 2**30, 100 * 2**30 - free, free)

    monkeypatch.setattr(torch, "save", cut_short)
    monkeypatch.setattr(shutil, "disk_usage", usage)
    with pytest.raises(FileWriteError) as info:
        checkpoint.save(
            path, ensemble, space=pmssm11(), energy_tev=13, metrics={}, config_hash="3"
        )

    assert str(info.value) == (
        f"cannot write checkpoint {path}: the write stopped short (torch: unexpected"
        " pos 2226432 vs 2226368)" + note.format(dir=tmp_path)
    )
    assert isinstance(info.value, OSError)
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_directory_is_named_with_the_checkpoint(tmp_path, fitted):
    _, ensemble = fitted
    (tmp_path / "taken").write_text("a file where the directory should be\n")
    path = tmp_path / "taken" / "net.ckpt"

    with pytest.raises(FileWriteError, match=f"^cannot write checkpoint {path}: "):
        checkpoint.save(
            path, ensemble, space=pmssm11(), energy_tev=13, metrics={}, config_hash="4"
        )


def test_foreign_files_are_refused(tmp_path, fitted):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read checkpoint"):
        checkpoint.load(junk)
    other = tmp_path / "other.ckpt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(ModelError, match="not a scynet-al checkpoint"):
        checkpoint.load(other)
    with pytest.raises(ModelError, match="not fitted"):
        checkpoint.save(
            tmp_path / "x.ckpt",
            Ensemble(),
            space=None,
            energy_tev=13,
            metrics={},
            config_hash="",
        )


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        ("net.ckpt", "cut", "the file is damaged, cut short or overwritten"),
        ("round-00003-13TeV.ckpt", "zeroed", "the file is damaged"),
        ("net.ckpt", "zeroed", "neither a campaign store nor a scynet-al checkpoint"),
    ],
)
def test_a_damaged_checkpoint_is_told_from_a_foreign_file(
    tmp_path, fitted, name, damage, message
):
    # A file that starts as torch.save's zip archive, or bears a campaign
    # checkpoint's name, was a checkpoint once.
    _, ensemble = fitted
    path = checkpoint.save(
        tmp_path / name, ensemble, space=pmssm11(), energy_tev=13, metrics={},
        config_hash="1",
    )  # fmt: skip
    data = path.read_bytes()
    if damage == "cut":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(bytes(512) + data[512:])

    with pytest.raises(CheckpointReadError) as info:
        checkpoint.load(path)

    assert str(info.value).startswith(f"cannot read checkpoint {path}: {message}")
    assert isinstance(info.value, ModelError)


#: Starts a checkpoint write with the campaign's file name and dies by SIGKILL
#: half-way through it, as a daemon killed during a refit does.
KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import torch
    from scynet_al import checkpoint

    def half_then_killed(obj, fh):
        fh.write(b"half a checkpoint")
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    torch.save = half_then_killed
    checkpoint._write_atomically(Path(sys.argv[1]), {})
    """
)


def test_a_killed_write_leaves_a_temporary_file_that_is_removed(tmp_path, caplog):
    target = tmp_path / "round-00007-13TeV.ckpt"
    others = ["round-00006-13TeV.ckpt", "notes.txt", ".cache.tmp", "x.ckpt.abc.tmp"]
    for name in others:
        (tmp_path / name).write_bytes(b"keep")

    writer = _run(KILLED_WRITER, str(target))
    assert writer.returncode == -signal.SIGKILL, writer.stderr
    leftovers = sorted(set(os.listdir(tmp_path)) - set(others))
    assert len(leftovers) == 1
    assert leftovers[0].startswith(".round-00007-13TeV.ckpt.")
    assert leftovers[0].endswith(".tmp")

    with caplog.at_level("INFO", logger="scynet_al.checkpoint"):
        removed = checkpoint.remove_partial_writes(tmp_path)

    assert removed == [tmp_path / leftovers[0]]
    assert sorted(os.listdir(tmp_path)) == sorted(others)
    assert leftovers[0] in caplog.text


def test_remove_partial_writes_in_a_missing_directory_removes_nothing(tmp_path):
    assert checkpoint.remove_partial_writes(tmp_path / "absent") == []


def test_prune_removes_only_campaign_checkpoints_of_rounds_not_kept(tmp_path, caplog):
    for round_ in range(1, 7):
        for energy in (8, 13):
            (tmp_path / f"round-{round_:05d}-{energy}TeV.ckpt").write_bytes(b"w")
    foreign = [
        "notes.txt",
        "round-00002-13TeV.ckpt.bak",
        "round-2-13TeV.ckpt",
        "old-round-00002-13TeV.ckpt",
        "round-00002-7TeV.ckpt",
        ".round-00002-13TeV.ckpt.k3j9x_2a.tmp",
    ]
    for name in foreign:
        (tmp_path / name).write_bytes(b"x")
    # A directory with a checkpoint's name, holding one: neither is touched.
    nested = tmp_path / "round-00009-13TeV.ckpt" / "round-00001-13TeV.ckpt"
    nested.parent.mkdir()
    nested.write_bytes(b"w")

    with caplog.at_level("DEBUG", logger="scynet_al.checkpoint"):
        removed = checkpoint.prune(tmp_path, {8: {1, 5, 6}, 13: {2, 5, 6}})

    assert [p.name for p in removed] == [
        "round-00002-8TeV.ckpt",
        "round-00003-8TeV.ckpt",
        "round-00004-8TeV.ckpt",
        "round-00001-13TeV.ckpt",
        "round-00003-13TeV.ckpt",
        "round-00004-13TeV.ckpt",
    ]
    assert sorted(os.listdir(tmp_path)) == sorted(
        [
            *foreign,
            "round-00001-8TeV.ckpt",
            "round-00005-8TeV.ckpt",
            "round-00006-8TeV.ckpt",
            "round-00002-13TeV.ckpt",
            "round-00005-13TeV.ckpt",
            "round-00006-13TeV.ckpt",
            "round-00009-13TeV.ckpt",
        ]
    )
    assert nested.exists()
    assert caplog.text.count("removed checkpoint") == 6


@pytest.mark.parametrize(
    ("name", "hinted"),
    [("round-00003-13TeV.ckpt", True), ("round-123456-8TeV.ckpt", True),
     ("net.ckpt", False)],
)  # fmt: skip
def test_a_missing_campaign_checkpoint_mentions_retention(tmp_path, name, hinted):
    with pytest.raises(ModelError, match="no such file") as info:
        checkpoint.load(tmp_path / name)

    assert ("campaign.keep_checkpoints" in str(info.value)) is hinted


def test_a_checkpoint_in_a_missing_directory_names_the_directory(tmp_path):
    path = tmp_path / "gone.h5.checkpoints" / "round-00003-13TeV.ckpt"

    with pytest.raises(ModelError) as info:
        checkpoint.load(path)

    assert str(info.value) == (
        f"cannot read checkpoint {path}: no such directory {path.parent}"
    )
