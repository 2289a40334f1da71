#!/usr/bin/env python3
"""Test double of the SPheno 4.0.5 binary that replays recorded runs.

Run in a directory holding LesHouches.in, it finds the recorded run whose input
parameters (``index.json`` of the SPheno fixtures) match the card's MINPAR/EXTPAR
entries, copies that run's SPheno.spc and Messages.out into the directory and
exits with the recorded exit code. Input without a recorded run gives exit code 3.

The fixtures directory is ``$FAKE_SPHENO_FIXTURES``, else ``shared/fixtures/spheno``
beside the repository. ``$FAKE_SPHENO_FAULT`` injects a fault for adapter tests:
``sleep`` (hang for 60 s), ``crash`` (die by SIGSEGV-like exit code 139 after
writing half a file), ``exit99`` (exit 99 with no output), ``nospc`` (exit 0
without SPheno.spc), ``garbage`` (exit 0 with an unreadable SPheno.spc).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

#: pMSSM-11 names of index.json to EXTPAR entries (MINPAR 3 for tan beta).
EXTPAR_OF = {
    "M1": 1, "M2": 2, "M3": 3, "A": 11, "mu": 23, "tanb": 25, "MA": 26,
    "ML12": 31, "ML3": 33, "MQ12": 41, "MQ3": 43,
}  # fmt: skip


def read_extpar(card: Path) -> dict[int, float]:
    """EXTPAR entries of a LesHouches.in."""
    entries: dict[int, float] = {}
    block = ""
    for line in card.read_text().splitlines():
        fields = line.split("#")[0].split()
        if not fields:
            continue
        if fields[0].lower() == "block":
            block = fields[1].upper()
        elif block == "EXTPAR" and len(fields) >= 2:
            entries[int(fields[0])] = float(fields[1])
    return entries


def find_run(fixtures: Path, extpar: dict[int, float]) -> str | None:
    """Name of the recorded run whose parameters equal the card's."""
    index = json.loads((fixtures / "index.json").read_text())
    for name, run in index.items():
        wanted = {EXTPAR_OF[k]: v for k, v in run["parameters"].items()}
        if all(abs(extpar.get(k, float("nan")) - v) <= 1e-6 * max(1.0, abs(v))
               for k, v in wanted.items()):  # fmt: skip
            return name
    return None


def main() -> int:
    """Replay one run in the working directory; return its exit code."""
    here = Path.cwd()
    default = Path(__file__).resolve().parents[2].parent / "shared/fixtures/spheno"
    fixtures = Path(os.environ.get("FAKE_SPHENO_FIXTURES", default))
    fault = os.environ.get("FAKE_SPHENO_FAULT", "")
    extpar = read_extpar(here / "LesHouches.in")
    if fault == "sleep":
        time.sleep(60)
    if fault == "crash":
        (here / "SPheno.spc").write_text("Block SPINFO\n 1 SPheno\nBlock MASS\n 25 1")
        return 139
    if fault == "exit99":
        return 99
    name = find_run(fixtures, extpar)
    if name is None:
        print("fake SPheno: no recorded run for these parameters", file=sys.stderr)
        return 3
    run = json.loads((fixtures / "index.json").read_text())[name]
    print(f"fake SPheno: replaying {name}")
    shutil.copyfile(fixtures / name / "Messages.out", here / "Messages.out")
    if fault == "garbage":
        (here / "SPheno.spc").write_bytes(
            b"\x00\xffnot SLHA at all\nBlock MASS\n x y z\n"
        )
        return 0
    if fault != "nospc":
        shutil.copyfile(fixtures / name / "SPheno.spc", here / "SPheno.spc")
    return int(run["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
