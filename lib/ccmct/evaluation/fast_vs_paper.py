"""The fast mode next to the paper's two-stage pipeline: F1 of both, their paired slide-bootstrap difference,
and the candidate stage's recall (docs/fast_mode.md).

Both result files have the same format (:mod:`ccmct.data.results`), so this is the usual evaluation twice:
each pipeline's threshold is chosen on its *training*-slide results (the paper's rule, :func:`optimize_threshold`)
or given, then the *test* slides are scored and :func:`ccmct.evaluation.bootstrap.paired_bootstrap` resamples
slides jointly for ``fast - paper``. With several training seeds pass lists (one result mapping per seed).

Example:
    >>> compare_fast_to_paper(db, fast_test, paper_test, fast_train=fast_train,
    ...                       paper_train=paper_train)                          # doctest: +SKIP
    {'f1_fast': 0.71, 'f1_paper': 0.72, 'delta_f1': -0.01, 'delta_f1_ci': [-0.04, 0.02], ...}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.spatial import cKDTree

from ccmct.config.dataset import DETECTION_RADIUS_L0
from ccmct.evaluation.bootstrap import SlideCounts, paired_bootstrap
from ccmct.evaluation.f1 import f1_scores
from ccmct.evaluation.ground_truth import load_ground_truth
from ccmct.evaluation.threshold import optimize_threshold
from ccmct.geometry import box_centers

__all__ = ["candidate_recall", "compare_fast_to_paper"]


def candidate_recall(ground_truth: Mapping[str, np.ndarray], results: Mapping[str, np.ndarray], *,
                     radius_l0: float = DETECTION_RADIUS_L0) -> dict:
    """Share of ground-truth mitotic figures with at least one result row (any score) within the radius.

    Args:
        ground_truth: slide -> (M, 2) level-0 points (slides missing from ``results`` count as missed).
        results: slide -> (N, 6) rows (e.g. the fast mode's unthresholded output: every candidate the
            classifier saw).
        radius_l0: match radius, level-0 px.

    Returns:
        ``{"recall", "found", "total", "candidates"}`` (recall None without figures).
    """
    found = total = n_rows = 0
    for slide, points in ground_truth.items():
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        rows = np.asarray(results.get(slide, np.zeros((0, 6))), dtype=np.float64).reshape(-1, 6)
        total += len(points)
        n_rows += len(rows)
        if len(points) and len(rows):
            distance, _ = cKDTree(box_centers(rows[:, :4])).query(points)
            found += int(np.count_nonzero(distance <= radius_l0))
    return {"recall": found / total if total else None, "found": found, "total": total, "candidates": n_rows}


def _listed(results) -> list[Mapping[str, np.ndarray]]:
    return [results] if isinstance(results, Mapping) else list(results)


def _threshold(ground_truth, train, given, matching: str) -> list[float]:
    if given is not None:
        return list(given) if isinstance(given, Sequence) else [float(given)]
    if train is None:
        raise ValueError("give a threshold or the training-slide results to choose it on")
    return [optimize_threshold(ground_truth, t, matching=matching).best_threshold for t in _listed(train)]


def compare_fast_to_paper(ground_truth, fast_test, paper_test, *, fast_train=None, paper_train=None,
                          threshold_fast=None, threshold_paper=None, matching: str = "paper",
                          n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """F1 of both pipelines on the test slides and the paired interval of ``fast - paper``.

    Args:
        ground_truth: a SlideRunner database path or slide -> (M, 2) points.
        fast_test, paper_test: test-slide results (mappings, or lists of them: one per seed).
        fast_train, paper_train: training-slide results to choose each threshold on (paper rule), or
        threshold_fast, threshold_paper: fixed thresholds (one, or one per seed).
        matching: ``paper`` or ``strict``.
        n_resamples, seed, level: of the bootstrap.

    Returns:
        ``{"f1_fast", "f1_paper", "threshold_fast", "threshold_paper", "delta_f1", "delta_f1_ci", "fast_wins",
        "n_slides", "n_seeds", "matching", "candidate_recall", ...}`` (F1 = mean over seeds; candidate recall
        of the first seed's fast test results).
    """
    fast_test, paper_test = _listed(fast_test), _listed(paper_test)
    slides = sorted(fast_test[0])
    if isinstance(ground_truth, Mapping):
        gt = {name: ground_truth[name] for name in slides}
    else:
        gt = load_ground_truth(ground_truth, slides=slides)
    t_fast = _threshold(ground_truth, fast_train, threshold_fast, matching)
    t_paper = _threshold(ground_truth, paper_train, threshold_paper, matching)
    if len(t_fast) != len(fast_test) or len(t_paper) != len(paper_test):
        raise ValueError("one threshold (or training result) per seed is needed")
    fast = [f1_scores(gt, r, threshold=t, matching=matching) for r, t in zip(fast_test, t_fast)]
    paper = [f1_scores(gt, r, threshold=t, matching=matching) for r, t in zip(paper_test, t_paper)]
    paired = paired_bootstrap([SlideCounts.from_result(r) for r in fast],
                              [SlideCounts.from_result(r) for r in paper],
                              n_resamples=n_resamples, seed=seed, level=level)
    return {"f1_fast": float(np.mean([r.f1 for r in fast])), "f1_paper": float(np.mean([r.f1 for r in paper])),
            "threshold_fast": t_fast, "threshold_paper": t_paper, "delta_f1": paired["delta_f1"],
            "delta_f1_ci": paired["delta_f1_ci"], "fast_wins": paired["a_wins"], "n_slides": paired["n_slides"],
            "n_seeds": paired["n_seeds"], "n_resamples": paired["n_resamples"], "level": paired["level"],
            "matching": matching, "candidate_recall": candidate_recall(gt, fast_test[0])}
