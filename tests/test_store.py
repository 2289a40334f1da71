"""Tests of the HDF5 campaign store: layout, round trips, readers, crashes."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sampler.regions import ChiSquareRegions
from sampler.space import pmssm11
from scynet_al.errors import StoreError
from scynet_al.store import (
    FORMAT_NAME,
    FORMAT_VERSION,
    KEY_MASS_PDGS,
    CampaignStore,
    derive_seeds,
)
from simulators.result import SimulationResult
from tests.store_writer import expected_points, result_for

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE = pmssm11()
CONFIG = "campaign: {name: t, seed: 5}\nspace: {model: pmssm11}\n"
ANALYSES = {8: ["atlas_a", "atlas_b"], 13: ["cms_c"]}


def make_store(path: Path, **kwargs) -> CampaignStore:
    options = dict(
        config_text=CONFIG,
        space=SPACE,
        energies=[8, 13],
        analyses=ANALYSES,
        n_features=4,
    )
    options.update(kwargs)
    return CampaignStore.create(path, **options)


def points(n: int, seed: int = 0) -> np.ndarray:
    return SPACE.from_unit(np.random.default_rng(seed).random((n, SPACE.dim)))


def ok(chi2_8: float, chi2_13: float, **kwargs) -> SimulationResult:
    return SimulationResult("ok", chi2={8: chi2_8, 13: chi2_13}, **kwargs)


# ------------------------------------------------------------------ layout


def test_create_writes_root_attributes(tmp_path):
    path = tmp_path / "c.h5"
    make_store(path, mass_pdgs=KEY_MASS_PDGS).close()

    with h5py.File(path, "r") as file:
        attrs = dict(file.attrs)
    assert attrs["format"] == FORMAT_NAME == "scynet-al campaign"
    assert attrs["format_version"] == FORMAT_VERSION
    assert attrs["config"] == CONFIG
    assert attrs["campaign_seed"] == 5  # read from the config text
    assert list(attrs["energies_tev"]) == [8, 13]
    assert json.loads(attrs["analyses"]) == {"8": ANALYSES[8], "13": ANALYSES[13]}
    assert json.loads(attrs["space"]) == SPACE.to_dict()
    assert attrs["n_features"] == 4
    assert "T" in attrs["created"] and attrs["package_version"]


def test_key_mass_pdgs_are_the_slha_codes():
    assert KEY_MASS_PDGS == (
        1000021, 1000002, 2000002, 1000001, 2000001, 1000006, 2000006, 1000005,
        2000005, 1000022, 1000023, 1000025, 1000035, 1000024, 1000037, 1000011,
        2000011, 1000015, 2000015, 1000012, 1000016, 25, 35, 36, 37,
    )  # fmt: skip


def test_metadata_read_back(tmp_path):
    make_store(tmp_path / "c.h5").close()

    with CampaignStore.open(tmp_path / "c.h5") as store:
        assert store.space == SPACE
        assert store.config_text == CONFIG
        assert store.energies == (8, 13)
        assert store.analyses == ANALYSES
        assert store.n_features == 4
        assert store.current_round == 0
        assert len(store) == 0
        assert store.counts() == {"pending": 0, "ok": 0, "rejected": 0, "failed": 0}
        assert store.latest_checkpoint() is None
        assert store.metrics() == []


def test_create_refuses_existing_file_and_leaves_it_alone(tmp_path):
    path = tmp_path / "c.h5"
    path.write_bytes(b"precious")

    with pytest.raises(StoreError, match="already exists"):
        make_store(path)

    assert path.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.h5", "c.h5.lock"]


def test_open_refuses_missing_file(tmp_path):
    with pytest.raises(StoreError, match="no such campaign store"):
        CampaignStore.open(tmp_path / "absent.h5")


@pytest.mark.parametrize("mode", ["r", "a"])
def test_open_refuses_foreign_hdf5(tmp_path, mode):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as file:
        file["data"] = np.arange(3)
    before = path.read_bytes()

    with pytest.raises(
        StoreError, match=r"foreign\.h5: not a scynet-al campaign store"
    ):
        CampaignStore.open(path, mode=mode)
    assert path.read_bytes() == before


@pytest.mark.parametrize("mode", ["r", "a"])
def test_open_refuses_non_hdf5(tmp_path, mode):
    path = tmp_path / "notes.h5"
    path.write_text("not hdf5")

    with pytest.raises(StoreError, match=r"notes\.h5: cannot open as HDF5 file"):
        CampaignStore.open(path, mode=mode)


@pytest.mark.parametrize("mode", ["r", "a"])
@pytest.mark.parametrize("live", [False, True], ids=["closed", "writer-open"])
def test_open_refuses_a_truncated_copy(tmp_path, mode, live):
    # A copy cut short, as by an interrupted transfer or a full disk. In SWMR-read
    # mode HDF5 does not check the length itself and retries without end; the
    # store compares the length with the superblock's end-of-file address, which
    # after a flush is the file's length.
    path, cut = tmp_path / "c.h5", tmp_path / "cut.h5"

    def copy_cut() -> int:
        data = path.read_bytes()
        cut.write_bytes(data[:5000])
        return len(data)

    with make_store(path) as store:
        store.add_pending(points(300), "prior", 0)
        if live:  # copied while the writer has the file open
            store._file.flush()
            length = copy_cut()
    if not live:
        length = copy_cut()
    assert length > 5000
    before = cut.read_bytes()

    with pytest.raises(
        StoreError,
        match=rf"cut\.h5: file is truncated: 5000 bytes on disk, its HDF5 "
        rf"superblock says {length}",
    ):
        CampaignStore.open(cut, mode=mode)
    assert cut.read_bytes() == before


def test_damaged_metadata_is_refused_instead_of_waited_for(tmp_path):
    # Bytes overwritten inside the root group's object header (a disk error, a copy
    # damaged in place): its checksum no longer matches. A SWMR reader re-reads
    # such metadata in case a writer is mid-flush; with HDF5's default number of
    # reads it waits for hours, out of reach of Ctrl-C. Run in a child process so
    # that a hang fails the test instead of stalling the suite.
    path, bad = tmp_path / "c.h5", tmp_path / "bad.h5"
    with make_store(path) as store:
        store.add_pending(points(300), "prior", 0)
    data = bytearray(path.read_bytes())
    # Superblock version 2/3 (HDF5 format spec, Level 0A): signature 8, versions
    # and sizes 4, then four 8-byte addresses; the fourth is the root object header.
    assert data[8] in (2, 3)
    root = struct.unpack("<Q", data[36:44])[0]
    assert data[root : root + 4] == b"OHDR"
    data[root + 20 : root + 36] = b"\xff" * 16
    bad.write_bytes(bytes(data))

    opened = subprocess.run(
        [sys.executable, "-c",
         "import sys; from scynet_al.store import CampaignStore\n"
         "try:\n    CampaignStore.open(sys.argv[1], mode='r')\n"
         "except Exception as exc:\n    print(type(exc).__name__, exc)",
         str(bad)],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )  # fmt: skip

    assert opened.stdout == (
        f"StoreError {bad}: the store is damaged (reading the root attributes:"
        " incorrect metadata checksum); restore it from a copy\n"
    )
    assert bad.read_bytes() == bytes(data)


def test_open_refuses_unknown_format_version(tmp_path):
    path = tmp_path / "c.h5"
    make_store(path).close()
    with h5py.File(path, "r+") as file:
        file.attrs["format_version"] = 99

    with pytest.raises(StoreError, match="format version 99 is not supported"):
        CampaignStore.open(path)


def test_missing_dataset_is_named(tmp_path):
    path = tmp_path / "c.h5"
    with make_store(path) as store:
        store.add_pending(points(2), "prior", 0)
    with h5py.File(path, "r+") as file:
        del file["masses"]

    with CampaignStore.open(path) as store, pytest.raises(StoreError, match="'masses'"):
        store.table()


# ------------------------------------------------------------------ damage


def filled_store(path: Path) -> Path:
    """A closed store: 300 points, half of them ok, one failed, one metrics row."""
    with make_store(path) as store:
        store.add_pending(points(300), "prior", 0)
        for point_id in range(0, 300, 2):
            store.record(point_id, ok(1.0, 2.0))
        store.record(1, SimulationResult("failed", reason="timeout"))
        store.append_metrics({"kind": "refit", "round": 1})
    return path


def header_address(path: Path, key: str) -> int:
    """Byte offset of the object header of the dataset or group ``key``."""
    with h5py.File(path, "r") as file:
        return h5py.h5o.get_info(file[key].id).addr


def first_chunk_address(path: Path, key: str) -> int:
    """Byte offset of the first (compressed) chunk of the dataset ``key``."""
    with h5py.File(path, "r") as file:
        return file[key].id.get_chunk_info(0).byte_offset


def damaged_copy(path: Path, copy: Path, offset: int, n: int = 16) -> bytes:
    """Copy ``path`` to ``copy`` with ``n`` bytes at ``offset`` overwritten in place
    (0xff), as a disk error would leave them; return the damaged file's bytes."""
    return overwritten_copy(path, copy, offset, b"\xff" * n)


