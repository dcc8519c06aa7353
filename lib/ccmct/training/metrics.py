"""Validation metrics shown during training: the loss parts and a patch-level F1.

Patch-level F1: per validation patch, the detector's own detections (its post-processing: score above the
validation threshold the Learner sets, per-tile NMS; :mod:`ccmct.models.detector`) are matched one-to-one
to the annotated mitotic figures whose centres lie in the patch, a pair counting when the centres are at
most :data:`ccmct.config.dataset.DETECTION_RADIUS_L0` (25 px) apart; TP / FP / FN are summed over patches.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ccmct.config.dataset import DETECTION_RADIUS_L0

__all__ = ["LossPart", "PatchF1", "match_centres"]

try:
    from fastai.learner import Metric
except ImportError:  # pragma: no cover - fastai is a requirement
    Metric = object


def match_centres(det_xy: np.ndarray, gt_xy: np.ndarray, *, radius_px: float = DETECTION_RADIUS_L0) -> int:
    """Number of one-to-one pairs (Hungarian) of detection and GT centres within ``radius_px``."""
    if len(det_xy) == 0 or len(gt_xy) == 0:
        return 0
    dist = np.linalg.norm(det_xy[:, None, :] - gt_xy[None, :, :], axis=-1)
    rows, cols = linear_sum_assignment(np.where(dist <= radius_px, dist, 1e6))
    return int((dist[rows, cols] <= radius_px).sum())


class PatchF1(Metric):
    """Patch-level F1 of the validation batches (see module docstring); reads the detections of the
    validation prediction ``(losses, detections)`` of a tile detector."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.tp = self.fp = self.fn = 0

    def update(self, detections: list[dict[str, torch.Tensor]], gt_boxes: torch.Tensor,
               gt_labels: torch.Tensor) -> None:
        """Add one batch.

        Args:
            detections: one ``{"boxes": Tensor[n, 4] xyxy patch px, "scores", "labels"}`` per patch.
            gt_boxes: Tensor[B, G, 4] xyxy patch px; gt_labels: Tensor[B, G], 0 = padding row.
        """
        for detection, gt, labels in zip(detections, gt_boxes.cpu(), gt_labels.cpu()):
            boxes = detection["boxes"].float()
            det_xy = ((boxes[:, :2] + boxes[:, 2:]) / 2).cpu().numpy()
            gt_xy = ((gt[labels > 0, :2] + gt[labels > 0, 2:]) / 2).numpy()
            tp = match_centres(det_xy, gt_xy)
            self.tp, self.fp, self.fn = self.tp + tp, self.fp + len(det_xy) - tp, self.fn + len(gt_xy) - tp

    def accumulate(self, learn):
        _, detections = learn.pred
        self.update(detections, *learn.yb)

    @property
    def value(self):
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 0.0

    @property
    def name(self):
        return "patch_f1"


class LossPart(Metric):
    """Average of one part of the detector's loss dict (RetinaNet: ``"focal"`` or ``"box"``) over the validation
    batches (read from :attr:`ccmct.training.loss.DetectorLoss.last_parts`)."""

    def __init__(self, part: str):
        self.part = part
        self.reset()

    def reset(self):
        self.total, self.count = 0.0, 0

    def accumulate(self, learn):
        value = learn.loss_func.last_parts.get(self.part)
        if value is not None:
            n = learn.yb[0].shape[0]
            self.total += float(value) * n
            self.count += n

    @property
    def value(self):
        return self.total / self.count if self.count else None

    @property
    def name(self):
        return f"{self.part}_loss"
