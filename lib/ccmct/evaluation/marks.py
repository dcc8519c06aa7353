"""Which detection is a TP or an FP and which ground-truth point is missed (FN), per slide.

The same pipeline and rules as :func:`ccmct.evaluation.f1.slide_score` (threshold with ``score >
threshold``, distance NMS, box centres, then the paper's or the strict matching of
:mod:`ccmct.evaluation.matching`), kept per point instead of summed, for drawing (``ccmct view``) and for
export (QuPath GeoJSON). Under the paper's rule TP is counted on GT points, so the number of TP
*detections* can differ from ``counts.tp`` (docs/evaluation.md); the counts here are always the
evaluation's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ccmct.config.dataset import DETECTION_RADIUS_L0
from ccmct.evaluation.f1 import detections_after_nms
from ccmct.evaluation.matching import MATCHINGS, Counts, paper_marks, strict_pairs
from ccmct.geometry import box_centers


@dataclass(frozen=True)
class SlideMarks:
    """Per-point outcome on one slide (level-0 px).

    Attributes:
        det_xy_l0: (N, 2) centres of the detections kept (score > threshold, after NMS), best first.
        det_score: (N,) their scores.
        det_tp: (N,) True = the detection is matched (TP), False = FP.
        gt_xy_l0: (M, 2) ground-truth points.
        gt_tp: (M,) True = found (TP), False = missed (FN); all True on a skipped slide (none counted).
        counts: the evaluation's TP / FP / FN of the slide.
        skipped: the paper's empty-result-list rule applied (no detections at all: nothing counted).
    """

    det_xy_l0: np.ndarray
    det_score: np.ndarray
    det_tp: np.ndarray
    gt_xy_l0: np.ndarray
    gt_tp: np.ndarray
    counts: Counts
    skipped: bool = False


def slide_marks(boxes: np.ndarray, gt_l0: np.ndarray, *, threshold: float, matching: str = "paper",
                radius_l0: float = DETECTION_RADIUS_L0) -> SlideMarks:
    """TP / FP per detection and TP / FN per GT point of one slide.

    Args:
        boxes: (N, 6) detections [x1, y1, x2, y2, class, score], level-0 px.
        gt_l0: (M, 2) ground-truth points, level-0 px.
        threshold: detections need ``score > threshold``.
        matching: 'paper' or 'strict' (:mod:`ccmct.evaluation.matching`).
        radius_l0: match and NMS radius, level-0 px.
    """
    if matching not in MATCHINGS:
        raise ValueError(f"matching must be one of {MATCHINGS}, got {matching!r}")
    boxes = np.asarray(boxes, np.float64).reshape(-1, 6)
    gt = np.asarray(gt_l0, np.float64).reshape(-1, 2)
    if matching == "paper" and len(boxes) == 0:  # the authors' empty-result-list skip (ccmct.evaluation.f1)
        return SlideMarks(np.zeros((0, 2)), np.zeros(0), np.zeros(0, bool), gt, np.ones(len(gt), bool),
                          Counts(0, 0, 0), skipped=True)
    kept = detections_after_nms(boxes, threshold, radius_l0)
    centres = box_centers(kept)
    if matching == "paper":
        det_tp, gt_tp = paper_marks(centres, gt, radius_l0)
        counts = Counts(int(gt_tp.sum()), int((~det_tp).sum()), int((~gt_tp).sum()))
    else:
        det_index, gt_index = strict_pairs(centres, gt, radius_l0)
        det_tp = np.zeros(len(centres), bool)
        det_tp[det_index] = True
        gt_tp = np.zeros(len(gt), bool)
        gt_tp[gt_index] = True
        counts = Counts(len(det_index), len(centres) - len(det_index), len(gt) - len(gt_index))
    return SlideMarks(centres, kept[:, 5].copy(), det_tp, gt, gt_tp, counts)


def marks_by_slide(ground_truth, results, *, threshold: float, matching: str = "paper",
                   radius_l0: float = DETECTION_RADIUS_L0) -> dict[str, SlideMarks]:
    """:func:`slide_marks` for every slide of ``results`` (ground truth: a database path or a mapping)."""
    from ccmct.evaluation.f1 import resolve_ground_truth

    gt = resolve_ground_truth(ground_truth, results)
    return {name: slide_marks(boxes, gt[name], threshold=threshold, matching=matching, radius_l0=radius_l0)
            for name, boxes in results.items()}


def outcome_table(marks: SlideMarks) -> dict:
    """One slide's marks as points with outcome "TP" / "FP" (detections, with score) and "FN" (missed GT).

    Returns ``{"xy": (K, 2), "outcome": list[str], "score": (K,) with NaN for FN}`` (the input of
    :func:`ccmct.data.export.detections_geojson`).
    """
    fn = marks.gt_xy_l0[~marks.gt_tp]
    outcome = ["TP" if t else "FP" for t in marks.det_tp] + ["FN"] * len(fn)
    return {"xy": np.concatenate([marks.det_xy_l0.reshape(-1, 2), fn.reshape(-1, 2)]), "outcome": outcome,
            "score": np.concatenate([marks.det_score, np.full(len(fn), np.nan)])}
