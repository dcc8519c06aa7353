"""The all-thresholds-at-once search equals a brute-force loop over thresholds (the authors' procedure)."""

from __future__ import annotations

import numpy as np
import pytest

from ccmct.evaluation import f1_scores, optimize_threshold, paper_thresholds, threshold_curve
from ccmct.evaluation.matching import match_paper
from ccmct.geometry import box_centers, distance_nms


def _brute_force_paper(gt, results, thresholds, min_threshold, radius=25.0):
    """The authors' loop: NMS once at min_threshold, then per threshold keep score > t and match."""
    nmsed = {}
    for name, boxes in results.items():
        if len(boxes) == 0:
            continue  # empty result list: skipped
        keep = distance_nms(boxes[:, :4], boxes[:, 5], radius_l0=radius, score_threshold=min_threshold)
        nmsed[name] = boxes[keep]
    rows = []
    for t in thresholds:
        tp = fp = fn = 0
        for name, boxes in nmsed.items():
            c = match_paper(box_centers(boxes[boxes[:, 5] > t]), gt[name], radius)
            tp, fp, fn = tp + c.tp, fp + c.fp, fn + c.fn
        rows.append((tp, fp, fn))
    return np.array(rows)


def _case(rng, n_slides=5):
    gt, results = {}, {}
    for i in range(n_slides):
        xy = rng.integers(0, 400, (int(rng.integers(0, 40)), 2)).astype(float)
        hits = xy[rng.random(len(xy)) < 0.7] + rng.normal(0, 12, (0, 2)).sum(0)
        hits = hits + rng.normal(0, 12, hits.shape)
        false = rng.integers(0, 400, (int(rng.integers(0, 40)), 2)).astype(float)
        centres = np.concatenate([hits, false, hits + 15])  # duplicates for the NMS
        scores = rng.uniform(0.2, 1.0, len(centres)).round(3)
        gt[f"s{i}"] = xy
        results[f"s{i}"] = np.column_stack([centres - 12, centres + 12, np.zeros(len(centres)), scores])
    results["s1"] = np.zeros((0, 6))
    results["s2"] = results["s2"][results["s2"][:, 5] <= 0.3]  # everything below the minimum threshold
    return gt, results


@pytest.mark.parametrize("seed", range(5))
def test_paper_curve_equals_brute_force_loop(seed):
    gt, results = _case(np.random.default_rng(seed))
    search = threshold_curve(gt, results, min_threshold=0.3)
    np.testing.assert_allclose(search.thresholds, np.arange(0.3, 0.99, 0.01), atol=1e-12)
    assert search.thresholds[49] == 0.79
    expected = _brute_force_paper(gt, results, search.thresholds, 0.3)
    np.testing.assert_array_equal(np.column_stack([search.tp, search.fp, search.fn]), expected)
    f1 = 2 * expected[:, 0] / (2 * expected[:, 0] + expected[:, 1] + expected[:, 2])
    assert search.best_index == int(np.argmax(f1))  # first maximum
    assert search.best_threshold == search.thresholds[int(np.argmax(f1))]


@pytest.mark.parametrize("seed", range(2))
def test_both_matchings_agree_with_f1_scores_at_every_threshold(seed):
    gt, results = _case(np.random.default_rng(100 + seed), n_slides=3)
    for matching in ("paper", "strict"):
        search = optimize_threshold(gt, results, min_threshold=0.5, matching=matching)
        for k in range(0, len(search.thresholds), 7):
            c = f1_scores(gt, results, threshold=search.thresholds[k], matching=matching).counts
            assert (c.tp, c.fp, c.fn) == (search.tp[k], search.fp[k], search.fn[k])


def test_first_maximum_and_grid():
    assert paper_thresholds(0.5)[-1] == pytest.approx(0.98) and len(paper_thresholds(0.5)) == 49
    gt = {"a": np.array([[0.0, 0]])}
    # one TP at 0.9: F1 = 1 for every t < 0.9 -> the first maximum is the minimum threshold
    search = optimize_threshold(gt, {"a": np.array([[-5, -5, 5, 5, 0, 0.9]])}, min_threshold=0.5)
    assert search.best_threshold == 0.5 and search.best_f1 == 1.0
    assert search.f1[-1] == 0.0  # t = 0.98: no detection, one FN
    with pytest.raises(ValueError, match="min_threshold"):
        threshold_curve(gt, {"a": np.zeros((0, 6))}, thresholds=[0.1], min_threshold=0.5)
