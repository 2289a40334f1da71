"""Self-contained exported surrogates: physical parameters in, chi2 and sigma out.

An exported model is one file holding the whole evaluation: the unit-cube map of
the parameter space (piecewise across the gaps in M3 and mu), every ensemble
member's normalisation and weights, the back-transform of the targets, the
ensemble mean and spread, and the training domain. It needs neither this package
nor its training code.

Formats:

- ``pt2`` (default): a ``torch.export`` ExportedProgram. Loading needs only torch::

      import json, torch
      extra = {"scynet_al.json": ""}
      program = torch.export.load("model.pt2", extra_files=extra)
      meta = json.loads(extra["scynet_al.json"])        # names, units, domain, metrics
      X = torch.tensor(points_gev, dtype=torch.float64)  # (n, 11), columns meta["inputs"]
      chi2, sigma, in_domain = program.module()(X)       # (n,), (n,), (n,) bool

  For single points on a busy machine call ``torch.set_num_threads(1)`` first:
  torch's tanh wakes its thread pool even for tiny inputs.

- ``onnx``: the same graph as ONNX operators (opset 17), for C++/Fortran global
  fits through onnxruntime; input ``x`` (n, d) double, outputs ``chi2``, ``sigma``
  (double) and ``in_domain`` (bool); the metadata JSON is the model's
  ``metadata_props`` entry ``scynet_al``.

``in_domain`` is true where a point lies inside the parameter space (not in a gap,
not beyond a range) and inside the box spanned by the training points (in the
unit cube for the direct network, in feature space for the reparametrized one).
Outside that box the network extrapolates (paper Sect. 4.4): the values are
returned but should not be trusted.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sampler.space import ParameterSpace
from scynet_al.errors import ModelError
from scynet_al.files import (
    ONNX_META_KEY,
    exported_format,
    training_file_kind,
    write_atomically,
    zip_entries,
)
from scynet_al.network import PREDICT_CHUNK, StackedNetwork, small_batch_threads

logger = logging.getLogger(__name__)

#: Name of the metadata entry of a pt2 archive (of an ONNX model:
#: :data:`~scynet_al.files.ONNX_META_KEY`).
META_KEY = "scynet_al.json"
FORMATS: tuple[str, ...] = ("pt2", "onnx")


class UnitCubeMap(nn.Module):
    """The space's map to the unit cube in torch operations that export.

    Matches ``ParameterSpace.to_unit`` on points inside the space (same float64
    operations). A value in a gap or beyond a range is clamped to the nearest
    allowed interval end, and ``inside`` reports it.
    """

    def __init__(self, space: ParameterSpace) -> None:
        super().__init__()
        n_max = max(len(iv) for iv in space.intervals.values())
        lows, highs = np.zeros((n_max, space.dim)), np.zeros((n_max, space.dim))
        offsets = np.zeros((n_max, space.dim))
        for j, intervals in enumerate(space.intervals.values()):
            padded = list(intervals) + [intervals[-1]] * (n_max - len(intervals))
            widths = [hi - lo for lo, hi in intervals]
            for k, (lo, hi) in enumerate(padded):
                lows[k, j], highs[k, j] = lo, hi
                offsets[k, j] = sum(widths[: min(k, len(intervals) - 1)])
        totals = np.array(
            [sum(hi - lo for lo, hi in iv) for iv in space.intervals.values()]
        )
        self.n_intervals = n_max
        self.register_buffer("lows", torch.from_numpy(lows))
        self.register_buffer("highs", torch.from_numpy(highs))
        self.register_buffer("offsets", torch.from_numpy(offsets))
        self.register_buffer("totals", torch.from_numpy(totals))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit coordinates ``(n, dim)`` and an inside-the-space mask ``(n,)``."""
        u = self._along(x, 0)
        inside = (x >= self.lows[0]) & (x <= self.highs[0])
        for k in range(1, self.n_intervals):
            u = torch.where(x >= self.lows[k], self._along(x, k), u)
            inside = inside | ((x >= self.lows[k]) & (x <= self.highs[k]))
        return torch.clamp(u, 0.0, 1.0), inside.all(dim=1)

    def _along(self, x: torch.Tensor, k: int) -> torch.Tensor:
        clamped = torch.minimum(torch.maximum(x, self.lows[k]), self.highs[k])
        return (clamped - self.lows[k] + self.offsets[k]) / self.totals


