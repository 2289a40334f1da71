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
from scynet_al.errors import ModelError
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
