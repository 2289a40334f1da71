"""``scynet-al predict MODEL POINTS.csv --out OUT.csv``: chi2, sigma and domain per point.

MODEL is a file written by ``scynet-al export``. POINTS.csv has one header line
with the model's input names (any order) and may carry other columns, such as an
``id``. OUT.csv has those other columns first, as written, then the inputs in
canonical order, then ``chi2``, ``sigma``, ``in_domain`` and ``domain`` (``ok``,
``outside_space`` or ``outside_training``). Points outside the domain are
predicted anyway, flagged, and counted in one warning. OUT.csv is written through
a temporary file beside it and renamed at the end: a failed write (a full disk)
leaves no partial file, and an older file of that name is kept. An OUT.csv that
is a link is followed; a FIFO or a terminal (``/dev/stdout``) is written in place.
An OUT.csv that is a campaign store, a checkpoint or a model file is refused.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from scynet_al.export import ExportedModel

logger = logging.getLogger(__name__)

#: What predict writes, for the message of a failed write.
WHAT = "predictions CSV"

#: Columns predict adds after the inputs.
OUTPUT_COLUMNS: tuple[str, ...] = ("chi2", "sigma", "in_domain", "domain")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``predict``."""
    parser.add_argument("model", type=Path, help="model file from `scynet-al export`")
    parser.add_argument("points", type=Path, help="CSV file, header = input names")
    parser.add_argument("--out", type=Path, required=True, help="output CSV file")


def main(args: argparse.Namespace) -> int:
    """Predict every row of the CSV file and write the results."""
    from scynet_al.export import DOMAIN_OK, OUTSIDE_SPACE, load_exported
    from scynet_al.files import (
        check_not_campaign_file,
        check_not_input,
        check_output_file,
        create_parent,
        write_atomically,
    )

    check_output_file(args.out)
    check_not_input(args.out, args.points, args.model)
    check_not_campaign_file(args.out)
    model = load_exported(args.model)
    X, extra_names, extra_rows = _read_inputs(args.points, model)
    chi2, sigma, in_domain = model.predict(X)
    domain = model.domain(X, in_domain)

    outside = int((domain != DOMAIN_OK).sum())
    if outside:
        beyond = int((domain == OUTSIDE_SPACE).sum())
        logger.warning(
            "%d of %d points lie outside the domain of %s (%d outside the parameter "
            "space, %d outside the training box); their chi2 is an extrapolation",
            outside, len(domain), args.model, beyond, outside - beyond,
        )  # fmt: skip
    create_parent(args.out, WHAT)
    header = [*extra_names, *model.input_names, *OUTPUT_COLUMNS]
    results = zip(X, chi2, sigma, in_domain, domain, strict=True)
    write_atomically(args.out, WHAT, _csv_lines(header, extra_rows, results))
    noun = "prediction" if len(chi2) == 1 else "predictions"
    print(f"wrote {len(chi2)} {noun} to {args.out} ({outside} outside the domain)")
    return 0


def _read_inputs(
    path: Path, model: ExportedModel
) -> tuple[np.ndarray, list[str], list[list[str]]]:
    """Points of the CSV in the model's input order, and its other columns.

    Raises:
        InputError: A bad header or value (names line and column), or another
            column named like an output column.
    """
    from sampler.space import ParameterSpace
    from scynet_al.errors import InputError
    from scynet_al.points_io import read_points_with_extras

    space_dict = model.meta.get("space")
    if space_dict is not None:
        space = ParameterSpace.from_dict(space_dict)
    else:
        # Features have no ranges of their own; the reader only needs the names.
        space = ParameterSpace(
            "features", {name: ((-1e300, 1e300),) for name in model.input_names}
        )
    X, extra_names, extra_rows = read_points_with_extras(
        path, space, check_ranges=False
    )
    taken = [name for name in extra_names if name in OUTPUT_COLUMNS]
    if taken:
        raise InputError(
            f"{path}: line 1 (header): columns {taken} are written by predict;"
            " rename or remove them"
        )
    return X, extra_names, extra_rows


def _csv_lines(
    header: list[str], extra_rows: list[list[str]], results: Iterable
) -> Iterator[bytes]:
    """The header, then one line per point: its other columns as read, inputs,
    chi2, sigma, domain; CSV as ``csv.writer`` writes it, UTF-8 encoded."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    for extra, (row, c, s, d, why) in zip(extra_rows, results, strict=True):
        writer.writerow(
            [
                *extra,
                *(repr(float(v)) for v in row),
                repr(float(c)),
                repr(float(s)),
                str(bool(d)).lower(),
                str(why),
            ]
        )
        yield _take(buffer)
    yield _take(buffer)


def _take(buffer: io.StringIO) -> bytes:
    """What ``buffer`` holds, UTF-8 encoded; the buffer is emptied."""
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode("utf-8")