def overwritten_copy(path: Path, copy: Path, offset: int, data: bytes) -> bytes:
    """Copy ``path`` to ``copy`` with ``data`` written over the bytes at ``offset``;
    return the damaged file's bytes."""
    content = bytearray(path.read_bytes())
    content[offset : offset + len(data)] = data
    copy.write_bytes(bytes(content))
    return bytes(content)


def value_address(path: Path, key: str, row: int, column: int = 0) -> int:
    """Byte offset of one value in the first chunk of an uncompressed dataset; a
    chunk holds its rows one after another, each ``chunks[1]`` values wide."""
    with h5py.File(path, "r") as file:
        dataset = file[key]
        width = int(np.prod(dataset.chunks[1:]))
        start = dataset.id.get_chunk_info(0).byte_offset
        return start + (row * width + column) * dataset.dtype.itemsize


def damaged_message(path: Path, detail: str) -> str:
    return f"{path}: the store is damaged ({detail}); restore it from a copy"


@pytest.mark.parametrize("key", ["id", "status", "chi2", "chi2_analysis/8"])
def test_a_damaged_dataset_header_is_named_by_a_reader(tmp_path, key):
    # Version-2 object headers carry a checksum (HDF5 format spec, Level 2A1):
    # 16 bytes overwritten 20 bytes in no longer match it.
    good, bad = filled_store(tmp_path / "c.h5"), tmp_path / "bad.h5"
    damaged = damaged_copy(good, bad, header_address(good, key) + 20)

    with CampaignStore.open(bad) as store, pytest.raises(StoreError) as raised:
        store.table()

    assert str(raised.value) == damaged_message(
        bad, f"reading dataset {key!r}: incorrect metadata checksum"
    )
    assert bad.read_bytes() == damaged


@pytest.mark.parametrize("key", ["metrics", "reason"])
def test_a_damaged_compressed_chunk_is_named(tmp_path, key):
    good, bad = filled_store(tmp_path / "c.h5"), tmp_path / "bad.h5"
    damaged = damaged_copy(good, bad, first_chunk_address(good, key) + 2, n=64)

    with CampaignStore.open(bad) as store, pytest.raises(StoreError) as raised:
        store.table() if key == "reason" else store.metrics()

    assert str(raised.value) == damaged_message(
        bad, f"reading dataset {key!r}: filter returned failure during read"
    )
    assert bad.read_bytes() == damaged


