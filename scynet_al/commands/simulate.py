"""``scynet-al simulate``: run a simulator stage on the points of a CSV file.

``--stage spectrum`` computes the spectrum (built-in calculator or SPheno) and the
pre-selection; ``--stage full`` runs a whole back-end through its ``simulate``.
Each stage is a function in :data:`STAGES` that turns one point into one JSON-able
dict; a new stage is a new entry there and a new ``--stage`` choice.

Output: one JSON object per input row, in input order, with ``row`` (1-based data
row), ``point``, ``status`` (ok / rejected / failed), ``reason`` and ``masses``
keyed by PDG code (string keys, GeV, SLHA signs); ``--stage full`` adds the other
fields of :class:`simulators.result.SimulationResult`. The file is written
through a temporary file beside it and renamed at the end: a run that fails leaves
no partial output, and an older file of that name is kept. A run interrupted by
Ctrl-C, SIGTERM or SIGHUP keeps the rows finished: the file then holds exactly
those, one line on stderr says how many, and the exit code is 128 + the signal
(130 for Ctrl-C). An OUT that is a link is followed; a FIFO or a terminal
(``/dev/stdout``) is written in place, each row as it is finished. An OUT that is
a campaign store, a checkpoint or a model file is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from scynet_al.commands import whole_number

logger = logging.getLogger(__name__)

#: What simulate writes, for the message of a failed write.
WHAT = "simulation results"

#: Signals that stop simulate as Ctrl-C does (SIGHUP: its terminal was closed).
STOP_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)

#: A stage: (point, row number, parsed arguments, scratch directory) -> JSON dict.
Stage = Callable[[Mapping[str, float], int, argparse.Namespace, Path], dict[str, Any]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``simulate``."""
    parser.add_argument("points", type=Path, help="CSV file, header = parameter names")
    parser.add_argument(
        "--out", type=Path, required=True, help="output JSON-lines file"
    )
    parser.add_argument(
        "--stage",
        choices=sorted(STAGES),
        default="spectrum",
        help="how far to simulate: spectrum (the default: masses, no chi2), or on to"
        " the full chain's chi2 (full)",
    )
    parser.add_argument(
        "--backend",
        default="builtin",
        help="builtin (default), spheno, or any back-end for --stage full",
    )
    parser.add_argument(
        "--model", choices=("pmssm11", "pmssm19"), default=None,
        help="model of the points (default: read from the CSV header)",
    )  # fmt: skip
    parser.add_argument(
        "--spheno-binary",
        default=None,
        help="SPheno executable (default $SCYNET_SPHENO)",
    )
    parser.add_argument(
        "--timeout-s",
        type=positive_seconds,
        default=120.0,
        help="time limit of one external run (s); a number > 0",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None,
        help="keep per-row scratch directories here (default: a removed temporary one)",
    )  # fmt: skip
    parser.add_argument(
        "--seed",
        type=whole_number,
        default=0,
        help="seed of row 1 (row i: seed + i - 1); a whole number >= 0",
    )
    parser.add_argument(
        "--setting", action="append", default=[], metavar="KEY=VALUE",
        help="back-end setting for --stage full (VALUE read as JSON, else text); repeatable",
    )  # fmt: skip


