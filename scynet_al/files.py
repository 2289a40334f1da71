"""File checks and writes shared by the commands and writers: an output that is an
input or a directory, files written whole or not at all, and failed writes as one
line that names the file and, if so, a full disk."""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from scynet_al.errors import FileWriteError, InputError

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Below this many free bytes a file system counts as nearly full: room for less
#: than a dozen checkpoints of a five-member direct ensemble (5.5 MB each).
NEARLY_FULL_BYTES = 64 * 2**20

#: Bytes gathered from the chunks of :func:`write_atomically` before one write.
WRITE_BLOCK = 2**20

#: What torch's C++ checks put before their message: ``[enforce fail at x.cc:672] . ``.
_TORCH_CHECK = re.compile(r"^\[enforce fail at [^\]]*\]\s*\.?\s*")


def write_failure(path: str | Path, what: str, exc: OSError) -> FileWriteError:
    """The error to raise when writing ``path`` failed with ``exc``.

    The message names ``path`` (never the temporary file a write goes through)
    and, when the file system holding it has less than :data:`NEARLY_FULL_BYTES`
    left, says so with the free bytes.

    Args:
        path: The file the user or the campaign asked for.
        what: What the file is, for the message (``"checkpoint"``).
        exc: The failure of the write, rename or directory creation.
    """
    path = Path(path)
    reason = exc.strerror or str(exc) or type(exc).__name__
    free = free_bytes(path.parent)
    if free is not None and free < NEARLY_FULL_BYTES:
        reason += (
            f"; the file system holding {path.parent} is nearly full"
            f" ({free:,} bytes free)"
        )
    return FileWriteError(f"cannot write {what} {path}: {reason}")


def torch_writer_failure(exc: RuntimeError) -> OSError:
    """A RuntimeError of torch's file writer as the OSError it stands for.

    Torch's archive writer reports a file it cannot open (``open file failed with
    strerror: No such file or directory``) or a write cut short by a full disk
    (``unexpected pos 2226432 vs 2226368``: fewer bytes reached the file than were
    handed over) as RuntimeError with the C++ location in front; this keeps the
    system's reason, else torch's own words.
    """
    lines = _TORCH_CHECK.sub("", str(exc).strip()).splitlines() or [""]
    text = lines[0].strip().rstrip(".")
    match = re.search(r"strerror: (.+)$", text)
    if match:
        return OSError(match[1])
    if text.startswith("unexpected pos"):
        return OSError(f"the write stopped short (torch: {text})")
    return OSError(text or "torch's file writer failed")


def free_bytes(directory: str | Path) -> int | None:
    """Bytes free on the file system of ``directory`` or of its nearest existing
    parent; None when it cannot be asked or has no size (``/proc``)."""
    for candidate in (Path(directory), *Path(directory).absolute().parents):
        try:
            usage = shutil.disk_usage(candidate)
        except OSError:
            continue
        return usage.free if usage.total > 0 else None
    return None


def check_not_input(out: str | Path, *inputs: str | Path) -> None:
    """Refuse an output file that is one of the inputs (the same file, whatever
    the path that names it), which writing would destroy.

    Raises:
        InputError: Names the output and the input it is.
    """
    for source in inputs:
        if (
            Path(out).exists()
            and Path(source).exists()
            and os.path.samefile(out, source)
        ):
            raise InputError(
                f"--out {out} is the input file {source}; write to another file"
            )


def check_output_file(out: str | Path) -> None:
    """Refuse an ``--out`` that names an existing directory.

    Raises:
        InputError: Names the option and the directory.
    """
    if Path(out).is_dir():
        raise InputError(f"--out {out} is a directory; give a file name")


def create_parent(path: str | Path, what: str) -> None:
    """Create the directory of ``path``, and its parents, where missing.

    Args:
        path: The file to be written.
        what: What the file is, for the message (``"pt2 model"``).

    Raises:
        FileWriteError: A directory cannot be created (a file in its place, no
            permission); names ``path`` and the directory.
    """
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = exc.filename or parent
        reason = OSError(f"cannot create directory {where}: {exc.strerror or exc}")
        raise write_failure(path, what, reason) from exc


def write_atomically(path: str | Path, what: str, chunks: Iterable[bytes]) -> Path:
    """Write ``chunks`` to ``path`` whole or not at all.

    The bytes go to a temporary file ``.<name>.<random>.tmp`` beside ``path``,
    which is synced to disk and renamed onto ``path`` once every chunk is written.
    A failed write (full disk, no permission) or an exception of ``chunks``
    itself removes the temporary file: no partial output is left, and a file
    already at ``path`` stays as it was. Chunks are written as they come, so a
    generator that computes them (one simulation per row) is never held whole
    in memory; its own exceptions pass through unchanged.

    Args:
        path: The file to write; its directory must exist.
        what: What the file is, for the message (``"predictions CSV"``).
        chunks: The contents in order.

    Returns:
        ``path`` as a Path.

    Raises:
        FileWriteError: Creating, writing, syncing or renaming the temporary file
            failed; names ``path``, never the temporary file.
    """
    path = Path(path)
    fd, tmp = _attempt(path, what, new_temporary, path)
    try:
        _write_blocks(fd, chunks, path, what)
        _attempt(path, what, os.replace, tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    logger.debug("%s written to %s", what, path)
    return path


#: Flags of the temporary file: a new file (never one in the way), write only.
_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def new_temporary(path: str | Path) -> tuple[int, Path]:
    """A new temporary file ``.<name>.<random>.tmp`` beside ``path``, open for
    writing, and its path.

    It gets the permissions the umask leaves (as ``open`` gives), not the
    owner-only ones of ``tempfile.mkstemp``: renamed onto ``path``, it is as
    readable as any other file the user writes.

    Raises:
        OSError: The file cannot be created.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    return os.open(tmp, _CREATE_NEW, 0o666), tmp


def _write_blocks(fd: int, chunks: Iterable[bytes], path: Path, what: str) -> None:
    """Every chunk to ``fd``, then sync it; ``fd`` is closed in any case."""
    try:
        for block in _blocks(chunks):
            _attempt(path, what, _write_all, fd, block)
        _attempt(path, what, os.fsync, fd)
    finally:
        os.close(fd)


def _blocks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks joined into blocks of at least :data:`WRITE_BLOCK` bytes (the
    last block may be shorter), so that small rows cost few system calls."""
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= WRITE_BLOCK:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


def _write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to ``fd``; a write cut short (a filling disk) is continued
    until the system refuses with an OSError."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _attempt(path: Path, what: str, call: Callable[..., _T], *args: object) -> _T:
    """``call(*args)``, an OSError of which becomes :func:`write_failure`."""
    try:
        return call(*args)
    except OSError as exc:
        raise write_failure(path, what, exc) from exc


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX); a no-op where directories
    cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
