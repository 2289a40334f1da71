"""The campaign store: one HDF5 file per campaign, one writer, many readers.

Layout (format ``"scynet-al campaign"``, version 1). Root attributes: ``format``,
``format_version``, ``created`` (ISO 8601, UTC), ``config`` (the campaign YAML),
``package_version``, ``space`` (``ParameterSpace.to_dict()`` as JSON),
``energies_tev``, ``analyses`` (JSON ``{energy: [names]}``), ``mass_pdgs``,
``n_features``, ``timing_stages`` (JSON list) and ``campaign_seed``. Datasets, all
chunked and resizable along axis 0, one row per point (the row index is the point
id):

======================  ==============  ============================================
key                     dtype, shape    meaning
======================  ==============  ============================================
``id``                  int64 (n,)      point id (equal to the row)
``seed``                int64 (n,)      simulation seed, fixed when proposed
``parameters``          f8 (n, dim)     the point (GeV; tanb dimensionless)
``origin``              S32 (n,)        validation / prior / density / local / ...
``round``               int32 (n,)      campaign round that proposed the point
``status``              int8 (n,)       0 not yet written, 1 pending, 2 ok,
                                        3 rejected, 4 failed
``attempts``            int32 (n,)      simulations tried so far
``reason``              S1024 (n,)      why rejected or failed (UTF-8, truncated;
                                        gzip-compressed, mostly empty)
``chi2``                f8 (n, n_e)     total chi2 per energy (order of attribute)
``chi2_analysis/<E>``   f8 (n, n_a)     chi2 per analysis at ``E`` TeV
``masses``              f8 (n, n_m)     key masses (GeV) in ``mass_pdgs`` order
``features``            f8 (n, n_f)     the reparametrized features
``timings``             f8 (n, n_t)     seconds per stage in ``timing_stages``
``metrics``             S65536 (m,)     one JSON row per refit
``checkpoint_path``     S4096 (c,)      network checkpoints (relative to the store)
``checkpoint_round``    int32 (c,)      their rounds
======================  ==============  ============================================

Absent numbers are NaN. A column of width zero (no analyses, no features) is
stored with width one and ignored. A ``checkpoint_path`` row outlives its file: the
campaign removes the checkpoints of older refits (``campaign.keep_checkpoints``),
never the latest one.

Concurrency: the file is written in HDF5 SWMR mode (single writer, multiple
readers). Only fixed-size types are stored, since SWMR cannot grow variable-length
data, and every dataset exists before SWMR starts. The writer grows every dataset,
writes the data columns, flushes, then writes ``status`` and flushes again, so a
row becomes visible to a reader only once it is whole; a reader reads ``status``
first, ignores rows whose status is 0, takes the shortest dataset as its row
count, and treats the labels of pending rows as absent (``record`` fills them in
before it flips the status). Re-recording a point first sets it back to pending, so
a reader never pairs a new status with old data. Fixed-length byte strings drop
trailing NUL characters, so a reason or origin ending in ``"\x00"`` loses them.
Readers take no HDF5 file lock, so an open ``status`` or ``predict`` never keeps
the writer from resuming; readers in one process share one HDF5 handle per file,
since HDF5 keeps one metadata cache per open file.

Durability: the writer flushes after every ``add_pending`` and ``record``, so data
sits in the operating system once the call returns and a kill -9 of the writer loses
at most the call in flight (a power cut can lose more: there is no fsync per record,
which would cost milliseconds each).

Crash recovery: a writer that dies leaves the file marked "open for write"; HDF5
then refuses every ordinary open. A reader still opens it in SWMR-read mode. Opening
for append detects the mark and rebuilds the file: it is opened read-only in
SWMR-read mode, every dataset and attribute is copied into a new file next to it,
the new file is fsynced and renamed over the old one (logged at WARNING). h5py
offers no public call that clears the mark (``h5clear`` uses a private HDF5
property), hence the copy. Whether a writer is alive is told by an advisory lock on
``<store>.lock`` held for the writer's lifetime; the kernel drops it when the
process dies, so a crashed writer never blocks a new one, and a live writer is
never mistaken for a crashed one. The lock is reliable on local filesystems; on
network filesystems without ``flock`` support two writers could collide.

Damage: a store whose bytes were changed in place (a disk error, a copy overwritten)
is refused with a StoreError that names the file and the dataset or attribute being
read, and so is a status code outside :data:`STATUS_CODES`. Readers never write to
the file; a writer reads the whole store once, read-only, before it opens it for
writing. HDF5 checksums the file's metadata, and the compressed datasets
(``reason``, ``metrics``, ``checkpoint_path``) inflate only when whole, but the
numbers of the other datasets carry no checksum. So the numbers that give the
points their meaning are checked as they are read (:meth:`CampaignStore._check_rows`):
an ``id`` equals its row, a ``seed`` equals :func:`derive_seeds` of the campaign
seed and the id, ``parameters`` are finite and inside the store's space (never in
a gap such as M3's), and the ``chi2`` of a point with a final status (ok, rejected,
failed) is never negative or infinite; NaN stands for an energy without a chi2,
which is all that rejected and failed points of the built-in backends carry, but
the store keeps a result's chi2 as it comes, whatever its status. Rows of status 0
are not judged, nor the chi2 of pending rows, which the writer may be half-way
through and rewrites when the point's result comes. A writer checks every row in
its read-through; readers check the rows they read. Damage that leaves plausible
numbers goes unnoticed: a chi2 changed to another value that is not negative
(however large), and anything in ``masses``, ``features``, ``timings``,
``chi2_analysis``, ``round`` and ``attempts``.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import fcntl
import json
import logging
import os
import re
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn

import h5py
import numpy as np
import yaml

from sampler.regions import REGION_NAMES, ChiSquareRegions
from sampler.space import ParameterSpace
from scynet_al import __version__
from scynet_al.errors import ScynetError, StoreError
from simulators.result import SimulationResult

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "KEY_MASS_PDGS",
    "STATUS_CODES",
    "TIMING_STAGES",
    "CampaignStore",
    "derive_seeds",
]

logger = logging.getLogger(__name__)

FORMAT_NAME = "scynet-al campaign"
FORMAT_VERSION = 1

#: Status name to the small integer stored; 0 means "row not yet written".
STATUS_CODES: dict[str, int] = {"pending": 1, "ok": 2, "rejected": 3, "failed": 4}
_STATUS_NAMES = np.array(["", "pending", "ok", "rejected", "failed"], dtype=object)

#: PDG codes of the key masses stored per point (SLHA numbering), in column order:
#: gluino, uL, uR, dL, dR, stop1, stop2, sbottom1, sbottom2, neutralino1-4,
#: chargino1-2, eL, eR, stau1, stau2, sneutrino_e, sneutrino_tau, h, H, A, H+.
KEY_MASS_PDGS: tuple[int, ...] = (
    1000021,
    1000002, 2000002, 1000001, 2000001,
    1000006, 2000006, 1000005, 2000005,
    1000022, 1000023, 1000025, 1000035,
    1000024, 1000037,
    1000011, 2000011, 1000015, 2000015,
    1000012, 1000016,
    25, 35, 36, 37,
)  # fmt: skip

#: Simulation stages whose wall time is kept; other stage names add up in "other".
TIMING_STAGES: tuple[str, ...] = (
    "spectrum",
    "decays",
    "preselection",
    "cross_sections",
    "events",
    "detector",
    "analysis",
    "statistics",
    "total",
    "other",
)

ORIGIN_BYTES = 32
REASON_BYTES = 1024
METRICS_BYTES = 65536
PATH_BYTES = 4096
_TRUNCATED = b" [...truncated]"
_CHUNK_ROWS = 1024
_READER_OPEN_TRIES = 40  # x 50 ms: how long a reader waits for a writer's open lock
_TRUNCATION_TRIES = 20  # x 50 ms: how long a file may stay shorter than it says
_READ_THROUGH_BYTES = 1 << 24  # rows read at a time when a writer first reads a store

#: What h5py raises when the bytes it reads are damaged: RuntimeError and OSError
#: from HDF5's error stack (checksum, signature, version number, filter), KeyError
#: for an object whose header cannot be read, ValueError for undecodable values.
_READ_ERRORS = (RuntimeError, OSError, KeyError, ValueError)


def derive_seeds(campaign_seed: int, ids: np.ndarray) -> np.ndarray:
    """Seeds of points from the campaign seed and their ids (splitmix64 mix).

    Args:
        campaign_seed: Non-negative campaign seed.
        ids: Point ids, shape ``(n,)``.

    Returns:
        Seeds in ``[0, 2**31 - 1)``, shape ``(n,)``, int64; usable by NumPy and by
        generators with 32-bit seeds.
    """
    with np.errstate(over="ignore"):
        z = np.asarray(ids, dtype=np.uint64) + np.uint64(campaign_seed) * np.uint64(
            0x9E3779B97F4A7C15
        )
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(2**31 - 1)).astype(np.int64)


class CampaignStore:
    """An open campaign store; build it with :meth:`create` or :meth:`open`.

    Use it as a context manager (``with CampaignStore.open(path) as store:``). In
    mode ``"a"`` it is the campaign's one writer; in mode ``"r"`` it reads while a
    writer runs and sees the rows completed up to its latest call.
    """

    def __init__(self, file: h5py.File, path: Path, mode: str, lock: int | None):
        self._file = file
        self._path = path
        self._mode = mode
        self._lock = lock
        self._attrs = _read_root(file, path)
        self._space = ParameterSpace.from_dict(json.loads(self._attrs["space"]))
        self._status: np.ndarray | None = None
        self._warned: set[str] = set()
        self._datasets: dict[str, h5py.Dataset] = {}
        # Set by create(): the files it made beside the store (see discard()).
        self._created: dict[str, bool] | None = None
        if mode == "a":
            n = self._n_rows()
            self._status = self._checked_statuses(self._read("status", n))
            self._max_round = int(self._read("round", n).max(initial=0))

    # ----------------------------------------------------------- construction

    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        config_text: str,
        space: ParameterSpace,
        energies: Sequence[int],
        analyses: Mapping[int, Sequence[str]],
        mass_pdgs: Sequence[int] = KEY_MASS_PDGS,
        n_features: int = 56,
        campaign_seed: int | None = None,
    ) -> CampaignStore:
        """Create a new store and open it as the writer.

        The file is built under a temporary name and linked into place only when
        complete, so a failed create leaves nothing behind and an existing file is
        never touched.

        Args:
            path: The store file to create; must not exist.
            config_text: The campaign config YAML, kept verbatim.
            space: The parameter space of the campaign.
            energies: Centre-of-mass energies (TeV), in ``chi2`` column order.
            analyses: Per energy, the analysis names in column order.
            mass_pdgs: PDG codes of the masses kept per point.
            n_features: Length of the feature vector per point.
            campaign_seed: Seed the point seeds derive from; by default
                ``campaign.seed`` of ``config_text``, else 0.

        Returns:
            The store, open in mode ``"a"``.

        Raises:
            StoreError: The file exists, or cannot be written.
        """
        path = Path(path)
        energies = [int(e) for e in energies]
        analyses = {int(e): list(names) for e, names in analyses.items()}
        missing = [e for e in energies if e not in analyses]
        if missing:
            raise StoreError(f"{path}: no analysis names given for energies {missing}")
        created = {
            "lock": not _lock_path(path).exists(),
            "checkpoints": not checkpoint_directory(path).exists(),
        }
        lock = _acquire_lock(path)
        try:
            if path.exists():
                raise StoreError(
                    f"{path}: already exists; resume it or choose another store path"
                )
            seed = (
                _seed_from_config(config_text)
                if campaign_seed is None
                else campaign_seed
            )
            attrs = _root_attributes(
                config_text, space, energies, analyses, mass_pdgs, n_features, seed
            )
            columns = {int(e): list(analyses[e]) for e in energies}
            _build_file(path, attrs, space.dim, columns, len(mass_pdgs), n_features)
            logger.info("created campaign store %s", path)
            store = cls._open_writer(path, lock)
            store._created = created
            return store
        except BaseException:
            _release_lock(lock)
            raise

    @classmethod
    def open(cls, path: str | Path, mode: Literal["r", "a"] = "r") -> CampaignStore:
        """Open an existing store.

        A reader never writes to the file. Before a writer opens the file for
        writing, it reads every dataset through once in read-only mode, so that a
        damaged store is refused before anything is written into it.

        Args:
            path: The store file.
            mode: ``"r"`` to read (safe while the writer runs), ``"a"`` to become
                the writer (resume); a store left behind by a crashed writer is
                recovered first (see the module docstring).

        Raises:
            StoreError: Missing, foreign or damaged file, a directory, unknown
                format version, or another live writer.
        """
        path = Path(path)
        if mode not in ("r", "a"):
            raise StoreError(f"{path}: mode must be 'r' or 'a', got {mode!r}")
        if not path.exists():
            raise StoreError(f"{path}: no such campaign store")
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not a campaign store")
        if mode == "r":
            file = _acquire_reader(path)
            try:
                return cls(file, path, "r", None)
            except BaseException:
                _release_reader(file)
                raise
        lock = _acquire_lock(path)
        try:
            if _inspect(path):
                _recover(path)
            return cls._open_writer(path, lock)
        except BaseException:
            _release_lock(lock)
            raise

    @classmethod
    def _open_writer(cls, path: Path, lock: int) -> CampaignStore:
        try:
            file = h5py.File(path, "r+", libver="latest")
        except (OSError, RuntimeError) as exc:
            raise StoreError(f"{path}: cannot open for writing: {exc}") from exc
        try:
            store = cls(file, path, "a", lock)
            file.swmr_mode = True
        except BaseException:
            file.close()
            raise
        logger.debug("opened %s for writing (SWMR)", path)
        return store

    def close(self) -> None:
        """Flush and close the file and release the writer lock."""
        if self._mode == "r":
            _release_reader(self._file)
        elif self._file.id.valid:
            self._file.flush()
            self._file.close()
        _release_lock(self._lock)
        self._lock = None

    @property
    def created_here(self) -> bool:
        """True when this object created the store (:meth:`create`), not opened it."""
        return self._created is not None

    def discard(self) -> None:
        """Remove a store created here that holds no point yet, then close it.

        For a campaign that fails to start after creating its store: the store
        file goes, and with it the writer lock and the checkpoint directory when
        :meth:`create` made them (the directory only while it is empty). The lock
        is held until the files are gone, so no other writer opens the store in
        between.

        Raises:
            StoreError: The store was opened rather than created here, holds
                points, or is read-only.
        """
        self._require_writer()
        if self._created is None or len(self):
            raise StoreError(
                f"{self._path}: only a store created by this process and still "
                "without points is discarded"
            )
        self._file.close()
        self._path.unlink(missing_ok=True)
        directory = checkpoint_directory(self._path)
        empty = directory.is_dir() and not any(directory.iterdir())
        if self._created["checkpoints"] and empty:
            directory.rmdir()
        if self._created["lock"]:
            _lock_path(self._path).unlink(missing_ok=True)
        self.close()
        logger.info("removed %s again, which this start had created", self._path)

    def __enter__(self) -> CampaignStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CampaignStore({str(self._path)!r}, mode={self._mode!r})"

    # -------------------------------------------------------------- metadata

    @property
    def path(self) -> Path:
        """The store file."""
        return self._path

    @property
    def mode(self) -> str:
        """``"r"`` (reader) or ``"a"`` (writer)."""
        return self._mode

    @property
    def space(self) -> ParameterSpace:
        """The campaign's parameter space."""
        return self._space

    @property
    def config_text(self) -> str:
        """The campaign config YAML in force: the latest one recorded, else the first.

        A campaign continued with another compatible config (a larger budget, say)
        records it with :meth:`record_config`, so a later ``resume`` uses it.
        """
        for row in reversed(self.metrics()):
            if row.get("kind") == "config":
                return str(row["text"])
        return self._attrs["config"]

    @property
    def original_config_text(self) -> str:
        """The campaign config YAML the store was created with."""
        return self._attrs["config"]

    def record_config(self, text: str) -> None:
        """Record the config a continued campaign runs with (a metrics row)."""
        self.append_metrics({"kind": "config", "time": time.time(), "text": text})

    @property
    def energies(self) -> tuple[int, ...]:
        """Centre-of-mass energies (TeV) in ``chi2`` column order."""
        return tuple(int(e) for e in self._attrs["energies_tev"])

    @property
    def analyses(self) -> dict[int, list[str]]:
        """Per energy, the analysis names in column order."""
        return {int(k): v for k, v in json.loads(self._attrs["analyses"]).items()}

    @property
    def mass_pdgs(self) -> tuple[int, ...]:
        """PDG codes of the stored masses, in column order."""
        return tuple(int(p) for p in self._attrs["mass_pdgs"])

    @property
    def n_features(self) -> int:
        """Length of the feature vector per point."""
        return int(self._attrs["n_features"])

    @property
    def timing_stages(self) -> tuple[str, ...]:
        """Stage names of the ``timings`` columns."""
        return tuple(json.loads(self._attrs["timing_stages"]))

    @property
    def campaign_seed(self) -> int:
        """The seed point seeds derive from."""
        return int(self._attrs["campaign_seed"])

    @property
    def attributes(self) -> dict[str, Any]:
        """All root attributes (format, version, creation time, ...)."""
        return dict(self._attrs)

    @property
    def current_round(self) -> int:
        """Highest round among points and checkpoints (0 for an empty store)."""
        rounds = self._read("checkpoint_round", self._n_rows("checkpoint"))
        checkpoint_round = int(rounds.max(initial=0))
        if self._mode == "a":
            return max(self._max_round, checkpoint_round)
        status = self._read("status", self._n_rows())
        written = self._read("round", status.size)[status > 0]
        return max(int(written.max(initial=0)), checkpoint_round)

    def __len__(self) -> int:
        """Number of points stored (every status)."""
        return int(np.count_nonzero(self._statuses()))

    # --------------------------------------------------------------- writing

    def add_pending(
        self, X: np.ndarray, origin: str | Sequence[str], round: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Store new points as pending, before their jobs are sent.

        Args:
            X: Points, shape ``(n, dim)`` (GeV; tanb dimensionless).
            origin: One origin for all points, or one per point (at most 32 bytes).
            round: The campaign round proposing them.

        Returns:
            ``(ids, seeds)``, each int64 of shape ``(n,)``.

        Raises:
            StoreError: Read-only store, wrong shape, point outside the space, or an
                origin too long.
        """
        self._require_writer()
        X = self._checked_points(X)
        origins = self._encode_origins(origin, X.shape[0])
        n0, n = self._n_rows(), X.shape[0]
        ids = np.arange(n0, n0 + n, dtype=np.int64)
        seeds = derive_seeds(self.campaign_seed, ids)

        for key in self._point_keys():
            self._get(key).resize(n0 + n, axis=0)
        columns = {"id": ids, "seed": seeds, "parameters": X, "origin": origins}
        for key, values in columns.items():
            self._get(key)[n0:] = values
        self._get("round")[n0:] = int(round)
        self._get("attempts")[n0:] = 0
        self._file.flush()
        self._get("status")[n0:] = STATUS_CODES["pending"]
        self._file.flush()

        self._status = np.concatenate([self._status, np.full(n, 1, np.int8)])
        self._max_round = max(self._max_round, int(round))
        logger.debug("stored %d pending points (ids %d-%d)", n, n0, n0 + n - 1)
        return ids, seeds

    def record(
        self, point_id: int, result: SimulationResult, attempts: int = 1
    ) -> None:
        """Store the result of a point's simulation; durable once this returns.

        Args:
            point_id: Id returned by :meth:`add_pending`.
            result: The simulation's result.
            attempts: Simulations tried for this point so far.

        Raises:
            StoreError: Read-only store, unknown id, a result whose shape does not
                match the store (feature count), or a chi2 that is negative or
                infinite (which the store would take for damage when read back).
        """
        self._require_writer()
        row = self._checked_id(point_id)
        columns = self._result_columns(row, result)
        if self._status[row] == STATUS_CODES["pending"]:
            if not columns["reason"]:
                del columns["reason"]  # never recorded: still the empty fill value
        else:
            self._get("status")[row] = STATUS_CODES["pending"]
            self._file.flush()

        for key, values in columns.items():
            self._get(key)[row] = values
        self._get("attempts")[row] = int(attempts)
        self._file.flush()
        code = STATUS_CODES[result.status]
        self._get("status")[row] = code
        self._file.flush()
        self._status[row] = code

    def append_metrics(self, row: Mapping[str, Any]) -> None:
        """Append one metrics row (a JSON-able dict, one per refit).

        Raises:
            StoreError: Read-only store, or the row is not JSON-able or too long.
        """
        self._require_writer()
        try:
            blob = json.dumps(row, allow_nan=True, default=_json_default).encode()
        except (TypeError, ValueError) as exc:
            raise StoreError(
                f"{self._path}: metrics row is not JSON-able: {exc}"
            ) from exc
        if len(blob) > METRICS_BYTES:
            raise StoreError(
                f"{self._path}: metrics row of {len(blob)} bytes exceeds {METRICS_BYTES}"
            )
        _write_row(self._get("metrics"), self._n_rows("metrics"), blob)
        self._file.flush()

    def add_checkpoint(self, path: str | Path, round: int) -> None:
        """Reference a network checkpoint file written for a round.

        Paths inside the store's directory are kept relative to it, so a campaign
        directory can move as a whole. Unlike a record, the reference is synced to
        disk before the call returns: a campaign removes older checkpoints right
        after, and a power cut must not leave the store naming a removed one.
        """
        self._require_writer()
        blob = _relative_to(Path(path), self._path.parent).encode()
        if len(blob) > PATH_BYTES:
            raise StoreError(
                f"{self._path}: checkpoint path longer than {PATH_BYTES} bytes"
            )
        n = self._n_rows("checkpoint")
        _write_row(self._get("checkpoint_path"), n, blob)
        self._file.flush()
        _write_row(self._get("checkpoint_round"), n, int(round))
        self._file.flush()
        _fsync(self._path)

    # --------------------------------------------------------------- reading

    def counts(self) -> dict[str, int]:
        """Number of points per status (``pending``, ``ok``, ``rejected``, ``failed``)."""
        status = self._statuses()
        return {
            name: int(np.count_nonzero(status == c)) for name, c in STATUS_CODES.items()
        }

    def reasons(self, status: str) -> list[tuple[str, int]]:
        """Why points of one status (``failed``, ``rejected``) ended so: each
        distinct reason with its number of points, the most frequent first."""
        if status not in STATUS_CODES:
            raise StoreError(
                f"unknown status {status!r}; expected one of {list(STATUS_CODES)}"
            )
        rows = np.flatnonzero(self._statuses() == STATUS_CODES[status])
        if not rows.size:
            return []
        texts = _decode(self._read("reason", int(rows[-1]) + 1)[rows])
        distinct, counts = np.unique(texts, return_counts=True)
        order = np.lexsort((distinct, -counts))
        return [(str(distinct[k]), int(counts[k])) for k in order]

    def pending(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points waiting for a result: ``(ids (n,), X (n, dim), seeds (n,))``.

        Raises:
            StoreError: A stored id, seed or point is damaged (module docstring).
        """
        status = self._statuses()
        rows = np.flatnonzero(status == STATUS_CODES["pending"])
        X = self._read_checked("parameters", status)[rows]
        ids = self._read_checked("id", status)[rows]
        return ids, X, self._read_checked("seed", status)[rows]

    def dataset(
        self,
        energy: int,
        *,
        origins: Iterable[str] | None = None,
        exclude_origins: Iterable[str] | None = None,
        inputs: Literal["parameters", "features"] = "parameters",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Simulated ``ok`` points with a finite chi2 at one energy.

        Args:
            energy: Centre-of-mass energy (TeV).
            origins: Keep only these origins.
            exclude_origins: Drop these origins.
            inputs: ``"parameters"`` for the points (GeV), ``"features"`` for their
                feature vectors (points without features are dropped).

        Returns:
            ``(X (n, dim) or F (n, n_features), chi2 (n,))``.

        Raises:
            StoreError: No such energy, unknown ``inputs``, or a stored chi2 or
                point is damaged (module docstring).
        """
        column = self._energy_column(energy)
        status = self._statuses()
        n = status.size
        chi2 = self._read_checked("chi2", status)[:, column]
        keep = (status == STATUS_CODES["ok"]) & np.isfinite(chi2)
        keep &= self._origin_mask(n, origins, exclude_origins)
        if inputs == "features":
            values = self._read("features", n)[:, : self.n_features]
            keep &= np.all(np.isfinite(values), axis=1)
        elif inputs == "parameters":
            values = self._read_checked("parameters", status)
        else:
            raise StoreError(
                f"inputs must be 'parameters' or 'features', got {inputs!r}"
            )
        return values[keep], chi2[keep]

    def validation_set(self, energy: int) -> tuple[np.ndarray, np.ndarray]:
        """``(X, chi2)`` of ok points whose origin is ``validation``."""
        return self.dataset(energy, origins=["validation"])

    def training_set(self, energy: int) -> tuple[np.ndarray, np.ndarray]:
        """``(X, chi2)`` of ok points whose origin is not ``validation``."""
        return self.dataset(energy, exclude_origins=["validation"])

    def origin_region_counts(
        self, energy: int, regions: ChiSquareRegions
    ) -> dict[str, dict[str, int]]:
        """Ok points per origin and chi2 region at one energy.

        Returns:
            ``{origin: {region: n}}`` with every region name present.

        Raises:
            StoreError: No such energy, or a stored chi2 is damaged.
        """
        column = self._energy_column(energy)
        status = self._statuses()
        n = status.size
        chi2 = self._read_checked("chi2", status)[:, column]
        keep = (status == STATUS_CODES["ok"]) & np.isfinite(chi2)
        origins = _decode(self._read("origin", n)[keep])
        index = regions.index(chi2[keep])
        counts: dict[str, dict[str, int]] = {}
        for origin in sorted(set(origins)):
            mine = index[origins == origin]
            counts[str(origin)] = {
                name: int(np.count_nonzero(mine == k))
                for k, name in enumerate(REGION_NAMES)
            }
        return counts

    def metrics(self) -> list[dict]:
        """Every metrics row, oldest first."""
        blobs = self._read("metrics", self._n_rows("metrics"))
        rows = []
        for k, blob in enumerate(blobs):
            with _reading(self._path, f"dataset 'metrics' row {k}"):
                rows.append(json.loads(bytes(blob).decode()))
        return rows

    def latest_checkpoint(self) -> Path | None:
        """The most recently added checkpoint path, or None.

        The path is where the checkpoint is now (:func:`locate_checkpoint`), which
        need not exist: older checkpoints are removed, and a store may be copied
        without its checkpoint directory.
        """
        checkpoints = self.checkpoints()
        return checkpoints[0][0] if checkpoints else None

    def checkpoints(self) -> list[tuple[Path, int]]:
        """Every checkpoint added, newest first, as ``(path, round)``.

        Paths are resolved as in :meth:`latest_checkpoint`; those of refits whose
        checkpoints the campaign has since removed no longer exist.
        """
        n = self._n_rows("checkpoint")
        rounds = self._read("checkpoint_round", n)
        with _reading(self._path, "dataset 'checkpoint_path'"):
            paths = [bytes(b).decode() for b in self._read("checkpoint_path", n)]
        return [
            (locate_checkpoint(self._path, path), int(round_))
            for path, round_ in zip(paths[::-1], rounds[::-1], strict=True)
        ]

    def table(self) -> dict[str, Any]:
        """Every written row as columns (for status reports and plots).

        Returns:
            Keys ``id, seed, parameters, origin, round, status, attempts, reason,
            chi2, masses, features, timings`` (arrays; ``origin``, ``status``,
            ``reason`` as ``str`` arrays) and ``chi2_analysis`` (energy to array).
            Labels of pending rows read as NaN and ``""``, since the writer may be
            half-way through recording them.

        Raises:
            StoreError: The store is damaged, as far as its ids, seeds, parameters
                and chi2 tell (module docstring).
        """
        status = self._statuses()
        n = status.size
        rows = status > 0
        out: dict[str, Any] = {"status": _STATUS_NAMES[status[rows]].astype(str)}
        for key in ("id", "seed", "parameters", "round", "attempts", "chi2", "masses",
                    "timings"):  # fmt: skip
            out[key] = self._read_checked(key, status)[rows]
        out["features"] = self._read("features", n)[rows][:, : self.n_features]
        out["origin"] = _decode(self._read("origin", n)[rows])
        out["reason"] = _decode(self._read("reason", n)[rows])
        out["chi2_analysis"] = {
            e: self._read(f"chi2_analysis/{e}", n)[rows][:, : len(names)]
            for e, names in self.analyses.items()
        }
        _blank_pending(out)
        return out

    # -------------------------------------------------------------- internals

    def _get(self, key: str) -> h5py.Dataset:
        """The dataset ``key``; a missing one and an unreadable one are told apart."""
        if key not in self._datasets:
            with _reading(self._path, f"dataset {key!r}"):
                if key not in self._file:
                    raise StoreError(f"{self._path}: dataset {key!r} is missing")
                self._datasets[key] = self._file[key]
        return self._datasets[key]

    def _read(self, key: str, n: int, start: int = 0) -> np.ndarray:
        """Rows ``start`` to ``n`` of a dataset, refreshed first in a reader."""
        dataset = self._get(key)
        with _reading(self._path, f"dataset {key!r}"):
            if self._mode == "r":
                dataset.refresh()
            return dataset[start:n]

    def _length(self, key: str) -> int:
        """Rows of a dataset, refreshed first in a reader."""
        dataset = self._get(key)
        with _reading(self._path, f"dataset {key!r}"):
            if self._mode == "r":
                dataset.refresh()
            return dataset.shape[0]

    def _point_keys(self) -> list[str]:
        """Keys of every per-point dataset (:func:`_point_keys`)."""
        with _reading(self._path, "group 'chi2_analysis'"):
            return _point_keys(self._file)

    def _n_rows(
        self, table: Literal["points", "metrics", "checkpoint"] = "points"
    ) -> int:
        """Rows every dataset of a table holds (the shortest one counts)."""
        if table == "points":
            keys = self._point_keys()
        else:
            keys = {
                "metrics": ["metrics"],
                "checkpoint": ["checkpoint_path", "checkpoint_round"],
            }[table]
        return min(self._length(key) for key in keys)

    def _statuses(self) -> np.ndarray:
        if self._mode == "a":
            return self._status
        return self._checked_statuses(self._read("status", self._n_rows()))

    def _checked_statuses(self, status: np.ndarray) -> np.ndarray:
        """The stored status codes, shape ``(n,)`` int8, refused if one is unknown.

        Raises:
            StoreError: A row holds a code that is not 0 (not yet written) or one
                of :data:`STATUS_CODES`; names the first such row and its code.
        """
        status = np.asarray(status).astype(np.int8)
        bad = np.flatnonzero((status < 0) | (status >= len(_STATUS_NAMES)))
        if not bad.size:
            return status
        row, others = int(bad[0]), bad.size - 1
        more = f", and {others} more row{'s' * (others > 1)} too" if others else ""
        detail = (
            f"reading dataset 'status': row {row} ({self._point_id_text(row)}) holds"
            f" unknown status code {int(status[row])}{more}; known codes are 0 to"
            f" {len(_STATUS_NAMES) - 1}"
        )
        raise StoreError(_damaged(self._path, detail))

    def _point_id_text(self, row: int) -> str:
        """``"point id 17"`` for a row, for messages about a damaged row."""
        try:
            ids = self._read("id", row + 1, start=row)
        except StoreError as exc:
            logger.debug("%s: id of row %d unreadable: %s", self._path, row, exc)
            return "point id unreadable"
        return f"point id {int(ids[0])}" if ids.size else "no point id stored"

    def _read_through(self) -> None:
        """Read every dataset once, in slices, so that damage shows as a StoreError;
        the rows of ``id``, ``seed``, ``parameters`` and ``chi2`` are checked too."""
        status = self._statuses()
        self.metrics()
        self.checkpoints()
        for key in self._point_keys():
            n, row_bytes = self._length(key), _row_bytes(self._get(key))
            step = max(1, _READ_THROUGH_BYTES // row_bytes)
            for start in range(0, n, step):
                values = self._read(key, min(start + step, n), start=start)
                self._check_rows(key, values, status, start)

    def _read_checked(self, key: str, status: np.ndarray) -> np.ndarray:
        """The first ``status.size`` rows of a dataset, checked (:meth:`_check_rows`)."""
        values = self._read(key, status.size)
        self._check_rows(key, values, status)
        return values

    def _check_rows(
        self, key: str, values: np.ndarray, status: np.ndarray, start: int = 0
    ) -> None:
        """Refuse numbers of a dataset that the store cannot have written.

        Args:
            key: The dataset; only ``id``, ``seed``, ``parameters`` and ``chi2``
                are checked (see the module docstring).
            values: Its rows from ``start`` on, shape ``(m, ...)``.
            status: Status codes of every row, shape ``(n,)``; rows past ``n`` are
                not yet written and pass.
            start: Row of ``values[0]``.

        Raises:
            StoreError: Names the dataset, the first bad row, its point id and
                the value.
        """
        checks = {
            "id": self._check_ids,
            "seed": self._check_seeds,
            "parameters": self._check_parameters,
            "chi2": self._check_chi2,
        }
        if key in checks:
            codes = status[start : start + len(values)]
            checks[key](values[: codes.size], codes, start)

    def _check_ids(self, ids: np.ndarray, codes: np.ndarray, start: int) -> None:
        rows = np.arange(start, start + codes.size)
        bad = np.flatnonzero((codes > 0) & (ids != rows))
        if bad.size:
            detail = (
                f"holds point id {int(ids[bad[0]])}: a point's id is its row number"
            )
            self._refuse("id", start + int(bad[0]), detail, name_point=False)

    def _check_seeds(self, seeds: np.ndarray, codes: np.ndarray, start: int) -> None:
        expected = derive_seeds(
            self.campaign_seed, np.arange(start, start + codes.size)
        )
        bad = np.flatnonzero((codes > 0) & (seeds != expected))
        if bad.size:
            k = int(bad[0])
            detail = (
                f"holds seed {int(seeds[k])}: the campaign seed"
                f" {self.campaign_seed} gives this point the seed {int(expected[k])}"
            )
            self._refuse("seed", start + k, detail)

    def _check_parameters(self, X: np.ndarray, codes: np.ndarray, start: int) -> None:
        bad = np.flatnonzero((codes > 0) & ~self._space.contains(X))
        if bad.size:
            k = int(bad[0])
            name, value, allowed = _outside(self._space, X[k])
            detail = (
                f"holds {name} = {value!r}, outside the store's parameter space"
                f" ({name} lies in {allowed})"
            )
            self._refuse("parameters", start + k, detail)

    def _check_chi2(self, chi2: np.ndarray, codes: np.ndarray, start: int) -> None:
        chi2 = chi2[:, : len(self.energies)]
        final = (codes >= STATUS_CODES["ok"])[:, None]
        bad = np.argwhere(final & ((chi2 < 0) | np.isinf(chi2)))
        if bad.size:
            k, column = (int(i) for i in bad[0])
            value = float(chi2[k, column])
            rule = "never infinite" if np.isinf(value) else "never negative"
            detail = f"holds {value!r} at {self.energies[column]} TeV: a chi2 is {rule}"
            self._refuse("chi2", start + k, detail)

    def _refuse(
        self, key: str, row: int, detail: str, *, name_point: bool = True
    ) -> NoReturn:
        """Raise the StoreError of a damaged row of a dataset."""
        point = f" ({self._point_id_text(row)})" if name_point else ""
        where = f"dataset {key!r} row {row}{point}"
        raise StoreError(_damaged(self._path, f"{where} {detail}"))

    def _require_writer(self) -> None:
        if self._mode != "a":
            raise StoreError(
                f"{self._path}: opened read-only; only the writer can change it"
            )
        if not self._file.id.valid:
            raise StoreError(f"{self._path}: store is closed")

    def _checked_points(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self._space.dim:
            raise StoreError(
                f"{self._path}: points must have shape (n, {self._space.dim}), got {X.shape}"
            )
        bad = ~self._space.contains(X)
        if bad.any():
            try:
                self._space.check(X[bad])
            except ValueError as exc:
                raise StoreError(f"{self._path}: {exc}") from exc
        return X

    def _encode_origins(self, origin: str | Sequence[str], n: int) -> np.ndarray:
        names = [origin] * n if isinstance(origin, str) else list(origin)
        if len(names) != n:
            raise StoreError(f"{self._path}: {len(names)} origins for {n} points")
        encoded = [name.encode() for name in names]
        too_long = [
            name
            for name, b in zip(names, encoded, strict=True)
            if len(b) > ORIGIN_BYTES
        ]
        if too_long:
            raise StoreError(
                f"{self._path}: origin {too_long[0]!r} longer than {ORIGIN_BYTES} bytes"
            )
        return np.array(encoded, dtype=f"S{ORIGIN_BYTES}")

    def _checked_id(self, point_id: int) -> int:
        row = int(point_id)
        if not 0 <= row < self._status.size or self._status[row] == 0:
            raise StoreError(f"{self._path}: unknown point id {point_id}")
        return row

    def _energy_column(self, energy: int) -> int:
        try:
            return self.energies.index(int(energy))
        except ValueError as exc:
            raise StoreError(
                f"{self._path}: no energy {energy} TeV in store (has {list(self.energies)})"
            ) from exc

    def _origin_mask(
        self, n: int, origins: Iterable[str] | None, exclude: Iterable[str] | None
    ) -> np.ndarray:
        if origins is None and exclude is None:
            return np.ones(n, dtype=bool)
        stored = self._read("origin", n)
        keep = np.ones(n, dtype=bool)
        if origins is not None:
            keep &= np.isin(stored, [o.encode() for o in origins])
        if exclude is not None:
            keep &= ~np.isin(stored, [o.encode() for o in exclude])
        return keep

    def _result_columns(
        self, point_id: int, result: SimulationResult
    ) -> dict[str, Any]:
        """Row values of every data column for one result."""
        columns: dict[str, Any] = {
            "reason": _truncate(result.reason, REASON_BYTES),
            "chi2": self._chi2_row(point_id, result),
            "masses": np.array(
                [result.masses.get(p, np.nan) for p in self.mass_pdgs], dtype=float
            ),
            "features": self._features_row(result),
            "timings": self._timings_row(result),
        }
        for energy, names in self.analyses.items():
            per = result.chi2_analysis.get(energy, {})
            self._warn_unknown("analysis", set(per) - set(names))
            width = self._get(f"chi2_analysis/{energy}").shape[1]
            row = np.full(width, np.nan)
            row[: len(names)] = [per.get(name, np.nan) for name in names]
            columns[f"chi2_analysis/{energy}"] = row
        return columns

    def _chi2_row(self, point_id: int, result: SimulationResult) -> np.ndarray:
        self._warn_unknown("energy", {int(e) for e in result.chi2} - set(self.energies))
        row = np.array([result.chi2.get(e, np.nan) for e in self.energies], dtype=float)
        bad = np.flatnonzero((row < 0) | np.isinf(row))
        if bad.size:
            raise StoreError(
                f"{self._path}: the result of point {point_id} has chi2"
                f" {float(row[bad[0]])!r} at {self.energies[bad[0]]} TeV; a chi2 is"
                " finite (NaN where absent) and never negative"
            )
        return row

    def _features_row(self, result: SimulationResult) -> np.ndarray:
        width = self._get("features").shape[1]
        row = np.full(width, np.nan)
        if result.features is not None:
            features = np.asarray(result.features, dtype=float).ravel()
            if features.size != self.n_features:
                raise StoreError(
                    f"{self._path}: result has {features.size} features, store expects {self.n_features}"
                )
            row[: self.n_features] = features
        return row

    def _timings_row(self, result: SimulationResult) -> np.ndarray:
        stages = self.timing_stages
        row = np.full(len(stages), np.nan)
        other = 0.0
        for stage, seconds in result.timings.items():
            if stage in stages and stage != "other":
                row[stages.index(stage)] = seconds
            else:
                other += float(seconds)
        if other:
            row[stages.index("other")] = other
        return row

    def _warn_unknown(self, what: str, names: set) -> None:
        for name in sorted(map(str, names)):
            if f"{what}:{name}" not in self._warned:
                self._warned.add(f"{what}:{name}")
                logger.warning(
                    "%s: result carries %s %r that the store does not know; ignored",
                    self._path,
                    what,
                    name,
                )


# ------------------------------------------------------------------ helpers


@contextlib.contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    """Report what h5py raises while reading in the block as a damaged store.

    Args:
        path: The store file.
        what: What the block reads, for the message (``"dataset 'chi2'"``).

    Raises:
        StoreError: The block raised one of :data:`_READ_ERRORS`; errors of the
            package's own family pass unchanged.
    """
    try:
        yield
    except ScynetError:
        raise
    except _READ_ERRORS as exc:
        detail = f"reading {what}: {_hdf5_reason(exc)}"
        raise StoreError(_damaged(path, detail)) from exc


def _damaged(path: Path, detail: str) -> str:
    """The message for a damaged store; ``detail`` says what was read and how."""
    return f"{path}: the store is damaged ({detail}); restore it from a copy"


def _hdf5_reason(exc: BaseException) -> str:
    """The innermost reason of an h5py error (``"incorrect metadata checksum"``)."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    text = " ".join(str(text).split()).replace(" after all read attempts", "")
    inner = re.search(r"\(([^()]+)\)$", text)
    return inner.group(1) if inner else text or type(exc).__name__


def _point_keys(file: h5py.File) -> list[str]:
    """Keys of every per-point dataset."""
    keys = ["id", "seed", "parameters", "origin", "round", "status", "attempts",
            "reason", "chi2", "masses", "features", "timings"]  # fmt: skip
    keys += [f"chi2_analysis/{e}" for e in file["chi2_analysis"]]
    return keys


def _root_attributes(
    config_text: str,
    space: ParameterSpace,
    energies: list[int],
    analyses: Mapping[int, Sequence[str]],
    mass_pdgs: Sequence[int],
    n_features: int,
    seed: int,
) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": config_text,
        "package_version": __version__,
        "space": json.dumps(space.to_dict()),
        "energies_tev": np.array(energies, dtype=np.int64),
        "analyses": json.dumps({str(e): list(analyses[e]) for e in energies}),
        "mass_pdgs": np.array(mass_pdgs, dtype=np.int64),
        "n_features": int(n_features),
        "timing_stages": json.dumps(list(TIMING_STAGES)),
        "campaign_seed": int(seed),
    }


def _build_file(
    path: Path,
    attrs: Mapping[str, Any],
    dim: int,
    analyses: Mapping[int, Sequence[str]],
    n_masses: int,
    n_features: int,
) -> None:
    """Write an empty store under a temporary name, then link it into place."""
    tmp = path.with_name(f".{path.name}.creating-{os.getpid()}")
    try:
        with h5py.File(tmp, "w", libver="latest") as file:
            file.attrs.update(attrs)
            _create_datasets(file, dim, analyses, n_masses, n_features)
        _fsync(tmp)
        os.link(tmp, path)
    except FileExistsError as exc:
        raise StoreError(f"{path}: already exists") from exc
    except OSError as exc:
        raise StoreError(f"{path}: cannot create store: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _create_datasets(
    file: h5py.File,
    dim: int,
    analyses: Mapping[int, Sequence[str]],
    n_masses: int,
    n_features: int,
) -> None:
    def column(key: str, dtype: Any, width: int | None = None, fill: Any = 0,
               chunk: int = _CHUNK_ROWS, compress: bool = False) -> None:  # fmt: skip
        shape = (0,) if width is None else (0, max(width, 1))
        file.create_dataset(
            key,
            shape=shape,
            maxshape=(None, *shape[1:]),
            chunks=(chunk, *shape[1:]),
            dtype=dtype,
            fillvalue=fill,  # None for strings: the default fill is all zero bytes
            compression="gzip" if compress else None,
            compression_opts=1 if compress else None,
        )

    for key in ("id", "seed"):
        column(key, np.int64)
    column("parameters", np.float64, dim, np.nan)
    column("origin", f"S{ORIGIN_BYTES}", fill=None)
    column("round", np.int32)
    column("status", np.int8)
    column("attempts", np.int32)
    column("reason", f"S{REASON_BYTES}", fill=None, chunk=64, compress=True)
    column("chi2", np.float64, len(analyses), np.nan)  # one column per energy
    file.create_group("chi2_analysis")
    for energy, names in analyses.items():
        column(f"chi2_analysis/{int(energy)}", np.float64, len(names), np.nan)
    column("masses", np.float64, n_masses, np.nan)
    column("features", np.float64, n_features, np.nan, chunk=256)
    column("timings", np.float64, len(TIMING_STAGES), np.nan)
    column("metrics", f"S{METRICS_BYTES}", fill=None, chunk=4, compress=True)
    column("checkpoint_path", f"S{PATH_BYTES}", fill=None, chunk=16, compress=True)
    column("checkpoint_round", np.int32, fill=-1, chunk=64)


def _read_root(file: h5py.File, path: Path) -> dict[str, Any]:
    """Root attributes after checking the format name and version."""
    with _reading(path, "the root attributes"):
        attrs = dict(file.attrs)
    fmt = _plain(attrs.get("format"))
    if fmt != FORMAT_NAME:
        raise StoreError(
            f"{path}: not a scynet-al campaign store (format attribute {fmt!r})"
        )
    version = _plain(attrs.get("format_version"))
    if version != FORMAT_VERSION:
        raise StoreError(
            f"{path}: store format version {version!r} is not supported (this is version {FORMAT_VERSION}); use the scynet-al release that wrote it"
        )
    required = ("config", "space", "energies_tev", "analyses", "mass_pdgs",
                "n_features", "timing_stages", "campaign_seed")  # fmt: skip
    missing = [key for key in required if key not in attrs]
    if missing:
        raise StoreError(f"{path}: root attributes {missing} are missing")
    return attrs


#: SWMR-read handles shared within this process, by (path, inode): HDF5 keeps one
#: metadata cache per file, and two read handles on one file in one process spoil
#: each other's view after a refresh ("can't insert duplicate key").
_READERS: dict[tuple[str, int], list[Any]] = {}
_READERS_LOCK = threading.Lock()


def _acquire_reader(path: Path) -> h5py.File:
    key = (str(path.resolve()), path.stat().st_ino)
    with _READERS_LOCK:
        entry = _READERS.get(key)
        if entry is not None and entry[0].id.valid:
            entry[1] += 1
            return entry[0]
        file = _open_reader(path)
        _READERS[key] = [file, 1]
        return file


def _release_reader(file: h5py.File) -> None:
    with _READERS_LOCK:
        for key, entry in list(_READERS.items()):
            if entry[0] is file:
                entry[1] -= 1
                if entry[1] > 0:
                    return
                del _READERS[key]
        if file.id.valid:
            file.close()


def _open_reader(path: Path) -> h5py.File:
    """Open in SWMR-read mode without chunk cache, so refreshed reads are current.

    Readers take no HDF5 file lock: a held shared lock would keep a writer from
    opening the store to resume. Writers exclude each other through their own lock.
    """
    _check_complete(path)
    return _open_swmr(path)


def _open_swmr(path: Path) -> h5py.File:
    """:func:`_open_reader` for a file whose length was checked already."""
    for attempt in range(_READER_OPEN_TRIES):
        try:
            file = h5py.File(h5py.h5f.open(
                os.fsencode(path),
                h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ,
                fapl=_swmr_read_access(),
            ))  # fmt: skip
        except (OSError, RuntimeError) as exc:
            if _writer_starting(exc) and attempt + 1 < _READER_OPEN_TRIES:
                time.sleep(0.05)  # a writer is between its open and the start of SWMR
                continue
            raise _open_error(path, exc) from exc
        try:
            _read_root(file, path)
        except BaseException:
            file.close()
            raise
        return file
    raise AssertionError("unreachable")


def _open_error(path: Path, exc: BaseException) -> StoreError:
    """The error of a failed open: a damaged store when the file starts as HDF5."""
    if _has_hdf5_signature(path):
        return StoreError(_damaged(path, f"opening the file: {_hdf5_reason(exc)}"))
    return StoreError(f"{path}: cannot open as HDF5 file: {exc}")


def _has_hdf5_signature(path: Path) -> bool:
    """True when the file holds an HDF5 superblock signature where one may sit."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            return _superblock(handle, size) is not None
    except OSError:
        return False  # unreadable (permissions): not for this check to say


#: Reads of one piece of metadata in SWMR-read mode before a checksum mismatch is
#: taken as damage. A reader may catch the writer in the middle of a flush and
#: then reads again, pausing twice as long each time: 30 reads wait about 1 s in
#: all (HDF5 2.0, measured), enough for a flush. HDF5's own default of 100 waits
#: for hours on a file whose metadata is really damaged (a disk error, a copy
#: overwritten in place), and the wait sits in the library where Ctrl-C cannot
#: reach it.
SWMR_METADATA_READ_ATTEMPTS = 30


def _swmr_read_access() -> h5py.h5p.PropFAID:
    """File-access properties of a reader: latest format, no chunk cache, no file
    lock, and at most :data:`SWMR_METADATA_READ_ATTEMPTS` metadata reads."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    mdc_nelmts, rdcc_nslots, _, rdcc_w0 = fapl.get_cache()
    fapl.set_cache(mdc_nelmts, rdcc_nslots, 0, rdcc_w0)  # refreshed reads are current
    fapl.set_file_locking(False, False)
    _set_metadata_read_attempts(fapl, SWMR_METADATA_READ_ATTEMPTS)
    return fapl


def _set_metadata_read_attempts(fapl: h5py.h5p.PropFAID, attempts: int) -> None:
    """Call HDF5's H5Pset_metadata_read_attempts, which h5py does not wrap.

    Where the HDF5 library that h5py uses cannot be found in this process, the
    library's default stays, and a store whose metadata is damaged can keep a
    reader waiting for a very long time instead of failing.
    """
    setter = _hdf5_function("H5Pset_metadata_read_attempts")
    if setter is None:
        logger.debug("H5Pset_metadata_read_attempts not found; HDF5 default kept")
        return
    if setter(fapl.id, attempts) < 0:
        logger.debug("H5Pset_metadata_read_attempts(%d) refused", attempts)


_HDF5_FUNCTIONS: dict[str, Any] = {}


def _hdf5_function(name: str) -> Any:
    """A function of the HDF5 library loaded by h5py (ctypes), None if not found."""
    if name not in _HDF5_FUNCTIONS:
        _HDF5_FUNCTIONS[name] = None
        library = _loaded_hdf5_library()
        function = getattr(library, name, None) if library is not None else None
        if function is not None:
            function.argtypes = [ctypes.c_int64, ctypes.c_uint]
            function.restype = ctypes.c_int
            _HDF5_FUNCTIONS[name] = function
    return _HDF5_FUNCTIONS[name]


def _loaded_hdf5_library() -> ctypes.CDLL | None:
    """The HDF5 shared library mapped into this process (Linux: /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/libhdf5" in line}
    except OSError:
        return None
    for candidate in sorted(paths):
        if "hdf5_hl" in candidate:
            continue
        try:
            return ctypes.CDLL(candidate)  # the mapped copy itself, not a second one
        except OSError:
            continue
    return None


#: Start of every HDF5 superblock; it sits at byte 0 or after a user block of
#: 512, 1024, 2048, ... bytes (HDF5 file format specification, Level 0A).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _check_complete(path: Path) -> None:
    """Raise if the file is shorter than the end-of-file address its superblock holds.

    A cut copy (interrupted transfer, full disk) would otherwise hang the reader:
    in SWMR-read mode HDF5 skips its own length check and retries reading the
    missing metadata with ever longer pauses. A live writer's file can be short
    for the instant between writing the superblock and extending the file, so the
    length is checked again for about a second before giving up. Files whose
    superblock cannot be parsed here are left to HDF5 to judge.
    """
    for attempt in range(_TRUNCATION_TRIES):
        try:
            size = path.stat().st_size
            with path.open("rb") as handle:
                expected = _stored_end_of_file(handle, size)
        except OSError:
            return  # the open below reports a missing or unreadable file
        if expected is None or size >= expected:
            return
        if attempt + 1 < _TRUNCATION_TRIES:
            time.sleep(0.05)
    _refuse_damaged_superblock(path)
    raise StoreError(
        f"{path}: file is truncated: {size} bytes on disk, its HDF5 superblock "
        f"says {expected}; it is an incomplete copy or was cut short (disk full?)"
    )


def _refuse_damaged_superblock(path: Path) -> None:
    """Raise if HDF5 finds the superblock's checksum wrong (read-only, no retries).

    A damaged end-of-file address looks like a truncated file; outside SWMR-read
    mode HDF5 checks the superblock's checksum once before its length.
    """
    try:
        with h5py.File(path, "r", locking=False):
            return
    except (OSError, RuntimeError) as exc:
        if "checksum" in str(exc):
            raise StoreError(
                _damaged(path, f"reading the superblock: {_hdf5_reason(exc)}")
            ) from exc
        logger.debug("%s: read-only open after the length check: %s", path, exc)


def _stored_end_of_file(handle: Any, size: int) -> int | None:
    """Byte length of the file that its superblock records (end-of-file address).

    Layouts from the HDF5 file format specification: superblock versions 0 and 1
    hold the end-of-file address as the third address after the fixed fields
    (24 bytes, 28 for version 1), versions 2 and 3 as the third address after
    12 bytes. HDF5 compares it with the file's length as is, user block included.
    None when no superblock is recognised.
    """
    head = _superblock(handle, size)
    if head is None:
        return None
    version = head[8]
    if version in (0, 1):
        width = head[13]
        start = 24 if version == 0 else 28
    elif version in (2, 3):
        width = head[9]
        start = 12
    else:
        return None
    if width not in (4, 8) or len(head) < start + 3 * width:
        return None
    code = "<I" if width == 4 else "<Q"
    return int(struct.unpack_from(code, head, start + 2 * width)[0])


def _superblock(handle: Any, size: int) -> bytes | None:
    """The first 64 bytes of the superblock (signature first), None if not found."""
    offset = 0
    while offset + 64 <= max(size, 64):
        handle.seek(offset)
        head = handle.read(64)
        if head[:8] == _HDF5_SIGNATURE:
            return head
        offset = 512 if offset == 0 else 2 * offset
    return None


def _writer_starting(exc: BaseException) -> bool:
    message = str(exc).lower()
    starting = ("lock", "already open for write", "not already open for swmr writing")
    return any(text in message for text in starting)


def _inspect(path: Path) -> bool:
    """Check a store read-only before a writer opens it; True if a crash left it open.

    Checks the length, the format and every dataset
    (:meth:`CampaignStore._read_through`), through this process's shared read
    handle, so that a damaged store is refused before anything is written to it.
    """
    _check_complete(path)
    try:
        with h5py.File(path, "r", libver="latest", locking=False):
            crashed = False
    except (OSError, RuntimeError) as exc:
        if "already open for write" not in str(exc):
            raise _open_error(path, exc) from exc
        crashed = True
    with CampaignStore.open(path, mode="r") as reader:
        reader._read_through()
    return crashed


def _recover(path: Path) -> None:
    """Rebuild a store whose writer died: copy everything into a fresh file."""
    logger.warning(
        "%s: the previous writer did not close the store (crash or kill); "
        "rebuilding it from its last flushed state",
        path,
    )
    tmp = path.with_name(f".{path.name}.recovering-{os.getpid()}")
    try:
        with (
            h5py.File(path, "r", libver="latest", swmr=True) as src,
            h5py.File(tmp, "w", libver="latest") as dst,
        ):
            dst.attrs.update(dict(src.attrs))
            for key in src:
                src.copy(src[key], dst, name=key)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except (OSError, RuntimeError) as exc:
        raise StoreError(
            f"{path}: recovery after a crashed writer failed: {exc}"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    logger.warning("%s: recovered", path)


def _lock_path(path: Path) -> Path:
    """The writer lock file of the store ``path``: ``<store>.lock``."""
    return path.with_name(path.name + ".lock")


def _acquire_lock(path: Path) -> int:
    """Take the writer lock ``<path>.lock``; raise if a live writer holds it."""
    lock_path = _lock_path(path)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(
            f"{path}: cannot create writer lock {lock_path}: {exc}"
        ) from exc
    # A status reader holds the lock shared for an instant (writer_pid); a live
    # writer holds it for the whole run. So a refusal is retried a few times.
    for attempt in range(_LOCK_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:
            if attempt + 1 < _LOCK_TRIES:
                time.sleep(_LOCK_RETRY_S)
                continue
            holder = _lock_holder(fd) or "unknown"
            os.close(fd)
            raise StoreError(
                f"{path}: another writer (pid {holder}) has the store open"
            ) from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


#: Attempts, and seconds between them, at taking the writer lock before a new
#: writer is refused (see :func:`writer_pid`, which holds it for an instant).
_LOCK_TRIES = 5
_LOCK_RETRY_S = 0.05


def _lock_holder(fd: int) -> str:
    """The process id written into a lock file by its writer, as text ("" if none)."""
    return os.pread(fd, 64, 0).decode(errors="replace").strip()


def writer_pid(path: str | os.PathLike) -> int | None:
    """The process id of the campaign writing the store now, or None.

    Tells a live writer from a store no one writes by the writer lock, which the
    kernel drops when its process ends: the lock is tried shared for an instant,
    which a writer starting just then waits out. A pid that cannot be read from
    the lock file is given as 0.
    """
    lock_path = _lock_path(Path(path))
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = _lock_holder(fd)
            return int(text) if text.isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _release_lock(fd: int | None) -> None:
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _row_bytes(dataset: h5py.Dataset) -> int:
    """Bytes of one row of a dataset (at least 1)."""
    width = int(np.prod(dataset.shape[1:], dtype=np.int64))
    return max(1, dataset.dtype.itemsize * width)


def _write_row(dataset: h5py.Dataset, row: int, value: Any) -> None:
    """Write one row, growing the dataset to exactly ``row + 1`` rows."""
    dataset.resize(row + 1, axis=0)
    dataset[row] = value


def _truncate(text: str, limit: int) -> bytes:
    """UTF-8 bytes of ``text``, cut at a character boundary with a marker if long."""
    blob = text.encode()
    if len(blob) <= limit:
        return blob
    head = blob[: limit - len(_TRUNCATED)].decode(errors="ignore").encode()
    return head + _TRUNCATED


def _decode(values: np.ndarray) -> np.ndarray:
    return np.array([bytes(v).decode(errors="replace") for v in values], dtype=str)


def _relative_to(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path.resolve())


def _seed_from_config(config_text: str) -> int:
    """``campaign.seed`` read as the config loader reads it (``1e3`` is 1000)."""
    from scynet_al.config import read_yaml

    try:
        seed = read_yaml(config_text)["campaign"]["seed"]
    except (yaml.YAMLError, KeyError, TypeError):
        return 0
    if isinstance(seed, float) and seed.is_integer():
        return int(seed)
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else 0


def _blank_pending(table: dict[str, Any]) -> None:
    """Clear the labels of pending rows: a record may be half-way through them."""
    pending = table["status"] == "pending"
    if not pending.any():
        return
    for key in ("chi2", "masses", "features", "timings"):
        table[key][pending] = np.nan
    for values in table["chi2_analysis"].values():
        values[pending] = np.nan
    table["reason"][pending] = ""


def _outside(space: ParameterSpace, x: np.ndarray) -> tuple[str, float, str]:
    """The first parameter of a point outside the space: its name, its value and
    its allowed intervals (``"[-4000, -400] ∪ [400, 4000]"``)."""
    for name, value in zip(space.names, x, strict=True):
        intervals = space.intervals[name]
        if not any(lo <= value <= hi for lo, hi in intervals):
            allowed = " ∪ ".join(f"[{lo:g}, {hi:g}]" for lo, hi in intervals)
            return name, float(value), allowed
    raise AssertionError("the point lies inside the space")


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value, so messages show ``99`` not ``np.int64(99)``."""
    return value.item() if isinstance(value, np.generic) else value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def checkpoint_directory(store_path: str | Path) -> Path:
    """The directory holding a store's network checkpoints: ``<store>.checkpoints``."""
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".checkpoints")


