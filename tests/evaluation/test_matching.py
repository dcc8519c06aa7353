"""Paper and strict matching: one hand-built case per quirk, and random cases against literal references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from ccmct.evaluation.matching import Counts, match_paper, match_strict, strict_pairs

R = 25.0


def _authors_core(det, gt, radius):
    """Literal transcription of the rule in the authors' `lib/calculate_F1.py`; docs/evaluation.md: every point marks its whole neighbourhood."""
    points = np.concatenate([det, gt]).reshape(-1, 2)
    is_det = np.arange(len(points)) < len(det)
    marked = np.zeros(len(points), bool)
    for p in points:
        near = ((points - p) ** 2).sum(1) <= radius**2
        if (near & is_det).any() and (near & ~is_det).any():
            marked |= near
    tp = int(marked[~is_det].sum())
    return Counts(tp, int((~marked[is_det]).sum()), len(gt) - tp)


def _max_matching(det, gt, radius):
    adjacency = ((det[:, None, :] - gt[None, :, :]) ** 2).sum(-1) <= radius**2
    if adjacency.size == 0:
        return 0
    return int((maximum_bipartite_matching(csr_matrix(adjacency.astype(int)), perm_type="column") >= 0).sum())


def test_detection_between_two_gts_makes_both_tp_in_paper_only():
    det, gt = np.array([[0.0, 0]]), np.array([[-20.0, 0], [20, 0]])
    assert match_paper(det, gt, R) == Counts(tp=2, fp=0, fn=0)
    assert match_strict(det, gt, R) == Counts(tp=1, fp=0, fn=1)


def test_two_detections_on_one_gt_are_both_not_fp_in_paper():
    det, gt = np.array([[-24.0, 0], [24, 0]]), np.array([[0.0, 0]])
    assert match_paper(det, gt, R) == Counts(tp=1, fp=0, fn=0)
    assert match_strict(det, gt, R) == Counts(tp=1, fp=1, fn=0)


def test_gt_chaining_reaches_50_px_in_paper():
    # GT B is 45 px from the detection but 20 px from GT A, which has the detection 25 px away
    det, gt = np.array([[0.0, 0]]), np.array([[25.0, 0], [45, 0]])
    assert match_paper(det, gt, R) == Counts(tp=2, fp=0, fn=0)
    assert match_strict(det, gt, R) == Counts(tp=1, fp=0, fn=1)


def test_detection_chaining_when_not_nms_filtered():
    # detection D2 is 40 px from the GT but 20 px from D1, which is 20 px from the GT -> not an FP
    det, gt = np.array([[20.0, 0], [40, 0]]), np.array([[0.0, 0]])
    assert match_paper(det, gt, R) == _authors_core(det, gt, R) == Counts(tp=1, fp=0, fn=0)


def test_radius_inclusive_and_unmatched_points():
    det, gt = np.array([[0.0, 0], [100, 100]]), np.array([[15.0, 20], [300, 300]])  # 25 px exactly
    assert match_paper(det, gt, R) == Counts(tp=1, fp=1, fn=1)
    assert match_strict(det, gt, R) == Counts(tp=1, fp=1, fn=1)
    assert match_paper(det, gt, 24.999) == Counts(tp=0, fp=2, fn=2)


def test_strict_prefers_maximum_cardinality_then_distance():
    # greedy nearest would pair d0-g0 (5 px) and leave g1 unmatched; the maximum matching pairs both
    det, gt = np.array([[0.0, 0], [-20, 0]]), np.array([[5.0, 0], [-40, 0]])
    d, g = strict_pairs(det, gt, R)
    assert sorted(zip(d.tolist(), g.tolist())) == [(0, 0), (1, 1)]


@pytest.mark.parametrize("seed", range(4))
def test_random_cases_against_references(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        det = rng.integers(0, 160, (int(rng.integers(0, 30)), 2)).astype(float)
        gt = rng.integers(0, 160, (int(rng.integers(0, 30)), 2)).astype(float)
        assert match_paper(det, gt, R) == _authors_core(det, gt, R)
        strict = match_strict(det, gt, R)
        assert strict.tp == _max_matching(det, gt, R)
        assert (strict.fp, strict.fn) == (len(det) - strict.tp, len(gt) - strict.tp)
        d, g = strict_pairs(det, gt, R)
        assert len(set(d.tolist())) == len(d) and len(set(g.tolist())) == len(g)
        assert np.all(((det[d] - gt[g]) ** 2).sum(1) <= R**2)