def positive_seconds(text: str) -> float:
    """A time limit in seconds, finite and above zero, for argparse.

    Raises:
        argparse.ArgumentTypeError: Not a number, or not above zero; argparse
            reports it with the option's name.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time limit; give a finite number of seconds > 0"
        )
    return value


def main(args: argparse.Namespace) -> int:
    """Simulate every row of the CSV file and write one JSON line per row.

    Ctrl-C, SIGTERM or SIGHUP stop the run: the rows finished are written, and
    the exit code is 128 + the signal.
    """
    with signals_as_interrupt(STOP_SIGNALS) as caught:
        try:
            return _simulate(args)
        except KeyboardInterrupt as stop:
            return _report_interrupted(args, stop, caught.signum)


def _simulate(args: argparse.Namespace) -> int:
    """Check the arguments, run every row and write its record; the exit code."""
    from scynet_al.files import (
        check_not_campaign_file,
        check_not_input,
        check_output_file,
    )

    check_output_file(args.out)
    check_not_input(args.out, args.points)
    check_not_campaign_file(args.out)
    points, space = _read_points(args)
    _check_backend(args)
    counts = _write_rows(args, points, space)

    by_status = "".join(f", {k} {v}" for k, v in sorted(counts.items()))
    print(f"{args.out}: {sum(counts.values())} rows{by_status}")
    return 0


def _read_points(args: argparse.Namespace) -> tuple[list[dict[str, float]], Any]:
    """The points of the CSV file and their space; sets ``args.model`` (from the
    header unless given)."""
    from sampler.space import make_space
    from scynet_al.points_io import model_of_header, read_points_csv

    _refuse_other_columns(args.points, args.model)
    model = args.model or model_of_header(args.points)
    space = make_space(model)
    X = read_points_csv(args.points, space, check_ranges=False)
    args.model = model
    return space.array_to_points(X), space


def _check_backend(args: argparse.Namespace) -> None:
    """Refuse a back-end, binary or setting the stage cannot use, before --out is
    opened."""
    from scynet_al.errors import InputError

    if args.stage == "spectrum" and args.backend not in SPECTRUM_BACKENDS:
        raise InputError(
            f"--stage spectrum supports backends {sorted(SPECTRUM_BACKENDS)}, got {args.backend!r}"
        )
    if args.stage == "spectrum" and args.backend == "spheno":
        from simulators.spheno import SPhenoSimulator

        SPhenoSimulator(args.spheno_binary, args.model, args.timeout_s).check()
    if args.stage == "spectrum" and args.setting:
        raise InputError("--setting applies to --stage full only")
    if args.stage == "full":
        _simulator(args)


class Interruption:
    """Which signal interrupted a run: SIGINT (Ctrl-C) unless a signal of
    :func:`signals_as_interrupt` came.

    Attributes:
        signum: The signal number.
    """

    def __init__(self) -> None:
        self.signum = int(signal.SIGINT)


@contextlib.contextmanager
def signals_as_interrupt(signums: tuple[int, ...]) -> Iterator[Interruption]:
    """Make ``signums`` raise the KeyboardInterrupt of Ctrl-C while the block runs,
    and restore the old handlers at its end.

    A signal the process ignores (SIGHUP under ``nohup``) stays ignored. Outside
    the main thread, where Python installs no handlers, nothing changes.

    Yields:
        The :class:`Interruption` that records the signal that came.
    """
    caught = Interruption()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        caught.signum = signum
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    old = {signum: signal.getsignal(signum) for signum in signums}
    try:
        for signum, handler in old.items():
            if handler is not signal.SIG_IGN:
                signal.signal(signum, interrupt)
        yield caught
    finally:
        for signum, handler in old.items():
            # None: a handler not set from Python, which is the default one here.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def _report_interrupted(
    args: argparse.Namespace, stop: KeyboardInterrupt, signum: int
) -> int:
    """One line on stderr for a run that ``signum`` stopped; 128 + ``signum``."""
    from scynet_al.files import WriteInterrupted

    if isinstance(stop, WriteInterrupted):
        noun = "row" if stop.n_chunks == 1 else "rows"
        done = f"wrote the {stop.n_chunks} finished {noun} to {args.out}"
    else:
        done = f"no rows written, {args.out} left as it was"
    name = signal.Signals(signum).name
    print(f"scynet-al simulate: interrupted by {name}; {done}", file=sys.stderr)
    return 128 + signum


def _refuse_other_columns(path: Path, model: str | None) -> None:
    """Refuse a header with every parameter of the model and other columns too
    (an ``id``), naming the columns to drop; other header faults are left to the
    reader, whose messages name them.

    Raises:
        InputError: Names the file and the columns beyond the parameters.
    """
    from scynet_al.errors import InputError
    from scynet_al.points_io import closest_model, header_columns, read_header

    header = read_header(path)
    model = model or closest_model(header)
    others, missing = header_columns(header, model)
    if others and not missing:
        noun = "column" if len(others) == 1 else "columns"
        raise InputError(
            f"{path}: line 1 (header): simulate takes the parameter columns of"
            f" {model} only; drop the {noun} {others} (predict keeps such columns)"
        )


def _write_rows(
    args: argparse.Namespace, points: list[dict[str, float]], space: Any
) -> dict[str, int]:
    """Run every row and write its record; the counts of records by status."""
    from scynet_al.files import create_parent, write_atomically

    counts: dict[str, int] = {}
    stage = STAGES[args.stage]
    create_parent(args.out, WHAT)
    with _scratch_root(args.workdir) as root:
        records = _run_rows(stage, points, args, Path(root), space)
        lines = _json_lines(records, points, counts)
        write_atomically(args.out, WHAT, lines, keep_on_interrupt=True)
    return counts


def _json_lines(
    records: Iterator[tuple[int, dict[str, Any]]],
    points: list[dict[str, float]],
    counts: dict[str, int],
) -> Iterator[bytes]:
    """One UTF-8 JSON line per record, with its row and point; ``counts`` tallies
    the records by status as they pass."""
    for row, record in records:
        record = {"row": row, "point": points[row - 1], **record}
        counts[record["status"]] = counts.get(record["status"], 0) + 1
        yield (json.dumps(record) + "\n").encode("utf-8")


def _run_rows(
    stage: Stage,
    points: list[dict[str, float]],
    args: argparse.Namespace,
    root: Path,
    space: Any,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each row's record; a point outside the space is rejected without running."""
    from sampler.errors import SpaceError

    for row, point in enumerate(points, start=1):
        try:
            space.check(space.points_to_array([point]))
        except SpaceError as exc:
            reason = str(exc).removeprefix("point 0: ")
            yield row, {"status": "rejected", "reason": reason, "masses": {}}
            continue
        scratch = root / f"row_{row:06d}"
        scratch.mkdir(parents=True, exist_ok=True)
        yield row, stage(point, row, args, scratch)


