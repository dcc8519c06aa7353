"""Which tiles of a slide to read, and a DataLoader that reads them in worker processes.

Frames: level-0 pixels. Tiles come back as (tile_px, tile_px, 3) uint8 RGB; normalisation happens later on
the model's device, one batch at a time (:func:`ccmct.models.detector.prepare_tiles`).

Each DataLoader worker opens its own slide handle (:func:`ccmct.data.slides.cached_slide`, one per
process). A read error does not kill the worker: the item carries the error text and the detector turns it
into a :class:`ccmct.errors.SlideError` for that slide.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ccmct.data.slides import cached_slide, open_slide, tissue_mask
from ccmct.errors import CcmctError, FileProblem
from ccmct.geometry.tiles import TileGrid, tiles_touching_mask

__all__ = ["SlideTiles", "TileDataset", "plan_tiles", "tile_loader"]

THUMBNAIL_PX = 2048
"""Longer side of the thumbnail the tissue mask is computed on, px (a 100k px slide: ~50 px per mask px)."""


@dataclass(frozen=True, eq=False)
class SlideTiles:
    """The tiles of one slide that inference reads.

    Attributes:
        path: the slide file.
        grid: the full tile grid.
        selected: bool (len(grid),), tiles to process (all of them with ``all_tiles``).
    """

    path: Path
    grid: TileGrid
    selected: np.ndarray

    @property
    def tile_ids(self) -> np.ndarray:
        """int64 ids (into ``grid``) of the selected tiles, ascending."""
        return np.flatnonzero(self.selected)

    @property
    def n_total(self) -> int:
        return len(self.grid)

    @property
    def n_selected(self) -> int:
        return int(self.selected.sum())


def plan_tiles(path: str | os.PathLike[str], *, tile_px: int, stride_px: int, all_tiles: bool = False,
               thumbnail_px: int = THUMBNAIL_PX) -> SlideTiles:
    """Tile grid of a slide and the tiles that touch tissue.

    Args:
        path: slide file.
        tile_px: tile side, level-0 px (from the model's config).
        stride_px: step between tiles, px.
        all_tiles: process every tile (the authors' behaviour, for parity) instead of tissue tiles only.
        thumbnail_px: longer side of the thumbnail used for the tissue mask, px.

    Raises:
        SlideError: the slide is missing or cannot be read.
    """
    with open_slide(path) as slide:
        grid = TileGrid.covering(slide.dimensions, tile_px=tile_px, stride_px=stride_px)
        if all_tiles:
            return SlideTiles(Path(path), grid, np.ones(len(grid), bool))
        mask = tissue_mask(slide.thumbnail(thumbnail_px))
    return SlideTiles(Path(path), grid, tiles_touching_mask(grid, mask))


class TileDataset(Dataset):
    """Level-0 tiles of one slide, read in the calling process (one cached handle per process).

    Args:
        path: slide file.
        origins_l0: int (N, 2) [x, y] tile origins, level-0 px.
        tile_px: tile side, px.

    Item ``i``: ``(tile uint8 (tile_px, tile_px, 3), i, error)`` where ``error`` is ``""`` or the reason the
    read failed, without the file name (the tile is then white).
    """

    def __init__(self, path: str | os.PathLike[str], origins_l0: np.ndarray, tile_px: int):
        self.path = str(path)
        self.origins_l0 = np.asarray(origins_l0, dtype=np.int64).reshape(-1, 2)
        self.tile_px = int(tile_px)

    def __len__(self) -> int:
        return len(self.origins_l0)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int, str]:
        x_l0, y_l0 = self.origins_l0[index]
        try:
            tile = cached_slide(self.path).read_l0(int(x_l0), int(y_l0), (self.tile_px, self.tile_px))
        except CcmctError as err:
            reason = err.problem if isinstance(err, FileProblem) else str(err)
            return np.full((self.tile_px, self.tile_px, 3), 255, np.uint8), index, reason or "read failed"
        return tile, index, ""


def _collate(items: list[tuple[np.ndarray, int, str]]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    tiles = torch.from_numpy(np.stack([item[0] for item in items]))
    indices = torch.tensor([item[1] for item in items], dtype=torch.int64)
    errors = [item[2] for item in items if item[2]]
    return tiles, indices, errors


def tile_loader(dataset: TileDataset, *, batch_size: int, workers: int, pin_memory: bool = False,
                prefetch_batches: int = 4) -> DataLoader:
    """Batches ``(tiles uint8 Tensor[B, H, W, 3], indices int64 Tensor[B], errors list[str])`` in order.

    Args:
        dataset: the tiles.
        batch_size: tiles per batch.
        workers: reader processes (0 = read in the calling process).
        pin_memory: page-locked batches (faster copies to a GPU).
        prefetch_batches: batches each worker reads ahead, so the model never waits while readers work.
    """
    if batch_size < 1 or workers < 0:
        raise ValueError(f"batch_size must be >= 1 and workers >= 0, got {batch_size} and {workers}")
    extra = {"prefetch_factor": prefetch_batches, "persistent_workers": False} if workers else {}
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      collate_fn=_collate, pin_memory=pin_memory, **extra)
