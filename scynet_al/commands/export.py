"""``scynet-al export STORE --out MODEL``: one self-contained file of the latest network.

STORE is a campaign store (its latest checkpoint is exported) or a checkpoint file.
The model file evaluates physical parameters (GeV) to chi2, sigma and an
in-domain flag without this package; see :mod:`scynet_al.export` for the loader.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``export``."""
    parser.add_argument(
        "store", type=Path, help="campaign store (HDF5) or a checkpoint file (.ckpt)"
    )
    parser.add_argument(
        "--out", type=file_path, required=True, help="model file to write"
    )
    parser.add_argument(
        "--format",
        choices=("pt2", "onnx"),
        default=None,
        help="pt2 (torch.export) or onnx; default from the --out suffix (.onnx in "
        "any case: onnx, else pt2); the suffix must match the format",
    )


def file_path(text: str) -> Path:
    """A file name given on the command line; an empty one is refused (argparse)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty file name")
    return Path(text)


def main(args: argparse.Namespace) -> int:
    """Export the latest checkpoint of the store (or the given checkpoint)."""
    from scynet_al.errors import CheckpointReadError
    from scynet_al.export import check_model_name, export_checkpoint, format_of
    from scynet_al.files import check_output_file, create_parent

    check_output_file(args.out)
    fmt = args.format or format_of(args.out)
    check_model_name(args.out, fmt)
    checkpoints = _checkpoints_of(args.store)
    create_parent(args.out, f"{fmt} model")
    try:
        export_checkpoint(checkpoints[0], args.out, format=fmt)
    except CheckpointReadError as exc:
        if checkpoints[0] == args.store:
            raise
        raise CheckpointReadError(_damaged_latest(args, checkpoints, exc)) from exc
    print(f"exported {checkpoints[0]} to {args.out} ({fmt})")
    return 0


def _checkpoints_of(path: Path) -> list[Path]:
    """The checkpoint to export first: the store's checkpoints newest first, or ``path``."""
    import h5py

    from scynet_al.checkpoint import missing_message, parse_campaign_name
    from scynet_al.errors import ModelError, StoreError
    from scynet_al.export import check_exportable
    from scynet_al.store import CampaignStore, missing_checkpoints

    if not path.exists():
        if parse_campaign_name(path.name) is not None:
            raise ModelError(missing_message(path))
        raise StoreError(f"{path}: no such campaign store or checkpoint")
    check_exportable(path)
    if not h5py.is_hdf5(path):
        return [path]
    with CampaignStore.open(path, mode="r") as store:
        checkpoints = [p for p, _ in store.checkpoints()]
    if not checkpoints:
        raise ModelError(f"{path}: the campaign has no checkpoint yet")
    latest = checkpoints[0]
    gone = None if latest.exists() else missing_checkpoints(path, latest)
    if gone is not None:
        raise ModelError(f"{path}: {gone}")
    return checkpoints


def _damaged_latest(
    args: argparse.Namespace, checkpoints: list[Path], exc: Exception
) -> str:
    """One line: the store's latest checkpoint cannot be read, and the two ways out."""
    older = next((p for p in checkpoints[1:] if p.is_file()), None)
    fallback = (
        f", or export an older checkpoint by path: scynet-al export {older} --out"
        f" {args.out}"
        if older is not None
        else "; no older checkpoint of it is left to export instead"
    )
    return (
        f"{exc}; it is the latest checkpoint of {args.store}: `scynet-al resume"
        f" {args.store}` refits the network and writes a new one{fallback}"
    )
