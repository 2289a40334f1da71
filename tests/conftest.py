"""Shared fixtures: repository paths, seeded random generators, logging reset."""

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
