"""Option factories shared by several commands (one definition of each flag)."""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import sys
import warnings
from pathlib import Path

from ccmct import jsonable
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


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse ``type=``: a finite float > 0 (e.g. ``--mpp``, ``--box-size``, ``--radius``, ``--hpf``)."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def probability(text: str) -> float:
    """argparse ``type=``: a finite float in [0, 1] (score thresholds)."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value


def probability_below_one(text: str) -> float:
    """argparse ``type=``: a finite float in [0, 1) that leaves the threshold search something to try
    (``--min-threshold``: :func:`ccmct.evaluation.threshold.paper_thresholds` from it up to 0.98)."""
    from ccmct.evaluation.threshold import paper_thresholds

    value = probability(text)
    if value >= 1.0 or not len(paper_thresholds(value)):
        raise argparse.ArgumentTypeError(f"must be below 1 and leave thresholds to try (the search goes from it "
                                         f"up to {paper_thresholds(0.0)[-1]:g}), got {text!r}")
    return value


def count(minimum: int = 1):
    """argparse ``type=`` factory: an integer >= ``minimum`` (batch sizes, worker counts, WSI counts, seeds)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text!r}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


_DEVICE = re.compile(r"^(cpu|cuda|cuda:\d+|mps)$")


def device(text: str) -> str:
    """argparse ``type=``: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; a GPU that this machine lacks is refused."""
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda, cuda:N or mps, got {text!r}")
    if text == "cpu":
        return text
    import torch

    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r} asked for, but torch sees no CUDA GPU on this machine")
        index = int(text.split(":")[1]) if ":" in text else 0
        if index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r} asked for, but this machine has "
                                             f"{torch.cuda.device_count()} CUDA device(s)")
    elif not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise argparse.ArgumentTypeError("'mps' asked for, but torch sees no Apple GPU on this machine")
    return text


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=device, default=None,
                        help="cpu, cuda or cuda:N (default: cuda when available)")


def add_seed(parser: argparse.ArgumentParser, default: int | None = 0, help: str | None = None) -> None:
    parser.add_argument("--seed", type=count(0), default=default,
                        help=help or f"random seed, >= 0 (default {default})")


def require_folder(path: Path, what: str) -> Path:
    """An input folder that must exist (``--data-root``, ``--subsets-dir``, ``--slide-dir``), else one line."""
    from ccmct.errors import FileProblem

    if not Path(path).is_dir():
        problem = "is a file, not a folder" if Path(path).exists() else "no such folder"
        raise FileProblem(path, f"{what}: {problem}")
    return Path(path)


def require_data_root(path: Path, *, slides: bool = False, databases: bool = False,
                      variant: str | None = None) -> Path:
    """A data root that exists and holds what the command reads (``WSI/*.svs`` and/or ``databases/``).

    With ``variant``, that label set's database must be there (checked first, so the message names the file).
    A mistyped root fails here, before any work and before any output is touched.
    """
    from ccmct.config.paths import DataRoot
    from ccmct.errors import FileProblem

    require_folder(path, "--data-root")
    root = DataRoot(path)
    if variant is not None and not root.database(variant).is_file():
        raise FileProblem(root.database(variant), f"the {variant} database is missing from --data-root")
    if slides and not (root.wsi_dir.is_dir() and any(root.wsi_dir.glob("*.svs"))):
        raise FileProblem(root.wsi_dir, "--data-root holds no slides (no WSI/*.svs); is it the right folder?")
    if databases and not (root.databases_dir.is_dir() and any(root.databases_dir.glob("*.sqlite"))):
        raise FileProblem(root.databases_dir, "--data-root holds no databases (no databases/*.sqlite); "
                                              "is it the right folder?")
    return Path(path)


def refuse_real_data_root(path: Path, what: str = "--out") -> None:
    """A synthetic root is never written over a real (or foreign) data root: refuse a folder that holds
    SlideRunner databases but no ``synthetic.json`` (the generator's report)."""
    from ccmct.config.dataset import SYNTHETIC_REPORT_FILE as MANIFEST
    from ccmct.errors import FileProblem

    path = Path(path)
    databases = path / "databases"
    if (path / MANIFEST).exists() or not databases.is_dir():
        return
    found = sorted(p.name for p in databases.glob("*.sqlite"))
    if found:
        raise FileProblem(path, f"{what} holds databases ({found[0]}, ...) that the synthetic generator did not "
                                "write (no synthetic.json); a synthetic data set needs an empty folder")


def check_output(target, *, reads=(), kind: str = "file", what: str = "--out", results: bool = False):
    """The shared output guard (:func:`ccmct.outputs.guard_output`), called by every writing command first.

    With ``results=True`` an existing target must itself be a readable result file (a rerun replaces its own
    earlier result, never some other file that happens to have the name).
    """
    from ccmct.outputs import OutputError, guard_output

    path = guard_output(target, reads=reads, kind=kind, what=what)
    if results and path.is_file():
        from ccmct.data.results import read_results
        from ccmct.errors import ResultsError

        try:
            read_results(path)
        except ResultsError as err:
            raise OutputError(path, f"{what} exists and is not a ccmct result file ({err.problem}); refusing to "
                                    "replace it") from None
    return path


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")


@contextlib.contextmanager
def one_line_warnings(command: str, *, every: bool = True):
    """Show warnings as ``ccmct <command>: warning: <message>`` lines on stderr (no source lines).

    Args:
        command: named in each line.
        every: show every warning once per place (``simplefilter("default")``); False keeps the active filters
            (Python's defaults hide other libraries' deprecation notices), as :func:`ccmct.cli.main` does.
    """
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"ccmct {command}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        if every:
            warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def print_json(document) -> None:
    """One strict-JSON document on stdout (non-finite numbers become null; :mod:`ccmct.jsonable`)."""
    sys.stdout.write(jsonable.dumps(document, indent=1))
    sys.stdout.write("\n")