@pytest.mark.parametrize(
    ("key", "chunk"), [("id", False), ("chi2", False), ("reason", True)]
)
def test_a_damaged_store_is_refused_before_a_writer_opens_it(tmp_path, key, chunk):
    # A writer (resume) reads the whole store read-only first: damage anywhere in
    # it is reported before the file is opened for writing, so nothing is written.
    good, bad = filled_store(tmp_path / "c.h5"), tmp_path / "bad.h5"
    if chunk:
        damaged = damaged_copy(good, bad, first_chunk_address(good, key) + 2, n=64)
        reason = "filter returned failure during read"
    else:
        damaged = damaged_copy(good, bad, header_address(good, key) + 20)
        reason = "incorrect metadata checksum"

    with pytest.raises(StoreError) as raised:
        CampaignStore.open(bad, mode="a")

    assert str(raised.value) == damaged_message(
        bad, f"reading dataset {key!r}: {reason}"
    )
    assert bad.read_bytes() == damaged


@pytest.mark.parametrize("mode", ["r", "a"])
@pytest.mark.parametrize(
    ("offset", "value", "detail"),
    [
        # Superblock version 2/3: signature 8, versions and sizes 4, then the base,
        # extension, end-of-file and root addresses (8 bytes each), then a checksum.
        (12, b"\xff" * 4, "opening the file: incorrect metadata checksum"),
        (28, None, "reading the superblock: incorrect metadata checksum"),
    ],
    ids=["base-address", "end-of-file-address"],
)
def test_a_damaged_superblock_is_named(tmp_path, mode, offset, value, detail):
    # A damaged end-of-file address beyond the file's length is not taken for a
    # truncated copy: the superblock's checksum tells the two apart.
    good, bad = filled_store(tmp_path / "c.h5"), tmp_path / "bad.h5"
    data = bytearray(good.read_bytes())
    assert data[8] in (2, 3)
    value = struct.pack("<Q", 10 * len(data)) if value is None else value
    data[offset : offset + len(value)] = value
    bad.write_bytes(bytes(data))

    with pytest.raises(StoreError) as raised:
        CampaignStore.open(bad, mode=mode)

    assert str(raised.value) == damaged_message(bad, detail)
    assert bad.read_bytes() == bytes(data)


@pytest.mark.parametrize("mode", ["r", "a"])
@pytest.mark.parametrize(
    ("codes", "more"),
    [({5: 7}, ""), ({5: 7, 200: -1}, ", and 1 more row too")],
    ids=["one-row", "two-rows"],
)
def test_an_unknown_status_code_is_refused_naming_row_and_code(
    tmp_path, mode, codes, more
):
    path = filled_store(tmp_path / "c.h5")
    with h5py.File(path, "r+") as file:
        for row, code in codes.items():
            file["status"][row] = code
    before = path.read_bytes()

    with pytest.raises(StoreError) as raised, CampaignStore.open(path, mode) as store:
        store.table()

    assert str(raised.value) == damaged_message(
        path,
        f"reading dataset 'status': row 5 (point id 5) holds unknown status code 7"
        f"{more}; known codes are 0 to 4",
    )
    assert path.read_bytes() == before


#: A NaN as a disk error leaves it: eight 0xff bytes.
NAN_BYTES = b"\xff" * 8


def f8(value: float) -> bytes:
    return struct.pack("<d", value)


def i8(value: int) -> bytes:
    return struct.pack("<q", value)


