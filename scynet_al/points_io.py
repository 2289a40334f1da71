"""Reading parameter points from CSV files whose header holds canonical names."""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from pathlib import Path

import numpy as np

from sampler.space import ParameterSpace, make_space
from scynet_al.errors import InputError

logger = logging.getLogger(__name__)

#: Models whose canonical names a CSV header may carry.
MODELS: tuple[str, ...] = ("pmssm11", "pmssm19")


#: A number as a points CSV may write it: decimal digits with an optional sign,
#: point and exponent (``-1.5e3``), or ``inf`` / ``nan`` (refused as not finite).
#: Python's float() also takes ``1_0`` (as 10) and digits of other scripts, which
#: no CSV writer means as a number.
NUMBER = re.compile(
    r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|[+-]?(?:inf|infinity|nan)",
    re.ASCII | re.IGNORECASE,
)

#: Points CSVs are read as UTF-8; a leading byte-order mark, which spreadsheet
#: programs write into "CSV UTF-8" files, is dropped instead of becoming part of
#: the first column name.
CSV_ENCODING = "utf-8-sig"


#: Contents of points files that are not regular files (a pipe, ``/dev/stdin``,
#: a FIFO, process substitution), read once: such a file can be read only once,
#: and a points file is read several times (header, rows, line numbers).
_STREAMS: dict[str, str] = {}


def _open_csv(path: str | Path) -> io.TextIOBase:
    """The points file opened for the csv module, as text.

    A regular file is opened anew on every call; any other file is read to its
    end on the first call and served from memory afterwards.
    """
    if Path(path).is_file():
        return open(path, newline="", encoding=CSV_ENCODING)
    key = str(path)
    if key not in _STREAMS:
        with open(path, newline="", encoding=CSV_ENCODING) as handle:
            _STREAMS[key] = handle.read()
    return io.StringIO(_STREAMS[key], newline="")


def read_header(path: str | Path) -> list[str]:
    """Column names of a points CSV (first line), stripped.

    Raises:
        InputError: The file is missing, unreadable or empty.
    """
    try:
        with _open_csv(path) as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read points CSV: {exc}") from exc
    if not header:
        raise InputError(f"{path}: empty file, expected a header of parameter names")
    return [name.strip() for name in header]


def model_of_header(path: str | Path) -> str:
    """The model whose canonical names the CSV header lists (in any order).

    Raises:
        InputError: The header matches no model; names the unexpected or missing
            columns of the closest model.
    """
    header = read_header(path)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise InputError(f"{path}: line 1 (header): duplicate columns {duplicates}")
    model = closest_model(header)
    unknown, missing = header_columns(header, model)
    if not unknown and not missing:
        return model
    raise InputError(
        f"{path}: header matches no model; closest is {model} with unknown columns "
        f"{unknown} and missing columns {missing}"
    )


def closest_model(header: list[str]) -> str:
    """The model of :data:`MODELS` whose names differ from ``header`` in the fewest
    columns (unknown plus missing); the first such model on a tie."""
    return min(MODELS, key=lambda model: sum(map(len, header_columns(header, model))))


def header_columns(header: list[str], model: str) -> tuple[list[str], list[str]]:
    """How ``header`` differs from the names of ``model``.

    Returns:
        The columns that are no parameter of ``model``, sorted, and the
        parameters the header lacks, sorted.
    """
    names = set(make_space(model).names)
    return sorted(set(header) - names), sorted(names - set(header))


def read_points_csv(
    path: str | Path, space: ParameterSpace, *, check_ranges: bool = True
) -> np.ndarray:
    """Read points from a CSV file with one header line of canonical names.

    Columns may come in any order; every parameter of ``space`` must appear once
    and no other column may. Blank lines are skipped.

    Args:
        path: The CSV file.
        space: The parameter space whose names the header must carry.
        check_ranges: Also require every value to lie inside the space.

    Returns:
        Points, shape ``(n, space.dim)``, columns in the space's canonical order
        (GeV; tanb dimensionless).

    Raises:
        InputError: Missing file, bad header, or a bad value; names the line
            (1 = header) and the column.
    """
    X, _, _ = _read(path, space, check_ranges=check_ranges, extra_columns=False)
    return X


