"""Paper Table 4 (train variant x test variant, stage 1 and 2) and the check of the authors' published files.

Thresholds are chosen as the authors did (the authors' `lib/calculate_F1.py` and `Evaluation.ipynb`; docs/evaluation.md): :func:`optimize_threshold` on the
model's results for the *training* slides (``RetinaNet-<V>-train.npz``) against the model's own label set,
then applied unchanged to its test results (``RetinaNet-<V>-test.npz``) evaluated against every label set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ccmct.config.dataset import DETECTION_RADIUS_L0
from ccmct.config.paths import DataRoot
from ccmct.data.results import read_results, result_filename
from ccmct.errors import DatabaseError
from ccmct.evaluation.bootstrap import SlideCounts, bootstrap_f1
from ccmct.evaluation.f1 import f1_scores
from ccmct.evaluation.ground_truth import load_ground_truth, restrict_results
from ccmct.evaluation.threshold import DEFAULT_MIN_THRESHOLD, optimize_threshold
from ccmct.types import VARIANTS

PAPER_TABLE4 = {
    1: {"MEL": (0.610, 0.607, 0.616), "HEAEL": (0.615, 0.615, 0.625), "ODAEL": (0.620, 0.620, 0.628)},
    2: {"MEL": (0.786, 0.786, 0.795), "HEAEL": (0.755, 0.755, 0.764), "ODAEL": (0.810, 0.810, 0.820)},
}
"""Paper Table 4: stage -> train variant -> F1 tested on (MEL, HEAEL, ODAEL)."""


def _as_root(data_root) -> DataRoot:
    return data_root if isinstance(data_root, DataRoot) else DataRoot(data_root)


def _min_threshold(min_threshold: float | Mapping[int, float], stage: int) -> float:
    return min_threshold[stage] if isinstance(min_threshold, Mapping) else float(min_threshold)


def _result_name(variant: str, split: str, stage: int) -> str:
    return result_filename(variant, split, stage=stage)


def table4_long(data_root, results_dir, *, variants: Iterable[str] = VARIANTS, stages: Iterable = (1, 2),
                min_threshold: float | Mapping = DEFAULT_MIN_THRESHOLD,
                radius_l0: float = DETECTION_RADIUS_L0, slide_counts: bool = False,
                result_name: Callable[[str, str, object], str] = _result_name) -> pd.DataFrame:
    """One row per (stage, train variant, test variant) whose result files and databases exist.

    Columns: stage, train, test, threshold, train_f1 (best F1 on the training slides), tp, fp, fn, f1,
    precision, recall (paper matching) and strict_tp, strict_fp, strict_fn, strict_f1; with
    ``slide_counts=True`` also ``slide_counts`` and ``strict_slide_counts``
    (:class:`ccmct.evaluation.bootstrap.SlideCounts` of the test slides, for :func:`table4_intervals`).
    ``result_name(variant, split, stage)`` names the result files (default :func:`result_filename`; the
    study's fast row passes its own, with the stage ``"fast"``, docs/fast_mode.md).
    """
    root, results_dir, variants = _as_root(data_root), Path(results_dir), list(variants)
    test_dbs = [v for v in variants if root.database(v).exists()]
    train_slides, test_slides = sorted(root.slides("train")), sorted(root.slides("test"))
    rows = []
    for stage in stages:
        for train in variants:
            train_file = results_dir / result_name(train, "train", stage)
            test_file = results_dir / result_name(train, "test", stage)
            if not (train_file.exists() and test_file.exists() and root.database(train).exists()):
                continue
            train_results = restrict_results(read_results(train_file), train_slides)
            search = optimize_threshold(load_ground_truth(root.database(train), slides=list(train_results)),
                                        train_results, min_threshold=_min_threshold(min_threshold, stage),
                                        radius_l0=radius_l0)
            test_results = restrict_results(read_results(test_file), test_slides)
            for test in test_dbs:
                gt = load_ground_truth(root.database(test), slides=list(test_results))
                paper = f1_scores(gt, test_results, threshold=search.best_threshold, radius_l0=radius_l0)
                strict = f1_scores(gt, test_results, threshold=search.best_threshold, matching="strict",
                                   radius_l0=radius_l0)
                rows.append({"stage": stage, "train": train, "test": test, "threshold": search.best_threshold,
                             "train_f1": search.best_f1, "tp": paper.counts.tp, "fp": paper.counts.fp,
                             "fn": paper.counts.fn, "f1": paper.f1, "precision": paper.precision,
                             "recall": paper.recall, "strict_tp": strict.counts.tp, "strict_fp": strict.counts.fp,
                             "strict_fn": strict.counts.fn, "strict_f1": strict.f1})
                if slide_counts:
                    rows[-1].update(slide_counts=SlideCounts.from_result(paper),
                                    strict_slide_counts=SlideCounts.from_result(strict))
    columns = ["stage", "train", "test", "threshold", "train_f1", "tp", "fp", "fn", "f1", "precision", "recall",
               "strict_tp", "strict_fp", "strict_fn", "strict_f1"]
    return pd.DataFrame(rows, columns=columns + (["slide_counts", "strict_slide_counts"] if slide_counts else []))


def table4_intervals(long: pd.DataFrame, *, n_resamples: int = 2000, seed: int = 0,
                     level: float = 0.95) -> pd.DataFrame:
    """``long`` (from ``table4_long(..., slide_counts=True)``) with slide-bootstrap intervals added.

    New columns ``f1_lo``, ``f1_hi``, ``precision_lo``, ``precision_hi``, ``recall_lo``, ``recall_hi``
    (paper matching) and ``strict_f1_lo``, ``strict_f1_hi``: the percentile interval over resamples of the
    test slides (:func:`ccmct.evaluation.bootstrap.bootstrap_f1`, the same resamples for every row). The
    threshold chosen on the training slides is held fixed. NaN where undefined.
    """
    if "slide_counts" not in long:
        raise ValueError("table4_intervals needs table4_long(..., slide_counts=True)")
    out = long.copy()
    columns = {c: [] for c in ("f1_lo", "f1_hi", "precision_lo", "precision_hi", "recall_lo", "recall_hi",
                               "strict_f1_lo", "strict_f1_hi")}
    for paper, strict in zip(long["slide_counts"], long["strict_slide_counts"]):
        boot = bootstrap_f1(paper, n_resamples=n_resamples, seed=seed, level=level)
        for name in ("f1", "precision", "recall"):
            lo, hi = boot[f"{name}_ci"]
            columns[f"{name}_lo"].append(np.nan if lo is None else lo)
            columns[f"{name}_hi"].append(np.nan if hi is None else hi)
        lo, hi = bootstrap_f1(strict, n_resamples=n_resamples, seed=seed, level=level)["f1_ci"]
        columns["strict_f1_lo"].append(np.nan if lo is None else lo)
        columns["strict_f1_hi"].append(np.nan if hi is None else hi)
    for name, values in columns.items():
        out[name] = np.asarray(values, float)
    return out


def table4(long: pd.DataFrame, *, value: str = "f1") -> pd.DataFrame:
    """Pivot of :func:`table4_long`: rows 'trained on', columns (stage, 'tested on'), like paper Table 4."""
    if long.empty:
        return pd.DataFrame()
    table = long.pivot_table(index="train", columns=["stage", "test"], values=value, aggfunc="first")
    order = [v for v in VARIANTS if v in table.index]
    return table.loc[order]


def paper_table4() -> pd.DataFrame:
    """The published Table 4 in the layout of :func:`table4`."""
    data = {(stage, test): [PAPER_TABLE4[stage][train][i] for train in VARIANTS]
            for stage in (1, 2) for i, test in enumerate(VARIANTS)}
    return pd.DataFrame(data, index=pd.Index(VARIANTS, name="train"))


@dataclass(frozen=True)
class AuthorsFile:
    """A published result file, the database it needs and the authors' numbers (paper, Table 5 and Fig. 5; docs/ablation.md)."""

    pattern: str
    needs: str
    min_threshold: float
    published: str
    threshold: float | None = None
    """Evaluate at this fixed threshold (chosen by the authors elsewhere); None = threshold search."""


AUTHORS_FILES = (
    AuthorsFile("RetinaNet-ODAEL-10HPF-export.pth-CCMCT_ODAEL-inference", "ODAEL", 0.20,
                "10-HPF model on the 11 full test WSIs, stage 1 at thr 0.65: TP 14538, FP 10059, FN 7938, F1 0.6177",
                threshold=0.65),
    AuthorsFile("RetinaNet-ODAEL-6WSI-export.pth-ODAEL_6WSI-val", "ODAEL", 0.20,
                "6-WSI model on its 6 training WSIs, stage 1: best F1 0.6125 at thr 0.73"),
    AuthorsFile("RetinaNet-ODAEL-3WSI-export.pth-ODAEL_3WSI-val", "ODAEL", 0.20,
                "3-WSI model on its 3 training WSIs, stage 1: best F1 0.7597 at thr 0.71"),
    AuthorsFile("2ndstage_RetinaNet-ODAEL-3WSI-export.pth-ODAEL_3WSI-val", "ODAEL", 0.20,
                "3-WSI model on its 3 training WSIs, stage 2: best F1 0.8169 at thr 0.32"),
)


def evaluate_authors_files(data_root, authors_dir: str | os.PathLike[str], *,
                           radius_l0: float = DETECTION_RADIUS_L0) -> pd.DataFrame:
    """Threshold search on the authors' published full-WSI result files, beside their published numbers.

    Returns one row per known file with ``status`` 'evaluated' or what is missing (the ODAEL database,
    the file); the HPF-crop files need the HPF databases and are not covered here.
    """
    root, rows = _as_root(data_root), []
    for spec in AUTHORS_FILES:
        found = sorted(Path(authors_dir).glob(f"{spec.pattern}*.p.bz2"))
        row = {"file": spec.pattern, "published": spec.published, "status": "evaluated",
               "threshold": np.nan, "f1": np.nan, "tp": np.nan, "fp": np.nan, "fn": np.nan}
        db = root.database(spec.needs)
        if not found:
            row["status"] = f"missing: result file {spec.pattern}*.p.bz2 in {authors_dir}"
        elif not db.exists():
            row["status"] = f"missing: {db} (download it with `ccmct setup --only databases`)"
        else:
            results = read_results(found[0])
            try:
                gt = load_ground_truth(db, slides=list(results))
            except DatabaseError:
                row["status"] = (f"missing: the real {spec.needs} database ({db} does not hold the "
                                 f"{len(results)} slides of this file)")
                rows.append(row)
                continue
            if spec.threshold is not None:
                scores = f1_scores(gt, results, threshold=spec.threshold, radius_l0=radius_l0)
                row.update(threshold=spec.threshold, f1=scores.f1, tp=scores.counts.tp,
                           fp=scores.counts.fp, fn=scores.counts.fn)
            else:
                search = optimize_threshold(gt, results, min_threshold=spec.min_threshold, radius_l0=radius_l0)
                k = search.best_index
                row.update(threshold=search.best_threshold, f1=search.best_f1, tp=int(search.tp[k]),
                           fp=int(search.fp[k]), fn=int(search.fn[k]))
        rows.append(row)
    return pd.DataFrame(rows)