# In filled_store(), even ids are ok with chi2 (1.0, 2.0) at (8, 13) TeV, id 1 is
# failed and the other odd ids are pending; M1 is the first parameter, M3 the third.
DAMAGED_NUMBERS = [
    pytest.param(
        "parameters", 20, 0, NAN_BYTES * 11 * 5,
        "dataset 'parameters' row 20 (point id 20) holds M1 = nan, outside the"
        " store's parameter space (M1 lies in [-4000, 4000])",
        id="nan-parameters",
    ),
    pytest.param(
        "parameters", 50, 2, f8(12.0),
        "dataset 'parameters' row 50 (point id 50) holds M3 = 12.0, outside the"
        " store's parameter space (M3 lies in [-4000, -400] ∪ [400, 4000])",
        id="parameter-in-a-gap",
    ),
    pytest.param(
        "chi2", 36, 1, f8(-12.5),
        "dataset 'chi2' row 36 (point id 36) holds -12.5 at 13 TeV: a chi2 is never"
        " negative",
        id="negative-chi2",
    ),
    pytest.param(
        "chi2", 38, 0, f8(float("inf")),
        "dataset 'chi2' row 38 (point id 38) holds inf at 8 TeV: a chi2 is never"
        " infinite",
        id="infinite-chi2",
    ),
    pytest.param(
        "chi2", 1, 0, f8(-1.0),
        "dataset 'chi2' row 1 (point id 1) holds -1.0 at 8 TeV: a chi2 is never"
        " negative",
        id="negative-chi2-of-a-failed-point",
    ),
    pytest.param(
        "id", 10, 0, i8(0) * 10,
        "dataset 'id' row 10 holds point id 0: a point's id is its row number",
        id="duplicate-ids",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("key", "row", "column", "data", "detail"), DAMAGED_NUMBERS)
def test_damaged_numbers_are_refused_before_a_writer_opens_the_store(
    tmp_path, key, row, column, data, detail
):
    # Damage inside the numbers carries no checksum; the writer's read-through
    # checks what the store itself writes, before the file is opened for writing.
    good, bad = filled_store(tmp_path / "c.h5"), tmp_path / "bad.h5"
    damaged = overwritten_copy(good, bad, value_address(good, key, row, column), data)

    with pytest.raises(StoreError) as raised:
        CampaignStore.open(bad, mode="a")

    assert str(raised.value) == damaged_message(bad, detail)
    assert bad.read_bytes() == damaged


def test_a_changed_seed_is_refused_naming_the_seed_of_the_point(tmp_path):
    good, bad = filled_store(tmp_path / "c.h5"), tmp_path / "bad.h5"
    with h5py.File(good, "r") as file:
        stored = int(file["seed"][40])
    assert stored != 7
    damaged = overwritten_copy(good, bad, value_address(good, "seed", 40), i8(7))

    with pytest.raises(StoreError) as raised:
        CampaignStore.open(bad, mode="a")

    assert str(raised.value) == damaged_message(
        bad,
        f"dataset 'seed' row 40 (point id 40) holds seed 7: the campaign seed 5"
        f" gives this point the seed {stored}",
    )
    assert bad.read_bytes() == damaged


READERS = {
    "table": lambda store: store.table(),
    "dataset": lambda store: store.dataset(13),
    "training_set": lambda store: store.training_set(8),
    "pending": lambda store: store.pending(),
    "origin_region_counts": lambda store: store.origin_region_counts(
        13, ChiSquareRegions.paper(13)
    ),
}


@pytest.mark.parametrize(
    ("damage", "reader"),
    [("negative-chi2", r) for r in ("table", "dataset", "origin_region_counts")]
    + [("nan-parameters", r) for r in ("table", "training_set", "pending")],
)
def test_readers_refuse_damaged_numbers_in_the_rows_they_read(tmp_path, damage, reader):
    (case,) = [c for c in DAMAGED_NUMBERS if c.id == damage]
    key, row, column, data, detail = case.values
    good, bad = filled_store(tmp_path / "c.h5"), tmp_path / "bad.h5"
    damaged = overwritten_copy(good, bad, value_address(good, key, row, column), data)

    with CampaignStore.open(bad) as store, pytest.raises(StoreError) as raised:
        READERS[reader](store)

    assert str(raised.value) == damaged_message(bad, detail)
    assert bad.read_bytes() == damaged


def test_the_chi2_of_a_pending_point_is_not_judged(tmp_path):
    # The writer rewrites it when the result comes, and may have been killed
    # half-way through writing it; readers see it as NaN.
    good, copy = filled_store(tmp_path / "c.h5"), tmp_path / "copy.h5"
    overwritten_copy(good, copy, value_address(good, "chi2", 3, 1), f8(-5.0))

    with CampaignStore.open(copy, mode="a") as store:
        store.record(3, ok(4.0, 5.0))
    with CampaignStore.open(copy) as store:
        np.testing.assert_array_equal(store.table()["chi2"][3], [4.0, 5.0])


def test_rows_not_yet_written_are_not_judged(tmp_path):
    # A writer killed between growing the datasets and writing the status leaves
    # rows of status 0 that hold the fill values: id 0, seed 0, NaN parameters.
    path = filled_store(tmp_path / "c.h5")
    with h5py.File(path, "r+") as file:
        for key in ("id", "seed", "parameters", "origin", "round", "status",
                    "attempts", "reason", "chi2", "masses", "features", "timings",
                    "chi2_analysis/8", "chi2_analysis/13"):  # fmt: skip
            file[key].resize(305, axis=0)

    with CampaignStore.open(path, mode="a") as store:
        ids, _ = store.add_pending(points(2), "prior", 1)
    assert ids.tolist() == [305, 306]
    with CampaignStore.open(path) as store:
        assert len(store.table()["id"]) == 302


@pytest.mark.parametrize("mode", ["r", "a"])
def test_open_refuses_a_directory(tmp_path, mode):
    directory = tmp_path / "campaign.h5"
    directory.mkdir()

    with pytest.raises(StoreError) as raised:
        CampaignStore.open(directory, mode=mode)

    assert str(raised.value) == f"{directory} is a directory, not a campaign store"
    assert list(tmp_path.iterdir()) == [directory]  # no writer lock beside it


# ------------------------------------------------------------ round trips


def test_seeds_derive_from_campaign_seed_and_id(tmp_path):
    with make_store(tmp_path / "a.h5") as a, make_store(tmp_path / "b.h5") as b:
        ids_a, seeds_a = a.add_pending(points(50), "prior", 0)
        _, seeds_b = b.add_pending(points(50, seed=9), "local", 3)
    with make_store(tmp_path / "c.h5", campaign_seed=6) as c:
        _, seeds_c = c.add_pending(points(50), "prior", 0)

    np.testing.assert_array_equal(ids_a, np.arange(50))
    np.testing.assert_array_equal(seeds_a, seeds_b)
    assert len(set(seeds_a.tolist())) == 50
    assert not np.array_equal(seeds_a, seeds_c)
    assert ((seeds_a >= 0) & (seeds_a < 2**31 - 1)).all()
    np.testing.assert_array_equal(derive_seeds(5, ids_a), seeds_a)


def test_pending_then_record_round_trip(tmp_path):
    path = tmp_path / "c.h5"
    X = points(6)
    with make_store(path) as store:
        store.add_pending(X[:4], "prior", 1)
        store.add_pending(X[4:], ["validation", "local"], 2)
        store.record(0, ok(40.0, 55.0, masses={1000021: 1500.0, 999: 1.0}))
        store.record(1, SimulationResult.rejected("LSP is a stau"))
        store.record(2, SimulationResult.failed("Pythia crashed"), attempts=3)
        store.record(
            4,
            ok(
                12.0,
                np.nan,
                chi2_analysis={8: {"atlas_b": 7.0}, 13: {"cms_c": 1.0}},
                features=[1.0, 2.0, 3.0, 4.0],
                timings={"spectrum": 0.5, "pythia": 2.0, "hadronisation": 1.0},
            ),
        )

    with CampaignStore.open(path) as store:
        ids, Xp, seeds = store.pending()
        table = store.table()
        assert store.counts() == {"pending": 2, "ok": 2, "rejected": 1, "failed": 1}
        assert store.current_round == 2

    np.testing.assert_array_equal(ids, [3, 5])
    np.testing.assert_array_equal(Xp, X[[3, 5]])
    np.testing.assert_array_equal(seeds, derive_seeds(5, np.array([3, 5])))
    np.testing.assert_array_equal(table["parameters"], X)
    assert table["status"].tolist() == [
        "ok",
        "rejected",
        "failed",
        "pending",
        "ok",
        "pending",
    ]
    assert table["origin"].tolist() == ["prior"] * 4 + ["validation", "local"]
    assert table["round"].tolist() == [1, 1, 1, 1, 2, 2]
    assert table["attempts"].tolist() == [1, 1, 3, 0, 1, 0]
    assert table["reason"].tolist()[1:3] == ["LSP is a stau", "Pythia crashed"]
    np.testing.assert_array_equal(table["chi2"][0], [40.0, 55.0])
    assert np.isnan(table["chi2"][[1, 2, 3, 5]]).all()
    assert table["masses"][0, 0] == 1500.0 and np.isnan(table["masses"][0, 1:]).all()
    np.testing.assert_array_equal(table["chi2_analysis"][8][4], [np.nan, 7.0])
    np.testing.assert_array_equal(table["chi2_analysis"][13][4], [1.0])
    np.testing.assert_array_equal(table["features"][4], [1.0, 2.0, 3.0, 4.0])
    timings = dict(
        zip(("spectrum", "other"), table["timings"][4][[0, -1]], strict=True)
    )
    assert timings == {"spectrum": 0.5, "other": 3.0}


def test_datasets_by_origin_and_energy(tmp_path):
    path = tmp_path / "c.h5"
    X = points(5)
    with make_store(path) as store:
        store.add_pending(X, ["validation", "prior", "local", "prior", "validation"], 0)
        for i, (c8, c13) in enumerate([(10, 50), (41, 60), (80, np.nan), (99, 97)]):
            store.record(i, ok(c8, c13, features=[i, i, i, i]))

    with CampaignStore.open(path) as store:
        Xv, yv = store.validation_set(8)
        Xt, yt = store.training_set(13)
        Xl, yl = store.dataset(8, origins=["local"])
        F, _ = store.dataset(8, inputs="features")
        counts = store.origin_region_counts(8, ChiSquareRegions.paper(8))
        with pytest.raises(StoreError, match="no energy 7 TeV"):
            store.dataset(7)

    np.testing.assert_array_equal(Xv, X[[0]])
    assert yv.tolist() == [10.0]
    np.testing.assert_array_equal(Xt, X[[1, 3]])  # point 2 has no 13 TeV chi2
    assert yt.tolist() == [60.0, 97.0]
    np.testing.assert_array_equal(Xl, X[[2]])
    assert yl.tolist() == [80.0]
    np.testing.assert_array_equal(F[:, 0], [0, 1, 2, 3])
    assert counts == {
        "validation": {"I": 1, "zero": 0, "II": 0, "III": 0, "cap": 0},
        "prior": {"I": 0, "zero": 1, "II": 0, "III": 0, "cap": 1},
        "local": {"I": 0, "zero": 0, "II": 0, "III": 1, "cap": 0},
    }


def test_rerecord_overwrites(tmp_path):
    path = tmp_path / "c.h5"
    with make_store(path) as store:
        store.add_pending(points(1), "prior", 0)
        store.record(0, SimulationResult.failed("timeout"))
        store.record(0, ok(20.0, 30.0), attempts=2)

    with CampaignStore.open(path) as store:
        table = store.table()
    assert table["status"].tolist() == ["ok"]
    assert table["reason"].tolist() == [""]
    assert table["attempts"].tolist() == [2]


def test_long_reason_is_truncated_with_marker(tmp_path):
    path = tmp_path / "c.h5"
    reason = "é" * 2000  # two bytes each in UTF-8
    with make_store(path) as store:
        store.add_pending(points(1), "prior", 0)
        store.record(0, SimulationResult.failed(reason))

    with CampaignStore.open(path) as store:
        stored = store.table()["reason"][0]
    assert stored.endswith("[...truncated]")
    assert reason.startswith(stored.removesuffix(" [...truncated]"))
    assert 1000 < len(stored.encode()) <= 1024


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (lambda s: s.add_pending(np.zeros((1, 19)), "prior", 0), r"shape \(n, 11\)"),
        (lambda s: s.add_pending(np.zeros((1, 11)), "prior", 0), "parameter M2 = 0.0"),
        (lambda s: s.add_pending(points(1), "x" * 33, 0), "longer than 32 bytes"),
        (lambda s: s.add_pending(points(2), ["prior"], 0), "1 origins for 2 points"),
        (lambda s: s.record(5, ok(1.0, 1.0)), "unknown point id 5"),
        (
            lambda s: s.record(0, ok(1.0, 1.0, features=[1.0])),
            "1 features, store expects 4",
        ),
        (lambda s: s.append_metrics({"x": object()}), "not JSON-able"),
        (lambda s: s.record(0, ok(-1.0, 1.0)), r"point 0 has chi2 -1\.0 at 8 TeV"),
        (lambda s: s.record(0, ok(1.0, np.inf)), "point 0 has chi2 inf at 13 TeV"),
    ],
)
def test_bad_writes_are_refused(tmp_path, action, match):
    with make_store(tmp_path / "c.h5") as store:
        store.add_pending(points(1), "prior", 0)
        with pytest.raises(StoreError, match=match):
            action(store)


