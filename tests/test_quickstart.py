"""The README's first command end to end: the quickstart campaign on the built-in chain.

Slow (10-15 minutes on two cores): run with ``python -m pytest -m slow
tests/test_quickstart.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scynet_al.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_quickstart_campaign_learns_and_reports(tmp_path):
    store = tmp_path / "quickstart.h5"
    run = cli("run", str(REPO / "configs" / "quickstart.yaml"), "--store", str(store),
              timeout=1500)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]

    status = cli("status", str(store), "--json", timeout=120)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    counts = report["counts"]
    assert counts["ok"] >= 100, counts
    assert counts["pending"] == 0, counts
    refits = report["refits"]
    assert len(refits) >= 3, refits
    # More training points, smaller error: the last refit beats the first.
    assert refits[-1]["n_train"] > refits[0]["n_train"]
    assert refits[-1]["overall"] < refits[0]["overall"], refits
    regions = report["regions"]["13"]
    assert {"I", "zero", "II", "III", "cap"} <= set(regions), regions
    assert any(r["count"] > 0 for r in regions.values())

    plots = tmp_path / "plots"
    plot = cli("plot", str(store), "--out", str(plots), timeout=300)
    assert plot.returncode == 0, plot.stderr
    pngs = sorted(plots.glob("*.png"))
    assert len(pngs) >= 3, pngs
    assert all(p.stat().st_size > 10_000 for p in pngs), pngs