class ExportableSurrogate(nn.Module):
    """Physical inputs to (chi2 mean, sigma, in_domain): the graph that gets exported.

    Args:
        stacked: The ensemble's members stacked (:class:`StackedNetwork`).
        space: For a direct network, the space whose unit cube it was trained on;
            None for a reparametrized network (inputs are the features).
        box_low: Lower corner of the training domain, shape ``(d,)``.
        box_high: Upper corner of the training domain, shape ``(d,)``.
        sigma_scale: Factor on the members' spread (the ensemble's calibration).
    """

    def __init__(
        self,
        stacked: StackedNetwork,
        space: ParameterSpace | None,
        box_low: np.ndarray,
        box_high: np.ndarray,
        sigma_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.stacked = stacked
        self.unit_map = None if space is None else UnitCubeMap(space)
        self.n_members = int(stacked.shift.shape[0])
        self.register_buffer("box_low", torch.as_tensor(box_low, dtype=torch.float64))
        self.register_buffer("box_high", torch.as_tensor(box_high, dtype=torch.float64))
        self.register_buffer(
            "sigma_scale", torch.tensor(float(sigma_scale), dtype=torch.float64)
        )

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Chi2 mean ``(n,)``, its sigma ``(n,)`` and ``in_domain`` ``(n,)``."""
        if self.unit_map is None:
            u = x
            inside = torch.ones_like(x[:, 0], dtype=torch.bool)
        else:
            u, inside = self.unit_map(x)
        in_box = ((u >= self.box_low) & (u <= self.box_high)).all(dim=1)
        per_member = self.stacked(u)
        mean = per_member.mean(dim=0)
        if self.n_members > 1:
            sigma = per_member.std(dim=0, correction=1) * self.sigma_scale
        else:
            sigma = torch.zeros_like(mean)
        return mean, sigma, inside & in_box


#: Values of the ``domain`` column of ``predict``: inside the domain, outside the
#: parameter space (a gap or beyond a range), or inside the space but outside the
#: box spanned by the training points.
DOMAIN_OK, OUTSIDE_SPACE, OUTSIDE_TRAINING = "ok", "outside_space", "outside_training"


@dataclass
class ExportedModel:
    """A loaded exported model (either format) with the metadata of its file.

    Attributes:
        path: The file read.
        meta: Metadata: ``inputs`` (column names), ``units``, ``kind``,
            ``energy_tev``, ``domain``, ``space``, ``metrics``, ``config_hash``.
    """

    path: Path
    meta: dict[str, Any]
    _call: Any

    @property
    def input_names(self) -> list[str]:
        """Input columns in order."""
        return list(self.meta["inputs"])

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Chi2 ``(n,)``, sigma ``(n,)`` and in_domain ``(n,)`` for inputs ``(n, d)``."""
        X = np.ascontiguousarray(
            np.asarray(X, dtype=np.float64).reshape(-1, len(self.input_names))
        )
        if len(X) == 0:
            return np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)
        parts = [
            self._call(X[i : i + PREDICT_CHUNK])
            for i in range(0, len(X), PREDICT_CHUNK)
        ]
        chi2, sigma, in_domain = (
            np.concatenate(column) for column in zip(*parts, strict=True)
        )
        return np.asarray(chi2), np.asarray(sigma), np.asarray(in_domain, dtype=bool)

    def domain(self, X: np.ndarray, in_domain: np.ndarray) -> np.ndarray:
        """Why each point is in the domain or not.

        Args:
            X: Inputs ``(n, d)``, as given to :meth:`predict`.
            in_domain: Its ``in_domain`` output ``(n,)``.

        Returns:
            ``(n,)`` strings: :data:`DOMAIN_OK`, :data:`OUTSIDE_SPACE` or
            :data:`OUTSIDE_TRAINING` (features have no space: never outside it).
        """
        X = np.asarray(X, dtype=np.float64).reshape(-1, len(self.input_names))
        space = self.meta.get("space")
        in_space = (
            np.ones(len(X), dtype=bool)
            if space is None
            else _inside(ParameterSpace.from_dict(space), X)
        )
        out = np.where(in_space, OUTSIDE_TRAINING, OUTSIDE_SPACE)
        return np.where(np.asarray(in_domain, dtype=bool), DOMAIN_OK, out)


def _inside(space: ParameterSpace, X: np.ndarray) -> np.ndarray:
    """Which points ``(n, dim)`` lie in ``space``, compared as the exported graph
    compares (:class:`UnitCubeMap`): within some closed interval per parameter."""
    inside = np.ones(len(X), dtype=bool)
    for j, intervals in enumerate(space.intervals.values()):
        within = [(X[:, j] >= lo) & (X[:, j] <= hi) for lo, hi in intervals]
        inside &= np.any(within, axis=0)
    return inside


