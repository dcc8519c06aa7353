"""F1 per slide and micro overall: thresholds, NMS, the empty-result quirk, DB ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from ccmct.errors import DatabaseError
from ccmct.evaluation import f1_scores, load_ground_truth
from ccmct.evaluation.matching import Counts


def _boxes(centres, scores):
    c = np.asarray(centres, float).reshape(-1, 2)
    return np.column_stack([c - 10, c + 10, np.zeros(len(c)), scores])


def test_empty_result_list_drops_false_negatives_in_paper_only():
    gt = {"a.svs": np.array([[100.0, 100]]), "b.svs": np.array([[0.0, 0], [500, 500]])}
    results = {"a.svs": _boxes([[102, 100]], [0.9]), "b.svs": np.zeros((0, 6))}
    paper = f1_scores(gt, results, threshold=0.5)
    assert paper.per_slide["b.svs"].counts == Counts(0, 0, 0)
    assert paper.counts == Counts(1, 0, 0) and paper.f1 == 1.0
    strict = f1_scores(gt, results, threshold=0.5, matching="strict")
    assert strict.counts == Counts(1, 0, 2)


def test_all_detections_below_threshold_count_their_fns():
    gt = {"a.svs": np.array([[0.0, 0], [300, 300]])}
    result = f1_scores(gt, {"a.svs": _boxes([[0, 0]], [0.4])}, threshold=0.5)
    assert result.counts == Counts(0, 0, 2) and result.f1 == 0.0


def test_threshold_is_strict_and_nms_runs_before_matching():
    gt = {"a.svs": np.array([[0.0, 0]])}
    # two detections 10 px apart on one GT: NMS keeps the better; the 0.5 one is dropped by 'score > 0.5'
    results = {"a.svs": _boxes([[0, 0], [10, 0], [400, 0]], [0.9, 0.8, 0.5])}
    result = f1_scores(gt, results, threshold=0.5)
    assert result.per_slide["a.svs"].n_detections == 1 and result.counts == Counts(1, 0, 0)
    assert f1_scores(gt, results, threshold=0.49).counts == Counts(1, 1, 0)


def test_slides_absent_from_results_are_ignored_and_micro_sums(small_case):
    db, gt, results = small_case
    subset = {k: results[k] for k in ("s0.svs", "s3.svs")}
    overall = f1_scores(db, subset, threshold=0.6)
    assert set(overall.per_slide) == {"s0.svs", "s3.svs"}
    total = sum((s.counts for s in overall.per_slide.values()), Counts(0, 0, 0))
    assert total == overall.counts
    assert overall.counts.tp + overall.counts.fn == len(gt["s0.svs"]) + len(gt["s3.svs"])
    doc = overall.as_dict()
    assert set(doc) >= {"f1", "tp", "fp", "fn", "threshold", "matching", "per_slide", "precision", "recall"}
    assert set(doc["per_slide"]["s0.svs"]) >= {"f1", "tp", "fp", "fn", "n_detections"}


def test_ground_truth_reads_only_mitotic_figures(tmp_path, gt_db_writer):
    gt = {"a.svs": np.array([[10.0, 20], [30, 40]]), "b.svs": np.zeros((0, 2))}
    db = gt_db_writer(tmp_path / "g.sqlite", gt, lookalikes={"a.svs": np.array([[500.0, 500]])})
    loaded = load_ground_truth(db)
    np.testing.assert_array_equal(loaded["a.svs"], gt["a.svs"])
    assert loaded["b.svs"].shape == (0, 2)
    with pytest.raises(DatabaseError, match=r"g\.sqlite.*not in this database"):
        load_ground_truth(db, slides=["zzz.svs"])