@contextlib.contextmanager
def _scratch_root(workdir: Path | None) -> Iterator[str]:
    """The user's ``--workdir`` (kept), else a temporary directory removed at the end."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield str(workdir)
        return
    with tempfile.TemporaryDirectory(prefix="scynet-simulate-") as tmp:
        yield tmp


# ------------------------------------------------------------------ stages


def spectrum_stage(
    point: Mapping[str, float], row: int, args: argparse.Namespace, scratch: Path
) -> dict[str, Any]:
    """Spectrum and pre-selection of one point with the built-in calculator or SPheno."""
    return SPECTRUM_BACKENDS[args.backend](point, args, scratch)


def _builtin_spectrum(
    point: Mapping[str, float], args: argparse.Namespace, scratch: Path
) -> dict[str, Any]:
    import numpy as np

    from simulators.errors import SimulatorError
    from simulators.preselection import preselect
    from simulators.spectrum import compute_spectrum

    started = time.perf_counter()
    try:
        spectrum = compute_spectrum(point, args.model)
    except (SimulatorError, ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
        logger.warning("built-in spectrum failed for %s: %s", dict(point), exc)
        return _record("failed", f"built-in spectrum failed: {exc}", {}, started)
    reason = preselect(spectrum)
    status = "ok" if reason is None else "rejected"
    return _record(
        status, reason or "", spectrum.masses, started, tachyons=spectrum.tachyons
    )


def _spheno_spectrum(
    point: Mapping[str, float], args: argparse.Namespace, scratch: Path
) -> dict[str, Any]:
    from simulators.spheno import run_spheno

    started = time.perf_counter()
    settings = {"spheno_binary": args.spheno_binary, "timeout_s": args.timeout_s}
    spectrum, outcome, _ = run_spheno(point, args.model, settings, scratch)
    if outcome is not None:
        masses = outcome.masses or (spectrum.masses if spectrum else {})
        return _record(outcome.status, outcome.reason, masses, started)
    masses = spectrum.masses if spectrum is not None else {}
    return _record("ok", "", masses, started)


def full_stage(
    point: Mapping[str, float], row: int, args: argparse.Namespace, scratch: Path
) -> dict[str, Any]:
    """A whole back-end (``--backend``) through its ``simulate``; the full result."""
    simulator = _simulator(args)
    result = simulator.simulate(point, seed=args.seed + row - 1, workdir=scratch)
    return result.to_json()


def _simulator(args: argparse.Namespace) -> Any:
    """The back-end of ``--stage full``, made and checked once per command."""
    cached = getattr(args, "_simulator", None)
    if cached is None:
        from scynet_al.errors import InputError
        from simulators.backends import MissingSettingError, make_simulator

        settings = _backend_settings(args)
        try:
            cached = make_simulator(args.backend, settings)
        except MissingSettingError as exc:
            needed = " ".join(
                f"--setting {name}={SETTING_EXAMPLES.get(name, 'VALUE')}"
                for name in exc.names
            )
            raise InputError(f"--backend {exc.backend} needs {needed}") from exc
        cached.check()
        args._simulator = cached
    return cached


def _backend_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Settings of the ``--stage full`` back-end: the model, SPheno options, --setting."""
    from scynet_al.errors import InputError

    settings: dict[str, Any] = {}
    if args.backend in ("builtin", "spheno", "checkmate"):
        settings["model"] = args.model
    if args.backend in ("spheno", "checkmate") and args.spheno_binary:
        settings["spheno_binary"] = args.spheno_binary
    if args.backend == "spheno":
        settings["timeout_s"] = args.timeout_s
    for item in args.setting:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--setting {item!r}: expected KEY=VALUE")
        try:
            settings[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            settings[key.strip()] = text
    return settings


def _record(
    status: str,
    reason: str,
    masses: Mapping[int, float],
    started: float,
    **extra: Any,
) -> dict[str, Any]:
    record = {
        "status": status,
        "reason": reason,
        "masses": {str(pdg): float(m) for pdg, m in sorted(masses.items())},
        "timings": {"spectrum": time.perf_counter() - started},
    }
    record.update(extra)
    return record


#: Spectrum calculators of ``--stage spectrum`` by ``--backend`` name.
SPECTRUM_BACKENDS: dict[
    str, Callable[[Mapping[str, float], argparse.Namespace, Path], dict[str, Any]]
] = {
    "builtin": _builtin_spectrum,
    "spheno": _spheno_spectrum,
}

#: What a back-end setting that has no default looks like, for the message that
#: asks for it (``--setting pool=FILE.h5``).
SETTING_EXAMPLES: dict[str, str] = {"pool": "FILE.h5"}

#: Stages by ``--stage`` name.
STAGES: dict[str, Stage] = {
    "spectrum": spectrum_stage,
    "full": full_stage,
}
