"""Anchor boxes of the single detection level (stride 16 px).

Frame: tile pixels, (0, 0) = top-left corner of the 256 px input patch; boxes are xyxy.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["make_anchors"]


def make_anchors(tile_px: int, stride_px: int, sizes_px: tuple[float, ...]) -> Tensor:
    """Square anchors centred on every cell of the stride grid.

    Args:
        tile_px: side of the (square) input tile, px.
        stride_px: grid stride of the feature level, px (16 for the stride-16 FPN level).
        sizes_px: anchor sides, px, in the order the head emits them.

    Returns:
        float32 Tensor[A, 4], xyxy in tile px, ordered (row y, column x, size), so that
        A = (tile_px // stride_px) ** 2 * len(sizes_px) and entry
        ``(row * n_cols + col) * len(sizes_px) + k`` is centred at
        ``(stride_px * (col + 0.5), stride_px * (row + 0.5))`` with side ``sizes_px[k]``.

    Raises:
        ValueError: the tile is not a positive multiple of the stride, or no / non-positive sizes.

    Example:
        >>> make_anchors(256, 16, (40.0, 50.0, 60.0)).shape
        torch.Size([768, 4])
    """
    if stride_px <= 0 or tile_px <= 0 or tile_px % stride_px:
        msg = f"tile_px ({tile_px}) must be a positive multiple of stride_px ({stride_px})"
        raise ValueError(msg)
    if not sizes_px or min(sizes_px) <= 0:
        msg = f"sizes_px must hold positive anchor sides, got {sizes_px!r}"
        raise ValueError(msg)
    n_cells = tile_px // stride_px
    centres = (torch.arange(n_cells, dtype=torch.float32) + 0.5) * stride_px
    cy, cx = torch.meshgrid(centres, centres, indexing="ij")              # [rows, cols]
    half = torch.tensor(sizes_px, dtype=torch.float32) / 2                 # [K]
    cx = cx[..., None].expand(-1, -1, len(sizes_px))
    cy = cy[..., None].expand(-1, -1, len(sizes_px))
    anchors = torch.stack([cx - half, cy - half, cx + half, cy + half], dim=-1)
    return anchors.reshape(-1, 4).contiguous()
