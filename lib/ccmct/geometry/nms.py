"""Greedy distance non-maximum suppression (the authors' slide-level NMS, `lib/nms_WSI.py`; docs/inference.md).

Detections are points (box centres). Processed in order of decreasing score, a detection is kept unless a
kept detection lies within ``radius_l0`` (inclusive) of it. Instead of the sequential loop we run the
equivalent parallel form: a detection whose score ranks above every still-undecided neighbour is kept,
its neighbours are suppressed, repeat. Each round decides at least the best undecided detection, and a
detection decided in a round is decided exactly as the sequential loop would (all its better-ranked
neighbours are already decided), so the result is identical; the number of rounds is the length of the
longest chain of ever-better neighbours (a handful in practice; after 12 rounds the remaining
undecided detections are finished by the plain sequential loop).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ccmct.config.dataset import DETECTION_RADIUS_L0


def box_centers(boxes_l0: np.ndarray) -> np.ndarray:
    """Centres ``(N, 2)`` [x, y] of xyxy boxes ``(N, >=4)`` (level-0 px), float64."""
    boxes = np.asarray(boxes_l0, dtype=np.float64)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


def _as_points(boxes_or_centers: np.ndarray) -> np.ndarray:
    array = np.asarray(boxes_or_centers, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 2))
    if array.ndim != 2 or array.shape[1] not in (2, 4):
        raise ValueError(f"expected centres (N, 2) or xyxy boxes (N, 4), got shape {array.shape}")
    return box_centers(array) if array.shape[1] == 4 else array


def neighbor_pairs(points_l0: np.ndarray, radius_l0: float) -> np.ndarray:
    """All pairs ``(i, j)``, i < j, of points at distance <= ``radius_l0``; int64 array (P, 2)."""
    if len(points_l0) < 2:
        return np.zeros((0, 2), np.int64)
    return cKDTree(points_l0).query_pairs(r=radius_l0, output_type="ndarray").astype(np.int64)


def distance_nms(boxes_or_centers: np.ndarray, scores: np.ndarray, *, radius_l0: float = DETECTION_RADIUS_L0,
                 score_threshold: float | None = None) -> np.ndarray:
    """Greedy distance NMS.

    Args:
        boxes_or_centers: xyxy boxes (N, 4) or centres (N, 2), level-0 px.
        scores: (N,) detection scores.
        radius_l0: suppression radius in level-0 px (inclusive: a detection exactly ``radius_l0`` away is
            suppressed).
        score_threshold: if given, only detections with ``score > score_threshold`` (strict) take part.

    Returns:
        int64 indices into the input of the kept detections, by decreasing score (ties: lower index first).

    Example:
        >>> distance_nms(np.array([[0, 0], [10, 0], [40, 0]]), np.array([0.9, 0.8, 0.7])).tolist()
        [0, 2]
    """
    points = _as_points(boxes_or_centers)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(points):
        raise ValueError(f"{len(points)} detections but {len(scores)} scores")
    candidates = np.arange(len(points)) if score_threshold is None else np.flatnonzero(scores > score_threshold)
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    kept_in_order = _greedy_keep(points[order], radius_l0)
    return order[kept_in_order].astype(np.int64)


def _greedy_keep(points_sorted: np.ndarray, radius_l0: float, *, max_rounds: int = 12) -> np.ndarray:
    """Indices (ascending = by rank) kept by greedy NMS on points already sorted best-first.

    Parallel rounds first (see module docstring); a long chain of ever-better neighbours (e.g. a row of
    detections with monotone scores) would need one round per link, so after ``max_rounds`` the rest is
    finished by the sequential loop over the remaining undecided detections.
    """
    n = len(points_sorted)
    pairs = neighbor_pairs(points_sorted, radius_l0)
    state = np.zeros(n, np.int8)  # 0 undecided, 1 kept, 2 suppressed
    src = np.concatenate([pairs[:, 0], pairs[:, 1]])
    dst = np.concatenate([pairs[:, 1], pairs[:, 0]])
    for _ in range(max_rounds):
        undecided = state == 0
        if not undecided.any():
            return np.flatnonzero(state == 1)
        live = undecided[src] & undecided[dst]
        src, dst = src[live], dst[live]
        best_neighbor = np.full(n, n, np.int64)  # rank = index (sorted order)
        np.minimum.at(best_neighbor, src, dst)
        keep = undecided & (np.arange(n) < best_neighbor)
        state[keep] = 1
        suppress = np.zeros(n, bool)
        suppress[dst[keep[src]]] = True
        state[suppress & undecided & ~keep] = 2
    _finish_sequentially(state, src, dst)
    return np.flatnonzero(state == 1)


def _finish_sequentially(state: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
    """The plain greedy loop over the still-undecided detections (in rank order), in place."""
    live = (state[src] == 0) & (state[dst] == 0)
    src, dst = src[live], dst[live]
    order = np.argsort(src, kind="stable")
    src, dst = src[order], dst[order]
    starts = np.searchsorted(src, np.arange(len(state) + 1))
    for i in np.flatnonzero(state == 0).tolist():
        if state[i] == 0:
            state[i] = 1
            neighbours = dst[starts[i]:starts[i + 1]]
            state[neighbours[state[neighbours] == 0]] = 2
