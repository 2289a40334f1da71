"""File checks and writes shared by the commands and writers: an output that is an
input, a directory or a file of a campaign, files written whole or not at all (or
kept as far as written when the user interrupts), and failed writes as one line
that names the file and, if so, a full disk."""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import stat
import zipfile
from collections.abc import Callable, Iterable
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

#: The 8 bytes an HDF5 file (a campaign store) starts with.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: Key of the ``metadata_props`` entry that holds the metadata JSON of an ONNX model
#: written by ``scynet-al export``.
ONNX_META_KEY = "scynet_al"


def write_failure(path: str | Path, what: str, exc: OSError) -> FileWriteError:
    """The error to raise when writing ``path`` failed with ``exc``.

    The message names ``path`` (never the temporary file a write goes through)
    and, when the file system holding it has less than :data:`NEARLY_FULL_BYTES`
    left, says so with the free bytes. Those are measured now: call this once the
    temporary file of the write is removed, or its bytes count as taken.

    Args:
        path: The file the user or the campaign asked for.
        what: What the file is, for the message (``"checkpoint"``).
        exc: The failure of the write, rename or directory creation.
    """
    path = Path(path)
    reason = _reason(exc)
    free = free_bytes(path.parent)
    if free is not None and free < NEARLY_FULL_BYTES:
        reason += (
            f"; the file system holding {path.parent} is nearly full"
            f" ({free:,} bytes free)"
        )
    return FileWriteError(f"cannot write {what} {path}: {reason}")


def _reason(exc: OSError) -> str:
    """The system's words for ``exc`` (``No space left on device``)."""
    return exc.strerror or str(exc) or type(exc).__name__


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


def check_not_campaign_file(out: str | Path) -> None:
    """Refuse an ``--out`` that is an existing campaign store, checkpoint or model
    file (told by content, whatever its name), which writing would destroy.

    A link is followed; a file that cannot be read is left to the write.

    Raises:
        InputError: Names the option, the file and what it is.
    """
    path = Path(out)
    if not path.is_file():
        return
    try:
        kind = campaign_file_kind(path)
    except OSError as exc:
        logger.debug("cannot tell what %s is (%s); it is written over", path, exc)
        return
    if kind is not None:
        raise InputError(
            f"--out {out} is {_with_article(kind)}, which writing would destroy;"
            " give another file name"
        )


def campaign_file_kind(path: str | Path) -> str | None:
    """What a file of a campaign or of ``export`` is, told by its content.

    Returns:
        ``"campaign store"``, ``"checkpoint"``, ``"exported pt2 model"``,
        ``"exported onnx model"``, ``"ONNX model"`` (of another program) or
        ``"zip archive"``; None for any other file (CSV, JSON lines, text).

    Raises:
        OSError: The file cannot be read.
    """
    path = Path(path)
    kind = training_file_kind(path)
    exported = exported_format(path) if kind is None else None
    if kind is not None or exported is not None:
        return kind or f"exported {exported} model"
    if zipfile.is_zipfile(path):
        return "zip archive"
    return "ONNX model" if onnx_model(path) is not None else None


def training_file_kind(path: str | Path) -> str | None:
    """``"campaign store"`` or ``"checkpoint"`` for the files of a campaign, else
    None: an HDF5 file (its 8-byte signature), or a ``torch.save`` archive (a zip
    with ``data.pkl`` at its top, which an exported program does not have).

    Raises:
        OSError: The file cannot be read.
    """
    with Path(path).open("rb") as handle:
        if handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
            return "campaign store"
    entries = zip_entries(path)
    return (
        "checkpoint"
        if "data.pkl" in entries and "archive_format" not in entries
        else None
    )


def exported_format(path: str | Path) -> str | None:
    """``"pt2"`` or ``"onnx"`` for a model file that ``export`` wrote, else None:
    a zip with ``archive_format`` at its top (torch.export), or an ONNX model
    carrying scynet-al metadata (:data:`ONNX_META_KEY`).

    Raises:
        OSError: The file cannot be read.
    """
    if "archive_format" in zip_entries(path):
        return "pt2"
    model = onnx_model(path)
    keys = set() if model is None else {prop.key for prop in model.metadata_props}
    return "onnx" if ONNX_META_KEY in keys else None


def onnx_model(path: str | Path) -> object | None:
    """The ONNX model (``onnx.ModelProto``, without external data) a file holds,
    or None for another file; onnx is imported only for a file that may be one.

    Raises:
        OSError: The file cannot be read.
    """
    with Path(path).open("rb") as handle:
        # onnx writes the model's first field first: ir_version, tag byte 0x08.
        if handle.read(1) != b"\x08":
            return None
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception:  # protobuf and onnx raise many types for a foreign file
        return None


