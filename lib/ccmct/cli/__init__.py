"""The ``ccmct`` command line: thin wrappers that parse arguments, call the library and print.

Each command is one module in :mod:`ccmct.cli.commands` with a ``register(subparsers)`` function that adds
its sub-parser and sets ``func`` (called with the parsed args, returns the exit code). Heavy imports happen
inside ``func`` so that ``ccmct --help`` stays fast. Any :class:`ccmct.errors.CcmctError` (and any
operating-system error) becomes one line on stderr and exit code 2 (:func:`main`; docs/reliability.md).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from ccmct import __version__
from ccmct.cli.common import one_line_warnings
from ccmct.errors import CcmctError


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (``ccmct <command>: error: ...``, exit code 2); ``--help`` shows
    the usage. Sub-parsers inherit the class."""

    def error(self, message: str):
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def get_parser() -> argparse.ArgumentParser:
    """The full parser with every command registered."""
    parser = _Parser(
        prog="ccmct",
        description="Mitotic-figure detection on canine cutaneous mast cell tumor WSIs "
                    "(re-implementation of Bertram, Aubreville et al., Sci Data 2019).",
    )
    parser.add_argument("--version", action="version", version=f"ccmct {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    from ccmct.cli import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"ccmct.cli.commands.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``ccmct`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    The one error path (docs/reliability.md): a :class:`CcmctError` (bad input: it names the file and the
    problem) and an :class:`OSError` from the environment (permission denied, disk full, a vanished file)
    become one line ``ccmct <command>: error: ...`` on stderr and exit code 2; library warnings become
    one line each. Anything else is a bug in ccmct and keeps its traceback (exit 1) so it can be reported.
    ``CCMCT_DEBUG=1`` re-raises every error with its traceback.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = get_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = os.environ.get("CCMCT_DEBUG") == "1"
    try:
        with one_line_warnings(args.command, every=False):
            return int(args.func(args) or 0)
    except CcmctError as err:
        if debug:
            raise
        _error(args.command, str(err))
        return 2
    except OSError as err:
        if debug or isinstance(err, BrokenPipeError):
            if isinstance(err, BrokenPipeError):  # output piped into `head` and closed early: not an error
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 0
            raise
        _error(args.command, _os_error_line(err))
        return 2
    except KeyboardInterrupt:
        print(f"ccmct {args.command}: interrupted", file=sys.stderr)
        return 130


def _error(command: str, message: str) -> None:
    text = " ".join(message.split()) or "unknown error"
    print(f"ccmct {command}: error: {text}", file=sys.stderr)


def _os_error_line(err: OSError) -> str:
    """``<file>: <reason>`` of an operating-system error (no Python internals)."""
    reason = err.strerror or str(err) or type(err).__name__
    if err.filename is not None:
        target = f" -> {err.filename2}" if err.filename2 is not None else ""
        return f"{err.filename}{target}: {reason}"
    return reason


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
