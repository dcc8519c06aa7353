"""Option factories shared by several commands (one definition of each flag)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from pathlib import Path

from ccmct.jsonable import json_default
from ccmct.types import PRESETS, VARIANTS


def add_data_root(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument("--data-root", type=Path, required=required,
                        help="data root holding WSI/ and databases/ (real or synthetic)")


def add_variant(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", choices=VARIANTS, required=True,
                        help="label set: MEL, HEAEL or ODAEL (paper Table 2)")


def add_preset(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument("--preset", choices=PRESETS, default=default, required=default is None,
                        help="smoke (seconds, CI), quick (CPU minutes), paper (the paper's schedule)"
                             + (f"; default {default}" if default else ""))


def positive_float(text: str) -> float:
    """argparse ``type=``: a float > 0 (e.g. ``--mpp``, ``--box-size``)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")


@contextlib.contextmanager
def one_line_warnings(command: str):
    """Show library warnings as ``ccmct <command>: warning: <message>`` lines on stderr (no source lines)."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"ccmct {command}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def print_json(document) -> None:
    json.dump(document, sys.stdout, indent=1, default=json_default)
    sys.stdout.write("\n")


