"""Surrogate checkpoints: ensemble, normalisation, training domain and metrics, atomically.

Besides reading and writing one checkpoint, this module names a campaign's
checkpoint files (``round-00012-13TeV.ckpt``), removes those of older refits
(:func:`prune`) and removes what an interrupted write left behind
(:func:`remove_partial_writes`).
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from sampler.space import ParameterSpace
from scynet_al import __version__
from scynet_al.ensemble import Ensemble
from scynet_al.errors import CheckpointReadError, ModelError
from scynet_al.files import (
    fsync_directory,
    new_temporary,
    torch_writer_failure,
    write_failure,
)

logger = logging.getLogger(__name__)

#: Format name and version stored in every checkpoint.
FORMAT_NAME = "scynet-al-checkpoint"
FORMAT_VERSION = 1

#: File name of a campaign's checkpoint of one refit at one energy.
CAMPAIGN_NAME = re.compile(r"round-(?P<round>\d{5,})-(?P<energy>\d+)TeV\.ckpt")

#: Temporary file of such a checkpoint whose write was cut short: the name
#: :func:`_write_atomically` gives it (``.round-00012-13TeV.ckpt.3f9a01c2.tmp``).
PARTIAL_NAME = re.compile(r"\.round-\d{5,}-\d+TeV\.ckpt\..+\.tmp")

#: First bytes of a zip archive, the container ``torch.save`` writes.
ZIP_MAGIC = b"PK\x03\x04"

#: Appended to the message about a missing campaign checkpoint.
PRUNED_HINT = (
    "; a campaign keeps only the checkpoints of its newest refits"
    " (campaign.keep_checkpoints), its best refit and its latest one, so this one"
    " may have been removed: export the campaign store for its latest network"
)


def save(
    path: str | os.PathLike,
    ensemble: Ensemble,
    *,
    space: ParameterSpace | None,
    energy_tev: int,
    metrics: dict[str, Any] | None,
    config_hash: str,
) -> Path:
    """Write a fitted ensemble and its context to ``path`` atomically.

    The file appears complete or not at all: it is written to a temporary file in
    the same directory, flushed to disk, then renamed over ``path``.

    Args:
        path: Target file (conventionally ``*.ckpt``).
        ensemble: A fitted :class:`Ensemble`.
        space: The parameter space of the direct network's unit cube (None for a
            reparametrized ensemble on features).
        energy_tev: Centre-of-mass energy the network predicts chi2 for.
        metrics: The latest accuracy summary (``metrics.region_errors`` output).
        config_hash: Hash of the campaign config that produced the network.

    Returns:
        The path written.

    Raises:
        ModelError: The ensemble is not fitted.
        FileWriteError: The file cannot be written (no permission, disk full);
            names ``path`` and, on a nearly full disk, the bytes left. Nothing of
            the failed write is left behind, and an older file at ``path`` stays.
    """
    if not hasattr(ensemble, "members_"):
        raise ModelError("cannot checkpoint an ensemble that is not fitted")
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(),
        "energy_tev": int(energy_tev),
        "config_hash": str(config_hash),
        "space": None if space is None else space.to_dict(),
        "domain": {
            "kind": ensemble.kind,
            "input_low": torch.from_numpy(ensemble.input_low_.copy()),
            "input_high": torch.from_numpy(ensemble.input_high_.copy()),
        },
        "metrics": metrics or {},
        "ensemble": ensemble.to_state(),
    }
    path = Path(path)
    _write_atomically(path, payload)
    logger.info("checkpoint written to %s", path)
    return path


def load(path: str | os.PathLike) -> tuple[Ensemble, dict[str, Any]]:
    """Read a checkpoint written by :func:`save`.

    Returns:
        The fitted ensemble, and the metadata: ``energy_tev``, ``config_hash``,
        ``space`` (a :class:`ParameterSpace` or None), ``domain`` (``kind``,
        ``input_low``, ``input_high`` as arrays), ``metrics``, ``created``,
        ``package_version``.

    Raises:
        ModelError: The file is missing.
        CheckpointReadError: The file exists but is damaged (cut short, overwritten),
            not a checkpoint, or of another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(missing_message(path))
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a foreign file makes torch raise almost any type
        raise CheckpointReadError(_unreadable_message(path, exc)) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointReadError(f"{path} is not a scynet-al checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointReadError(
            f"{path}: checkpoint format version {payload.get('format_version')!r}, this package reads {FORMAT_VERSION}"
        )
    logger.debug("checkpoint read from %s", path)

    ensemble = Ensemble.from_state(payload["ensemble"])
    space = payload["space"]
    meta = {
        key: payload[key]
        for key in (
            "energy_tev",
            "config_hash",
            "metrics",
            "created",
            "package_version",
        )
    }
    meta["space"] = None if space is None else ParameterSpace.from_dict(space)
    meta["domain"] = {
        "kind": payload["domain"]["kind"],
        "input_low": payload["domain"]["input_low"].numpy(),
        "input_high": payload["domain"]["input_high"].numpy(),
    }
    return ensemble, meta


