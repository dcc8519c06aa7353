"""The training slides of a data root as the patch sampler sees them (cells, size, tissue).

Only slides that the root's split calls ``train`` are opened; test slides
(:meth:`ccmct.config.paths.DataRoot.test_slides`) are never opened or read.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from ccmct.config.dataset import MITOTIC_FIGURE
from ccmct.config.paths import DataRoot
from ccmct.data.sliderunner import SlideRunnerDB
from ccmct.data.slides import open_slide, tissue_mask
from ccmct.errors import CcmctError
from ccmct.sampling.patches import SlideCells, negative_class

__all__ = ["load_training_slides", "tissue_cells"]

log = logging.getLogger(__name__)


def tissue_cells(mask: np.ndarray, size_wh: tuple[int, int]) -> tuple[np.ndarray, tuple[float, float]]:
    """Top-left corners (level-0 px) of the True cells of a thumbnail mask, and one cell's (w, h) px.

    Args:
        mask: (h, w) bool thumbnail mask.
        size_wh: level-0 (width, height) of the slide the mask covers.
    """
    cell_w, cell_h = size_wh[0] / mask.shape[1], size_wh[1] / mask.shape[0]
    rows, cols = np.nonzero(mask)
    return np.stack([cols * cell_w, rows * cell_h], axis=1).astype(np.float64), (cell_w, cell_h)


def load_training_slides(root: DataRoot | str | os.PathLike[str], variant: str, *,
                         thumbnail_px: int = 512) -> list[SlideCells]:
    """Every training slide of ``root`` that is on disk, with its mitotic figures and negatives.

    Args:
        root: data root.
        variant: label set (MEL, HEAEL, ODAEL); chooses the database and the negative class.
        thumbnail_px: longer side of the thumbnail the tissue mask is computed on.

    Returns:
        One :class:`SlideCells` per training slide, in file-name order.

    Raises:
        CcmctError: no training slide of the split is present (the message names the root).
    """
    root = DataRoot(root)
    test = root.test_slides()
    train_names = [n for n in root.slides("train") if n not in test]
    negative = negative_class(variant)
    slides = []
    with SlideRunnerDB.open(root.database(variant)) as db:
        table = db.slides()
        uid_of = dict(zip(table["filename"], table["uid"]))
        for name in train_names:
            path = root.slide_path(name)
            if name not in uid_of or not path.exists():
                log.warning("training slide %s skipped: %s", name,
                            "file missing from WSI/" if not path.exists() else f"not in the {variant} database")
                continue
            spots = db.spots(slide=int(uid_of[name]), classes=[MITOTIC_FIGURE, negative])
            slides.append(_slide_cells(path, name, spots, negative, thumbnail_px))
    if not slides:
        msg = f"{root.path}: no training slide of the split is present in WSI/ and the {variant} database"
        raise CcmctError(msg)
    return slides


def _slide_cells(path, name, spots, negative: int, thumbnail_px: int) -> SlideCells:
    xy = spots[["x", "y"]].to_numpy(dtype=np.float64)
    with open_slide(path) as slide:
        size_wh = slide.dimensions
        mask = tissue_mask(slide.thumbnail(thumbnail_px))
    corners, cell_wh = tissue_cells(mask, size_wh)
    return SlideCells(filename=name, path=path, width=int(size_wh[0]), height=int(size_wh[1]),
                      mitoses_xy=xy[spots["agreed_class"].to_numpy() == MITOTIC_FIGURE],
                      negatives_xy=xy[spots["agreed_class"].to_numpy() == negative],
                      tissue_xy=corners, tissue_cell_wh=cell_wh)
