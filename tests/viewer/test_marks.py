"""Per-point TP / FP / FN marks agree with the evaluation's counts (ccmct.evaluation.marks)."""

from __future__ import annotations

import numpy as np
import pytest

from ccmct.evaluation.f1 import slide_score
from ccmct.evaluation.marks import slide_marks


def _boxes(xy, scores):
    xy = np.asarray(xy, float).reshape(-1, 2)
    return np.column_stack([xy - 25, xy + 25, np.full(len(xy), 2.0), scores])


def test_hand_made_slide_marks_each_point():
    gt = np.array([[100, 100], [500, 500], [900, 900]], float)
    det = _boxes([[105, 98], [300, 300], [900, 910], [700, 100]], [0.9, 0.8, 0.7, 0.3])
    marks = slide_marks(det, gt, threshold=0.5, matching="paper")
    # the 0.3 detection is below the threshold; (300, 300) is far from any GT -> FP; GT (500, 500) missed
    assert marks.det_xy_l0.tolist() == [[105, 98], [300, 300], [900, 910]]
    assert marks.det_tp.tolist() == [True, False, True]
    assert marks.gt_tp.tolist() == [True, False, True]
    assert (marks.counts.tp, marks.counts.fp, marks.counts.fn) == (2, 1, 1)
    assert marks.det_score.tolist() == [0.9, 0.8, 0.7]


@pytest.mark.parametrize("matching", ["paper", "strict"])
def test_marks_agree_with_slide_score_on_random_slides(matching):
    rng = np.random.default_rng(3)
    for _ in range(20):
        gt = rng.uniform(0, 600, size=(rng.integers(0, 40), 2))
        det_xy = np.concatenate([gt[: len(gt) // 2] + rng.normal(0, 10, (len(gt) // 2, 2)),
                                 rng.uniform(0, 600, size=(rng.integers(0, 30), 2))])
        boxes = _boxes(det_xy, rng.random(len(det_xy)))
        marks = slide_marks(boxes, gt, threshold=0.4, matching=matching)
        score = slide_score(boxes, gt, threshold=0.4, matching=matching)
        assert marks.counts == score.counts
        assert len(marks.det_xy_l0) == score.n_detections
        if matching == "strict":
            assert marks.det_tp.sum() == score.counts.tp
        assert (~marks.gt_tp).sum() == score.counts.fn


def test_paper_empty_result_list_counts_nothing():
    marks = slide_marks(np.zeros((0, 6)), np.array([[10.0, 10.0]]), threshold=0.5)
    assert marks.skipped and marks.counts.fn == 0 and marks.gt_tp.all()
    strict = slide_marks(np.zeros((0, 6)), np.array([[10.0, 10.0]]), threshold=0.5, matching="strict")
    assert not strict.skipped and strict.counts.fn == 1
