"""Surrogate checkpoints: ensemble, normalisation, training domain and metrics, atomically."""

from __future__ import annotations

import datetime
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from sampler.space import ParameterSpace
from scynet_al import __version__
from scynet_al.ensemble import Ensemble
from scynet_al.errors import ModelError

logger = logging.getLogger(__name__)

#: Format name and version stored in every checkpoint.
FORMAT_NAME = "scynet-al-checkpoint"
FORMAT_VERSION = 1


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
        ModelError: The file is missing, unreadable or not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"cannot read checkpoint {path}: no such file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a foreign file makes torch raise almost any type
        raise ModelError(
            f"cannot read checkpoint {path}: neither a campaign store nor a"
            f" scynet-al checkpoint ({type(exc).__name__} while reading it)"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ModelError(f"{path} is not a scynet-al checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelError(
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


def _write_atomically(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