def locate_checkpoint(store_path: str | Path, recorded: str | Path) -> Path:
    """Where a checkpoint that a store's campaign recorded is now.

    Checkpoints live beside the store in ``<store>.checkpoints/``, and a store is
    moved, renamed or copied together with that directory. So the file of that
    name in the directory of the store's current name is taken when it exists;
    else the recorded path, read relative to the store's directory unless
    absolute (a campaign given another checkpoint directory).

    Args:
        store_path: The store file, under its current name.
        recorded: The checkpoint path as the campaign recorded it, in the store's
            ``checkpoint_path`` or in a metrics row.

    Returns:
        The checkpoint's path; it need not exist (see :func:`missing_checkpoints`).
    """
    store_path, recorded = Path(store_path), Path(recorded)
    beside = checkpoint_directory(store_path) / recorded.name
    if beside.exists():
        return beside
    return recorded if recorded.is_absolute() else store_path.parent / recorded


def missing_checkpoints(store_path: str | Path, checkpoint: str | Path) -> str | None:
    """Why a store's checkpoint is missing when its whole directory is, else None.

    A single missing file was most likely removed by the campaign itself
    (``campaign.keep_checkpoints``); a missing directory means the store was
    moved or copied without it.

    Args:
        store_path: The store file.
        checkpoint: The checkpoint as :func:`locate_checkpoint` found it.
    """
    directory = checkpoint_directory(store_path)
    if directory.is_dir() or Path(checkpoint).parent.is_dir():
        return None
    return (
        f"the checkpoint directory {directory} is missing beside the store; a store"
        f" is moved or copied together with its {directory.name} directory"
    )