def _unreadable_message(path: Path, exc: Exception) -> str:
    """Why ``path`` could not be read: a damaged checkpoint or a foreign file.

    ``torch.save`` writes a zip archive, so a file that starts like one, or that
    bears a campaign checkpoint's name, was meant to be a checkpoint: it was cut
    short (a full disk, a partial copy) or overwritten.
    """
    try:
        with path.open("rb") as handle:
            zipped = handle.read(4) == ZIP_MAGIC
    except OSError:  # unreadable altogether: the caught error says why
        zipped = False
    if zipped or parse_campaign_name(path.name) is not None:
        return (
            f"cannot read checkpoint {path}: the file is damaged, cut short or"
            f" overwritten ({type(exc).__name__} while reading it)"
        )
    return (
        f"cannot read checkpoint {path}: neither a campaign store nor a"
        f" scynet-al checkpoint ({type(exc).__name__} while reading it)"
    )


def missing_message(path: Path) -> str:
    """What to tell a user asking for a checkpoint file that does not exist."""
    if not path.parent.is_dir():
        return f"cannot read checkpoint {path}: no such directory {path.parent}"
    hint = PRUNED_HINT if parse_campaign_name(path.name) is not None else ""
    return f"cannot read checkpoint {path}: no such file{hint}"


def campaign_name(round_: int, energy_tev: int) -> str:
    """File name of a campaign's checkpoint of one refit (``round-00012-13TeV.ckpt``)."""
    return f"round-{round_:05d}-{energy_tev}TeV.ckpt"


def parse_campaign_name(name: str) -> tuple[int, int] | None:
    """``(round, energy_tev)`` of a campaign checkpoint's file name, or None."""
    match = CAMPAIGN_NAME.fullmatch(name)
    return None if match is None else (int(match["round"]), int(match["energy"]))


def prune(
    directory: str | os.PathLike, keep: Mapping[int, Collection[int]]
) -> list[Path]:
    """Remove the campaign checkpoints in ``directory`` of rounds not to be kept.

    Only regular files directly in ``directory`` whose names are campaign
    checkpoint names (:func:`campaign_name`) of an energy in ``keep`` are
    candidates; every other file is left alone. A file that cannot be removed is
    logged at WARNING and stays: it costs disk space, not correctness.

    Args:
        directory: A campaign's checkpoint directory.
        keep: Rounds whose checkpoints stay, by energy (TeV).

    Returns:
        The files removed, by energy and then oldest round first.
    """
    doomed = []
    for path in _files_named(Path(directory), CAMPAIGN_NAME):
        round_, energy = parse_campaign_name(path.name)
        if energy in keep and round_ not in keep[energy]:
            doomed.append(((energy, round_), path))

    removed = [path for _, path in sorted(doomed) if _remove(path)]
    for path in removed:
        logger.debug("removed checkpoint %s", path)
    return removed


def remove_partial_writes(directory: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of campaign checkpoint writes that were cut short.

    A write killed midway (kill -9, power cut) leaves its temporary file behind
    (:func:`_write_atomically`). Call this only while no checkpoint is being
    written to ``directory``, e.g. when the campaign that owns it starts.

    Args:
        directory: A campaign's checkpoint directory (need not exist).

    Returns:
        The files removed.
    """
    removed = [
        path for path in _files_named(Path(directory), PARTIAL_NAME) if _remove(path)
    ]
    for path in removed:
        logger.info("removed %s, left by a checkpoint write that was cut short", path)
    return removed


def _files_named(directory: Path, pattern: re.Pattern[str]) -> Iterator[Path]:
    """Regular files directly in ``directory`` whose whole names match ``pattern``."""
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        if pattern.fullmatch(path.name) and path.is_file():
            yield path


def _remove(path: Path) -> bool:
    """Delete one file; False (and a warning) when the file system refuses."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("cannot remove %s (%s); it stays", path, exc)
        return False
    return True


def _write_atomically(path: Path, payload: dict[str, Any]) -> None:
    """Write through ``.<name>.<random>.tmp`` beside ``path``, then rename it.

    Raises:
        FileWriteError: The directory, the temporary file or the rename failed
            (no permission, disk full); names ``path``, not the temporary file.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = new_temporary(path)
    except OSError as exc:
        raise write_failure(path, "checkpoint", exc) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            _torch_save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise write_failure(path, "checkpoint", exc) from exc
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def _torch_save(payload: dict[str, Any], fh: Any) -> None:
    """``torch.save`` whose writer failures arrive as OSError."""
    try:
        torch.save(payload, fh)
    except RuntimeError as exc:
        raise torch_writer_failure(exc) from exc
