"""``scynet-al status FILE [--json]``: how far a campaign is; safe while it runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scynet_al.commands import whole_number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``status``."""
    parser.add_argument("store", type=Path, help="campaign store (HDF5)")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.add_argument(
        "--recent",
        type=whole_number,
        default=5,
        help="refits shown in the trend (text form; 0 for none)",
    )


def main(args: argparse.Namespace) -> int:
    """Print the status of the campaign store."""
    from scynet_al.errors import StoreError
    from scynet_al.status import campaign_status, format_status

    if not args.store.exists():
        raise StoreError(f"{args.store}: no such campaign store")
    status = campaign_status(args.store)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(format_status(status, recent=args.recent))
    return 0
