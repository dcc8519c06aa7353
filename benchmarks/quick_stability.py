"""Where does the spread of a quick-preset Table 4 cell come from? Threshold choice vs the model itself.

For each demo result pair (``RetinaNet-<V>-train.npz`` / ``-test.npz``, stage 1 and 2) of one or more demo
folders (or seed folders of a multi-seed demo), against the model's own label set (threshold) and the ODAEL
test labels (F1), this prints:

- ``chosen``: the threshold chosen on all training slides (first maximum, as ``ccmct demo``), its test F1;
- ``oracle``: the best test F1 over all thresholds and where it lies (how much a perfect choice would give);
- ``flat``: the range of training thresholds whose training F1 is within 0.01 of the maximum (a flat curve
  makes the first maximum arbitrary);
- ``boot``: the threshold chosen on each of ``--resamples`` bootstrap resamples of the training slides and
  the test F1 it gives: their sd is the spread that the threshold choice alone adds to the cell.

Nothing is trained; the per-slide curves come from :func:`ccmct.evaluation.threshold_curve` once per slide,
so the resamples are sums. Example:

    python benchmarks/quick_stability.py --data-root /work/runs/d/data --runs /work/runs/d /work/runs/d/seeds/seed-1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ccmct.config.paths import DataRoot
from ccmct.data.results import read_results, result_filename
from ccmct.demo.report import MIN_THRESHOLD
from ccmct.evaluation import load_ground_truth, restrict_results, threshold_curve
from ccmct.evaluation.f1 import micro_scores


def per_slide_curves(gt, results, min_threshold):
    """(thresholds, tp, fp, fn) with counts per slide: arrays of shape (slides, thresholds)."""
    curves = [threshold_curve({n: gt[n]}, {n: r}, min_threshold=min_threshold) for n, r in results.items()]
    return (curves[0].thresholds, np.stack([c.tp for c in curves]), np.stack([c.fp for c in curves]),
            np.stack([c.fn for c in curves]))


def analyse(root: DataRoot, run: Path, variant: str, stage: int, *, resamples: int, seed: int) -> dict:
    results_dir = run / "results"
    train = restrict_results(read_results(results_dir / result_filename(variant, "train", stage=stage)),
                             root.slides("train"))
    test = restrict_results(read_results(results_dir / result_filename(variant, "test", stage=stage)),
                            root.slides("test"))
    lo = MIN_THRESHOLD[stage]
    thr, tp, fp, fn = per_slide_curves(load_ground_truth(root.database(variant), slides=list(train)), train, lo)
    test_curve = threshold_curve(load_ground_truth(root.database("ODAEL"), slides=list(test)), test,
                                 min_threshold=lo)
    train_f1 = micro_scores(tp.sum(0), fp.sum(0), fn.sum(0))[0]
    test_f1 = test_curve.f1
    if not (np.isfinite(train_f1).any() and np.isfinite(test_f1).any()):
        return {"run": str(run), "variant": variant, "stage": stage, "undefined": "no detections above the grid"}
    best = int(np.nanargmax(train_f1))
    flat = thr[np.flatnonzero(train_f1 >= train_f1[best] - 0.01)]
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(tp), np.full(len(tp), 1 / len(tp)), size=resamples)
    boot_f1 = micro_scores(weights @ tp, weights @ fp, weights @ fn)[0]
    picks = np.array([int(np.nanargmax(row)) if np.isfinite(row).any() else 0 for row in boot_f1])
    return {"run": str(run), "variant": variant, "stage": stage,
            "chosen_threshold": float(thr[best]), "train_f1": float(train_f1[best]),
            "test_f1_at_chosen": float(test_f1[best]),
            "oracle_test_f1": float(np.nanmax(test_f1)), "oracle_threshold": float(thr[int(np.nanargmax(test_f1))]),
            "flat_thresholds": [float(flat.min()), float(flat.max())],
            "boot_threshold_sd": float(thr[picks].std()), "boot_test_f1_mean": float(np.nanmean(test_f1[picks])),
            "boot_test_f1_sd": float(np.nanstd(test_f1[picks])),
            "n_detections_test_above_min": int(sum((r[:, 5] > lo).sum() for r in test.values()))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="folders holding results/")
    parser.add_argument("--variants", nargs="+", default=["MEL", "ODAEL"])
    parser.add_argument("--resamples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    root = DataRoot(args.data_root)
    rows = []
    for run in args.runs:
        for variant in args.variants:
            for stage in (1, 2):
                if (run / "results" / result_filename(variant, "test", stage=stage)).exists():
                    rows.append(analyse(root, run, variant, stage, resamples=args.resamples, seed=args.seed))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        if "undefined" in r:
            print(f"{r['run']} {r['variant']} stage {r['stage']}: {r['undefined']}")
            continue
        print(f"{r['run']} {r['variant']} stage {r['stage']}: chosen {r['chosen_threshold']:.2f} -> test F1 "
              f"{r['test_f1_at_chosen']:.3f}; oracle {r['oracle_test_f1']:.3f} at {r['oracle_threshold']:.2f}; "
              f"flat train curve {r['flat_thresholds']}; bootstrap choice sd {r['boot_threshold_sd']:.3f} -> "
              f"test F1 {r['boot_test_f1_mean']:.3f} ± {r['boot_test_f1_sd']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
