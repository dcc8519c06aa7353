#!/usr/bin/env python
"""Stage-1 inference with the authors' command line (a thin shim over ``ccmct infer``).

Usage::

    python Inference-RetinaNet.py MODEL DATABASE DATASETNAME val|test [SLIDEDIR]

- ``MODEL``: a ccmct model directory (``config.json`` + ``weights.pt``), e.g. from ``ccmct train``.
- ``DATABASE``: a SlideRunner database; its slides are processed: ``test`` = those in the test split,
  ``val`` = all others (the training slides, used to choose the threshold), as in the authors' script.
- ``DATASETNAME``: a name used in the output file name.
- ``SLIDEDIR``: folder of the slides; default ``<data root>/WSI`` where the database sits in
  ``<data root>/databases/`` (the authors read it from the 4th argument, the val/test flag: fixed here).

Writes ``<MODEL name>-<DATASETNAME>[-val]-inference_results_boxes.p.bz2`` in the current folder: the authors'
pickle dict, now with slide-level distance NMS applied, margins covered and background tiles skipped
(``--all-tiles`` is not offered here; use ``ccmct infer --all-tiles`` for parity runs). The train/test split
is the data root's ``split.json`` if present, else the paper's (the test list of the authors' `Inference-RetinaNet.py`). Under torchrun the
slides are sharded across ranks. Exit code 1 if some slide failed, 2 on bad input.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

USAGE = "usage: Inference-RetinaNet.py MODEL DATABASE DATASETNAME val|test [SLIDEDIR]"


def output_name(model_dir: Path, dataset_name: str, which: str) -> str:
    """The authors' result name (``.p.bz2``: their pickle dict, bz2-compressed as in their repository)."""
    suffix = "-val" if which == "val" else ""
    return f"{model_dir.name}-{dataset_name}{suffix}-inference_results_boxes.p.bz2"


def slides_to_process(database: Path, which: str, slide_dir: Path | None) -> dict[str, Path]:
    """Slides of the database in the requested part of the split, name -> path."""
    from ccmct.config.paths import DataRoot
    from ccmct.data.sliderunner import SlideRunnerDB

    root = DataRoot(database.resolve().parent.parent)
    slide_dir = slide_dir or root.wsi_dir
    with SlideRunnerDB.open(database) as db:
        names = sorted(db.slides()["filename"])
    wanted = "test" if which == "test" else "train"
    return {name: slide_dir / name for name in names if root.split_of(name) == wanted}


def main(argv: list[str] | None = None) -> int:
    """Run with the authors' positional arguments; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (4, 5) or argv[3] not in ("val", "test"):
        print(USAGE, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from ccmct.errors import CcmctError
    from ccmct.inference.runner import run_inference

    model_dir, database, dataset_name, which = Path(argv[0]), Path(argv[1]), argv[2], argv[3]
    slide_dir = Path(argv[4]) if len(argv) == 5 else None
    try:
        slides = slides_to_process(database, which, slide_dir)
        report = run_inference(model_dir, slides, Path(output_name(model_dir, dataset_name, which)))
    except CcmctError as err:
        print(f"Inference-RetinaNet.py: error: {err}", file=sys.stderr)
        return 2
    if report.out is not None:
        logging.info("wrote %s (%d slides)", report.out, len(report.n_detections))
        for name, reason in report.failed.items():
            logging.error("failed: %s: %s", name, reason)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
