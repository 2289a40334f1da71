"""The recorded SPheno 4.0.5 runs in ``shared/fixtures/spheno``, for tests."""

from __future__ import annotations

import json
from pathlib import Path

import pyslha
import pytest

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "spheno"
FAKE_SPHENO = Path(__file__).resolve().parent / "data" / "fake_spheno.py"

#: index.json spells some pMSSM-11 names in capitals.
_CANONICAL = {"MQ12": "mQ12", "MQ3": "mQ3", "ML12": "mL12", "ML3": "mL3", "MA": "mA"}

#: Runs in which SPheno itself stopped (exit code 99).
FAILED_IN_SPHENO = ("tachyonic_stop", "stau_lsp", "large_mixing")


def fixtures_dir() -> Path:
    """The fixtures directory; skips the test when it is absent."""
    if not (FIXTURES / "index.json").is_file():
        pytest.skip(f"SPheno fixtures not found at {FIXTURES}")
    return FIXTURES


def index() -> dict:
    """index.json: run name to parameters, exit code and files."""
    return json.loads((fixtures_dir() / "index.json").read_text())


def point(name: str) -> dict[str, float]:
    """The pMSSM-11 point of a recorded run, canonical names."""
    params = index()[name]["parameters"]
    return {_CANONICAL.get(k, k): float(v) for k, v in params.items()}


def valid_names() -> list[str]:
    """Runs where SPheno wrote a spectrum (exit code 0)."""
    if not (FIXTURES / "index.json").is_file():
        return []
    data = json.loads((FIXTURES / "index.json").read_text())
    return [name for name, run in data.items() if run["exit_code"] == 0]


def all_names() -> list[str]:
    """Every recorded run."""
    if not (FIXTURES / "index.json").is_file():
        return []
    return list(json.loads((FIXTURES / "index.json").read_text()))


def spheno_masses(name: str) -> dict[int, float]:
    """MASS block of a run's SPheno.spc, read with pyslha directly."""
    doc = pyslha.read(str(fixtures_dir() / name / "SPheno.spc"))
    return {int(k): float(v) for k, v in doc.blocks["MASS"].items()}