def export_checkpoint(
    checkpoint_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    format: str = "pt2",
) -> Path:
    """Turn a checkpoint into one self-contained model file.

    The model is serialised in memory and written through a temporary file
    beside ``out_path`` that is renamed at the end (:func:`write_atomically`):
    neither torch nor onnx ever writes to a file that may fail.

    Args:
        checkpoint_path: A file written by ``scynet_al.checkpoint.save``.
        out_path: The model file to write (replaced atomically; a link is
            followed). Its directory is not created here: ``scynet-al export``
            creates a missing one first, and a missing one is a FileWriteError.
        format: ``"pt2"`` (torch.export) or ``"onnx"``.

    Returns:
        The path written.

    Raises:
        ModelError: Unknown format, an ``out_path`` not ending in ``.pt2`` /
            ``.onnx`` as the format asks, a ``checkpoint_path`` that is a
            directory or an exported model, unreadable checkpoint, or a failed
            export.
        FileWriteError: ``out_path`` cannot be written (no such directory, no
            permission, disk full); names ``out_path``. No temporary file is left,
            and a file already at ``out_path`` is kept.
    """
    from scynet_al import checkpoint

    out_path = check_model_name(out_path, format)
    check_exportable(checkpoint_path)
    ensemble, meta = checkpoint.load(checkpoint_path)
    module = build_exportable(ensemble, meta["space"])
    metadata = _metadata(ensemble, meta, checkpoint_path)

    if format == "pt2":
        example = _example_inputs(ensemble, meta["space"])
        payload = _pt2_bytes(module, example, metadata)
    else:
        from scynet_al.export_onnx import onnx_bytes

        payload = onnx_bytes(module, metadata)
    write_atomically(out_path, f"{format} model", [payload])

    logger.info(
        "exported %s (%s, %d members) to %s",
        checkpoint_path,
        format,
        len(ensemble.members_),
        out_path,
    )
    return out_path


def check_exportable(path: str | os.PathLike) -> None:
    """Refuse a source of ``export`` that cannot be a store or a checkpoint.

    Raises:
        ModelError: ``path`` is a directory, or a model file that ``export``
            itself wrote (either format); the message says which.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(
            f"{path} is a directory; give a campaign store (.h5) or a checkpoint"
            " file (.ckpt)"
        )
    kind = exported_format(path) if path.is_file() else None
    if kind is not None:
        raise ModelError(
            f"{path} is an exported {kind} model, not a campaign store or"
            f" checkpoint; predict takes it: scynet-al predict {path} POINTS.csv"
            " --out OUT.csv"
        )


def format_of(out_path: str | os.PathLike) -> str:
    """The format a model file name asks for: ``onnx`` for ``.onnx`` in any case,
    else ``pt2``."""
    return "onnx" if Path(out_path).suffix.lower() == ".onnx" else "pt2"


def check_model_name(out_path: str | os.PathLike, format: str) -> Path:
    """``out_path`` as a Path, once its suffix is the one of ``format``.

    The suffix is compared without regard to case (``model.ONNX`` is an ONNX
    file); the file is written under the name as given.

    Raises:
        ModelError: Unknown format, a path without a file name, or a suffix other
            than ``.pt2`` / ``.onnx`` as the format asks.
    """
    if format not in FORMATS:
        raise ModelError(f"unknown export format {format!r}; expected one of {FORMATS}")
    out_path = Path(out_path)
    if out_path.name in ("", ".", ".."):
        raise ModelError(
            f"{str(out_path)!r} is not a model file name; give one such as"
            f" model.{format}"
        )
    if out_path.suffix.lower() != f".{format}":
        # The loaders tell the formats apart by the suffix, and torch.export warns
        # about (and may refuse) an archive whose name does not end in .pt2.
        article = "an" if format == "onnx" else "a"
        raise ModelError(
            f"{out_path}: {article} {format} model file must end in .{format} "
            f"(name it {out_path.with_suffix('.' + format).name})"
        )
    return out_path


def build_exportable(
    ensemble: Any, space: ParameterSpace | None
) -> ExportableSurrogate:
    """The exportable module of a fitted ensemble (direct: needs its space)."""
    if ensemble.kind == "direct" and space is None:
        raise ModelError("a direct network needs its parameter space to be exported")
    space = space if ensemble.kind == "direct" else None
    stacked = StackedNetwork(ensemble.members_).eval()
    return ExportableSurrogate(
        stacked, space, ensemble.input_low_, ensemble.input_high_,
        sigma_scale=ensemble.sigma_scale_,
    ).eval()  # fmt: skip


def load_exported(path: str | os.PathLike) -> ExportedModel:
    """Load a model file written by :func:`export_checkpoint` (either format).

    Raises:
        ModelError: The file is missing or not an exported scynet-al model (a
            campaign store or a checkpoint is named as such).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    kind = training_file_kind(path)
    if kind is not None:
        raise ModelError(
            f"{path} is a {kind}, not an exported model; export its network"
            f" first: scynet-al export {path} --out model.pt2"
        )
    if format_of(path) == "onnx" or _looks_like_onnx(path):
        return _load_onnx(path)
    if "archive_format" not in zip_entries(path):
        raise ModelError(f"{path}: not a torch.export model file")
    extra = {META_KEY: ""}
    try:
        # Through an open file: torch warns about a path not ending in .pt2.
        with open(path, "rb") as handle:
            program = torch.export.load(handle, extra_files=extra)
    except Exception as exc:  # torch raises many types for foreign files
        raise ModelError(f"{path}: not a torch.export model file ({exc})") from exc
    if not extra[META_KEY]:
        raise ModelError(f"{path}: exported program carries no scynet-al metadata")
    module = program.module()

    def call(X: np.ndarray) -> tuple[np.ndarray, ...]:
        with torch.inference_mode(), small_batch_threads(len(X)):
            return tuple(t.numpy() for t in module(torch.from_numpy(X)))

    return ExportedModel(path, json.loads(extra[META_KEY]), call)


