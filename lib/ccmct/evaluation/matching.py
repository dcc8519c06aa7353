"""Per-slide matching of detections to ground-truth points: the authors' rule and strict one-to-one.

Both take detection centres and GT points in level-0 px and a radius (inclusive).

**paper** (the authors' `lib/calculate_F1.py`; docs/evaluation.md, ``_F1_core``): every point P (detection or GT) looks at all points
within the radius; if that neighbourhood holds at least one detection and one GT, all of them are marked.
Unrolled, that means: a GT point is a TP iff some GT point within the radius of it (itself included) has a
detection within the radius; a detection is not an FP iff a GT lies within the radius of it or of a
detection within the radius of it. TP counts marked GT points, FP unmarked detections, FN unmarked GT
points, so TP + FP need not equal the number of detections.

**strict**: a maximum one-to-one matching between detections and GT at distance <= radius
(``scipy.optimize.linear_sum_assignment`` per connected component of the gated distance graph, preferring
the smaller total distance among maximum matchings). TP = matched pairs, FP = N - TP, FN = M - TP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

MATCHINGS = ("paper", "strict")


@dataclass(frozen=True)
class Counts:
    """TP / FP / FN of one slide (or summed)."""

    tp: int
    fp: int
    fn: int

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def f1(self) -> float:
        """2TP / (2TP + FP + FN); NaN when all three are 0."""
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else float("nan")

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")


def pairs_within(a_l0: np.ndarray, b_l0: np.ndarray, radius_l0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (i, j, distance) with ``|a[i] - b[j]| <= radius_l0`` (exact, inclusive)."""
    if len(a_l0) == 0 or len(b_l0) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0)
    pad = radius_l0 * (1 + 1e-9) + 1e-9  # the KD-tree bound is only a prefilter; the test below is exact
    found = cKDTree(a_l0).sparse_distance_matrix(cKDTree(b_l0), pad, output_type="ndarray")
    i, j = found["i"].astype(np.int64), found["j"].astype(np.int64)
    d2 = ((a_l0[i] - b_l0[j]) ** 2).sum(axis=1)
    ok = d2 <= radius_l0 * radius_l0
    return i[ok], j[ok], np.sqrt(d2[ok])


def _spread(flags: np.ndarray, points_l0: np.ndarray, radius_l0: float) -> np.ndarray:
    """flags OR (some point within the radius has the flag)."""
    i, j, _ = pairs_within(points_l0, points_l0[flags], radius_l0)
    out = flags.copy()
    out[i] = True
    return out


def paper_marks(det_l0: np.ndarray, gt_l0: np.ndarray, radius_l0: float) -> tuple[np.ndarray, np.ndarray]:
    """The authors' marks per point: (detection marked (N,) bool, GT marked (M,) bool).

    A marked GT point is a TP (else FN); an unmarked detection is an FP (see module docstring).
    """
    di, gi, _ = pairs_within(det_l0, gt_l0, radius_l0)
    gt_direct = np.zeros(len(gt_l0), bool)
    gt_direct[gi] = True
    det_direct = np.zeros(len(det_l0), bool)
    det_direct[di] = True
    return _spread(det_direct, det_l0, radius_l0), _spread(gt_direct, gt_l0, radius_l0)


def match_paper(det_l0: np.ndarray, gt_l0: np.ndarray, radius_l0: float) -> Counts:
    """The authors' many-to-many rule (see module docstring)."""
    det_marked, gt_marked = paper_marks(det_l0, gt_l0, radius_l0)
    tp = int(gt_marked.sum())
    return Counts(tp, int(len(det_l0) - det_marked.sum()), len(gt_l0) - tp)


def strict_pairs(det_l0: np.ndarray, gt_l0: np.ndarray, radius_l0: float) -> tuple[np.ndarray, np.ndarray]:
    """A maximum one-to-one matching within the radius: (detection indices, GT indices)."""
    di, gi, dist = pairs_within(det_l0, gt_l0, radius_l0)
    if len(di) == 0:
        return di, gi
    n_det = len(det_l0)
    graph = coo_matrix((np.ones(len(di)), (di, gi + n_det)), shape=(n_det + len(gt_l0),) * 2)
    _, label = connected_components(graph, directed=False)
    comp = label[di]
    sizes = np.bincount(comp)
    simple = sizes[comp] == 1  # a component with a single pair: matched as is
    out_d, out_g = [di[simple]], [gi[simple]]
    complex_pairs = np.flatnonzero(~simple)
    order = complex_pairs[np.argsort(comp[complex_pairs], kind="stable")]
    bounds = np.flatnonzero(np.diff(comp[order])) + 1
    for group in np.split(order, bounds) if len(order) else []:
        rows, r_idx = np.unique(di[group], return_inverse=True)
        cols, c_idx = np.unique(gi[group], return_inverse=True)
        big = radius_l0 * (min(len(rows), len(cols)) + 1) + 1.0
        cost = np.full((len(rows), len(cols)), big)
        cost[r_idx, c_idx] = dist[group]
        r, c = linear_sum_assignment(cost)
        ok = cost[r, c] < big
        out_d.append(rows[r[ok]])
        out_g.append(cols[c[ok]])
    return np.concatenate(out_d), np.concatenate(out_g)


def match_strict(det_l0: np.ndarray, gt_l0: np.ndarray, radius_l0: float) -> Counts:
    """Maximum one-to-one matching within the radius (see module docstring)."""
    matched, _ = strict_pairs(det_l0, gt_l0, radius_l0)
    tp = len(matched)
    return Counts(tp, len(det_l0) - tp, len(gt_l0) - tp)


def match(det_l0: np.ndarray, gt_l0: np.ndarray, *, matching: str, radius_l0: float) -> Counts:
    """Dispatch on ``matching`` ('paper' | 'strict')."""
    if matching == "paper":
        return match_paper(det_l0, gt_l0, radius_l0)
    if matching == "strict":
        return match_strict(det_l0, gt_l0, radius_l0)
    raise ValueError(f"matching must be one of {MATCHINGS}, got {matching!r}")
