"""Where the detector's training patches come from: the 50 / 40 / 10 sampler over slides.

For each patch (paper; the authors' `lib/sampling.py`; docs/training.md) one case is drawn: with p 0.5 a mitotic figure, 0.4 a
negative cell (look-alike, class 7; for MEL the ambiguous class 4, as the paper says) or 0.1 a random tissue
position. Then a slide is drawn uniformly among the slides that have candidates of that case in the
requested half, then a candidate uniformly within that slide.

Geometry (level-0 px, pure numpy, no pixels read):

- The chosen cell's box (side ``box_px``) lies entirely inside the ``tile_px`` patch, at a uniformly random
  integer offset: origin ``o`` in ``[ceil(c + box/2 - tile), floor(c - box/2)]`` per axis (fixes the authors'
  top-left centring and cut-off cells, §8 #9).
- Halves: ``y_half = height / 2``. Training uses cells with centre ``y < y_half`` and patches with rows in
  ``[0, y_half]``; validation cells with ``y >= y_half`` and patches in ``[y_half, height]``: no patch straddles
  the boundary, and every patch lies inside the slide.
- Random positions: a tissue cell of the slide's thumbnail mask (``ccmct.data.slides.tissue_mask``) is drawn
  and the patch centre falls uniformly inside it (the authors ignored tissue, §8 #9). A half without tissue
  falls back to uniform positions in the half.
- Candidates are kept per slide in arrays; nothing indexes by position in another list (§8 #8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from ccmct.config.dataset import AMBIGUOUS, LOOKALIKE

__all__ = ["CASE_NAMES", "Half", "PatchSampler", "PatchSpecs", "SlideCells", "negative_class", "origin_range"]

Half = Literal["train", "valid"]
CASE_MITOSIS, CASE_NEGATIVE, CASE_RANDOM = 0, 1, 2
CASE_NAMES = ("mitotic figure", "negative (look-alike / ambiguous)", "random tissue")


def negative_class(variant: str) -> int:
    """The hard-negative class of a label set: look-alikes (7); for MEL the ambiguous class (4)."""
    return AMBIGUOUS if variant == "MEL" else LOOKALIKE


@dataclass(frozen=True)
class SlideCells:
    """One training slide as the sampler sees it (no pixels).

    Attributes:
        filename: slide file name.
        path: slide file.
        width, height: level-0 size, px.
        mitoses_xy: (N, 2) float centres of the mitotic figures, level-0 px.
        negatives_xy: (M, 2) float centres of the negative class, level-0 px.
        tissue_xy: (T, 2) float top-left corners of the tissue cells of the thumbnail mask, level-0 px.
        tissue_cell_wh: (width, height) of one mask cell, level-0 px.
    """

    filename: str
    path: Path
    width: int
    height: int
    mitoses_xy: np.ndarray
    negatives_xy: np.ndarray
    tissue_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    tissue_cell_wh: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class PatchSpecs:
    """Drawn patches: parallel arrays (slide index into the sampler's slides, origin, case).

    ``cell_xy_l0`` (n, 2) float is the chosen cell's centre (NaN for random positions).
    """

    slide_index: np.ndarray
    x_l0: np.ndarray
    y_l0: np.ndarray
    case: np.ndarray
    cell_xy_l0: np.ndarray

    def __len__(self) -> int:
        return len(self.slide_index)

    def __getitem__(self, i: int) -> tuple[int, int, int, int]:
        return int(self.slide_index[i]), int(self.x_l0[i]), int(self.y_l0[i]), int(self.case[i])


def origin_range(height: int, tile_px: int, half: Half) -> tuple[int, int]:
    """Allowed patch origins y (inclusive) of a half; (0, -1) when the half is lower than a tile."""
    y_half = height / 2
    if half == "train":
        return 0, math.floor(y_half - tile_px)
    if half == "valid":
        return math.ceil(y_half), height - tile_px
    msg = f"half must be 'train' or 'valid', got {half!r}"
    raise ValueError(msg)


def in_half(y_l0: np.ndarray, height: int, half: Half) -> np.ndarray:
    """Whether centres belong to a half (training: ``y < height/2``; validation: ``y >= height/2``)."""
    return y_l0 < height / 2 if half == "train" else y_l0 >= height / 2


def _intervals(lo: np.ndarray, hi: np.ndarray, region: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    return np.maximum(np.ceil(lo), region[0]).astype(np.int64), np.minimum(np.floor(hi), region[1]).astype(np.int64)


def _cell_candidates(slide: SlideCells, xy: np.ndarray, half: Half, tile_px: int, box_px: float):
    """Origin intervals that keep the cell's box inside the patch and the patch inside the half."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    xy = xy[in_half(xy[:, 1], slide.height, half)]
    hb = box_px / 2
    x_lo, x_hi = _intervals(xy[:, 0] + hb - tile_px, xy[:, 0] - hb, (0, slide.width - tile_px))
    y_lo, y_hi = _intervals(xy[:, 1] + hb - tile_px, xy[:, 1] - hb, origin_range(slide.height, tile_px, half))
    return np.stack([x_lo, x_hi, y_lo, y_hi], axis=1), xy


def _tissue_candidates(slide: SlideCells, half: Half, tile_px: int):
    """Origin intervals putting the patch centre inside a tissue cell of the half (else the whole half)."""
    y_region = origin_range(slide.height, tile_px, half)
    x_region = (0, slide.width - tile_px)
    cw, ch = slide.tissue_cell_wh
    corners = np.asarray(slide.tissue_xy, dtype=np.float64).reshape(-1, 2)
    centres_y = corners[:, 1] + ch / 2
    corners = corners[in_half(centres_y, slide.height, half)]
    half_tile = tile_px / 2
    x_lo, x_hi = _intervals(corners[:, 0] - half_tile, corners[:, 0] + cw - half_tile, x_region)
    y_lo, y_hi = _intervals(corners[:, 1] - half_tile, corners[:, 1] + ch - half_tile, y_region)
    table = np.stack([x_lo, x_hi, y_lo, y_hi], axis=1)
    table = table[(table[:, 0] <= table[:, 1]) & (table[:, 2] <= table[:, 3])]
    if len(table) == 0 and x_region[0] <= x_region[1] and y_region[0] <= y_region[1]:
        table = np.array([[*x_region, *y_region]], dtype=np.int64)
    return table, np.full((len(table), 2), np.nan)


class PatchSampler:
    """Draws patch origins over the slides of one half (see module docstring).

    Args:
        slides: the training slides (never test slides: the caller selects them by the split).
        half: ``"train"`` (upper halves) or ``"valid"`` (lower halves).
        tile_px: patch side, px.
        box_px: side of the box of a point annotation, px (kept fully inside the patch).
        probabilities: (mitotic figure, negative, random tissue), summing to 1.

    Example:
        >>> sampler = PatchSampler(slides, half="train", tile_px=256, box_px=50)   # doctest: +SKIP
        >>> specs = sampler.draw(5000, np.random.default_rng(0))
    """

    def __init__(self, slides: Sequence[SlideCells], *, half: Half, tile_px: int, box_px: float,
                 probabilities: tuple[float, float, float] = (0.5, 0.4, 0.1)):
        if len(probabilities) != 3 or min(probabilities) < 0 or not math.isclose(sum(probabilities), 1.0):
            msg = f"probabilities must be three non-negative numbers summing to 1, got {probabilities!r}"
            raise ValueError(msg)
        self.slides, self.half, self.tile_px, self.box_px = list(slides), half, tile_px, box_px
        self.probabilities = np.asarray(probabilities, dtype=np.float64)
        tables = [[_cell_candidates(s, s.mitoses_xy, half, tile_px, box_px),
                   _cell_candidates(s, s.negatives_xy, half, tile_px, box_px),
                   _tissue_candidates(s, half, tile_px)] for s in self.slides]
        self._cases = [_CaseTable([t[case] for t in tables]) for case in range(3)]
        self._targets = [_sorted_by_y(s.mitoses_xy) for s in self.slides]
        if self._cases[CASE_RANDOM].n_slides == 0:
            msg = f"no slide is tall enough for a {tile_px} px patch in its {half} half"
            raise ValueError(msg)

    def candidate_counts(self) -> dict[str, int]:
        """Number of candidates per case (cells whose box fits a patch of the half)."""
        return {name: int(len(t.table)) for name, t in zip(CASE_NAMES, self._cases)}

    def draw(self, n: int, rng: np.random.Generator) -> PatchSpecs:
        """``n`` patches. A case without any candidate in this half becomes a random tissue position."""
        case = rng.choice(3, size=n, p=self.probabilities).astype(np.int64)
        for c in (CASE_MITOSIS, CASE_NEGATIVE):
            if self._cases[c].n_slides == 0:
                case[case == c] = CASE_RANDOM
        slide_index = np.zeros(n, np.int64)
        x_l0, y_l0 = np.zeros(n, np.int64), np.zeros(n, np.int64)
        cell_xy = np.full((n, 2), np.nan)
        for c, table in enumerate(self._cases):
            sel = np.flatnonzero(case == c)
            if len(sel):
                slide_index[sel], x_l0[sel], y_l0[sel], cell_xy[sel] = table.draw(len(sel), rng)
        return PatchSpecs(slide_index, x_l0, y_l0, case, cell_xy)

    def targets(self, slide_index: int, x_l0: int, y_l0: int) -> np.ndarray:
        """Boxes of the mitotic figures whose centre lies in the patch, (G, 4) float32 xyxy patch px.

        Boxes are ``box_px`` squares around the point and are not clipped (a cell on the patch border
        keeps its true centre).
        """
        xy = self._targets[slide_index]
        lo, hi = np.searchsorted(xy[:, 1], [y_l0, y_l0 + self.tile_px], side="left")
        xy = xy[lo:hi]
        xy = xy[(xy[:, 0] >= x_l0) & (xy[:, 0] < x_l0 + self.tile_px)] - (x_l0, y_l0)
        hb = self.box_px / 2
        return np.concatenate([xy - hb, xy + hb], axis=1).astype(np.float32)


def _sorted_by_y(xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    return xy[np.argsort(xy[:, 1], kind="stable")]


class _CaseTable:
    """Candidates of one case over all slides: rows (x_lo, x_hi, y_lo, y_hi) grouped by slide."""

    def __init__(self, per_slide: list[tuple[np.ndarray, np.ndarray]]):
        keep = [(t[:, 0] <= t[:, 1]) & (t[:, 2] <= t[:, 3]) for t, _ in per_slide]
        self.cells = np.concatenate([xy[k] for (_, xy), k in zip(per_slide, keep)] or [np.zeros((0, 2))])
        per_slide = [t[k] for (t, _), k in zip(per_slide, keep)]
        self.table = np.concatenate(per_slide).astype(np.int64) if per_slide else np.zeros((0, 4), np.int64)
        counts = np.array([len(t) for t in per_slide], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.counts = counts
        self.slides_with = np.flatnonzero(counts > 0)
        self.n_slides = len(self.slides_with)

    def draw(self, n: int, rng: np.random.Generator):
        slide = self.slides_with[rng.integers(0, self.n_slides, size=n)]
        index = self.starts[slide] + rng.integers(0, self.counts[slide])
        row = self.table[index]
        x = rng.integers(row[:, 0], row[:, 1] + 1)
        y = rng.integers(row[:, 2], row[:, 3] + 1)
        return slide, x, y, self.cells[index]