def test_reader_cannot_write(tmp_path):
    make_store(tmp_path / "c.h5").close()

    with (
        CampaignStore.open(tmp_path / "c.h5") as store,
        pytest.raises(StoreError, match="read-only"),
    ):
        store.add_pending(points(1), "prior", 0)


def test_metrics_and_checkpoints(tmp_path):
    path = tmp_path / "c.h5"
    with make_store(path) as store:
        store.append_metrics({"round": 1, "overall": {"mean_abs_error": 3.5}})
        store.append_metrics(
            {"round": 2, "value": np.float64(np.nan), "list": np.arange(2)}
        )
        store.add_checkpoint(tmp_path / "ckpt" / "round1.pt", 1)
        store.add_checkpoint("/elsewhere/round4.pt", 4)
        assert store.current_round == 4

    with CampaignStore.open(path) as store:
        rows = store.metrics()
        latest = store.latest_checkpoint()
        assert store.current_round == 4
    assert rows[0] == {"round": 1, "overall": {"mean_abs_error": 3.5}}
    assert np.isnan(rows[1]["value"]) and rows[1]["list"] == [0, 1]
    assert latest == Path("/elsewhere/round4.pt")


def test_checkpoints_are_listed_newest_first_with_their_rounds(tmp_path):
    path = tmp_path / "c.h5"
    with make_store(path) as store:
        assert store.checkpoints() == [] and store.latest_checkpoint() is None
        for round_ in (1, 2, 5):
            store.add_checkpoint(tmp_path / f"round{round_}.pt", round_)

    with CampaignStore.open(path) as store:
        listed = store.checkpoints()
        latest = store.latest_checkpoint()
    assert listed == [(tmp_path / f"round{r}.pt", r) for r in (5, 2, 1)]
    assert latest == tmp_path / "round5.pt"


