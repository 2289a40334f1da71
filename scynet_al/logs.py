"""Logging set-up for the command-line interface (the library never configures it)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

#: Format of every log line: time (UTC), level, logger name, message.
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

_HANDLER_MARK = "_scynet_al_cli"


class TerminalHandler(logging.StreamHandler):
    """A stream handler that drops its records once the terminal has gone away.

    When the terminal closes or an SSH session drops, a running campaign gets
    SIGHUP and stops gracefully, but every write to the terminal now fails (EIO on
    a hung-up tty). The drain must go on regardless, so a record the stream
    refuses with an ``OSError`` is dropped without the usual "Logging error"
    report, which would only fail the same way. Records still reach any other
    handler, such as a log file.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        """Drop the record when the stream refused it; report any other error."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handleError(record)


def log_level(verbose: int = 0, level: str | None = None) -> int:
    """The level chosen on the command line.

    Args:
        verbose: Count of ``-v`` flags (one: DEBUG).
        level: An explicit level name (``--log-level``), which wins.

    Returns:
        A :mod:`logging` level; INFO by default.

    Raises:
        ValueError: ``level`` is not a level name.
    """
    if level is not None:
        value = logging.getLevelName(level.upper())
        if not isinstance(value, int):
            raise ValueError(f"unknown log level {level!r}")
        return value
    return logging.DEBUG if verbose > 0 else logging.INFO


def configure_logging(level: int, *, log_file: Path | None = None) -> None:
    """Send log records of ``level`` and above to stderr (and to ``log_file``).

    Replaces handlers installed by an earlier call, so calling it twice does not
    double every line. Third-party loggers stay at WARNING unless DEBUG is asked.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter(LOG_FORMAT)
    handlers: list[logging.Handler] = [TerminalHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        setattr(handler, _HANDLER_MARK, True)
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level if level <= logging.DEBUG else logging.WARNING)
    # Dask's distributed sets up its own INFO logging when first imported (and so
    # does every worker process it starts); keep its chatter at WARNING unless
    # DEBUG is asked. The environment variable reaches the worker processes too.
    dask_level = "debug" if level <= logging.DEBUG else "warning"
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", dask_level)
    for name in ("scynet_al", "sampler", "simulators"):
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(True)
