"""``scynet-al predict MODEL POINTS.csv --out OUT.csv``: chi2, sigma and in_domain per point.

MODEL is a file written by ``scynet-al export``. POINTS.csv has one header line
with the model's input names (any order). OUT.csv repeats the inputs in canonical
order and adds ``chi2``, ``sigma`` and ``in_domain``. Points outside the training
domain are predicted anyway, flagged, and counted in one warning.
"""

from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from scynet_al.export import ExportedModel

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``predict``."""
    parser.add_argument("model", type=Path, help="model file from `scynet-al export`")
    parser.add_argument("points", type=Path, help="CSV file, header = input names")
    parser.add_argument("--out", type=Path, required=True, help="output CSV file")


def main(args: argparse.Namespace) -> int:
    """Predict every row of the CSV file and write the results."""
    from scynet_al.export import load_exported

    model = load_exported(args.model)
    X = _read_inputs(args.points, model)
    chi2, sigma, in_domain = model.predict(X)

    outside = int((~in_domain).sum())
    if outside:
        logger.warning(
            "%d of %d points lie outside the training domain of %s; their chi2 is an extrapolation",
            outside, len(in_domain), args.model,
        )  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _write(args.out, model.input_names, X, chi2, sigma, in_domain)
    noun = "prediction" if len(chi2) == 1 else "predictions"
    print(f"wrote {len(chi2)} {noun} to {args.out} ({outside} outside the domain)")
    return 0


def _read_inputs(path: Path, model: ExportedModel) -> np.ndarray:
    """Points of the CSV in the model's input order; errors name line and column."""
    from sampler.space import ParameterSpace
    from scynet_al.points_io import read_points_csv

    space_dict = model.meta.get("space")
    if space_dict is not None:
        space = ParameterSpace.from_dict(space_dict)
    else:
        # Features have no ranges of their own; the reader only needs the names.
        space = ParameterSpace(
            "features", {name: ((-1e300, 1e300),) for name in model.input_names}
        )
    return read_points_csv(path, space, check_ranges=False)


def _write(
    path: Path,
    names: list[str],
    X: np.ndarray,
    chi2: np.ndarray,
    sigma: np.ndarray,
    in_domain: np.ndarray,
) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, "chi2", "sigma", "in_domain"])
        for row, c, s, d in zip(X, chi2, sigma, in_domain, strict=True):
            writer.writerow(
                [
                    *(repr(float(v)) for v in row),
                    repr(float(c)),
                    repr(float(s)),
                    str(bool(d)).lower(),
                ]
            )