def test_checkpoint_inside_store_directory_is_relative(tmp_path):
    path = tmp_path / "c.h5"
    with make_store(path) as store:
        store.add_checkpoint(tmp_path / "ckpt" / "round1.pt", 1)
    with h5py.File(path, "r", swmr=True) as file:
        assert file["checkpoint_path"][0] == b"ckpt/round1.pt"

    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(path, moved / "c.h5")
    with CampaignStore.open(moved / "c.h5") as store:
        assert store.latest_checkpoint() == moved / "ckpt" / "round1.pt"


def test_second_writer_is_refused(tmp_path):
    path = tmp_path / "c.h5"
    with (
        make_store(path),
        pytest.raises(StoreError, match=r"another writer \(pid \d+\)"),
    ):
        CampaignStore.open(path, mode="a")
    CampaignStore.open(path, mode="a").close()


def test_discard_removes_a_new_empty_store_and_what_its_create_made(tmp_path):
    from scynet_al.store import checkpoint_directory

    path = tmp_path / "c.h5"
    store = make_store(path)
    checkpoint_directory(path).mkdir()  # as a campaign does before its first refit
    assert store.created_here

    store.discard()

    assert list(tmp_path.iterdir()) == []
    # The lock went with the files: a new store can be created at once.
    make_store(path).close()


def test_discard_keeps_what_existed_before_the_create(tmp_path):
    from scynet_al.store import checkpoint_directory

    path = tmp_path / "c.h5"
    lock = tmp_path / "c.h5.lock"
    lock.write_text("")
    checkpoint_directory(path).mkdir()
    (checkpoint_directory(path) / "notes.txt").write_text("kept by hand")

    make_store(path).discard()

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c.h5.checkpoints",
        "c.h5.lock",
    ]
    assert (checkpoint_directory(path) / "notes.txt").read_text() == "kept by hand"


def test_discard_refuses_a_store_with_points_or_not_created_here(tmp_path):
    path = tmp_path / "c.h5"
    with make_store(path) as store:
        store.add_pending(points(1), "prior", 0)
        with pytest.raises(StoreError, match="still without points"):
            store.discard()
    other = tmp_path / "other.h5"
    make_store(other).close()

    with CampaignStore.open(other, mode="a") as store:
        assert not store.created_here
        with pytest.raises(StoreError, match="created by this process"):
            store.discard()

    assert path.exists() and other.exists()
    with CampaignStore.open(path) as store:
        assert len(store) == 1


def test_reopen_for_append_continues_ids(tmp_path):
    path = tmp_path / "c.h5"
    with make_store(path) as store:
        store.add_pending(points(3), "prior", 0)
    with CampaignStore.open(path, mode="a") as store:
        ids, _ = store.add_pending(points(2, seed=1), "local", 1)
        store.record(4, ok(1.0, 2.0))

    assert ids.tolist() == [3, 4]
    with CampaignStore.open(path) as store:
        assert store.counts()["pending"] == 4 and len(store) == 5


# ------------------------------------------------- state machine (hypothesis)

ORIGINS = ["validation", "prior", "density", "local", "uncertainty"]
REASONS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
)
CHI2 = st.one_of(st.floats(0.0, 100.0), st.just(float("nan")))