def _pt2_bytes(
    module: ExportableSurrogate, example: torch.Tensor, metadata: dict[str, Any]
) -> bytes:
    """The ``torch.export`` archive of ``module``, serialised in memory.

    Torch's archive writer never sees a file: on a full disk it throws from its
    destructor, which aborts the process with a C++ stack trace.
    """
    batch = torch.export.Dim("n_points", min=1)
    try:
        with torch.no_grad():
            program = torch.export.export(
                module, (example,), dynamic_shapes=({0: batch},)
            )
        buffer = io.BytesIO()
        torch.export.save(program, buffer, extra_files={META_KEY: json.dumps(metadata)})
    except Exception as exc:  # export failures come in many torch types
        raise ModelError(f"torch.export failed: {exc}") from exc
    return buffer.getvalue()


def _example_inputs(ensemble: Any, space: ParameterSpace | None) -> torch.Tensor:
    """Three rows inside the training box, in the units the graph takes."""
    low, high = ensemble.input_low_, ensemble.input_high_
    U = low + np.array([[0.25], [0.5], [0.75]]) * (high - low)
    X = U if ensemble.kind != "direct" else space.from_unit(U)
    return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float64))


def _metadata(
    ensemble: Any, meta: dict[str, Any], checkpoint_path: Any
) -> dict[str, Any]:
    space = meta["space"]
    direct = ensemble.kind == "direct"
    n_inputs = ensemble.input_low_.size
    inputs = list(space.names) if direct else _feature_names(n_inputs)
    return {
        "format": "scynet-al-exported-model",
        "format_version": 1,
        "kind": ensemble.kind,
        "energy_tev": meta["energy_tev"],
        "inputs": inputs,
        "units": "GeV (tanb dimensionless)" if direct else "reparametrized features",
        "outputs": ["chi2", "sigma", "in_domain"],
        "n_members": len(ensemble.members_),
        "sigma_scale": float(ensemble.sigma_scale_),
        "space": None if space is None else space.to_dict(),
        "domain": {
            "coordinates": "unit cube" if direct else "features",
            "low": ensemble.input_low_.tolist(),
            "high": ensemble.input_high_.tolist(),
        },
        "metrics": meta["metrics"],
        "config_hash": meta["config_hash"],
        "checkpoint": str(checkpoint_path),
        "checkpoint_created": meta["created"],
        "package_version": meta["package_version"],
    }


def _feature_names(n_inputs: int) -> list[str]:
    """The 56 named features of the simulators package, else ``feature_<i>``."""
    from simulators.features import FEATURE_NAMES

    if len(FEATURE_NAMES) == n_inputs:
        return list(FEATURE_NAMES)
    return [f"feature_{i}" for i in range(n_inputs)]


def _looks_like_onnx(path: Path) -> bool:
    with open(path, "rb") as fh:
        return not fh.read(4).startswith(b"PK")


def _load_onnx(path: Path) -> ExportedModel:
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(
            str(path), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        if format_of(path) != "onnx":
            # Neither a zip archive (.pt2) nor named .onnx: most likely another
            # kind of file given in the model's place, such as the points CSV.
            raise ModelError(
                f"{path}: not an exported model (scynet-al export writes a .pt2 or"
                " .onnx file)"
            ) from exc
        raise ModelError(f"{path}: not an ONNX model file ({exc})") from exc
    props = session.get_modelmeta().custom_metadata_map
    if ONNX_META_KEY not in props:
        raise ModelError(f"{path}: ONNX model carries no scynet-al metadata")

    def call(X: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(session.run(["chi2", "sigma", "in_domain"], {"x": X}))

    return ExportedModel(path, json.loads(props[ONNX_META_KEY]), call)
