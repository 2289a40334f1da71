"""``scynet-al resume FILE``: continue a campaign with the config stored in FILE."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scynet_al.commands.run import add_dispatch_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``resume``."""
    parser.add_argument("store", type=Path, help="campaign store (HDF5)")
    add_dispatch_arguments(parser)


def main(args: argparse.Namespace) -> int:
    """Re-dispatch pending points, load the last checkpoint and go on."""
    from scynet_al.commands.run import execute
    from scynet_al.config import parse_config
    from scynet_al.errors import StoreError
    from scynet_al.store import CampaignStore

    if not args.store.exists():
        raise StoreError(f"{args.store}: no such campaign store")
    with CampaignStore.open(args.store, mode="r") as store:
        config = parse_config(store.config_text, source=f"{args.store} (stored config)")
    return execute(
        config,
        args.store,
        scheduler=args.scheduler,
        progress=sys.stderr.isatty() and not args.no_progress,
        as_json=args.json,
    )
