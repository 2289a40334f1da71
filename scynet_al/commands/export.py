"""``scynet-al export STORE --out MODEL``: one self-contained file of the latest network.

STORE is a campaign store (its latest checkpoint is exported) or a checkpoint file.
A campaign at two energies trains one network per energy; ``--energy`` picks which
(default: the campaign's first energy).
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
        "--energy",
        type=int,
        default=None,
        metavar="TEV",
        help="for a campaign at several energies: the energy whose network to "
        "export (default: the campaign's first)",
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
    checkpoints, energies = _checkpoints_of(args.store, args.energy)
    create_parent(args.out, f"{fmt} model")
    try:
        export_checkpoint(checkpoints[0], args.out, format=fmt)
    except CheckpointReadError as exc:
        if checkpoints[0] == args.store:
            raise
        raise CheckpointReadError(_damaged_latest(args, checkpoints, exc)) from exc
    print(f"exported {checkpoints[0]} to {args.out} ({fmt})")
    if args.energy is None and len(energies) > 1:
        others = ", ".join(str(e) for e in energies[1:])
        print(
            f"this is the {energies[0]} TeV network; the campaign also trains one at"
            f" {others} TeV (export it with --energy)"
        )
    return 0


def _checkpoints_of(
    path: Path, energy: int | None = None
) -> tuple[list[Path], tuple[int, ...]]:
    """The checkpoint to export first: the store's checkpoints newest first, or ``path``;
    and the campaign's energies (none for a checkpoint file).

    With ``energy``, a store's checkpoints are those of that energy's network.
    """
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
        if energy is not None:
            raise ModelError(
                f"{path}: --energy picks a network of a campaign store; a checkpoint"
                " file holds one network, so leave --energy out"
            )
        return [path], ()
    with CampaignStore.open(path, mode="r") as store:
        checkpoints = [p for p, _ in store.checkpoints()]
        energies = store.energies
    if energy is not None and energy not in energies:
        listed = ", ".join(f"{e}" for e in energies)
        raise ModelError(
            f"{path}: --energy {energy}: the campaign trains networks at {listed} TeV"
        )
    if not checkpoints:
        raise ModelError(f"{path}: the campaign has no checkpoint yet")
    if energy is not None and energy != energies[0]:
        checkpoints = [_sibling(p, energy) for p in checkpoints]
    latest = checkpoints[0]
    gone = None if latest.exists() else missing_checkpoints(path, latest)
    if gone is not None:
        raise ModelError(f"{path}: {gone}")
    return checkpoints, energies


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


def _sibling(path: Path, energy: int) -> Path:
    """The checkpoint of the same refit at ``energy``, beside ``path``.

    The store lists the checkpoints of its first energy; each refit writes one
    file per energy, named by round and energy, into the same directory.
    """
    from scynet_al.checkpoint import campaign_name, parse_campaign_name

    parsed = parse_campaign_name(path.name)
    if parsed is None:
        return path
    return path.with_name(campaign_name(parsed[0], energy))