def read_points_with_extras(
    path: str | Path, space: ParameterSpace, *, check_ranges: bool = True
) -> tuple[np.ndarray, list[str], list[list[str]]]:
    """Like :func:`read_points_csv`, but columns beyond the parameters are kept.

    An ``id`` or a comment column rides along with its point. A misspelt parameter
    is still caught: its canonical column is then missing.

    Returns:
        Points ``(n, space.dim)`` in canonical column order, the names of the
        other columns in file order, and their cells per point as written.

    Raises:
        InputError: As :func:`read_points_csv`; a missing parameter's message
            names the extra columns that may be its misspelling.
    """
    return _read(path, space, check_ranges=check_ranges, extra_columns=True)


def _read(
    path: str | Path, space: ParameterSpace, *, check_ranges: bool, extra_columns: bool
) -> tuple[np.ndarray, list[str], list[list[str]]]:
    header = read_header(path)
    _check_header(path, header, space, extra_columns=extra_columns)
    order = [header.index(name) for name in space.names]
    extras = [j for j, name in enumerate(header) if name not in space.names]
    rows, extra_rows = [], []
    with _open_csv(path) as handle:
        reader = csv.reader(handle)
        next(reader)
        for line_no, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            rows.append(_parse_row(path, line_no, row, header, order))
            extra_rows.append([row[j] for j in extras])
    X = np.asarray(rows, dtype=float).reshape(-1, space.dim)
    if check_ranges:
        _check_ranges(path, X, space, rows_lines=_data_lines(path))
    logger.debug("read %d points from %s", len(X), path)
    return X, [header[j] for j in extras], extra_rows


def _check_header(
    path: str | Path,
    header: list[str],
    space: ParameterSpace,
    *,
    extra_columns: bool = False,
) -> None:
    duplicates = sorted({name for name in header if header.count(name) > 1})
    unknown = [name for name in header if name not in space.names]
    missing = [name for name in space.names if name not in header]
    problems = [
        f"{label} columns {names}"
        for label, names in (
            ("duplicate", duplicates),
            ("unknown", [] if extra_columns else unknown),
            ("missing", missing),
        )
        if names
    ]
    if extra_columns and missing and unknown:
        problems.append(f"other columns {unknown} (a misspelt parameter?)")
    if problems:
        raise InputError(
            f"{path}: line 1 (header): {', '.join(problems)}; expected "
            f"{', '.join(space.names)}"
        )


def _parse_row(
    path: str | Path, line_no: int, row: list[str], header: list[str], order: list[int]
) -> list[float]:
    if len(row) != len(header):
        raise InputError(
            f"{path}: line {line_no}: {len(row)} values for {len(header)} columns"
        )
    values = []
    for j in order:
        cell = row[j].strip()
        if not NUMBER.fullmatch(cell):
            raise InputError(
                f"{path}: line {line_no}, column {header[j]}: {cell!r} is not a number"
            )
        value = float(cell)
        if not math.isfinite(value):
            raise InputError(
                f"{path}: line {line_no}, column {header[j]}: {cell!r} is not finite"
            )
        values.append(value)
    return values


def _data_lines(path: str | Path) -> list[int]:
    with _open_csv(path) as handle:
        reader = csv.reader(handle)
        next(reader)
        return [
            n
            for n, row in enumerate(reader, start=2)
            if any(cell.strip() for cell in row)
        ]


def _check_ranges(
    path: str | Path, X: np.ndarray, space: ParameterSpace, rows_lines: list[int]
) -> None:
    inside = space.contains(X) if len(X) else np.ones(0, bool)
    if inside.all():
        return
    i = int(np.flatnonzero(~inside)[0])
    for j, name in enumerate(space.names):
        if not space.contains(_with_only(X[i], j, space)).all():
            allowed = " or ".join(
                f"[{lo:g}, {hi:g}]" for lo, hi in space.intervals[name]
            )
            raise InputError(
                f"{path}: line {rows_lines[i]}, column {name}: {X[i, j]:g} lies outside "
                f"{allowed}"
            )


def _with_only(row: np.ndarray, j: int, space: ParameterSpace) -> np.ndarray:
    """A point inside the space except for parameter ``j``, taken from ``row``."""
    probe = np.array([iv[0][0] for iv in space.intervals.values()], dtype=float)
    probe[j] = row[j]
    return probe[None, :]
