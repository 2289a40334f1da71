"""Tests of ``scynet_al.files``: whole-or-nothing writes, links, streams, kept rows
on interruption, the full-disk message and the refusal of campaign files."""

from __future__ import annotations

import errno
import os
import pty
import shutil
import stat
import threading
import tty
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scynet_al import files
from scynet_al.errors import FileWriteError, InputError
from scynet_al.files import (
    WriteInterrupted,
    campaign_file_kind,
    check_not_campaign_file,
    write_atomically,
)

OLDER = b"an older file\n"
ROWS = [b"row 1\n", b"row 2\n", b"row 3\n"]


def names(directory: Path) -> list[str]:
    """The entries of ``directory``, hidden temporary files included, sorted."""
    return sorted(p.name for p in directory.iterdir())


def interrupted_after(chunks: list[bytes]) -> Iterator[bytes]:
    """``chunks``, then the KeyboardInterrupt of a Ctrl-C while the next is made."""
    yield from chunks
    raise KeyboardInterrupt


# ------------------------------------------------------------------ links


def test_a_link_is_followed_and_stays_a_link(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    target.write_bytes(OLDER)
    link = tmp_path / "latest.csv"
    link.symlink_to(target.name)

    written = write_atomically(link, "predictions CSV", ROWS)

    assert written == target
    assert link.is_symlink() and os.readlink(link) == "results.csv"
    assert target.read_bytes() == b"row 1\nrow 2\nrow 3\n"
    assert names(tmp_path) == ["latest.csv", "results.csv"]


def test_the_temporary_file_goes_beside_the_target_of_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "links").mkdir()
    target = tmp_path / "data" / "out.jsonl"
    target.write_bytes(OLDER)
    link = tmp_path / "links" / "out.jsonl"
    link.symlink_to(Path("..") / "data" / "out.jsonl")
    temporaries = []
    create = files.new_temporary

    def spy(path):
        fd, tmp = create(path)
        temporaries.append(tmp.parent)
        return fd, tmp

    monkeypatch.setattr(files, "new_temporary", spy)

    write_atomically(link, "simulation results", [b"new\n"])

    assert temporaries == [tmp_path / "data"]
    assert target.read_bytes() == b"new\n"
    assert names(tmp_path / "links") == ["out.jsonl"]
    assert names(tmp_path / "data") == ["out.jsonl"]


def test_a_dangling_link_gets_its_target_created(tmp_path: Path) -> None:
    link = tmp_path / "out.csv"
    link.symlink_to("made.csv")

    write_atomically(link, "predictions CSV", [b"a,b\n"])

    assert link.is_symlink()
    assert (tmp_path / "made.csv").read_bytes() == b"a,b\n"


