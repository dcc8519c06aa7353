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

``--combine replace geometric_mean`` analyses every stage-2 pair with both scores: P(mitotic figure) (the
paper's ``replace``) and ``sqrt(P(mitotic figure) x first-stage score)`` (``ccmct classify --combine``, the
quick preset's second stage), each derived from the stage-2 file (whichever way it was written, its metadata's
``combine``) and the first-stage score of the same box (the stage-2 boxes are first-stage boxes, unchanged),
so nothing is re-classified. With several runs (seeds) it
also prints each cell's mean and sd of the test F1 at the chosen threshold over the runs.

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
from ccmct.data.results import read_metadata, read_results, result_filename
from ccmct.demo.report import MIN_THRESHOLD
from ccmct.evaluation import load_ground_truth, restrict_results, threshold_curve
from ccmct.evaluation.f1 import micro_scores
from ccmct.inference.second_stage import combine_scores


def stage2_scores(stage1: dict[str, np.ndarray], stage2: dict[str, np.ndarray], *, written: str,
                  wanted: str) -> dict[str, np.ndarray]:
    """Stage-2 results with the score ``wanted`` (``replace``: P(mitotic figure); ``geometric_mean``:
    sqrt(P(MF) x stage-1 score)), from a stage-2 file whose score was ``written`` one way or the other (its
    metadata's ``combine``) and the stage-1 file it was made from: each stage-2 box is looked up in stage 1,
    P(MF) is the written score (``replace``) or score² / stage-1 score (``geometric_mean``).

    Raises:
        ValueError: a stage-2 box that is not among its slide's first-stage boxes (not a pair of one run).
    """
    if written == wanted:
        return stage2
    out = {}
    for name, boxes in stage2.items():
        first = stage1.get(name, np.zeros((0, 6)))
        lookup = {tuple(row[:4]): row[5] for row in first}
        try:
            s1 = np.array([lookup[tuple(row[:4])] for row in boxes], dtype=np.float64)
        except KeyError as err:
            raise ValueError(f"{name}: a stage-2 box {err} is not a first-stage box of the same run") from None
        rescored = boxes.copy()
        if len(boxes):
            p_mf = boxes[:, 5] if written == "replace" else np.divide(
                boxes[:, 5] ** 2, s1, out=np.zeros(len(s1)), where=s1 > 0)
            rescored[:, 5] = combine_scores(np.clip(p_mf, 0.0, 1.0), s1, wanted)
        out[name] = rescored
    return out


def per_slide_curves(gt, results, min_threshold):
    """(thresholds, tp, fp, fn) with counts per slide: arrays of shape (slides, thresholds)."""
    curves = [threshold_curve({n: gt[n]}, {n: r}, min_threshold=min_threshold) for n, r in results.items()]
    return (curves[0].thresholds, np.stack([c.tp for c in curves]), np.stack([c.fp for c in curves]),
            np.stack([c.fn for c in curves]))


def analyse(root: DataRoot, run: Path, variant: str, stage: int, *, resamples: int, seed: int,
            combine: str = "replace") -> dict:
    results_dir = run / "results"

    def load(split):
        path = results_dir / result_filename(variant, split, stage=stage)
        results = read_results(path)
        if stage == 2:
            written = read_metadata(path).get("combine", "replace")
            results = stage2_scores(read_results(results_dir / result_filename(variant, split, stage=1)), results,
                                    written=written, wanted=combine)
        return restrict_results(results, root.slides(split))

    train, test = load("train"), load("test")
    lo = MIN_THRESHOLD[stage]
    thr, tp, fp, fn = per_slide_curves(load_ground_truth(root.database(variant), slides=list(train)), train, lo)
    test_curve = threshold_curve(load_ground_truth(root.database("ODAEL"), slides=list(test)), test,
                                 min_threshold=lo)
    train_f1 = micro_scores(tp.sum(0), fp.sum(0), fn.sum(0))[0]
    test_f1 = test_curve.f1
    if not (np.isfinite(train_f1).any() and np.isfinite(test_f1).any()):
        return {"run": str(run), "variant": variant, "stage": stage, "combine": combine,
                "undefined": "no detections above the grid"}
    best = int(np.nanargmax(train_f1))
    flat = thr[np.flatnonzero(train_f1 >= train_f1[best] - 0.01)]
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(tp), np.full(len(tp), 1 / len(tp)), size=resamples)
    boot_f1 = micro_scores(weights @ tp, weights @ fp, weights @ fn)[0]
    picks = np.array([int(np.nanargmax(row)) if np.isfinite(row).any() else 0 for row in boot_f1])
    return {"run": str(run), "variant": variant, "stage": stage, "combine": combine,
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
    parser.add_argument("--combine", choices=["replace", "geometric_mean"], nargs="+", default=["replace"],
                        help="stage-2 scores to analyse (replace: the paper's P(mitotic figure))")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    root = DataRoot(args.data_root)
    rows = []
    for run in args.runs:
        for variant in args.variants:
            for stage in (1, 2):
                if not (run / "results" / result_filename(variant, "test", stage=stage)).exists():
                    continue
                for combine in (args.combine if stage == 2 else ["replace"]):
                    rows.append(analyse(root, run, variant, stage, resamples=args.resamples, seed=args.seed,
                                        combine=combine))
    spread = over_runs(rows)
    if args.json:
        print(json.dumps({"rows": rows, "over_runs": spread} if len(args.runs) > 1 else rows, indent=1))
        return 0
    for r in rows:
        if "undefined" in r:
            print(f"{r['run']} {r['variant']} stage {r['stage']}: {r['undefined']}")
            continue
        print(f"{r['run']} {r['variant']} stage {r['stage']} ({r['combine']}): chosen {r['chosen_threshold']:.2f} -> test F1 "
              f"{r['test_f1_at_chosen']:.3f}; oracle {r['oracle_test_f1']:.3f} at {r['oracle_threshold']:.2f}; "
              f"flat train curve {r['flat_thresholds']}; bootstrap choice sd {r['boot_threshold_sd']:.3f} -> "
              f"test F1 {r['boot_test_f1_mean']:.3f} ± {r['boot_test_f1_sd']:.3f}")
    for c in spread if len(args.runs) > 1 else []:
        print(f"over {c['runs']} runs: {c['variant']} stage {c['stage']} ({c['combine']}): test F1 at chosen "
              f"{c['test_f1_mean']:.3f} ± {c['test_f1_sd']:.3f} (sd over runs); oracle {c['oracle_mean']:.3f} ± "
              f"{c['oracle_sd']:.3f}")
    return 0


def over_runs(rows: list[dict]) -> list[dict]:
    """Per (variant, stage, combine): mean and sample sd (ddof 1, as the demo's ``table4_sd``) over the runs."""
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        if "undefined" not in r:
            cells.setdefault((r["variant"], r["stage"], r["combine"]), []).append(r)
    out = []
    for (variant, stage, combine), rs in cells.items():
        chosen = np.array([r["test_f1_at_chosen"] for r in rs])
        oracle = np.array([r["oracle_test_f1"] for r in rs])
        sd = (lambda a: float(a.std(ddof=1)) if len(a) > 1 else float("nan"))
        out.append({"variant": variant, "stage": stage, "combine": combine, "runs": len(rs),
                    "test_f1_per_run": chosen.tolist(), "test_f1_mean": float(chosen.mean()),
                    "test_f1_sd": sd(chosen), "oracle_mean": float(oracle.mean()), "oracle_sd": sd(oracle)})
    return out


if __name__ == "__main__":
    raise SystemExit(main())
