"""Box regression targets relative to anchors (Faster R-CNN / RetinaNet parameterisation).

``t_x = (x_gt - x_a) / w_a * 10``, ``t_y`` likewise, ``t_w = log(w_gt / w_a) * 5``, ``t_h`` likewise —
the authors' scaling (0.1 / 0.2), i.e. torchvision's weights (10, 10, 5, 5). Boxes are xyxy in tile px.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["WEIGHTS", "decode", "encode"]

WEIGHTS = (10.0, 10.0, 5.0, 5.0)
"""Scale factors of (t_x, t_y, t_w, t_h)."""

_MAX_LOG_SCALE = math.log(1000.0 / 16)  # as torchvision: keeps exp() finite for wild deltas


def _centre_size(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + w / 2, boxes[..., 1] + h / 2, w, h


def encode(gt_xyxy: Tensor, anchors_xyxy: Tensor) -> Tensor:
    """Regression targets of ground-truth boxes w.r.t. their anchors.

    Args:
        gt_xyxy: Tensor[..., 4] xyxy, px (any frame shared with the anchors).
        anchors_xyxy: Tensor[..., 4] broadcastable to ``gt_xyxy``.

    Returns:
        Tensor[..., 4] (t_x, t_y, t_w, t_h).

    Example:
        >>> a = torch.tensor([[0.0, 0.0, 50.0, 50.0]])
        >>> encode(torch.tensor([[5.0, 0.0, 55.0, 50.0]]), a)
        tensor([[1., 0., 0., 0.]])
    """
    gx, gy, gw, gh = _centre_size(gt_xyxy.float())
    ax, ay, aw, ah = _centre_size(anchors_xyxy.float())
    wx, wy, ww, wh = WEIGHTS
    return torch.stack([wx * (gx - ax) / aw, wy * (gy - ay) / ah,
                        ww * torch.log(gw / aw), wh * torch.log(gh / ah)], dim=-1)


def decode(deltas: Tensor, anchors: Tensor) -> Tensor:
    """Boxes from regression outputs (inverse of :func:`encode`).

    Args:
        deltas: Tensor[..., 4] (t_x, t_y, t_w, t_h).
        anchors: Tensor[..., 4] xyxy, broadcastable to ``deltas``.

    Returns:
        Tensor[..., 4] xyxy in the anchors' frame (not clipped to the tile: a box that crosses the tile
        border keeps its true centre).
    """
    ax, ay, aw, ah = _centre_size(anchors.to(deltas.dtype))
    wx, wy, ww, wh = WEIGHTS
    cx = ax + deltas[..., 0] / wx * aw
    cy = ay + deltas[..., 1] / wy * ah
    w = aw * torch.exp(torch.clamp(deltas[..., 2] / ww, max=_MAX_LOG_SCALE))
    h = ah * torch.exp(torch.clamp(deltas[..., 3] / wh, max=_MAX_LOG_SCALE))
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
