"""RetinaNet loss: anchor matching, sigmoid focal loss (Lin et al. 2017) and smooth-L1 box loss.

Targets per batch are padded: ``gt_boxes`` Tensor[B, G, 4] xyxy tile px and ``gt_labels`` Tensor[B, G]
long (1 = mitotic figure, 0 = padding). Everything is vectorised over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_iou, sigmoid_focal_loss

from ccmct.models.box_coder import encode

__all__ = ["DetectionLoss", "match_anchors"]


def match_anchors(anchors: Tensor, gt_boxes: Tensor, gt_labels: Tensor, *, iou_pos: float,
                  iou_neg: float) -> tuple[Tensor, Tensor]:
    """Assign each anchor to a GT box.

    Args:
        anchors: Tensor[A, 4] xyxy tile px.
        gt_boxes: Tensor[B, G, 4] xyxy tile px (padding rows arbitrary).
        gt_labels: Tensor[B, G] long, 0 = padding.
        iou_pos: IoU >= this -> positive (matched to the best-overlapping GT).
        iou_neg: IoU < this -> background; in between -> ignored.

    Returns:
        ``(state Tensor[B, A] long: 1 positive, 0 background, -1 ignored; gt_index Tensor[B, A] long)``.
    """
    b, g = gt_labels.shape
    if g == 0:
        zeros = torch.zeros(b, anchors.shape[0], dtype=torch.long, device=anchors.device)
        return zeros, zeros
    iou = box_iou(anchors, gt_boxes.reshape(-1, 4)).reshape(anchors.shape[0], b, g).permute(1, 0, 2)
    iou = iou.masked_fill(~(gt_labels > 0)[:, None, :], -1.0)            # [B, A, G]
    best_iou, gt_index = iou.max(dim=-1)
    state = torch.full_like(gt_index, -1)
    state[best_iou < iou_neg] = 0
    state[best_iou >= iou_pos] = 1
    return state, gt_index


class DetectionLoss(nn.Module):
    """Focal loss on all non-ignored anchors + smooth-L1 on positive anchors, each / #positives.

    Args:
        anchors: Tensor[A, 4] xyxy tile px.
        iou_pos, iou_neg: matching thresholds.
        alpha, gamma: focal loss parameters (paper / Lin et al.: 0.25, 2).
        beta: smooth-L1 transition point (in encoded units).

    ``forward((cls_logits [B, A, 1], box_deltas [B, A, 4]), gt_boxes, gt_labels)`` returns the scalar total
    loss and keeps the last parts in ``self.last_parts`` ({"focal": float tensor, "box": ...}).
    """

    def __init__(self, anchors: Tensor, *, iou_pos: float = 0.5, iou_neg: float = 0.4, alpha: float = 0.25,
                 gamma: float = 2.0, beta: float = 1.0 / 9):
        super().__init__()
        self.register_buffer("anchors", anchors.float(), persistent=False)
        self.iou_pos, self.iou_neg, self.alpha, self.gamma, self.beta = iou_pos, iou_neg, alpha, gamma, beta
        self.last_parts: dict[str, Tensor] = {}

    def forward(self, preds: tuple[Tensor, Tensor], gt_boxes: Tensor, gt_labels: Tensor) -> Tensor:
        cls_logits, box_deltas = preds
        anchors = self.anchors.to(box_deltas.device)
        state, gt_index = match_anchors(anchors, gt_boxes.float(), gt_labels, iou_pos=self.iou_pos,
                                        iou_neg=self.iou_neg)
        positive = state == 1
        n_pos = positive.sum().clamp(min=1).float()
        target = positive.float()[..., None].expand_as(cls_logits)
        focal = sigmoid_focal_loss(cls_logits.float(), target, alpha=self.alpha, gamma=self.gamma,
                                   reduction="none")
        focal = (focal * (state >= 0).float()[..., None]).sum() / n_pos
        if positive.any():
            matched = torch.gather(gt_boxes.float(), 1, gt_index[..., None].expand(-1, -1, 4))[positive]
            anchor_rows = anchors.expand(state.shape[0], -1, -1)[positive]
            box = F.smooth_l1_loss(box_deltas.float()[positive], encode(matched, anchor_rows),
                                   beta=self.beta, reduction="sum") / n_pos
        else:
            box = box_deltas.sum() * 0.0
        self.last_parts = {"focal": focal.detach(), "box": box.detach()}
        return focal + box
