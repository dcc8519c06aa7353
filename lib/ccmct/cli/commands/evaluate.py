"""``ccmct evaluate``: F1 of a result file against a SlideRunner database (paper or strict matching)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccmct.cli.common import add_json, count, positive_float, print_json, probability, probability_below_one

_EPILOG = """examples:
  ccmct evaluate --db data/databases/MITOS_WSI_CCMCT_ODAEL.sqlite --results results/RetinaNet-ODAEL-test.npz --threshold 0.79
  ccmct evaluate --db data/databases/MITOS_WSI_CCMCT_ODAEL.sqlite --results results/RetinaNet-ODAEL-train.npz --optimize --json
  ccmct evaluate --db DB.sqlite --results 2ndstage_RetinaNet-ODAEL-test.p.bz2 --threshold 0.54 --matching strict
  ccmct evaluate --db DB.sqlite --results results/RetinaNet-ODAEL-test.npz --threshold 0.79 --ci --seed 1
  ccmct evaluate --db DB.sqlite --results 2ndstage_RetinaNet-ODAEL-test.npz --compare results/RetinaNet-ODAEL-test.npz --threshold 0.6

Only slides present in the result file are evaluated. --optimize runs the authors' threshold search
(NMS once at --min-threshold, thresholds min..0.98 in steps of 0.01, first maximum of micro F1) and
reports the scores at the best threshold; apply that threshold unchanged to the test results.
--ci adds 95 % intervals from a bootstrap over slides (the slide is the resampled unit; per-slide
TP/FP/FN are re-summed, nothing is re-matched); with --optimize the threshold is chosen once on the given
file and held fixed in every resample, so the interval does not cover the threshold choice. --compare B
evaluates B too (at its own optimised threshold with --optimize, else at --threshold) and reports
delta_f1 = F1(results) - F1(B) with a paired interval over the same slide resamples. Same --seed, same
interval. See docs/evaluation.md for the method and its limits (few slides -> wide intervals).
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
    mode.add_argument("--threshold", type=probability, help="detection threshold (score > T counts)")
    mode.add_argument("--optimize", action="store_true", help="choose the threshold with the best micro F1")
    parser.add_argument("--min-threshold", type=probability_below_one, default=0.5,
                        help="with --optimize: lowest threshold tried and NMS threshold; default 0.5 "
                             "(authors: 0.5 stage 1, 0.25 ODAEL stage 2, 0.2 ablation)")
    parser.add_argument("--matching", choices=["paper", "strict"], default="paper",
                        help="paper: the authors' many-to-many rule (comparable with the paper, default); "
                             "strict: one-to-one matching within the radius")
    parser.add_argument("--radius", type=positive_float, default=None,
                        help="match and NMS radius in level-0 px; default 25 (the paper's)")
    ci = parser.add_argument_group("intervals and paired comparison (docs/evaluation.md)")
    ci.add_argument("--ci", action="store_true",
                    help="add f1_ci / precision_ci / recall_ci from a bootstrap over slides")
    ci.add_argument("--compare", type=Path, metavar="RESULTS_B",
                    help="a second result file on the same slides: delta_f1 = F1(results) - F1(B), paired "
                         "interval and the share of resamples where --results wins")
    ci.add_argument("--bootstrap", type=count(1), default=None, metavar="N",
                    help="bootstrap resamples (default 2000)")
    ci.add_argument("--seed", type=count(0), default=None, help="seed of the resampling (default 0)")
    ci.add_argument("--ci-level", type=_level, default=None, metavar="L",
                    help="interval coverage in (0, 1) (default 0.95)")
    add_json(parser)
    parser.set_defaults(func=run)


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), e.g. 0.95, got {text!r}")
    return value


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
    _check_interval_options(args)
    if args.ci:
        document.update(_intervals(scores, args))
    if args.compare is not None:
        document["compare"] = _compare(scores, results, gt, args, radius_l0)
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
    if "ci" in doc:
        ci = doc["ci"]
        print(f"{ci['level']:.0%} interval ({ci['method']}, {ci['n_slides']} slides, {ci['n_resamples']} "
              f"resamples, seed {ci['seed']}): F1 {_fmt_ci(doc['f1_ci'])}, precision "
              f"{_fmt_ci(doc['precision_ci'])}, recall {_fmt_ci(doc['recall_ci'])}")
        if ci["threshold_held_fixed"]:
            print("  the threshold was chosen once on this file (--optimize) and held fixed in every resample")
    if "compare" in doc:
        c = doc["compare"]
        print(f"compare with {c['results']} (threshold {c['threshold']:.2f}, F1 {_fmt(c['f1'])}): "
              f"delta F1 {_fmt(c['delta_f1'])}, {c['level']:.0%} interval {_fmt_ci(c['delta_f1_ci'])}, "
              f"{doc['results']} better in {_fmt_share(c['a_wins'])} of {c['n_resamples']} resamples "
              f"(paired over {c['n_slides']} slides, seed {c['seed']})")


