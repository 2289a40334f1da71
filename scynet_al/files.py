"""File checks shared by the commands and writers: an output that is an input, and
failed writes as one line that names the file and, if so, a full disk."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from scynet_al.errors import FileWriteError, InputError

#: Below this many free bytes a file system counts as nearly full: room for less
#: than a dozen checkpoints of a five-member direct ensemble (5.5 MB each).
NEARLY_FULL_BYTES = 64 * 2**20

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
