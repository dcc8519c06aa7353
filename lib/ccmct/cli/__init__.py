"""The ``ccmct`` command line: thin wrappers that parse arguments, call the library and print.

Each command is one module in :mod:`ccmct.cli.commands` with a ``register(subparsers)`` function that adds
its sub-parser and sets ``func`` (called with the parsed args, returns the exit code). Heavy imports happen
inside ``func`` so that ``ccmct --help`` stays fast. Any :class:`ccmct.errors.CcmctError` becomes one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from ccmct import __version__
from ccmct.errors import CcmctError


def get_parser() -> argparse.ArgumentParser:
    """The full parser with every command registered."""
    parser = argparse.ArgumentParser(
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
    """Run ``ccmct`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = get_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CcmctError as err:
        print(f"ccmct {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ccmct {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
