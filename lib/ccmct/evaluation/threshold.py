"""Threshold search as the authors did it (the authors' `lib/calculate_F1.py`; docs/evaluation.md ``optimize_threshold``), all at once.

The authors run distance NMS once at the minimum threshold, then for every threshold in
``np.arange(min_threshold, 0.99, 0.01)`` (last 0.98) compute the micro F1 and take the first maximum.
Greedy NMS at a higher threshold keeps exactly the NMS survivors above it (a detection's fate depends only
on better-scored ones), so one NMS suffices. With the paper's matching, whether a point is marked at
threshold t depends only on which detections survive, and that is monotone in t. We therefore compute once:

- per GT point the best score of a detection that would mark it (within the radius of it or of a GT
  neighbour): it is a TP at t iff that score > t;
- per detection its "marked score": its own score if a GT lies within the radius, else the smaller of its
  own score and the best directly-matched detection neighbour's score (none after NMS): it is not an FP at
  t iff that score > t;

and count all thresholds by binary search in the sorted scores. Strict matching is recomputed per threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ccmct.config.dataset import DETECTION_RADIUS_L0
from ccmct.evaluation.f1 import detections_after_nms, micro_scores, resolve_ground_truth
from ccmct.evaluation.matching import MATCHINGS, match_strict, pairs_within
from ccmct.geometry import box_centers

DEFAULT_MIN_THRESHOLD = 0.5
"""The authors' minimum threshold for stage 1 (0.25 for ODAEL stage 2, 0.20 in the ablation study)."""


def paper_thresholds(min_threshold: float = DEFAULT_MIN_THRESHOLD) -> np.ndarray:
    """The authors' grid: ``np.arange(min_threshold, 0.99, 0.01)`` (last value 0.98).

    Rounded to 10 decimals (0.79 instead of 0.7900000000000003, as the authors typed the chosen value when
    applying it); no float32 score lies between the two, so the counts are the same.
    """
    return np.round(np.arange(min_threshold, 0.99, 0.01), 10)