def test_a_loop_of_links_is_one_error_and_stays(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.symlink_to(b.name)
    b.symlink_to(a.name)

    with pytest.raises(FileWriteError) as info:
        write_atomically(a, "predictions CSV", ROWS)

    assert str(info.value) == (
        f"cannot write predictions CSV {a}: Too many levels of symbolic links"
    )
    assert os.readlink(a) == "b.csv" and os.readlink(b) == "a.csv"


# ---------------------------------------------------------------- streams


def test_a_fifo_is_written_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(
        target=lambda: received.append(fifo.read_bytes()), daemon=True
    )
    reader.start()

    def no_temporary(path):
        raise AssertionError(f"a temporary file beside {path}")

    monkeypatch.setattr(files, "new_temporary", no_temporary)

    write_atomically(fifo, "simulation results", ROWS)

    reader.join(timeout=30)
    assert received == [b"row 1\nrow 2\nrow 3\n"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert names(tmp_path) == ["rows.fifo"]


def test_a_terminal_is_written_in_place(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    try:
        tty.setraw(slave)  # bytes through as written, no \r added to \n
        terminal = Path(os.ttyname(slave))

        write_atomically(terminal, "predictions CSV", ROWS)

        assert stat.S_ISCHR(terminal.stat().st_mode)
        assert os.read(master, 1024) == b"row 1\nrow 2\nrow 3\n"
    finally:
        os.close(slave)
        os.close(master)


def test_a_stream_that_is_interrupted_keeps_what_it_was_sent(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    try:
        tty.setraw(slave)
        terminal = Path(os.ttyname(slave))

        with pytest.raises(WriteInterrupted) as info:
            write_atomically(
                terminal, "rows", interrupted_after(ROWS[:2]), keep_on_interrupt=True
            )

        assert info.value.n_chunks == 2
        assert os.read(master, 1024) == b"row 1\nrow 2\n"
    finally:
        os.close(slave)
        os.close(master)


# ----------------------------------------------------------- interruption


def test_an_interruption_keeps_the_chunks_before_it(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(OLDER)

    with pytest.raises(WriteInterrupted) as info:
        write_atomically(
            out, "rows", interrupted_after(ROWS[:2]), keep_on_interrupt=True
        )

    assert (info.value.path, info.value.n_chunks) == (out, 2)
    assert isinstance(info.value, KeyboardInterrupt)
    assert out.read_bytes() == b"row 1\nrow 2\n"
    assert names(tmp_path) == ["out.jsonl"]


def test_an_interruption_before_any_chunk_leaves_an_empty_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(OLDER)

    with pytest.raises(WriteInterrupted) as info:
        write_atomically(out, "rows", interrupted_after([]), keep_on_interrupt=True)

    assert info.value.n_chunks == 0
    assert out.read_bytes() == b""
    assert names(tmp_path) == ["out.jsonl"]


def test_without_keeping_an_interruption_keeps_the_older_file(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_bytes(OLDER)

    with pytest.raises(KeyboardInterrupt) as info:
        write_atomically(out, "rows", interrupted_after(ROWS[:2]))

    assert not isinstance(info.value, WriteInterrupted)
    assert out.read_bytes() == OLDER
    assert names(tmp_path) == ["out.csv"]


@pytest.mark.parametrize("written", ["half", "all"])
def test_an_interruption_inside_a_write_leaves_whole_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: str
) -> None:
    # Blocks of 4 bytes: each 6-byte row is written on its own. The first write
    # is interrupted after half of its row, or after all of it but before the
    # writer learns so; the row is then in the file once, whole.
    monkeypatch.setattr(files, "WRITE_BLOCK", 4)
    calls = []
    write_all = files._write_all

    def interrupted_once(fd: int, data: bytes) -> None:
        calls.append(data)
        if len(calls) > 1:
            return write_all(fd, data)
        os.write(fd, data if written == "all" else data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(files, "_write_all", interrupted_once)
    out = tmp_path / "out.jsonl"

    with pytest.raises(WriteInterrupted) as info:
        write_atomically(out, "rows", iter(ROWS), keep_on_interrupt=True)

    assert info.value.n_chunks == 1
    assert out.read_bytes() == b"row 1\n"
    assert names(tmp_path) == ["out.jsonl"]


# -------------------------------------------------------------- full disk

#: Bytes of the pretend file system of :func:`small_disk`.
CAPACITY = 1_000_000


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system of :data:`CAPACITY` bytes holding only the files of
    ``tmp_path``, hidden ones included; every write stops halfway with ENOSPC."""

    def usage(path):
        used = sum(p.lstat().st_size for p in tmp_path.iterdir())
        return shutil._ntuple_diskusage(CAPACITY, used, CAPACITY - used)

    def write_until_full(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(shutil, "disk_usage", usage)
    monkeypatch.setattr(files, "_write_all", write_until_full)


@pytest.mark.parametrize("keep_on_interrupt", [False, True])
def test_a_full_disk_is_measured_without_the_temporary_file(
    tmp_path: Path, small_disk: None, keep_on_interrupt: bool
) -> None:
    out = tmp_path / "out.csv"
    out.write_bytes(b"x" * 100)

    with pytest.raises(FileWriteError) as info:
        write_atomically(
            out, "predictions CSV", [b"y" * 10_000], keep_on_interrupt=keep_on_interrupt
        )

    # Free: 1,000,000 - 100 of the older file; the 5,000 bytes of the temporary
    # file that reached the disk are gone again.
    assert str(info.value) == (
        f"cannot write predictions CSV {out}: No space left on device; the file"
        f" system holding {tmp_path} is nearly full (999,900 bytes free)"
    )
    assert out.read_bytes() == b"x" * 100
    assert names(tmp_path) == ["out.csv"]


def test_an_error_of_the_chunks_passes_through_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    def failing() -> Iterator[bytes]:
        yield b"row 1\n"
        raise FileNotFoundError(errno.ENOENT, "no scratch directory", "/scratch")

    out = tmp_path / "out.jsonl"

    with pytest.raises(FileNotFoundError, match="no scratch directory"):
        write_atomically(out, "rows", failing(), keep_on_interrupt=True)

    assert names(tmp_path) == []


# ------------------------------------------------------- campaign files


def _zip(path: Path, entries: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in entries:
            archive.writestr(f"top/{name}", b"")
    return path


def _onnx(path: Path, props: dict[str, str]) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1])
    y = helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1])
    graph = helper.make_graph([helper.make_node("Neg", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph)
    helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path


#: File makers and what the refusal calls the file they make.
CAMPAIGN_FILES = {
    "store": (lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(56)), "a campaign store"),
    "checkpoint": (lambda p: _zip(p, ["data.pkl", "version"]), "a checkpoint"),
    "pt2": (lambda p: _zip(p, ["archive_format", "data.pkl"]), "an exported pt2 model"),
    "zip": (lambda p: _zip(p, ["notes.txt"]), "a zip archive"),
    "onnx": (lambda p: _onnx(p, {"scynet_al": "{}"}), "an exported onnx model"),
    "foreign onnx": (lambda p: _onnx(p, {}), "an ONNX model"),
}  # fmt: skip


@pytest.mark.parametrize("which", sorted(CAMPAIGN_FILES))
def test_a_campaign_file_is_refused_as_output(tmp_path: Path, which: str) -> None:
    make, called = CAMPAIGN_FILES[which]
    victim = tmp_path / "out.csv"  # the name says nothing; the content does
    make(victim)
    before = victim.read_bytes()
    link = tmp_path / "link.csv"
    link.symlink_to(victim.name)

    for out in (victim, link):
        with pytest.raises(InputError) as info:
            check_not_campaign_file(out)
        assert str(info.value) == (
            f"--out {out} is {called}, which writing would destroy; give another"
            " file name"
        )
    assert victim.read_bytes() == before


@pytest.mark.parametrize(
    "text", ["M1,M2\n1,2\n", '{"row": 1}\n', "", "PK is a chemist's note\n"]
)
def test_a_csv_or_jsonl_may_be_written_over(tmp_path: Path, text: str) -> None:
    out = tmp_path / "out.csv"
    out.write_text(text)

    check_not_campaign_file(out)

    assert campaign_file_kind(out) is None


def test_a_fifo_or_missing_file_is_not_opened_to_be_told(tmp_path: Path) -> None:
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)

    check_not_campaign_file(fifo)  # opening it to read would wait for a writer
    check_not_campaign_file(tmp_path / "absent.csv")
