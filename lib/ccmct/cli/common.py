"""Option factories shared by several commands (one definition of each flag)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def print_json(document) -> None:
    json.dump(document, sys.stdout, indent=1, default=_json_default)
    sys.stdout.write("\n")


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
