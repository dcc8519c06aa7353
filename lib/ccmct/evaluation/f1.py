"""F1 per slide and overall (micro: sums of TP / FP / FN), the authors' way or strictly one-to-one.

Pipeline per slide, as in the authors' ``calculate_F1`` (the authors' `lib/calculate_F1.py`; docs/evaluation.md): keep detections with
``score > threshold`` (strict), distance NMS (radius 25 px), box centres, then match
(:mod:`ccmct.evaluation.matching`). Paper quirks reproduced with ``matching="paper"``:

- only slides present in the results are evaluated (GT of other slides is ignored);
- a slide whose result list is *empty* (no detections at all, before any threshold) contributes
  TP = FP = FN = 0, i.e. its mitotic figures are not counted as false negatives; a slide whose detections
  all fall below the threshold does count its FNs;
- many-to-many matching (a detection near two GT points makes both TPs, chaining through GT neighbours).

``matching="strict"`` is the correct one-to-one metric and counts every FN (no empty-slide skip).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ccmct.config.dataset import DETECTION_RADIUS_L0
from ccmct.evaluation.ground_truth import load_ground_truth
from ccmct.evaluation.matching import MATCHINGS, Counts, match
from ccmct.geometry import box_centers, distance_nms


@dataclass(frozen=True)
class SlideScore:
    """One slide: counts and the number of detections after threshold + NMS."""

    counts: Counts
    n_detections: int

    def as_dict(self) -> dict:
        c = self.counts
        return {"f1": _nan_to_none(c.f1), "tp": c.tp, "fp": c.fp, "fn": c.fn,
                "precision": _nan_to_none(c.precision), "recall": _nan_to_none(c.recall),
                "n_detections": self.n_detections}


@dataclass(frozen=True)
class F1Result:
    """Overall (micro) and per-slide scores at one threshold."""

    threshold: float
    matching: str
    radius_l0: float
    counts: Counts
    per_slide: dict[str, SlideScore] = field(default_factory=dict)

    @property
    def f1(self) -> float:
        return self.counts.f1

    @property
    def precision(self) -> float:
        return self.counts.precision

    @property
    def recall(self) -> float:
        return self.counts.recall

    def as_dict(self) -> dict:
        """JSON-ready: f1, tp, fp, fn, precision, recall, threshold, matching, radius_l0, per_slide."""
        c = self.counts
        return {"f1": _nan_to_none(c.f1), "tp": c.tp, "fp": c.fp, "fn": c.fn,
                "precision": _nan_to_none(c.precision), "recall": _nan_to_none(c.recall),
                "threshold": float(self.threshold), "matching": self.matching, "radius_l0": self.radius_l0,
                "per_slide": {name: s.as_dict() for name, s in self.per_slide.items()}}


def _nan_to_none(value: float) -> float | None:
    return None if value != value else float(value)


def micro_scores(tp, fp, fn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F1, precision, recall) from summed TP / FP / FN, elementwise over arrays (NaN where undefined).

    F1 = 2 TP / (2 TP + FP + FN), precision = TP / (TP + FP), recall = TP / (TP + FN) — the vectorised
    form of :class:`ccmct.evaluation.matching.Counts` (used by the threshold search and the bootstrap).
    """
    tp, fp, fn = (np.asarray(x, np.float64) for x in (tp, fp, fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
    return f1, precision, recall


def resolve_ground_truth(ground_truth, results: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    """A database path is read for the slides of ``results``; a mapping is checked to cover them."""
    if isinstance(ground_truth, (str, os.PathLike)):
        return load_ground_truth(ground_truth, slides=list(results))
    missing = [name for name in results if name not in ground_truth]
    if missing:
        raise KeyError(f"no ground truth for {len(missing)} slide(s) of the results, e.g. {missing[:3]}")
    return ground_truth


def detections_after_nms(boxes: np.ndarray, threshold: float, radius_l0: float) -> np.ndarray:
    """Rows of ``boxes`` (N, 6) with score > threshold surviving distance NMS, best first."""
    keep = distance_nms(boxes[:, :4], boxes[:, 5], radius_l0=radius_l0, score_threshold=threshold)
    return boxes[keep]


def slide_score(boxes: np.ndarray, gt_l0: np.ndarray, *, threshold: float, matching: str = "paper",
                radius_l0: float = DETECTION_RADIUS_L0) -> SlideScore:
    """Score one slide: detections (N, 6) level-0 px vs GT points (M, 2)."""
    if matching == "paper" and len(boxes) == 0:
        return SlideScore(Counts(0, 0, 0), 0)  # the authors' empty-result-list skip
    kept = detections_after_nms(boxes, threshold, radius_l0)
    counts = match(box_centers(kept), np.asarray(gt_l0, np.float64).reshape(-1, 2),
                   matching=matching, radius_l0=radius_l0)
    return SlideScore(counts, len(kept))


def f1_scores(ground_truth, results: Mapping[str, np.ndarray], *, threshold: float, matching: str = "paper",
              radius_l0: float = DETECTION_RADIUS_L0) -> F1Result:
    """F1 per slide and micro overall at one threshold.

    Args:
        ground_truth: a SlideRunner database path (mitotic figures of the result slides are read) or a mapping
            slide -> (M, 2) GT points, level-0 px.
        results: slide -> (N, 6) detections [x1, y1, x2, y2, class, score], level-0 px (only these slides are
            evaluated).
        threshold: detections need ``score > threshold``.
        matching: ``'paper'`` (the authors' rule, quirks included) or ``'strict'`` (one-to-one).
        radius_l0: match and NMS radius, level-0 px.

    Returns:
        :class:`F1Result` (``.f1``, ``.counts``, ``.per_slide``, ``.as_dict()``).
    """
    if matching not in MATCHINGS:
        raise ValueError(f"matching must be one of {MATCHINGS}, got {matching!r}")
    gt = resolve_ground_truth(ground_truth, results)
    per_slide = {name: slide_score(np.asarray(boxes, np.float64).reshape(-1, 6), gt[name], threshold=threshold,
                                   matching=matching, radius_l0=radius_l0)
                 for name, boxes in results.items()}
    total = sum((s.counts for s in per_slide.values()), Counts(0, 0, 0))
    return F1Result(float(threshold), matching, float(radius_l0), total, per_slide)
