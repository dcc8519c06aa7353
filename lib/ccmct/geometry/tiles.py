"""Tile-grid geometry of whole-slide inference: pure functions on arrays, no I/O.

Frame: level-0 pixels, (0, 0) = top-left corner of the slide; a tile is the square
``[x_l0, x_l0 + tile_px) x [y_l0, y_l0 + tile_px)``.

The grid follows the authors' ``Inference-RetinaNet.py`` (docs/inference.md): 256 px tiles with a
stride of ``int(0.9 * 256) = 230`` px (26 px overlap), but it also covers the right and bottom margins: the
last tile of each row / column is aligned to the slide's edge (the authors' ``range(0, W - 256, 230)`` left up
to 230 px unprocessed, quirk §8 #2).

A cell near a tile border is seen by two (or four) tiles. :func:`keep_most_central` decides, per detection,
whether a neighbouring processed tile sees that point clearly more centrally (then this tile's detection is
dropped: its view of the cell is cut by the border and its box centre may be off, quirk §8 #5); detections
close to the middle of an overlap are kept by both tiles and merged later by distance NMS, so a cell is never
dropped by both tiles.

Example:
    >>> grid = TileGrid.covering((1000, 600), tile_px=256, stride_px=230)
    >>> grid.xs_l0.tolist(), grid.ys_l0.tolist()
    ([0, 230, 460, 690, 744], [0, 230, 344])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PAPER_STRIDE_FRACTION", "TileGrid", "keep_most_central", "paper_stride_px", "tile_origins_1d",
           "tiles_touching_mask"]

PAPER_STRIDE_FRACTION = 0.9
"""Stride / tile side of the authors' sliding window (``int(0.9 * 256) = 230`` px, the authors' `Inference-RetinaNet.py`; docs/inference.md)."""


def paper_stride_px(tile_px: int) -> int:
    """The authors' stride for a tile side: ``int(0.9 * tile_px)`` (230 px for 256 px tiles)."""
    return int(PAPER_STRIDE_FRACTION * tile_px)


def tile_origins_1d(length_px: int, *, tile_px: int, stride_px: int) -> np.ndarray:
    """Tile origins along one axis that cover ``[0, length_px)`` completely.

    Args:
        length_px: slide width or height, level-0 px.
        tile_px: tile side, px.
        stride_px: step between tiles, px (``0 < stride_px <= tile_px`` so that tiles touch or overlap).

    Returns:
        int64 (n,) ascending origins: ``0, stride, 2 * stride, ...`` and, if that does not reach the end,
        one more tile aligned to the edge (``length_px - tile_px``). A slide shorter than a tile gets one
        tile at 0 (the part outside the slide reads as white).

    Raises:
        ValueError: a non-positive length / tile, or a stride outside ``(0, tile_px]``.

    Example:
        >>> tile_origins_1d(1000, tile_px=256, stride_px=230).tolist()
        [0, 230, 460, 690, 744]
    """
    if length_px <= 0 or tile_px <= 0:
        raise ValueError(f"length_px and tile_px must be positive, got {length_px} and {tile_px}")
    if not 0 < stride_px <= tile_px:
        raise ValueError(f"stride_px must be in (0, tile_px={tile_px}] so that tiles overlap, got {stride_px}")
    last = length_px - tile_px
    if last <= 0:
        return np.zeros(1, np.int64)
    origins = np.arange(0, last + 1, stride_px, dtype=np.int64)
    if origins[-1] != last:
        origins = np.append(origins, np.int64(last))
    return origins


@dataclass(frozen=True, eq=False)
class TileGrid:
    """A regular tile grid over a slide (a Cartesian product of x and y origins).

    Tile ``k`` (raster order, rows first) has column ``k % n_cols`` and row ``k // n_cols``, origin
    ``(xs_l0[col], ys_l0[row])``.

    Attributes:
        size_wh: slide (width, height), level-0 px.
        tile_px: tile side, px.
        stride_px: nominal stride, px (the last step of an axis may be shorter).
        xs_l0, ys_l0: int64 origins along x and y.
    """

    size_wh: tuple[int, int]
    tile_px: int
    stride_px: int
    xs_l0: np.ndarray
    ys_l0: np.ndarray

    @classmethod
    def covering(cls, size_wh: tuple[int, int], *, tile_px: int, stride_px: int) -> "TileGrid":
        """The grid of :func:`tile_origins_1d` along both axes of a ``(width, height)`` slide."""
        width, height = int(size_wh[0]), int(size_wh[1])
        return cls((width, height), int(tile_px), int(stride_px),
                   tile_origins_1d(width, tile_px=tile_px, stride_px=stride_px),
                   tile_origins_1d(height, tile_px=tile_px, stride_px=stride_px))

    @property
    def n_cols(self) -> int:
        return len(self.xs_l0)

    @property
    def n_rows(self) -> int:
        return len(self.ys_l0)

    def __len__(self) -> int:
        return self.n_cols * self.n_rows

    def origins_l0(self) -> np.ndarray:
        """int64 (N, 2) [x, y] origins of every tile in raster order (index = tile id)."""
        xx, yy = np.meshgrid(self.xs_l0, self.ys_l0, indexing="xy")
        return np.stack([xx.ravel(), yy.ravel()], axis=1)

    def __repr__(self) -> str:
        return (f"TileGrid(size_wh={self.size_wh}, tile_px={self.tile_px}, stride_px={self.stride_px}, "
                f"{self.n_cols}x{self.n_rows} tiles)")