def zip_entries(path: str | Path) -> set[str]:
    """Names of the entries of a zip file below its one top directory (torch's
    archives put everything under one), or an empty set for another file."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return set()
    return {name.partition("/")[2] for name in names}


def _with_article(noun: str) -> str:
    """``noun`` after ``a`` or ``an`` as its first letter asks (an ONNX model)."""
    return f"{'an' if noun[0].lower() in 'aeiou' else 'a'} {noun}"


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


def write_atomically(
    path: str | Path,
    what: str,
    chunks: Iterable[bytes],
    *,
    keep_on_interrupt: bool = False,
) -> Path:
    """Write ``chunks`` to ``path`` whole or not at all.

    The bytes go to a temporary file ``.<name>.<random>.tmp`` beside ``path``,
    which is synced to disk and renamed onto ``path`` once every chunk is written.
    A failed write (full disk, no permission) or an exception of ``chunks``
    itself removes the temporary file: no partial output is left, and a file
    already at ``path`` stays as it was. Chunks are written as they come, so a
    generator that computes them (one simulation per row) is never held whole
    in memory; its own exceptions pass through unchanged.

    A symbolic link is followed: the file it leads to is replaced (through a
    temporary file beside that file) and the link stays. A FIFO or a character
    device (``/dev/stdout``, a terminal) is written in place, chunk by chunk,
    without a temporary file; opening a FIFO waits for its reader, and what it
    was sent before a failure stays sent.

    Args:
        path: The file to write; its directory must exist (:func:`create_parent`
            makes it).
        what: What the file is, for the message (``"predictions CSV"``).
        chunks: The contents in order.
        keep_on_interrupt: On a KeyboardInterrupt (Ctrl-C, or a signal turned into
            one) while the chunks are computed or written, keep the chunks handed
            over so far: they are written, synced and renamed onto ``path``, then
            :class:`WriteInterrupted` is raised. A second interruption during that
            short commit leaves no partial file, as without this option. On a
            stream a chunk being written when the interruption came may be cut
            short.

    Returns:
        The file written: ``path``, or the target of the link ``path`` is.

    Raises:
        FileWriteError: Creating, writing, syncing or renaming the temporary file
            failed; names the file asked for, never the temporary file.
        WriteInterrupted: Interrupted with ``keep_on_interrupt``; the file holds
            the chunks before the interruption.
    """
    path = Path(path)
    if _is_stream(path):
        return _write_stream(path, what, chunks, keep_on_interrupt=keep_on_interrupt)
    target = _link_target(path, what)
    fd, tmp = _attempt(target, what, new_temporary, target)
    try:
        stop, n_chunks = _write_temporary(fd, chunks, keep_on_interrupt)
        _refusing(os.replace, tmp, target)
    except _SystemCallError as failed:
        # Removed first: its bytes would count as used in the free space named.
        tmp.unlink(missing_ok=True)
        raise write_failure(target, what, failed.error) from failed.error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)
    return _written(target, what, n_chunks, stop)


class WriteInterrupted(KeyboardInterrupt):
    """Raised by :func:`write_atomically` with ``keep_on_interrupt`` in place of the
    KeyboardInterrupt that stopped it, once the chunks before it are in the file.

    A KeyboardInterrupt, not a :class:`~scynet_al.errors.ScynetError`: the user
    stopped the command, nothing went wrong.

    Attributes:
        path: The file written.
        n_chunks: How many chunks it holds.
    """

    def __init__(self, path: Path, n_chunks: int) -> None:
        super().__init__(f"interrupted; {n_chunks} chunks written to {path}")
        self.path = path
        self.n_chunks = n_chunks


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


def _is_stream(path: Path) -> bool:
    """True when ``path`` (or the file its link leads to) is a FIFO or a character
    device, which is written in place: renaming onto it would replace it."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def _link_target(path: Path, what: str) -> Path:
    """The file a write of ``path`` replaces: ``path`` itself, or the end of the
    chain of symbolic links it starts (also when that file does not exist yet).

    Raises:
        FileWriteError: The links run in a loop.
    """
    if not path.is_symlink():
        return path
    try:
        return Path(os.path.realpath(path, strict=True))
    except FileNotFoundError:
        return Path(os.path.realpath(path))
    except OSError as exc:
        raise write_failure(path, what, exc) from exc


