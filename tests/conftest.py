"""Shared fixtures: repository paths and seeded random generators."""

from __future__ import annotations

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
