"""Benchmark: distance NMS + threshold search, ours (all thresholds at once) vs a per-threshold KD-tree loop.

Data: the authors' ``RetinaNet-ODAEL-6WSI-...-val`` result file (~153k detections on 6 WSIs) and generated
ground truth (a share of the confident detections, jittered, plus random points: the real databases are not
available to the tests). The baseline follows the authors' procedure: greedy NMS once at the minimum
threshold (sklearn KD-tree, Python loop), then for every threshold a KD-tree over detections + GT and a
``query_radius`` neighbourhood per point (the authors' `lib/calculate_F1.py`; docs/evaluation.md). Both must give identical TP/FP/FN.

    python benchmarks/evaluation.py [--json] [--results FILE] [--min-threshold 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = (REPO.parent / "shared" / "data" / "original_repo" / "results"
                   / "RetinaNet-ODAEL-6WSI-export.pth-ODAEL_6WSI-val-inference_results_boxes.p.bz2")


def make_ground_truth(results: dict, seed: int = 0) -> dict:
    """Per slide: 40 % of the detections scoring > 0.6 jittered by N(0, 10 px), plus as many random points."""
    rng = np.random.default_rng(seed)
    gt = {}
    for name, boxes in results.items():
        centres = np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2])
        confident = centres[(boxes[:, 5] > 0.6) & (rng.random(len(boxes)) < 0.4)]
        lo, hi = centres.min(0), centres.max(0)
        gt[name] = np.concatenate([confident + rng.normal(0, 10, confident.shape),
                                   rng.uniform(lo, hi, (len(confident), 2))]).round()
    return gt


def baseline(results: dict, gt: dict, thresholds: np.ndarray, min_threshold: float, radius: float = 25.0):
    """The authors' way: NMS once, then one KD-tree + neighbourhood loop per threshold and slide."""
    from sklearn.neighbors import KDTree

    nmsed = {}
    for name, boxes in results.items():
        boxes = boxes[boxes[:, 5] > min_threshold]
        centres = np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2])
        order = np.argsort(-boxes[:, 5], kind="stable")
        neighbours = KDTree(centres).query_radius(centres, r=radius) if len(centres) else []
        alive = np.ones(len(boxes), bool)
        keep = []
        for i in order:
            if alive[i]:
                keep.append(i)
                alive[neighbours[i]] = False
        nmsed[name] = boxes[np.array(keep, dtype=int)]
    rows = []
    for t in thresholds:
        tp = fp = fn = 0
        for name, boxes in nmsed.items():
            det = boxes[boxes[:, 5] > t]
            det = np.column_stack([(det[:, 0] + det[:, 2]) / 2, (det[:, 1] + det[:, 3]) / 2])
            points = np.concatenate([det, gt[name]])
            is_det = np.arange(len(points)) < len(det)
            marked = np.zeros(len(points), bool)
            for near in KDTree(points).query_radius(points, r=radius):
                if is_det[near].any() and not is_det[near].all():
                    marked[near] = True
            slide_tp = int(marked[~is_det].sum())
            tp, fp, fn = tp + slide_tp, fp + int((~marked[is_det]).sum()), fn + len(gt[name]) - slide_tp
        rows.append((tp, fp, fn))
    return np.array(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--min-threshold", type=float, default=0.5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from ccmct.data.results import read_results
    from ccmct.evaluation import optimize_threshold

    results = read_results(args.results)
    gt = make_ground_truth(results)
    start = time.perf_counter()
    search = optimize_threshold(gt, results, min_threshold=args.min_threshold)
    fast = time.perf_counter() - start
    start = time.perf_counter()
    reference = baseline(results, gt, search.thresholds, args.min_threshold)
    slow = time.perf_counter() - start
    identical = bool(np.array_equal(np.column_stack([search.tp, search.fp, search.fn]), reference))
    report = {"fast_seconds": round(fast, 3), "per_threshold_seconds": round(slow, 3),
              "speedup": round(slow / fast, 1), "identical_counts": identical,
              "detections": int(sum(len(b) for b in results.values())), "slides": len(results),
              "gt_points": int(sum(len(g) for g in gt.values())), "thresholds": len(search.thresholds),
              "min_threshold": args.min_threshold, "best_threshold": search.best_threshold,
              "best_f1": round(search.best_f1, 4), "results_file": args.results.name}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for key, value in report.items():
            print(f"{key:>22}: {value}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