def _write_temporary(
    fd: int, chunks: Iterable[bytes], keep_on_interrupt: bool
) -> tuple[KeyboardInterrupt | None, int]:
    """Every chunk to the temporary file ``fd``, then sync it; ``fd`` is closed in
    any case. Returns the interruption kept (else None) and the chunks written."""
    blocks = _Blocks(fd, WRITE_BLOCK, seekable=True)
    try:
        stop = _fill(blocks, chunks, keep_on_interrupt=keep_on_interrupt)
        _refusing(os.fsync, fd)
    finally:
        os.close(fd)
    return stop, blocks.n_chunks


def _write_stream(
    path: Path, what: str, chunks: Iterable[bytes], *, keep_on_interrupt: bool
) -> Path:
    """Every chunk straight into the FIFO or character device ``path``, each as it
    comes (a reader sees the rows as they are computed)."""
    fd = _attempt(path, what, os.open, path, os.O_WRONLY)
    blocks = _Blocks(fd, 1, seekable=False)
    try:
        stop = _fill(blocks, chunks, keep_on_interrupt=keep_on_interrupt)
    except _SystemCallError as failed:
        # No free space to name: a stream has no file system that fills.
        reason = _reason(failed.error)
        raise FileWriteError(f"cannot write {what} {path}: {reason}") from failed.error
    finally:
        os.close(fd)
    return _written(path, what, blocks.n_chunks, stop)


def _written(
    path: Path, what: str, n_chunks: int, stop: KeyboardInterrupt | None
) -> Path:
    """``path`` once its write is done; :class:`WriteInterrupted` when ``stop``
    cut it short."""
    if stop is not None:
        logger.debug("%s: %d chunks kept in %s on interruption", what, n_chunks, path)
        raise WriteInterrupted(path, n_chunks) from stop
    logger.debug("%s written to %s", what, path)
    return path


def _fill(
    blocks: _Blocks, chunks: Iterable[bytes], *, keep_on_interrupt: bool
) -> KeyboardInterrupt | None:
    """Every chunk into ``blocks``, then the last block; the KeyboardInterrupt
    that ended the chunks early when ``keep_on_interrupt``, else None."""
    stop = None
    try:
        for chunk in chunks:
            blocks.add(chunk)
    except KeyboardInterrupt as exc:
        if not keep_on_interrupt:
            raise
        stop = exc
    blocks.flush()
    return stop


class _Blocks:
    """Chunks bound for one open file, gathered into blocks of at least
    ``block_size`` bytes (the last may be shorter), so that small rows cost few
    system calls.

    What reached the file is known after any interruption: a block counts as
    written only once it is written whole, and is written again at its offset
    when an interruption cut it short. A stream cannot seek: its block is taken
    off before it is written and never written twice.
    """

    def __init__(self, fd: int, block_size: int, *, seekable: bool) -> None:
        self.fd = fd
        self.block_size = block_size
        self.seekable = seekable
        self.pending: list[bytes] = []
        self.size = 0
        self.written = 0
        self.n_written = 0

    @property
    def n_chunks(self) -> int:
        """Chunks handed over and not lost: written, or pending for the next block."""
        return self.n_written + len(self.pending)

    def add(self, chunk: bytes) -> None:
        """Take ``chunk``; write the block when it is full."""
        self.pending.append(chunk)
        self.size += len(chunk)
        if self.size >= self.block_size:
            self.flush()

    def flush(self) -> None:
        """Write the pending chunks as one block."""
        if not self.pending:
            return
        data, n_chunks = b"".join(self.pending), len(self.pending)
        if self.seekable:
            _refusing(os.lseek, self.fd, self.written, os.SEEK_SET)
        else:
            self.pending = []
        _refusing(_write_all, self.fd, data)
        # One assignment: an interruption leaves the block either written or not.
        self.written, self.n_written, self.pending, self.size = (
            self.written + len(data), self.n_written + n_chunks, [], 0
        )  # fmt: skip


def _write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to ``fd``; a write cut short (a filling disk) is continued
    until the system refuses with an OSError."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _SystemCallError(Exception):
    """The OSError of a system call of a write, told apart from an OSError that
    the chunks themselves raise (which passes through unchanged)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


def _refusing(call: Callable[..., _T], *args: object) -> _T:
    """``call(*args)``, an OSError of which becomes :class:`_SystemCallError`."""
    try:
        return call(*args)
    except OSError as exc:
        raise _SystemCallError(exc) from exc


def _attempt(path: Path, what: str, call: Callable[..., _T], *args: object) -> _T:
    """``call(*args)``, an OSError of which becomes :func:`write_failure`."""
    try:
        return call(*args)
    except OSError as exc:
        raise write_failure(path, what, exc) from exc


def fsync_directory(directory: Path) -> None:
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
