"""``scynet-al plot FILE --out DIR``: learning curves, chi2 distribution, mass planes."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``plot``."""
    parser.add_argument("store", type=Path, help="campaign store (HDF5)")
    parser.add_argument(
        "--out", type=Path, required=True, help="directory for the PNG files"
    )


def main(args: argparse.Namespace) -> int:
    """Write the PNGs and list them."""
    from scynet_al.errors import InputError, StoreError
    from scynet_al.plots import plot_campaign

    if not args.store.exists():
        raise StoreError(f"{args.store}: no such campaign store")
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out {args.out}: exists and is not a directory")
    for path in plot_campaign(args.store, args.out):
        print(path)
    return 0
