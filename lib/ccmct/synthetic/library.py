"""A per-data-set library of cell stamps, with mitoses and look-alikes matched in darkness and size.

Mitotic figures and imposters are drawn from separate generators, then thinned so that their joint
distribution of (mean intensity near the centre, dark area) is the same: darkness and size alone cannot tell
them apart, only shape and texture can (issue 4, "Difficulty"; morphology.md §5 "degeneracy check").
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np

from ccmct.synthetic import cells, mitoses
from ccmct.synthetic.cells import Stamp
from ccmct.synthetic.shapes import grid
from ccmct.synthetic.stain import REFERENCE_STAIN, od_to_rgb

DARK_GREY = 120.0
"""Grey level (0–255, reference stain) below which a pixel counts as dark chromatin."""
BACKGROUND_OD = (0.15, 0.35)
"""(C_H, C_E) of the tumour-cell cytoplasm a stamp is composited on for its statistics."""


@dataclass(frozen=True)
class StampLibrary:
    """Stamps per cell kind (``tumor``, ``eosinophil``, ``lymphocyte``, ``fibroblast``, ``ghost``,
    ``erythrocyte``, ``ambiguous``, ``mitosis``, ``lookalike``) drawn at ``px_per_um``."""

    stamps: Mapping[str, tuple[Stamp, ...]]
    px_per_um: float

    def pick(self, kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
        """Indices of ``n`` random stamps of ``kind``."""
        return rng.integers(0, len(self.stamps[kind]), size=n)

    def nuclear_area_px(self, kind: str) -> np.ndarray:
        """Per stamp of ``kind``: pixels of nucleus (hematoxylin concentration above 0.45), float array."""
        return np.array([float(((s.c_h > 0.45 * np.maximum(s.alpha, 1e-3)) & (s.alpha > 0.5)).sum())
                         for s in self.stamps[kind]])

    def grade_weights(self, kind: str, grade: float) -> np.ndarray:
        """Relative frequencies of the stamps of ``kind`` for a slide of ``grade`` in [-1, 1]: positive
        grades favour large nuclei (karyomegaly, high grade), negative ones small, uniform nuclei."""
        area = self.nuclear_area_px(kind)
        z = (area - area.mean()) / max(float(area.std()), 1e-6)
        return np.exp(1.5 * float(grade) * z)

    @property
    def max_size_px(self) -> int:
        return max(s.size_px for group in self.stamps.values() for s in group)


def darkness_features(stamp: Stamp, px_per_um: float) -> tuple[float, float]:
    """(mean grey within 3 µm of the centre, dark area in px within 6.25 µm) under the reference stain."""
    bg_h, bg_e = BACKGROUND_OD
    c_h = bg_h * (1 - stamp.alpha) + stamp.c_h
    c_e = bg_e * (1 - stamp.alpha) + stamp.c_e
    grey = od_to_rgb(c_h, c_e, REFERENCE_STAIN).mean(axis=2)
    yy, xx = grid(stamp.size_px)
    r = np.hypot(yy, xx)
    inner = r <= 3.0 * px_per_um
    outer = r <= 6.25 * px_per_um
    return float(grey[inner].mean()), float((grey[outer] < DARK_GREY).sum())


def match_darkness(a: list[Stamp], b: list[Stamp], px_per_um: float, rng: np.random.Generator,
                   *, bins: int = 4) -> tuple[list[Stamp], list[Stamp]]:
    """Thin two stamp pools to the same histogram of :func:`darkness_features` (``bins`` x ``bins`` cells
    on pooled quantiles); returns the kept stamps of each pool."""
    fa = np.array([darkness_features(s, px_per_um) for s in a])
    fb = np.array([darkness_features(s, px_per_um) for s in b])
    pooled = np.vstack([fa, fb])
    edges = [np.quantile(pooled[:, k], np.linspace(0, 1, bins + 1)[1:-1]) for k in range(2)]
    cell_a = np.digitize(fa[:, 0], edges[0]) * bins + np.digitize(fa[:, 1], edges[1])
    cell_b = np.digitize(fb[:, 0], edges[0]) * bins + np.digitize(fb[:, 1], edges[1])
    keep_a, keep_b = [], []
    for c in range(bins * bins):
        ia, ib = np.flatnonzero(cell_a == c), np.flatnonzero(cell_b == c)
        n = min(len(ia), len(ib))
        keep_a += list(rng.choice(ia, n, replace=False))
        keep_b += list(rng.choice(ib, n, replace=False))
    return [a[i] for i in sorted(keep_a)], [b[i] for i in sorted(keep_b)]


def build_library(rng: np.random.Generator, px_per_um: float, n_variants: int) -> StampLibrary:
    """Draw all stamps of a data set.

    Args:
        rng: random generator.
        px_per_um: pixels per µm (1 / mpp).
        n_variants: candidate stamps per main kind (mitoses and look-alikes are drawn 2x, then matched).
    """
    ppu = px_per_um
    n = int(n_variants)
    groups: dict[str, tuple[Stamp, ...]] = {
        "tumor": tuple(cells.tumor_cell(rng, ppu) for _ in range(n)),
        "eosinophil": tuple(cells.eosinophil(rng, ppu) for _ in range(max(n // 3, 8))),
        "lymphocyte": tuple(cells.lymphocyte(rng, ppu) for _ in range(max(n // 6, 6))),
        "fibroblast": tuple(cells.fibroblast(rng, ppu) for _ in range(max(n // 4, 8))),
        "ghost": tuple(cells.ghost_cell(rng, ppu) for _ in range(max(n // 4, 8))),
        "erythrocyte": tuple(cells.erythrocyte(rng, ppu) for _ in range(12)),
        "ambiguous": tuple(mitoses.ambiguous_cell(rng, ppu) for _ in range(max(n // 4, 8))),
    }
    mf = [mitoses.mitosis(rng, ppu) for _ in range(2 * n)]
    la = [mitoses.lookalike(rng, ppu) for _ in range(2 * n)]
    mf, la = match_darkness(mf, la, ppu, rng)
    groups["mitosis"], groups["lookalike"] = tuple(mf), tuple(la)
    return StampLibrary(MappingProxyType(groups), ppu)