class StoreMachine(RuleBasedStateMachine):
    """The store against a list of dicts, across close and reopen."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="store-machine-"))
        self.path = self.directory / "m.h5"
        self.store = make_store(self.path)
        self.model: list[dict] = []
        self.metric_rows: list[dict] = []

    @rule(
        n=st.one_of(st.integers(1, 6), st.just(100)),  # the daemon adds rounds of ~100
        origin=st.sampled_from(ORIGINS),
        round_=st.integers(0, 50),
        seed=st.integers(0, 2**32 - 1),
    )
    def add_pending(self, n, origin, round_, seed):
        X = points(n, seed)
        ids, _ = self.store.add_pending(X, origin, round_)

        assert ids.tolist() == list(range(len(self.model), len(self.model) + n))
        for x in X:
            self.model.append(
                dict(x=x, origin=origin, round=round_, status="pending", attempts=0,
                     reason="", chi2=[np.nan, np.nan], f=None)
            )  # fmt: skip

    @precondition(lambda self: self.model)
    @rule(
        data=st.data(),
        status=st.sampled_from(["ok", "rejected", "failed"]),
        chi2=st.tuples(CHI2, CHI2),
        reason=REASONS,
        attempts=st.integers(1, 4),
        with_features=st.booleans(),
    )
    def record(self, data, status, chi2, reason, attempts, with_features):
        i = data.draw(st.integers(0, len(self.model) - 1), label="id")
        features = [float(i), chi2[0], 1.0, 2.0] if with_features else None
        result = SimulationResult(
            status, reason=reason, chi2={8: chi2[0], 13: chi2[1]}, features=features
        )

        self.store.record(i, result, attempts=attempts)

        self.model[i].update(
            status=status, attempts=attempts, reason=reason, chi2=list(chi2), f=features
        )

    @precondition(lambda self: self.model)
    @rule(data=st.data(), chi2=CHI2)
    def record_a_run_of_results(self, data, chi2):
        # Results of a whole batch arriving one after another, as from the workers.
        start = data.draw(st.integers(0, len(self.model) - 1), label="start")
        for i in range(start, min(start + 100, len(self.model))):
            self.store.record(i, SimulationResult("ok", chi2={8: chi2, 13: i % 7}))
            self.model[i].update(
                status="ok", attempts=1, reason="", chi2=[chi2, float(i % 7)], f=None
            )

    @rule(value=st.floats(allow_nan=False, allow_infinity=False))
    def append_metrics(self, value):
        row = {"round": len(self.metric_rows), "value": value}
        self.store.append_metrics(row)
        self.metric_rows.append(row)

    @rule()
    def reopen(self):
        self.store.close()
        self.compare(CampaignStore.open(self.path, mode="r"))
        self.store = CampaignStore.open(self.path, mode="a")

    @invariant()
    def counts_agree(self):
        expected = {s: 0 for s in ("pending", "ok", "rejected", "failed")}
        for row in self.model:
            expected[row["status"]] += 1
        assert self.store.counts() == expected

    def compare(self, reader: CampaignStore) -> None:
        with reader:
            table = reader.table()
            metrics = reader.metrics()
        n = len(self.model)
        assert metrics == self.metric_rows
        np.testing.assert_array_equal(table["id"], np.arange(n))
        np.testing.assert_array_equal(table["seed"], derive_seeds(5, np.arange(n)))
        for i, row in enumerate(self.model):
            np.testing.assert_array_equal(table["parameters"][i], row["x"])
            assert table["origin"][i] == row["origin"]
            assert table["round"][i] == row["round"]
            assert table["status"][i] == row["status"]
            assert table["attempts"][i] == row["attempts"]
            assert table["reason"][i] == row["reason"]
            np.testing.assert_array_equal(table["chi2"][i], row["chi2"])
            expected_f = row["f"] if row["f"] is not None else [np.nan] * 4
            np.testing.assert_array_equal(table["features"][i], expected_f)

    def teardown(self):
        self.store.close()
        try:
            self.compare(CampaignStore.open(self.path, mode="r"))
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(
    max_examples=12,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# ------------------------------------------------------------------- volume


@pytest.mark.parametrize(
    "n_points",
    [
        pytest.param(1_000, id="1e3"),
        pytest.param(
            100_000, id="1e5", marks=[pytest.mark.slow, pytest.mark.timeout(3600)]
        ),
    ],
)
def test_many_points_in_batches_survive_reopen(tmp_path, n_points):
    path = tmp_path / "big.h5"
    X = points(n_points, seed=3)
    with make_store(path) as store:
        for start in range(0, n_points, 100):
            store.add_pending(X[start : start + 100], "prior", start // 100)
        for i in range(n_points):
            store.record(i, ok(float(i % 100), float(i % 97), features=[i, 0, 0, 0]))

    with CampaignStore.open(path) as store:
        table = store.table()
        assert store.counts() == {
            "pending": 0,
            "ok": n_points,
            "rejected": 0,
            "failed": 0,
        }
    ids = np.arange(n_points)
    np.testing.assert_array_equal(table["id"], ids)
    np.testing.assert_array_equal(table["parameters"], X)
    np.testing.assert_array_equal(table["chi2"][:, 0], ids % 100)
    np.testing.assert_array_equal(table["chi2"][:, 1], ids % 97)
    np.testing.assert_array_equal(table["features"][:, 0], ids)
    np.testing.assert_array_equal(table["round"], ids // 100)


# ------------------------------------------------------ real processes


def start_writer(
    path: Path, n_points: int, batch: int, *, stdout: int = subprocess.DEVNULL
) -> subprocess.Popen:
    """The writer of tests/store_writer.py in its own process; stderr to a file."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    command = [sys.executable, "-m", "tests.store_writer", str(path)]
    with path.with_suffix(".stderr").open("w") as stderr:
        return subprocess.Popen(
            [*command, str(n_points), str(batch)],
            cwd=REPO_ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
            text=True,
        )


def writer_errors(path: Path) -> str:
    return path.with_suffix(".stderr").read_text()


