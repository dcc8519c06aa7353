"""PatchF1 (the validation patch F1 shown during training) on hand-made detections and ground truth.

Detections are what a tile detector returns in eval mode (:mod:`ccmct.models.detector`): one dict of
``boxes`` (xyxy patch px), ``scores`` and ``labels`` per patch, already thresholded and NMS-ed by the detector;
each hand-made detection is a 50 px box centred at (x, y).
"""

from __future__ import annotations

import pytest
import torch

from ccmct.training.metrics import PatchF1, match_centres


def _preds(detections_per_image: list[list[tuple[float, float, float]]]) -> list[dict[str, torch.Tensor]]:
    """One detection dict per image with a 50 px box around each (x, y) and the given score."""
    out = []
    for dets in detections_per_image:
        boxes = torch.tensor([[x - 25, y - 25, x + 25, y + 25] for x, y, _ in dets], dtype=torch.float32)
        out.append({"boxes": boxes.reshape(-1, 4), "scores": torch.tensor([s for *_, s in dets]),
                    "labels": torch.zeros(len(dets), dtype=torch.long)})
    return out


def _gt(centres_per_image: list[list[tuple[float, float]]], pad_to: int = 3):
    """GT boxes [B, G, 4] (50 px around each centre) and labels [B, G], padded with label-0 rows."""
    boxes = torch.zeros(len(centres_per_image), pad_to, 4)
    labels = torch.zeros(len(centres_per_image), pad_to, dtype=torch.long)
    for b, centres in enumerate(centres_per_image):
        for g, (x, y) in enumerate(centres):
            boxes[b, g] = torch.tensor([x - 25, y - 25, x + 25, y + 25])
            labels[b, g] = 1
        boxes[b, len(centres):] = torch.tensor([100.0, 100, 150, 150])  # padding: must be ignored
    return boxes, labels


def _metric(dets, gts) -> PatchF1:
    metric = PatchF1()
    metric.update(_preds(dets), *_gt(gts))
    return metric


@pytest.mark.parametrize("dets, gts, counts, f1", [
    # two detections on two mitoses, 10 px off
    ([[(56, 56, 0.9), (200, 120, 0.9)]], [[(66, 56), (200, 130)]], (2, 0, 0), 1.0),
    # 30 px off: not a match -> one FP and one FN
    ([[(56, 56, 0.9)]], [[(86, 56)]], (0, 1, 1), 0.0),
    # exactly 25 px: a match (inclusive radius)
    ([[(56, 56, 0.9)]], [[(81, 56)]], (1, 0, 0), 1.0),
    # two detections near one mitosis: one-to-one, so one TP and one FP
    ([[(40, 40, 0.9), (72, 40, 0.8)]], [[(56, 40)]], (1, 1, 0), 2 / 3),
    # no detection (the detector's threshold removed it): one FN
    ([[]], [[(56, 56)]], (0, 0, 1), 0.0),
    # nothing at all
    ([[]], [[]], (0, 0, 0), 0.0),
    # sums over the patches of a batch: patch 1 perfect, patch 2 one FP, patch 3 one FN
    ([[(56, 56, 0.9)], [(120, 120, 0.9)], []], [[(56, 60)], [], [(200, 200)]], (1, 1, 1), 0.5),
])
def test_patch_f1_counts(dets, gts, counts, f1):
    metric = _metric(dets, gts)
    assert (metric.tp, metric.fp, metric.fn) == counts
    assert metric.value == pytest.approx(f1)


def test_matching_is_optimal_not_greedy():
    # detection A (x=100) lies within 25 px of both mitoses, detection B (x=60) only of the first; a greedy
    # nearest match could pair A with the first and leave B and the second mitosis unmatched
    import numpy as np

    det = np.array([[100.0, 50.0], [60.0, 50.0]])
    gt = np.array([[82.0, 50.0], [120.0, 50.0]])
    assert match_centres(det, gt) == 2
    assert match_centres(det, gt, radius_px=10) == 0
    assert match_centres(det[:0], gt) == 0 and match_centres(det, gt[:0]) == 0


def test_reset_between_validations():
    metric = _metric([[(56, 56, 0.9)]], [[(56, 56)]])
    assert metric.value == 1.0
    metric.reset()
    assert (metric.tp, metric.fp, metric.fn, metric.value) == (0, 0, 0, 0.0)