@dataclass(frozen=True)
class ThresholdSearch:
    """Micro TP / FP / FN / F1 for every threshold and the first maximum."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    matching: str

    @property
    def f1(self) -> np.ndarray:
        return micro_scores(self.tp, self.fp, self.fn)[0]

    @property
    def best_index(self) -> int:
        f1 = self.f1
        return int(np.nanargmax(f1)) if np.any(np.isfinite(f1)) else 0

    @property
    def best_threshold(self) -> float:
        return float(self.thresholds[self.best_index])

    @property
    def best_f1(self) -> float:
        return float(self.f1[self.best_index])

    def curve(self) -> list[list[float]]:
        """[[threshold, f1], ...] (f1 None where undefined) for JSON."""
        return [[float(t), None if f != f else float(f)] for t, f in zip(self.thresholds, self.f1)]


def _count_above(sorted_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return len(sorted_values) - np.searchsorted(sorted_values, thresholds, side="right")


def _paper_slide_scores(det_l0, scores, gt_l0, radius_l0):
    """(GT marking scores, detection marking scores) for one slide (see module docstring)."""
    di, gi, _ = pairs_within(det_l0, gt_l0, radius_l0)
    best = np.full(len(gt_l0), -np.inf)
    np.maximum.at(best, gi, scores[di])
    a, b, _ = pairs_within(gt_l0, gt_l0, radius_l0)
    gt_score = best.copy()
    np.maximum.at(gt_score, a, best[b])
    direct = np.zeros(len(det_l0), bool)
    direct[di] = True
    a, b, _ = pairs_within(det_l0, det_l0, radius_l0)
    via = np.full(len(det_l0), -np.inf)
    sel = direct[b]
    np.maximum.at(via, a[sel], scores[b[sel]])
    det_score = np.where(direct, scores, np.minimum(scores, via))
    return gt_score, det_score


def _prepared(results, gt, min_threshold, radius_l0):
    """Per evaluated slide: (centres, scores, GT) after one NMS at the minimum threshold."""
    for name, boxes in results.items():
        boxes = np.asarray(boxes, np.float64).reshape(-1, 6)
        if len(boxes) == 0:
            yield name, None, None, np.asarray(gt[name]).reshape(-1, 2)
            continue
        kept = detections_after_nms(boxes, min_threshold, radius_l0)
        yield name, box_centers(kept), kept[:, 5], np.asarray(gt[name], np.float64).reshape(-1, 2)


def threshold_curve(ground_truth, results: Mapping[str, np.ndarray], *, thresholds: np.ndarray | None = None,
                    min_threshold: float = DEFAULT_MIN_THRESHOLD, matching: str = "paper",
                    radius_l0: float = DETECTION_RADIUS_L0) -> ThresholdSearch:
    """Micro TP/FP/FN/F1 for every threshold (default the authors' grid from ``min_threshold``).

    Args:
        ground_truth: database path or slide -> (M, 2) GT points (level-0 px).
        results: slide -> (N, 6) detections; only these slides are evaluated.
        thresholds: ascending thresholds, all >= ``min_threshold`` (default :func:`paper_thresholds`).
        min_threshold: the single NMS is run at this threshold.
        matching: 'paper' (all thresholds at once) or 'strict' (one matching per threshold).
        radius_l0: match and NMS radius, level-0 px.
    """
    if matching not in MATCHINGS:
        raise ValueError(f"matching must be one of {MATCHINGS}, got {matching!r}")
    thresholds = paper_thresholds(min_threshold) if thresholds is None else np.asarray(thresholds, float)
    if len(thresholds) and thresholds.min() < min_threshold:
        raise ValueError(f"thresholds below min_threshold={min_threshold} would need another NMS")
    gt = resolve_ground_truth(ground_truth, results)
    slides = list(_prepared(results, gt, min_threshold, radius_l0))
    if matching == "strict":
        return _strict_curve(slides, thresholds, radius_l0)
    gt_scores, det_scores, det_marks, n_gt = [np.zeros(0)], [np.zeros(0)], [np.zeros(0)], 0
    for _name, centers, scores, gt_l0 in slides:
        if centers is None:
            continue  # the authors' empty-result-list skip
        g, d = _paper_slide_scores(centers, scores, gt_l0, radius_l0)
        gt_scores.append(g)
        det_scores.append(scores)
        det_marks.append(d)
        n_gt += len(gt_l0)
    g, s, d = (np.sort(np.concatenate(x)) for x in (gt_scores, det_scores, det_marks))
    tp = _count_above(g, thresholds)
    fp = _count_above(s, thresholds) - _count_above(d, thresholds)
    return ThresholdSearch(thresholds, tp, fp, n_gt - tp, "paper")


def _strict_curve(slides, thresholds, radius_l0) -> ThresholdSearch:
    tp, fp, fn = (np.zeros(len(thresholds), np.int64) for _ in range(3))
    for _name, centers, scores, gt_l0 in slides:
        if centers is None:
            fn += len(gt_l0)
            continue
        for k, t in enumerate(thresholds):
            c = match_strict(centers[scores > t], gt_l0, radius_l0)
            tp[k] += c.tp
            fp[k] += c.fp
            fn[k] += c.fn
    return ThresholdSearch(thresholds, tp, fp, fn, "strict")


def optimize_threshold(ground_truth, results: Mapping[str, np.ndarray], *,
                       min_threshold: float = DEFAULT_MIN_THRESHOLD, matching: str = "paper",
                       radius_l0: float = DETECTION_RADIUS_L0) -> ThresholdSearch:
    """The authors' threshold search: grid from ``min_threshold`` to 0.98, first maximum of micro F1.

    Use ``.best_threshold`` / ``.best_f1`` of the result; apply that threshold unchanged to test results.
    """
    return threshold_curve(ground_truth, results, min_threshold=min_threshold, matching=matching,
                           radius_l0=radius_l0)
