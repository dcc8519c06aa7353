"""``ccmct classify``: second stage, re-score first-stage detections with the cell classifier."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccmct.cli.common import (
    add_device,
    add_json,
    check_output,
    count,
    positive_float,
    print_json,
    require_folder,
)

EPILOG = """examples:
  ccmct classify --model models/cls-ODAEL --results results/RetinaNet-ODAEL-test.npz --data-root data
      -> results/2ndstage_RetinaNet-ODAEL-test.npz
  ccmct classify --model models/cls-ODAEL --results RetinaNet-ODAEL-test.p.bz2 --data-root data --out results/
  ccmct classify --model models/cls-ODAEL --results r.npz --slide-dir /slides --combine --out r2.npz

Per slide: distance NMS (radius 25 px, no threshold), then a 128 px patch around each kept box centre is
classified; the score becomes P(mitotic figure) (--combine: sqrt(P(mitotic figure) x first-stage score)).
Boxes are kept; the output has the input's format. Interrupted runs resume (primary .npz format).
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "classify", help="second stage: re-score detections with the cell classifier",
        description="Re-score a first-stage result file with a cell classifier (`ccmct train-classifier`).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="classifier model directory")
    parser.add_argument("--results", type=Path, required=True,
                        help="first-stage results (.npz, or the authors' .p.bz2)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-root", type=Path, help="data root whose WSI/ folder holds the slides")
    where.add_argument("--slide-dir", type=Path, help="folder holding the slide files directly")
    parser.add_argument("--out", type=Path, default=None,
                        help="output file, or an existing folder for 2ndstage_<input name> "
                             "(default: 2ndstage_<input name> next to the input)")
    parser.add_argument("--combine", action="store_true",
                        help="score = geometric mean of P(mitotic figure) and the first-stage score "
                             "(default: P(mitotic figure), as in the paper)")
    parser.add_argument("--radius", type=positive_float, default=None,
                        help="distance-NMS radius in level-0 px (default 25)")
    parser.add_argument("--batch-size", type=count(1), default=64, help="patches per forward pass (default 64)")
    parser.add_argument("--workers", type=count(0), default=2, help="patch reader processes (default 2)")
    add_device(parser)
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ccmct.config import DETECTION_RADIUS_L0, DataRoot
    from ccmct.data.results import detection_counts, read_results
    from ccmct.inference.second_stage import classify_results, second_stage_path
    from ccmct.models.classifier import load_classifier_config

    load_classifier_config(args.model)  # a detector directory or a damaged config: one line, before any work
    if args.data_root is not None:
        require_folder(args.data_root, "--data-root")
    slide_dir = require_folder(args.slide_dir if args.slide_dir is not None else DataRoot(args.data_root).wsi_dir,
                               "slide folder")
    _check_boxes_on_slides(args.results, slide_dir)
    check_output(second_stage_path(args.results, args.out), reads=[args.model, args.results, slide_dir],
                 results=True)
    out = classify_results(args.model, args.results, slide_dir, args.out,
                           combine="geometric_mean" if args.combine else "replace",
                           radius_l0=DETECTION_RADIUS_L0 if args.radius is None else args.radius,
                           batch_size=args.batch_size, num_workers=args.workers, device=args.device,
                           progress=not args.json)
    counts = detection_counts(read_results(out))
    if args.json:
        print_json({"out": str(out), "detections": counts, "total": sum(counts.values())})
    else:
        print(f"wrote {out} ({sum(counts.values())} detections on {len(counts)} slides)")
    return 0


def _check_boxes_on_slides(results_path: Path, slide_dir: Path) -> None:
    """Read the results (values checked) and refuse boxes whose centre lies outside their slide."""
    from ccmct.data.results import check_within_slides, read_results
    from ccmct.data.slides import open_slide

    results = read_results(results_path)
    sizes = {}
    for name in results:
        path = slide_dir / name
        if path.is_file():
            with open_slide(path) as slide:
                sizes[name] = slide.dimensions
    check_within_slides(results_path, results, sizes)