def check_whole_rows(table: dict, X: np.ndarray) -> int:
    """Assert that every visible row is complete; return the number of ok rows."""
    ids = table["id"]
    np.testing.assert_array_equal(ids, np.arange(ids.size))
    np.testing.assert_array_equal(table["parameters"], X[: ids.size])
    assert set(table["status"].tolist()) <= {"pending", "ok"}
    done = table["status"] == "ok"
    # result_for() in tests/store_writer.py: every number derives from the id.
    for point_id in ids[done][:: max(1, int(done.sum()) // 20)]:
        expected = result_for(int(point_id))
        assert table["chi2"][point_id, 0] == expected.chi2[13]
        np.testing.assert_array_equal(table["features"][point_id], expected.features)
    done_ids = ids[done].astype(float)
    np.testing.assert_array_equal(table["chi2"][done, 0], done_ids % 100 + 0.5)
    np.testing.assert_array_equal(
        table["features"][done],
        done_ids[:, None] + np.arange(table["features"].shape[1]),
    )
    np.testing.assert_array_equal(table["masses"][done, 0], done_ids)
    np.testing.assert_array_equal(
        table["chi2_analysis"][13][done], np.stack([done_ids, -done_ids], axis=1)
    )
    assert np.isnan(table["chi2"][~done]).all()
    return int(done.sum())


def wait_for_file(path: Path, writer: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert writer.poll() is None, writer_errors(path)
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_reader_process_sees_whole_rows_while_writer_appends(tmp_path):
    path = tmp_path / "live.h5"
    n_points = 1000
    X = expected_points(n_points)
    writer = start_writer(path, n_points, 50)
    polls, seen, last_ok = 0, set(), 0
    try:
        wait_for_file(path, writer)
        reader = CampaignStore.open(path)
        while writer.poll() is None:
            n_ok = check_whole_rows(reader.table(), X)
            assert n_ok >= last_ok
            last_ok, polls = n_ok, polls + 1
            seen.add(n_ok)
            time.sleep(0.02)  # leave the shared cores to the writer
            if polls % 5 == 0:  # a fresh reader now and then
                reader.close()
                reader = CampaignStore.open(path)
        reader.close()
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == 0, writer_errors(path)
    assert len(seen) >= 3  # the reader did watch the store grow
    with CampaignStore.open(path) as reader:
        assert check_whole_rows(reader.table(), X) == n_points


def test_kill_minus_nine_loses_nothing_that_returned(tmp_path, caplog):
    path = tmp_path / "killed.h5"
    X = expected_points(100_000)
    writer = start_writer(path, 100_000, 100, stdout=subprocess.PIPE)
    returned: list[int] = []
    try:
        for line in writer.stdout:
            if line.startswith("recorded"):
                returned.append(int(line.split()[1]))
            if len(returned) >= 400:
                break
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        rest = writer.stdout.read()
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
    returned += [
        int(line.split()[1])
        for line in rest.splitlines()
        if line.startswith("recorded")
    ]

    with CampaignStore.open(path) as reader:  # readers open a killed store as it is
        check_whole_rows(reader.table(), X)
    with caplog.at_level(logging.WARNING, logger="scynet_al.store"):
        store = CampaignStore.open(path, mode="a")
    with store:
        table = store.table()
        ids, _ = store.add_pending(X[-1:], "prior", 999)
        store.record(int(ids[0]), SimulationResult.failed("after recovery"))

    assert "did not close the store" in caplog.text
    ok_ids = set(table["id"][table["status"] == "ok"].tolist())
    assert set(returned) <= ok_ids
    assert check_whole_rows(table, X) == len(ok_ids)
    with CampaignStore.open(path) as reader:
        assert reader.counts()["failed"] == 1
    assert not list(tmp_path.glob(".*recovering*"))


def test_two_readers_in_one_process_share_a_handle(tmp_path):
    path = tmp_path / "c.h5"
    with make_store(path) as store:
        store.add_pending(points(3), "prior", 0)

    first = CampaignStore.open(path)
    with CampaignStore.open(path) as second:
        assert second.counts()["pending"] == 3
    assert first.counts()["pending"] == 3  # closing the second left the first usable
    first.close()


def test_writer_resumes_while_a_reader_process_holds_the_store(tmp_path):
    path = tmp_path / "c.h5"
    with make_store(path) as store:
        store.add_pending(points(2), "prior", 0)
    code = (
        "import sys, time\nfrom scynet_al.store import CampaignStore\n"
        "with CampaignStore.open(sys.argv[1]) as store:\n"
        "    print(store.counts()['pending'], flush=True)\n    time.sleep(30)\n"
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout.readline().strip() == "2"
        with CampaignStore.open(path, mode="a") as store:
            store.record(0, ok(1.0, 2.0))
    finally:
        reader.kill()
        reader.wait()
        reader.stdout.close()

    with CampaignStore.open(path) as store:
        assert store.counts() == {"pending": 1, "ok": 1, "rejected": 0, "failed": 0}


def test_checkpoint_found_after_the_store_and_its_directory_are_renamed(tmp_path):
    from scynet_al.store import checkpoint_directory

    old = tmp_path / "old.h5"
    store = CampaignStore.create(
        old, config_text="campaign: {seed: 1}\n", space=pmssm11(), energies=[13],
        analyses={13: ["a"]},
    )  # fmt: skip
    with store:
        checkpoint_directory(old).mkdir()
        (checkpoint_directory(old) / "round-00001.ckpt").write_bytes(b"weights")
        store.add_checkpoint(checkpoint_directory(old) / "round-00001.ckpt", 1)

    new = tmp_path / "moved" / "new.h5"
    new.parent.mkdir()
    old.rename(new)
    checkpoint_directory(old).rename(checkpoint_directory(new))

    with CampaignStore.open(new, mode="r") as reader:
        found = reader.latest_checkpoint()
    assert found == checkpoint_directory(new) / "round-00001.ckpt"
    assert found.read_bytes() == b"weights"


def test_reasons_are_counted_most_frequent_first(tmp_path):
    with make_store(tmp_path / "c.h5") as store:
        store.add_pending(points(7), "prior", 1)
        for i, why in enumerate(["timeout", "no A", "no A", "timeout", "no A"]):
            store.record(i, SimulationResult.failed(why))
        store.record(5, SimulationResult.rejected("LSP is a stau"))
        assert store.reasons("failed") == [("no A", 3), ("timeout", 2)]
        assert store.reasons("rejected") == [("LSP is a stau", 1)]
        assert store.reasons("ok") == []
        with pytest.raises(StoreError, match="unknown status 'lost'"):
            store.reasons("lost")
    with CampaignStore.open(tmp_path / "c.h5") as reader:
        assert reader.reasons("failed") == [("no A", 3), ("timeout", 2)]
