#!/usr/bin/env python3
"""Test double of the CheckMATE 2 executable that writes recorded result files.

Called as ``fake_checkmate.py CARD -oe overwrite -q``, it reads the run card's
``[Parameters]`` (Name, Analyses, SLHAFile, OutputDirectory, RandomSeed) and process
sections, then writes the recorded output of one run into ``OutputDirectory/Name``:
``result.txt`` and ``evaluation/*.txt``, keeping only the rows of the analyses the card
names. Without ``-oe overwrite`` and ``-q`` it asks on stdin like the real program
and gives up (exit 2) when stdin is closed.

The recorded run is ``$FAKE_CHECKMATE_FIXTURE``, else
``shared/fixtures/checkmate/gluino_point`` beside the repository.
``$FAKE_CHECKMATE_FAULT`` injects a fault: ``sleep`` (hang for 60 s), ``crash``
(traceback and exit 1), ``noresults`` (exit 0 without total_results.txt),
``garbage`` (exit 0 with binary junk as total_results.txt), ``headeronly`` (header
without rows), ``badnumber`` (a non-numeric signal), ``renamed`` (long column names
in another order, which is valid) and ``dropanalysis`` (rows of the first analysis
left out).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path


def read_card(path: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """``[Parameters]`` entries and the process sections of a run card."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif ":" in line and current is not None:
            key, value = line.split(":", 1)
            current[key.strip()] = value.strip()
    parameters = sections.pop("Parameters", {})
    return parameters, sections


def check_card(parameters: dict[str, str], processes: dict[str, dict[str, str]]) -> str:
    """What is wrong with the card, or an empty string."""
    for key in ("Name", "Analyses", "SLHAFile", "OutputDirectory", "RandomSeed"):
        if key not in parameters:
            return f"missing parameter {key}"
    if not Path(parameters["SLHAFile"]).is_file():
        return f"SLHA file {parameters['SLHAFile']} not found"
    if not processes:
        return "no process section"
    for name, entries in processes.items():
        if "Pythia8Process" not in entries or int(entries.get("MaxEvents", 0)) <= 0:
            return f"process {name} lacks Pythia8Process or MaxEvents"
    return ""


def write_results(source: Path, target: Path, analyses: list[str], fault: str) -> None:
    """Copy the recorded run, keeping the rows of ``analyses``."""
    if target.exists():
        shutil.rmtree(target)
    (target / "evaluation").mkdir(parents=True)
    shutil.copyfile(source / "result.txt", target / "result.txt")
    for path in (source / "evaluation").glob("*.txt"):
        lines = path.read_text().splitlines()
        rows = [ln for ln in lines[1:] if ln.split() and ln.split()[0] in analyses]
        if fault == "dropanalysis" and path.name == "total_results.txt":
            rows = [ln for ln in rows if ln.split()[0] != analyses[0]]
        (target / "evaluation" / path.name).write_text(
            "\n".join([lines[0], *rows]) + "\n"
        )
    apply_fault(target / "evaluation" / "total_results.txt", fault)


def apply_fault(total: Path, fault: str) -> None:
    """Spoil or rewrite total_results.txt as the fault asks."""
    lines = total.read_text().splitlines()
    if fault == "noresults":
        total.unlink()
    elif fault == "garbage":
        total.write_bytes(b"\x00\xff\x13 not a table \xfe\n\x00")
    elif fault == "headeronly":
        total.write_text(lines[0] + "\n")
    elif fault == "badnumber":
        fields = lines[1].split()
        fields[5] = "nan?"
        total.write_text("\n".join([lines[0], " ".join(fields), *lines[2:]]) + "\n")
    elif fault == "renamed":
        header = lines[0].split()
        names = {"o": "obs", "b": "bkg", "db": "bkgerr", "s": "signal_normevents",
                 "ds": "signal_err_tot", "s95obs": "S95obs", "s95exp": "S95exp"}  # fmt: skip
        order = list(reversed(range(len(header))))
        rows = [[ln.split()[i] for i in order] for ln in lines]
        rows[0] = [names.get(f, f) for f in rows[0]]
        total.write_text("\n".join("  ".join(r) for r in rows) + "\n")


def main(argv: list[str]) -> int:
    """Behave like one CheckMATE run; return its exit code."""
    if len(argv) < 1:
        print("usage: CheckMATE CARD [-oe overwrite] [-q]", file=sys.stderr)
        return 2
    if "-q" not in argv or "-oe" not in argv:
        print("Do you want to start the run? [y/n]", flush=True)
        if not sys.stdin.readline():
            print("no answer on stdin", file=sys.stderr)
            return 2
    fault = os.environ.get("FAKE_CHECKMATE_FAULT", "")
    if fault == "sleep":
        time.sleep(60)
    if fault == "crash":
        print("Traceback (most recent call last):\n  Delphes died", file=sys.stderr)
        return 1
    parameters, processes = read_card(Path(argv[0]))
    problem = check_card(parameters, processes)
    if problem:
        print(f"fake CheckMATE: bad run card: {problem}", file=sys.stderr)
        return 3
    default = (
        Path(__file__).resolve().parents[2].parent
        / "shared/fixtures/checkmate/gluino_point"
    )
    source = Path(os.environ.get("FAKE_CHECKMATE_FIXTURE", default))
    analyses = [a.strip() for a in parameters["Analyses"].split(",")]
    target = Path(parameters["OutputDirectory"]) / parameters["Name"]
    write_results(source, target, analyses, fault)
    print(f"fake CheckMATE: wrote {target} for {len(processes)} processes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
