"""The ``replay`` backend: answers from the stored results of an earlier scan.

Pool-based active learning labels a point by looking it up in a pool of points
simulated beforehand (an "oracle pool"), instead of simulating it; the same backend
lets a user study proposal strategies on an existing scan. :class:`ReplaySimulator`
finds the requested point in the pool (every parameter equal within a relative
tolerance) and returns the stored result: ``ok`` with the stored chi2, per-analysis
chi2, masses and features, or ``rejected`` / ``failed`` with the stored reason. A
point that is not in the pool, or whose pool row has no result yet, comes back
``failed`` with a reason saying so. The seed is ignored: the stored answer was
produced with the pool's own seed.

The simulators package must not depend on the application package, so the pool is
read here with h5py directly, by the layout of the campaign store written by
``scynet_al/store.py`` (format ``"scynet-al campaign"``, version 1; that module's
docstring is the reference). What this module relies on:

- root attributes ``format``, ``format_version``, ``space`` (JSON with the
  parameter names as the keys of ``"intervals"``, in column order),
  ``energies_tev``, ``analyses`` (JSON ``{energy: [names]}``), ``mass_pdgs`` and
  ``n_features``;
- datasets ``parameters`` (n, dim), ``id`` (n,), ``status`` (n,: 0 unwritten,
  1 pending, 2 ok, 3 rejected, 4 failed), ``reason`` (n, UTF-8 bytes), ``chi2``
  (n, n_energies), ``chi2_analysis/<E>`` (n, n_analyses), ``masses`` (n, n_masses)
  and ``features`` (n, >= n_features); absent numbers are NaN.

A change of that layout must bump the store's format version, which this backend
then refuses in :meth:`ReplaySimulator.check`.

The pool is read once per process, at the first :meth:`ReplaySimulator.simulate`
(parameters, status and ids into memory; the file stays open read-only in SWMR-read
mode for the per-point rows). It is a snapshot: rows a running writer adds after
that are not seen.

:func:`snap_to_pool` lets a proposer choose only among pool points: it maps
proposed coordinates to their nearest unused pool points.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from scipy.spatial import cKDTree

from simulators.errors import SimulatorConfigError
from simulators.result import SimulationResult

__all__ = [
    "POOL_FORMAT_NAME",
    "POOL_FORMAT_VERSION",
    "PoolTable",
    "ReplaySimulator",
    "read_pool",
    "snap_to_pool",
]

logger = logging.getLogger(__name__)

#: The campaign store format this backend reads (see the module docstring).
POOL_FORMAT_NAME = "scynet-al campaign"
POOL_FORMAT_VERSION = 1

#: Status codes of the store's ``status`` dataset.
_PENDING, _OK, _REJECTED, _FAILED = 1, 2, 3, 4
_STATUS_NAMES = {0: "unwritten", 1: "pending", 2: "ok", 3: "rejected", 4: "failed"}

_REQUIRED_ATTRS = ("format", "format_version", "space", "energies_tev", "analyses",
                   "mass_pdgs", "n_features")  # fmt: skip
_REQUIRED_DATASETS = ("id", "parameters", "status", "reason", "chi2", "masses",
                      "features")  # fmt: skip


@dataclass(frozen=True)
class PoolTable:
    """The simulated points of a pool at one energy, as plain arrays.

    Attributes:
        names: Parameter names in column order.
        space: The pool's parameter space description (``ParameterSpace.to_dict``).
        config_text: The campaign config the pool was produced with (YAML).
        ids: Point ids, shape ``(n,)``.
        parameters: Points, shape ``(n, dim)`` (GeV; tanb dimensionless).
        status: ``"ok"``, ``"rejected"``, ``"failed"`` or ``"pending"``, shape ``(n,)``.
        origin: Origin label per point, shape ``(n,)``.
        chi2: Total chi2 at the energy, NaN where absent, shape ``(n,)``.
    """

    names: tuple[str, ...]
    space: dict[str, Any]
    config_text: str
    ids: np.ndarray
    parameters: np.ndarray
    status: np.ndarray
    origin: np.ndarray
    chi2: np.ndarray

    def labelled(self) -> np.ndarray:
        """Mask of ``ok`` points with a finite chi2, shape ``(n,)``."""
        return (self.status == "ok") & np.isfinite(self.chi2)


class ReplaySimulator:
    """Backend that answers from a pool of stored results (module docstring).

    Args:
        pool: Path of the pool, a campaign store file.
        energies_tev: Energies (TeV) to answer at; each must be in the pool.
        tolerance: Relative tolerance per parameter when matching a point:
            ``|x_pool - x| <= tolerance * max(|x|, 1)`` for every parameter ``x``.
    """

    name = "replay"
    version = "1"

    def __init__(
        self,
        pool: str | os.PathLike[str],
        energies_tev: Sequence[float] = (13,),
        tolerance: float = 1e-6,
    ) -> None:
        self.pool = str(pool)
        self.energies_tev = [_energy_key(e) for e in energies_tev]
        self.tolerance = float(tolerance)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_index", None)  # open file and arrays stay in their process
        return state

    # ---------------------------------------------------------------- contract

    def check(self) -> None:
        """Fail early when the pool cannot be replayed.

        Raises:
            SimulatorConfigError: The pool file is missing, not a campaign store of
                the supported version, lacks a dataset, or misses an energy; or a
                bad tolerance.
        """
        if not self.tolerance >= 0.0:
            raise SimulatorConfigError(
                f"replay simulator: tolerance must be >= 0, got {self.tolerance}"
            )
        attrs = _read_attributes(Path(self.pool))
        missing = [e for e in self.energies_tev if e not in attrs["energies"]]
        if not self.energies_tev or missing:
            raise SimulatorConfigError(
                f"replay simulator: pool {self.pool} holds energies {attrs['energies']} TeV; "
                f"energies_tev {self.energies_tev} must be a non-empty subset"
            )

    def describe(self) -> dict[str, Any]:
        """Energies, analyses per energy and feature count of the replayed labels.

        Raises:
            SimulatorConfigError: As :meth:`check`.
        """
        self.check()
        attrs = _read_attributes(Path(self.pool))
        return {
            "energies": list(self.energies_tev),
            "analyses": {e: list(attrs["analyses"][e]) for e in self.energies_tev},
            "n_features": attrs["n_features"],
        }

    def simulate(
        self, point: Mapping[str, float], *, seed: int, workdir: Path
    ) -> SimulationResult:
        """The stored result of ``point``; never raises.

        Args:
            point: Canonical parameter names to values (GeV).
            seed: Ignored (the stored result carries the pool's own seed).
            workdir: Unused.

        Returns:
            The stored ``ok`` / ``rejected`` / ``failed`` result, or ``failed`` when
            the point is not in the pool or has no result there.
        """
        start = time.perf_counter()
        try:
            result = self._lookup(point)
        except Exception as exc:
            logger.warning("replay of %s failed: %s", dict(point), exc)
            result = self._failed(f"replay: {type(exc).__name__}: {exc}")
        result.timings["total"] = time.perf_counter() - start
        return result

    # -------------------------------------------------------------- internals

    def _lookup(self, point: Mapping[str, float]) -> SimulationResult:
        index = self._pool_index()
        x = index.vector(point)
        if isinstance(x, str):
            return self._failed(x)
        rows = index.matches(x, self.tolerance)
        if rows.size == 0:
            return self._failed(
                f"point not in replay pool {self.pool} (relative tolerance {self.tolerance:g})"
            )
        row = index.best_row(rows)
        return index.result(row, self.energies_tev, self._failed)

    def _pool_index(self) -> _PoolIndex:
        index = getattr(self, "_index", None)
        if index is None or index.pid != os.getpid():
            self.check()
            index = _PoolIndex(Path(self.pool))
            self._index = index
        return index

    def _failed(self, reason: str) -> SimulationResult:
        return SimulationResult.failed(
            reason, simulator=self.name, version=self.version
        )


class _PoolIndex:
    """One process's open pool: parameters and status in memory, rows read on demand."""

    def __init__(self, path: Path) -> None:
        self.pid = os.getpid()
        self.path = path
        self.file = h5py.File(path, "r", libver="latest", swmr=True)
        self.attrs = _attributes_of(self.file, path)
        n = min(self.file[key].shape[0] for key in _REQUIRED_DATASETS)
        self.status = self.file["status"][:n].astype(np.int8)
        self.parameters = self.file["parameters"][:n]
        self.ids = self.file["id"][:n]
        self.tree = cKDTree(self.parameters[self.status > 0])
        self.tree_rows = np.flatnonzero(self.status > 0)
        logger.debug("replay pool %s: %d points indexed", path, self.tree_rows.size)

    def vector(self, point: Mapping[str, float]) -> np.ndarray | str:
        """The point as a row in pool column order, or why it cannot be one."""
        names = self.attrs["names"]
        missing = [name for name in names if name not in point]
        unknown = sorted(set(point) - set(names))
        if missing or unknown:
            return (
                f"point does not fit replay pool {self.path}: missing parameters "
                f"{missing}, unknown parameters {unknown}"
            )
        return np.array([float(point[name]) for name in names])

    def matches(self, x: np.ndarray, tolerance: float) -> np.ndarray:
        """Pool rows equal to ``x`` within the relative tolerance, in row order."""
        scale = tolerance * np.maximum(np.abs(x), 1.0)
        radius = float(np.sqrt(np.sum(scale**2)))
        near = self.tree_rows[self.tree.query_ball_point(x, radius * (1 + 1e-12))]
        close = np.all(np.abs(self.parameters[near] - x) <= scale, axis=1)
        return np.sort(near[close])

    def best_row(self, rows: np.ndarray) -> int:
        """Of several matching rows, the first with a final result, else the first."""
        final = rows[self.status[rows] >= _OK]
        ok = final[self.status[final] == _OK]
        return int(ok[0] if ok.size else final[0] if final.size else rows[0])

    def result(
        self, row: int, energies: Sequence[int], failed: Any
    ) -> SimulationResult:
        """The stored result of one row at the requested energies."""
        code = int(self.status[row])
        extra = {"pool": str(self.path), "pool_id": int(self.ids[row])}
        reason = bytes(self.file["reason"][row]).decode(errors="replace")
        if code == _REJECTED:
            return SimulationResult.rejected(
                reason,
                masses=self._masses(row),
                simulator="replay",
                version="1",
                extra=extra,
            )
        if code != _OK:
            stored = f": {reason}" if reason else ""
            return failed(
                f"replay pool point {int(self.ids[row])} is {_STATUS_NAMES[code]}{stored}"
            )
        chi2 = self.file["chi2"][row]
        columns = {e: self.attrs["energies"].index(e) for e in energies}
        absent = [e for e, c in columns.items() if not np.isfinite(chi2[c])]
        if absent:
            return failed(
                f"replay pool point {int(self.ids[row])} has no chi2 at {absent} TeV"
            )
        return SimulationResult(
            "ok",
            chi2={e: float(chi2[c]) for e, c in columns.items()},
            chi2_analysis={e: self._chi2_analysis(row, e) for e in energies},
            masses=self._masses(row),
            features=self._features(row),
            simulator="replay",
            version="1",
            extra=extra,
        )

    def _chi2_analysis(self, row: int, energy: int) -> dict[str, float]:
        names = self.attrs["analyses"][energy]
        values = self.file[f"chi2_analysis/{energy}"][row][: len(names)]
        return {
            name: float(v)
            for name, v in zip(names, values, strict=True)
            if np.isfinite(v)
        }

    def _masses(self, row: int) -> dict[int, float]:
        values = self.file["masses"][row]
        return {
            int(pdg): float(v)
            for pdg, v in zip(self.attrs["mass_pdgs"], values, strict=False)
            if np.isfinite(v)
        }

    def _features(self, row: int) -> list[float] | None:
        n = self.attrs["n_features"]
        values = self.file["features"][row][:n]
        if n == 0 or not np.all(np.isfinite(values)):
            return None
        return [float(v) for v in values]


def read_pool(path: str | os.PathLike[str], energy_tev: int = 13) -> PoolTable:
    """Every written point of a pool with its status and chi2 at one energy.

    Args:
        path: The pool (campaign store file).
        energy_tev: Energy whose chi2 column is returned.

    Returns:
        The :class:`PoolTable`; pending rows have NaN chi2.

    Raises:
        SimulatorConfigError: Not a readable pool, or no such energy in it.
    """
    path = Path(path)
    _read_attributes(path)
    with h5py.File(path, "r", libver="latest", swmr=True) as file:
        attrs = _attributes_of(file, path)
        if int(energy_tev) not in attrs["energies"]:
            raise SimulatorConfigError(
                f"{path}: no energy {energy_tev} TeV in pool (has {attrs['energies']})"
            )
        n = min(file[key].shape[0] for key in (*_REQUIRED_DATASETS, "origin"))
        status = file["status"][:n].astype(np.int8)
        rows = status > 0
        chi2 = file["chi2"][:n, attrs["energies"].index(int(energy_tev))]
        chi2 = np.where(status == _OK, chi2, np.nan)
        return PoolTable(
            names=tuple(attrs["names"]),
            space=attrs["space"],
            config_text=_text(file.attrs.get("config", "")),
            ids=file["id"][:n][rows],
            parameters=file["parameters"][:n][rows],
            status=np.array([_STATUS_NAMES[c] for c in status[rows]], dtype=str),
            origin=np.array(
                [bytes(o).decode(errors="replace") for o in file["origin"][:n][rows]],
                dtype=str,
            ),
            chi2=chi2[rows],
        )


def snap_to_pool(
    proposed: np.ndarray, pool: np.ndarray, available: np.ndarray
) -> np.ndarray:
    """Map proposed points to distinct nearest available pool points.

    Proposals are taken in order; each gets the nearest pool point that is available
    and not yet given to an earlier proposal (Euclidean distance in whatever
    coordinates the caller passes, e.g. the unit cube). A proposal equal to an
    available pool point therefore gets that point.

    Args:
        proposed: Proposed coordinates, shape ``(k, dim)``.
        pool: Pool coordinates, shape ``(n, dim)``.
        available: Mask of pool points that may be chosen, shape ``(n,)``.

    Returns:
        Pool indices, shape ``(min(k, n_available),)``, distinct, in proposal order.
    """
    free = np.flatnonzero(np.asarray(available, dtype=bool))
    proposed = np.atleast_2d(np.asarray(proposed, dtype=float))
    k = min(len(proposed), free.size)
    if k == 0:
        return np.empty(0, dtype=np.int64)
    tree = cKDTree(pool[free])
    taken = np.zeros(free.size, dtype=bool)
    chosen = np.empty(k, dtype=np.int64)
    for i in range(k):
        chosen[i] = free[_nearest_untaken(tree, proposed[i], taken)]
    return chosen


def _nearest_untaken(tree: cKDTree, x: np.ndarray, taken: np.ndarray) -> int:
    """Index (into the tree) of the nearest point not yet taken; marks it taken.

    Among the ``t + 1`` nearest points, with ``t`` taken so far, one is untaken.
    """
    _, idx = tree.query(x, k=min(int(taken.sum()) + 1, taken.size))
    j = next(int(j) for j in np.atleast_1d(idx) if not taken[j])
    taken[j] = True
    return j


def _read_attributes(path: Path) -> dict[str, Any]:
    """Check that ``path`` is a pool and return its parsed root attributes."""
    if not path.is_file():
        raise SimulatorConfigError(f"replay simulator: no pool file {path}")
    try:
        with h5py.File(path, "r", libver="latest", swmr=True) as file:
            attrs = _attributes_of(file, path)
            missing = [key for key in _REQUIRED_DATASETS if key not in file]
            missing += [
                f"chi2_analysis/{e}"
                for e in attrs["energies"]
                if f"chi2_analysis/{e}" not in file
            ]
    except OSError as exc:
        raise SimulatorConfigError(
            f"replay simulator: cannot read pool {path} as HDF5: {exc}"
        ) from exc
    if missing:
        raise SimulatorConfigError(
            f"replay simulator: pool {path} lacks datasets {missing}"
        )
    return attrs


def _attributes_of(file: h5py.File, path: Path) -> dict[str, Any]:
    """Parsed root attributes of an open pool; raise if it is not a campaign store."""
    fmt = _text(file.attrs.get("format", ""))
    if fmt != POOL_FORMAT_NAME:
        raise SimulatorConfigError(
            f"replay simulator: {path} is not a scynet-al campaign store (format {fmt!r})"
        )
    version = int(file.attrs.get("format_version", -1))
    if version != POOL_FORMAT_VERSION:
        raise SimulatorConfigError(
            f"replay simulator: {path} has store format version {version}; this backend reads version {POOL_FORMAT_VERSION}"
        )
    missing = [key for key in _REQUIRED_ATTRS if key not in file.attrs]
    if missing:
        raise SimulatorConfigError(
            f"replay simulator: pool {path} lacks root attributes {missing}"
        )
    space = json.loads(_text(file.attrs["space"]))
    return {
        "space": space,
        "names": list(space["intervals"]),
        "energies": [_energy_key(e) for e in np.atleast_1d(file.attrs["energies_tev"])],
        "analyses": {
            _energy_key(e): list(v)
            for e, v in json.loads(_text(file.attrs["analyses"])).items()
        },
        "mass_pdgs": [int(p) for p in np.atleast_1d(file.attrs["mass_pdgs"])],
        "n_features": int(file.attrs["n_features"]),
    }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _energy_key(energy: float | str) -> int:
    """An energy as the integer TeV key the store uses (13.0 -> 13)."""
    return round(float(energy))
