"""``ccmct evaluate``: F1 of a result file against a SlideRunner database (paper or strict matching)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccmct.cli.common import add_json, print_json

_EPILOG = """examples:
  ccmct evaluate --db data/databases/MITOS_WSI_CCMCT_ODAEL.sqlite --results results/RetinaNet-ODAEL-test.npz --threshold 0.79
  ccmct evaluate --db data/databases/MITOS_WSI_CCMCT_ODAEL.sqlite --results results/RetinaNet-ODAEL-train.npz --optimize --json
  ccmct evaluate --db DB.sqlite --results 2ndstage_RetinaNet-ODAEL-test.p.bz2 --threshold 0.54 --matching strict

Only slides present in the result file are evaluated. --optimize runs the authors' threshold search
(NMS once at --min-threshold, thresholds min..0.98 in steps of 0.01, first maximum of micro F1) and
reports the scores at the best threshold; apply that threshold unchanged to the test results.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="F1 / precision / recall of detections against a database",
        description="Distance NMS + F1 of detections (x1, y1, x2, y2, class, score in level-0 px) against the "
                    "mitotic figures (agreedClass 2) of a SlideRunner database, per slide and overall (micro).",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="SlideRunner database with the ground truth")
    parser.add_argument("--results", type=Path, required=True,
                        help="result file: ours (.npz) or the authors' pickle (.p.bz2)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--threshold", type=float, help="detection threshold (score > T counts)")
    mode.add_argument("--optimize", action="store_true", help="choose the threshold with the best micro F1")
    parser.add_argument("--min-threshold", type=float, default=0.5,
                        help="with --optimize: lowest threshold tried and NMS threshold; default 0.5 "
                             "(authors: 0.5 stage 1, 0.25 ODAEL stage 2, 0.2 ablation)")
    parser.add_argument("--matching", choices=["paper", "strict"], default="paper",
                        help="paper: the authors' many-to-many rule (comparable with the paper, default); "
                             "strict: one-to-one matching within the radius")
    parser.add_argument("--radius", type=float, default=None,
                        help="match and NMS radius in level-0 px; default 25 (the paper's)")
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ccmct.config.dataset import DETECTION_RADIUS_L0
    from ccmct.data.results import read_results
    from ccmct.evaluation.f1 import f1_scores
    from ccmct.evaluation.ground_truth import load_ground_truth
    from ccmct.evaluation.threshold import optimize_threshold

    radius_l0 = DETECTION_RADIUS_L0 if args.radius is None else args.radius
    results = read_results(args.results)
    gt = load_ground_truth(args.db, slides=list(results))
    search = None
    threshold = args.threshold
    if args.optimize:
        search = optimize_threshold(gt, results, min_threshold=args.min_threshold, matching=args.matching,
                                    radius_l0=radius_l0)
        threshold = search.best_threshold
    scores = f1_scores(gt, results, threshold=threshold, matching=args.matching, radius_l0=radius_l0)
    document = scores.as_dict()
    document.update({"db": str(args.db), "results": str(args.results)})
    if search is not None:
        document["curve"] = search.curve()
        document["min_threshold"] = args.min_threshold
    if args.json:
        print_json(document)
    else:
        _print_table(document)
    return 0


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _print_table(doc: dict) -> None:
    print(f"{'slide':<32} {'F1':>7} {'TP':>7} {'FP':>7} {'FN':>7} {'dets':>7}")
    for name, s in doc["per_slide"].items():
        print(f"{name:<32} {_fmt(s['f1']):>7} {s['tp']:>7} {s['fp']:>7} {s['fn']:>7} {s['n_detections']:>7}")
    print(f"{'overall (micro)':<32} {_fmt(doc['f1']):>7} {doc['tp']:>7} {doc['fp']:>7} {doc['fn']:>7}")
    print(f"threshold {doc['threshold']:.2f}, matching {doc['matching']}, radius {doc['radius_l0']:g} px, "
          f"precision {_fmt(doc['precision'])}, recall {_fmt(doc['recall'])}")
