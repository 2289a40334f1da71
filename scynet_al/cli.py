"""The ``scynet-al`` command: parses the verb, configures logging, reports errors.

Only the module of the verb being run is imported, so ``scynet-al --help`` imports
neither torch nor dask. Errors that stem from the user's input or environment
(``scynet_al.errors.USER_ERRORS``) end the command with one line on stderr and exit
code 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import sys
from collections.abc import Sequence

from scynet_al import __version__
from scynet_al.commands import VERBS, load_command
from scynet_al.errors import USER_ERRORS
from scynet_al.logs import configure_logging, log_level

logger = logging.getLogger(__name__)

#: Exit code for bad input (config, store, CSV) and for verbs not in this build.
EXIT_USER_ERROR = 2

#: Exit code when the reader of stdout went away (``scynet-al status q.h5 | head``):
#: 128 + SIGPIPE, what a shell reports for a Unix tool that SIGPIPE ended (``cat``,
#: ``ls``). It is not 0 because the output was cut short, which a script that sets
#: ``pipefail`` should be able to see; without ``pipefail`` the shell ignores it.
EXIT_STDOUT_CLOSED = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``scynet-al``; returns the exit code.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` by default.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = _find_verb(argv)
    command = load_command(verb) if verb is not None else None
    parser = build_parser(verb, command)
    if verb is not None and command is None:
        args, _ = parser.parse_known_args(argv)  # whatever the future verb will take
    else:
        args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    if command is None:
        print(
            f"scynet-al {args.verb}: not yet available in this version", file=sys.stderr
        )
        return EXIT_USER_ERROR
    try:
        configure_logging(log_level(args.verbose, args.log_level))
    except ValueError as exc:
        parser.error(str(exc))
    return _dispatch(command, args)


def build_parser(
    verb: str | None = None, command: object | None = None
) -> argparse.ArgumentParser:
    """The argument parser; only ``command`` (the module of ``verb``) adds arguments."""
    common = argparse.ArgumentParser(add_help=False)
    _add_logging_options(common, default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="scynet-al",
        description="Active-learning campaigns that teach a neural network the LHC chi-square of pMSSM points.",
    )
    parser.add_argument(
        "--version", action="version", version=f"scynet-al {__version__}"
    )
    _add_logging_options(parser, default=None)
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", title="verbs")
    for name, summary in VERBS.items():
        sub = subparsers.add_parser(
            name, help=summary, description=summary, parents=[common]
        )
        if name != verb:
            continue
        if command is not None:
            command.add_arguments(sub)
    return parser


def _add_logging_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if default is None else default,
        help="log DEBUG messages too",
    )
    parser.add_argument(
        "--log-level",
        default=default,
        metavar="LEVEL",
        help="log level: DEBUG, INFO (default), WARNING, ERROR",
    )


def _find_verb(argv: Sequence[str]) -> str | None:
    """The first argument that names a verb, skipping the global options."""
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
        elif arg == "--log-level":
            skip_next = True
        elif not arg.startswith("-"):
            return arg if arg in VERBS else None
    return None


def _dispatch(command: object, args: argparse.Namespace) -> int:
    try:
        code = int(command.main(args))
        sys.stdout.flush()  # output to a pipe is buffered: a closed one shows here
        return code
    except BrokenPipeError as exc:
        if not _stdout_closed():
            return _user_error(args, exc)
        # Python ignores SIGPIPE and raises instead; end quietly, as a tool ended by
        # SIGPIPE does. Stdout goes to devnull, else the flush at exit fails again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_STDOUT_CLOSED
    # OSError: the file system refused a path the user gave (a directory where a
    # file is written, no permission, disk full); its message names the path.
    except (*USER_ERRORS, OSError) as exc:
        return _user_error(args, exc)
    except KeyboardInterrupt:
        print(f"scynet-al {args.verb}: interrupted", file=sys.stderr)
        return 130


def _user_error(args: argparse.Namespace, exc: BaseException) -> int:
    """Report a user error in one line on stderr; the exit code."""
    logger.debug("%s failed", args.verb, exc_info=exc)
    print(f"scynet-al {args.verb}: error: {_one_line(exc)}", file=sys.stderr)
    return EXIT_USER_ERROR


def _stdout_closed() -> bool:
    """True when stdout is a pipe whose reader has gone (poll reports an error on
    it), so a BrokenPipeError from elsewhere is still reported."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # stdout replaced by a non-file
        return False
    if not hasattr(select, "poll"):  # Windows: take the error's word for it
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(event & select.POLLERR for _, event in poller.poll(0))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