def tiles_touching_mask(grid: TileGrid, mask: np.ndarray, *, margin_px: int = 1) -> np.ndarray:
    """Which tiles overlap a (low-resolution) mask, e.g. the tissue mask of a thumbnail.

    Args:
        grid: the tile grid (level 0).
        mask: (h, w) bool covering the whole slide; mask pixel (i, j) covers level-0
            ``[j * W / w, (j + 1) * W / w) x [i * H / h, (i + 1) * H / h)``.
        margin_px: grow each tile's footprint by this many mask pixels on every side (a cell at the rim of
            the tissue still counts; also absorbs the thumbnail's rounding).

    Returns:
        bool (N,) in tile-id order: True where the footprint holds at least one True mask pixel.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"mask must be a non-empty 2-D array, got shape {mask.shape}")
    h, w = mask.shape
    fx, fy = grid.size_wh[0] / w, grid.size_wh[1] / h
    integral = np.zeros((h + 1, w + 1), np.int64)
    integral[1:, 1:] = mask.cumsum(0).cumsum(1)
    origins = grid.origins_l0()
    c0 = np.clip(np.floor(origins[:, 0] / fx).astype(np.int64) - margin_px, 0, w)
    c1 = np.clip(np.ceil((origins[:, 0] + grid.tile_px) / fx).astype(np.int64) + margin_px, 0, w)
    r0 = np.clip(np.floor(origins[:, 1] / fy).astype(np.int64) - margin_px, 0, h)
    r1 = np.clip(np.ceil((origins[:, 1] + grid.tile_px) / fy).astype(np.int64) + margin_px, 0, h)
    inside = integral[r1, c1] - integral[r0, c1] - integral[r1, c0] + integral[r0, c0]
    return inside > 0


def _axis_margins(centres: np.ndarray, origins: np.ndarray, tile_px: int) -> np.ndarray:
    """Signed distance of each centre to the nearer edge of the tile at ``origins`` (same shape)."""
    return np.minimum(centres - origins, origins + tile_px - centres)


def _covering(origins: np.ndarray, centres: np.ndarray, tile_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (N, K) of origins whose interval ``[o, o + tile)`` holds each centre, and a validity mask."""
    lo = np.searchsorted(origins + tile_px, centres, side="right")
    hi = np.searchsorted(origins, centres, side="right")
    count = np.maximum(hi - lo, 0)
    k = int(count.max()) if len(count) else 0
    offsets = np.arange(max(k, 1))
    idx = lo[:, None] + offsets[None, :]
    valid = offsets[None, :] < count[:, None]
    return np.where(valid, idx, 0), valid


def keep_most_central(centres_l0: np.ndarray, tile_ids: np.ndarray, grid: TileGrid, processed: np.ndarray, *,
                      tolerance_px: float) -> np.ndarray:
    """Drop detections that a neighbouring processed tile sees clearly more centrally.

    Per axis, a tile's *margin* at a point is its signed distance to the tile's nearer edge. A detection
    centred at ``c`` from tile ``t`` is dropped when another processed tile ``u`` covers ``c`` with margins
    at least as large as ``t``'s on both axes and larger by more than ``tolerance_px`` in sum. With the 26 px
    overlap and ``tolerance_px = 13``, a detection within 6.5 px of a tile edge that a neighbour sees 19.5 px
    or more inside is dropped; near the middle of an overlap both tiles keep theirs (merged later by distance
    NMS), so two slightly different predictions of one cell cannot both be dropped.

    Args:
        centres_l0: (N, 2) [x, y] detection centres, level-0 px.
        tile_ids: (N,) id of the tile (in ``grid``) each detection comes from.
        grid: the tile grid.
        processed: (len(grid),) bool, tiles that were run through the detector.
        tolerance_px: required margin advantage of the other tile, px (>= 0).

    Returns:
        bool (N,), True = keep.
    """
    centres = np.asarray(centres_l0, dtype=np.float64).reshape(-1, 2)
    tile_ids = np.asarray(tile_ids, dtype=np.int64).reshape(-1)
    if tolerance_px < 0:
        raise ValueError(f"tolerance_px must be >= 0, got {tolerance_px}")
    if len(centres) == 0:
        return np.zeros(0, bool)
    own_col, own_row = tile_ids % grid.n_cols, tile_ids // grid.n_cols
    own_mx = _axis_margins(centres[:, 0], grid.xs_l0[own_col], grid.tile_px)
    own_my = _axis_margins(centres[:, 1], grid.ys_l0[own_row], grid.tile_px)
    cols, col_ok = _covering(grid.xs_l0, centres[:, 0], grid.tile_px)          # (N, Kx)
    rows, row_ok = _covering(grid.ys_l0, centres[:, 1], grid.tile_px)          # (N, Ky)
    mx = _axis_margins(centres[:, :1], grid.xs_l0[cols], grid.tile_px)[:, :, None]   # (N, Kx, 1)
    my = _axis_margins(centres[:, 1:], grid.ys_l0[rows], grid.tile_px)[:, None, :]   # (N, 1, Ky)
    ok = col_ok[:, :, None] & row_ok[:, None, :]
    ok &= np.asarray(processed, bool)[rows[:, None, :] * grid.n_cols + cols[:, :, None]]
    dx, dy = mx - own_mx[:, None, None], my - own_my[:, None, None]
    dominated = ok & (dx >= 0) & (dy >= 0) & (dx + dy > tolerance_px)
    return ~dominated.any(axis=(1, 2))