def _fmt_ci(interval) -> str:
    return f"[{_fmt(interval[0])}, {_fmt(interval[1])}]"


def _fmt_share(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def _check_interval_options(args) -> None:
    """--bootstrap / --seed / --ci-level only mean something with --ci or --compare; fill their defaults."""
    if not (args.ci or args.compare is not None):
        given = [flag for flag, value in (("--bootstrap", args.bootstrap), ("--seed", args.seed),
                                          ("--ci-level", args.ci_level)) if value is not None]
        if given:
            from ccmct.errors import CcmctError

            raise CcmctError(f"{', '.join(given)} need --ci or --compare")
    args.bootstrap = 2000 if args.bootstrap is None else args.bootstrap
    args.seed = 0 if args.seed is None else args.seed
    args.ci_level = 0.95 if args.ci_level is None else args.ci_level


def _intervals(scores, args) -> dict:
    """f1_ci, precision_ci, recall_ci and a ``ci`` block (method, resamples, seed, held-fixed threshold)."""
    from ccmct.evaluation.bootstrap import SlideCounts, bootstrap_f1

    boot = bootstrap_f1(SlideCounts.from_result(scores), n_resamples=args.bootstrap, seed=args.seed,
                        level=args.ci_level)
    info = {key: boot[key] for key in ("method", "n_slides", "n_resamples", "level", "seed", "n_undefined")}
    info["threshold_held_fixed"] = bool(args.optimize)
    return {"f1_ci": boot["f1_ci"], "precision_ci": boot["precision_ci"], "recall_ci": boot["recall_ci"],
            "ci": info}


def _compare(scores, results, gt, args, radius_l0) -> dict:
    """Evaluate --compare at its own threshold (optimised, or --threshold) and the paired bootstrap."""
    from ccmct.data.results import read_results
    from ccmct.errors import ResultsError
    from ccmct.evaluation.bootstrap import SlideCounts, paired_bootstrap
    from ccmct.evaluation.f1 import f1_scores
    from ccmct.evaluation.threshold import optimize_threshold

    other = read_results(args.compare)
    if set(other) != set(results):
        missing = sorted(set(results) - set(other))
        extra = sorted(set(other) - set(results))
        raise ResultsError(args.compare, f"covers other slides than {args.results} (missing {missing[:3]}, "
                                         f"extra {extra[:3]}); a paired comparison needs the same slides")
    threshold = args.threshold
    if args.optimize:
        threshold = optimize_threshold(gt, other, min_threshold=args.min_threshold, matching=args.matching,
                                       radius_l0=radius_l0).best_threshold
    b = f1_scores(gt, other, threshold=threshold, matching=args.matching, radius_l0=radius_l0)
    paired = paired_bootstrap(SlideCounts.from_result(scores), SlideCounts.from_result(b),
                              n_resamples=args.bootstrap, seed=args.seed, level=args.ci_level)
    out = {"results": str(args.compare), "threshold": float(threshold), "f1": b.as_dict()["f1"],
           "precision": b.as_dict()["precision"], "recall": b.as_dict()["recall"],
           "tp": b.counts.tp, "fp": b.counts.fp, "fn": b.counts.fn,
           "threshold_held_fixed": bool(args.optimize)}
    out.update(paired)
    return out
