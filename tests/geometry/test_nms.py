"""Distance NMS against a brute-force sequential reference."""

from __future__ import annotations

import numpy as np
import pytest

from ccmct.geometry import box_centers, distance_nms


def _brute_force(points, scores, radius, threshold=None):
    idx = np.arange(len(scores)) if threshold is None else np.flatnonzero(scores > threshold)
    kept, suppressed = [], np.zeros(len(scores), bool)
    for i in idx[np.argsort(-scores[idx], kind="stable")]:
        if not suppressed[i]:
            kept.append(i)
            suppressed |= ((points - points[i]) ** 2).sum(1) <= radius**2
    return np.array(kept, dtype=np.int64)


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_on_dense_random_points(seed):
    rng = np.random.default_rng(seed)
    for trial in range(25):
        n = int(rng.integers(0, 250))
        points = rng.integers(0, 150, (n, 2)).astype(float)  # integer grid: exact ties and exact radius hits
        scores = rng.random(n).round(2)  # many equal scores
        threshold = None if trial % 2 else 0.4
        got = distance_nms(points, scores, radius_l0=25, score_threshold=threshold)
        np.testing.assert_array_equal(got, _brute_force(points, scores, 25, threshold))


def test_radius_is_inclusive_threshold_strict_and_boxes_use_centres():
    boxes = np.array([[0, 0, 10, 10], [15, 20, 25, 30], [40, 0, 50, 10], [100, 100, 110, 110]], float)
    scores = np.array([0.9, 0.8, 0.5, 0.7])
    np.testing.assert_array_equal(box_centers(boxes)[1], [20, 25])
    # centres (5,5) and (20,25) are exactly 25 px apart -> suppressed; (45,5) is 40 px away -> kept
    assert distance_nms(boxes, scores).tolist() == [0, 3, 2]
    assert distance_nms(boxes, scores, score_threshold=0.5).tolist() == [0, 3]
    assert distance_nms(box_centers(boxes), scores, radius_l0=24.99).tolist() == [0, 1, 3, 2]


def test_chain_is_resolved_greedily_not_by_neighbourhood():
    # a-b-c on a line, 20 px apart: a suppresses b, so c (40 px from a) survives
    points = np.array([[0, 0], [20, 0], [40, 0]], float)
    assert distance_nms(points, np.array([0.9, 0.95, 0.8])).tolist() == [1]
    assert distance_nms(points, np.array([0.95, 0.9, 0.8])).tolist() == [0, 2]


def test_empty_and_bad_input():
    assert distance_nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []
    assert distance_nms(np.ones((3, 2)), np.ones(3), score_threshold=1.0).tolist() == []
    with pytest.raises(ValueError, match="centres"):
        distance_nms(np.ones((3, 3)), np.ones(3))
    with pytest.raises(ValueError, match="scores"):
        distance_nms(np.ones((3, 2)), np.ones(2))


def test_long_monotone_chain_finishes_sequentially_and_matches():
    # 2,000 detections 10 px apart with scores rising along the row: one parallel round per link would be
    # needed; the sequential finish must give the same answer as the brute force (every third one kept)
    points = np.column_stack([np.arange(2000) * 10.0, np.zeros(2000)])
    scores = np.linspace(0.3, 0.99, 2000)
    got = distance_nms(points, scores)
    np.testing.assert_array_equal(got, _brute_force(points, scores, 25))
    assert len(got) == 667


@pytest.mark.parametrize("max_rounds", [0, 1, 10_000])
def test_parallel_rounds_and_sequential_finish_agree(max_rounds):
    from ccmct.geometry.nms import _greedy_keep

    rng = np.random.default_rng(max_rounds)
    for _ in range(20):
        points = rng.integers(0, 120, (int(rng.integers(1, 200)), 2)).astype(float)
        scores = rng.random(len(points))
        order = np.argsort(-scores, kind="stable")
        got = order[_greedy_keep(points[order], 25.0, max_rounds=max_rounds)]
        np.testing.assert_array_equal(got, _brute_force(points, scores, 25))
