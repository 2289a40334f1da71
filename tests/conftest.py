"""Shared fixtures: repository paths, seeded random generators, logging reset, a
full disk."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    """The repository checkout."""
    return REPO_ROOT


@pytest.fixture
def shared_dir() -> Path:
    """``shared/`` beside the checkout (reference texts, fixtures); skip if absent."""
    path = REPO_ROOT.parent / "shared"
    if not path.is_dir():
        pytest.skip(f"{path} is not present")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator with a fixed seed, fresh for every test."""
    return np.random.default_rng(20190521)


@pytest.fixture(autouse=True)
def restore_logging():
    """Undo the CLI's logging set-up after each test.

    ``scynet_al.cli.main`` installs a handler on the stream that is ``sys.stderr``
    at the time, which pytest's capture replaces in the next test: left in place,
    it would write to a closed file there.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    for name in ("scynet_al", "sampler", "simulators"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    logging.captureWarnings(False)


#: What the file system of a :func:`full_disk` reports free (bytes); messages
#: print it as 8,192.
FREE_ON_A_FULL_DISK = 8192


@pytest.fixture
def full_disk(monkeypatch):
    """Every write of an output file stops halfway with ENOSPC, as on a full disk,
    and its file system reports :data:`FREE_ON_A_FULL_DISK` bytes free."""
    import errno
    import os
    import shutil

    from scynet_al import files

    def write_until_full(fd, data):
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "_write_all", write_until_full)
    monkeypatch.setattr(
        shutil,
        "disk_usage",
        lambda path: shutil._ntuple_diskusage(
            10**9, 10**9 - FREE_ON_A_FULL_DISK, FREE_ON_A_FULL_DISK
        ),
    )
