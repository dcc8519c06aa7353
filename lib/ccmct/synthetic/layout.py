"""Where the cells of one slide sit and which of them are mitoses, look-alikes, eosinophils, ...

Cells sit on a jittered hexagonal grid (~12.5 µm apart, i.e. ~7,000 cells/mm² in tumour sheets). Special
cells replace tumour cells at grid points drawn with probability proportional to their density fields, so
mitoses cluster in hot spots and look-alikes gather near necrosis. Annotated cells lie inside the tumour
zone (outside necrosis and exclusion polygons), hence inside tissue and inside the slide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ccmct.synthetic.tissue import BLURRY, EXCLUDED, NECROSIS, TUMORZONE, TissueMap, inside_any

KINDS = ("tumor", "eosinophil", "lymphocyte", "fibroblast", "ghost", "erythrocyte", "ambiguous", "mitosis",
         "lookalike")
"""Cell kinds; a cell's ``kind`` is an index into this tuple. Later kinds are drawn on top."""
KIND = {name: i for i, name in enumerate(KINDS)}
CELL_SPACING_UM = 12.5
RED_CELL_SPACING_UM = 6.5
CONGESTION_PER_MM2 = 6.0
"""Foci of congested capillaries / haemorrhage (packed red cells) per mm² of tissue."""
PROPOSED_SHARE = {"lymphocyte": 0.9, "fibroblast": 0.3}
"""Share of the small dark cells of each kind inside the tumour zone that the ODAEL proposal detector flagged
(and the experts then called look-alikes): round dark lymphocyte nuclei nearly always, spindle fibroblast
nuclei sometimes. The paper: ODAEL's look-alikes are *all* non-mitotic cells its detector scored > 0.5."""


@dataclass(frozen=True)
class CellLayout:
    """All cells of one slide (arrays of equal length, sorted by ``y_l0``).

    Attributes:
        x_l0, y_l0: cell centres, level-0 px (int64).
        kind: index into :data:`KINDS` (int8).
        stamp: index of the stamp within its kind (int32).
        orient: 0–7, rotation by 90° steps (bits 0–1) and mirror (bit 2).
        annotated: True for cells that carry a label in the databases (lymphocytes and fibroblasts that are
            annotated carry one in ODAEL only: detector proposals, see :data:`PROPOSED_SHARE`).
    """

    x_l0: np.ndarray
    y_l0: np.ndarray
    kind: np.ndarray
    stamp: np.ndarray
    orient: np.ndarray
    annotated: np.ndarray

    def of_kind(self, name: str, *, annotated_only: bool = True) -> np.ndarray:
        """Indices of the cells of one kind."""
        sel = self.kind == KIND[name]
        return np.flatnonzero(sel & self.annotated if annotated_only else sel)


def hex_grid(rng: np.random.Generator, size_wh: tuple[int, int], spacing_px: float) -> np.ndarray:
    """Jittered hexagonal grid points (n, 2) of integer (x, y) inside the slide, level-0 px."""
    width, height = size_wh
    dy = spacing_px * np.sqrt(3) / 2
    rows = np.arange(spacing_px / 2, height - spacing_px / 2, dy)
    cols = np.arange(spacing_px / 2, width - spacing_px / 2, spacing_px)
    yy, xx = np.meshgrid(rows, cols, indexing="ij")
    xx = xx + (np.arange(len(rows)) % 2)[:, None] * spacing_px / 2
    pts = np.c_[xx.ravel(), yy.ravel()] + rng.normal(0, 0.12 * spacing_px, (xx.size, 2))
    pts = np.round(pts)  # integer centres, as stored in the databases
    keep = (pts[:, 0] >= 0) & (pts[:, 0] < width) & (pts[:, 1] >= 0) & (pts[:, 1] < height)
    return pts[keep]


def _weighted_pick(rng, weights: np.ndarray, n: int, available: np.ndarray) -> np.ndarray:
    """``n`` distinct indices among ``available`` (bool) with probability ∝ ``weights``."""
    w = np.where(available, weights, 0.0).astype(np.float64)
    n = int(min(n, np.count_nonzero(w)))
    if n <= 0:
        return np.zeros(0, int)
    return rng.choice(len(w), size=n, replace=False, p=w / w.sum())


def make_layout(rng: np.random.Generator, tmap: TissueMap, *, px_per_um: float, n_mitoses: int,
                n_lookalikes: int, stamp_counts: dict[str, int],
                stamp_weights: dict[str, np.ndarray] | None = None) -> CellLayout:
    """Place the cells of one slide.

    Args:
        rng: random generator.
        tmap: the slide's :class:`TissueMap`.
        px_per_um: pixels per µm.
        n_mitoses: mitotic figures to place (fewer if the tumour zone is too small).
        n_lookalikes: look-alikes to place.
        stamp_counts: stamps available per kind (from the stamp library).
        stamp_weights: optional relative frequency of each stamp of a kind (e.g. this slide's grade
            favouring large nuclei); uniform otherwise.
    """
    pts = hex_grid(rng, tmap.size_wh, CELL_SPACING_UM * px_per_um)
    row, col = tmap.coarse_index(pts[:, 0], pts[:, 1])
    tissue = tmap.tissue[row, col] > 0.75
    tumor = tmap.tumor[row, col] & tissue
    kind = np.full(len(pts), -1, np.int16)
    u = rng.random(len(pts))
    kind[tumor & (u < 0.94)] = KIND["tumor"]
    stroma = tmap.stroma[row, col] & tissue
    kind[stroma & (u < 0.07)] = KIND["fibroblast"]
    kind[stroma & (u > 0.985)] = KIND["lymphocyte"]
    kind[tmap.necrosis[row, col] & tissue & (u < 0.9)] = KIND["ghost"]
    kind[tumor & (u > 0.985)] = KIND["lymphocyte"]
    red_xy = _congestion(rng, tmap, pts, kind, px_per_um)
    annotated = _choose_special_cells(rng, tmap, pts, kind, row, col, n_mitoses, n_lookalikes)
    keep = kind >= 0
    pts = np.vstack([pts[keep], red_xy])
    kind = np.concatenate([kind[keep], np.full(len(red_xy), KIND["erythrocyte"])]).astype(np.int8)
    annotated = np.concatenate([annotated[keep], np.zeros(len(red_xy), bool)])
    stamp = _pick_stamps(rng, kind, stamp_counts, stamp_weights or {})
    order = np.argsort(pts[:, 1], kind="stable")
    xy = np.round(pts[order]).astype(np.int64)
    return CellLayout(xy[:, 0], xy[:, 1], kind[order], stamp[order],
                      rng.integers(0, 8, len(pts)).astype(np.int8)[order], annotated[order])


def _choose_special_cells(rng, tmap: TissueMap, pts: np.ndarray, kind: np.ndarray, row: np.ndarray,
                          col: np.ndarray, n_mitoses: int, n_lookalikes: int) -> np.ndarray:
    """Turn tumour cells into mitoses, look-alikes, eosinophils and ambiguous cells (``kind`` changed in
    place) and pick a sample of tumour cells to label; returns the bool mask of annotated cells."""
    # annotatable: strictly inside a tumour-zone polygon, outside necrosis / exclusions, away from the edge
    cand = kind == KIND["tumor"]
    cand[cand] = _inside_tumor_zone(tmap, pts[cand])
    cand &= tmap.tissue[row, col] > 0.95
    annotated = np.zeros(len(pts), bool)
    for name, n, field in (("mitosis", n_mitoses, tmap.mitotic_field),
                           ("lookalike", n_lookalikes, tmap.lookalike_field),
                           ("eosinophil", int(0.03 * cand.sum()), tmap.eosinophil_field),
                           ("ambiguous", max(int(0.12 * n_mitoses), 3), tmap.tumor.astype(np.float32))):
        idx = _weighted_pick(rng, field[row, col], n, cand)
        kind[idx] = KIND[name]
        annotated[idx] = True
        cand[idx] = False
    n_tumor = int(1.3 * n_mitoses) + 10
    idx = rng.choice(np.flatnonzero(cand), size=min(n_tumor, int(cand.sum())), replace=False)
    annotated[idx] = True
    for name, share in PROPOSED_SHARE.items():  # ODAEL's detector proposals among the small dark cells
        idx = np.flatnonzero(kind == KIND[name])
        idx = idx[tmap.tissue[row[idx], col[idx]] > 0.95]
        idx = idx[_inside_tumor_zone(tmap, pts[idx])] if len(idx) else idx
        annotated[idx[rng.random(len(idx)) < share]] = True
    return annotated


def _pick_stamps(rng, kind: np.ndarray, stamp_counts: dict[str, int],
                 weights: dict[str, np.ndarray]) -> np.ndarray:
    """A stamp index per cell: uniform within its kind, or by ``weights[kind]`` where given."""
    stamp = np.zeros(len(kind), np.int32)
    for name, k in KIND.items():
        sel = kind == k
        w = weights.get(name)
        if w is None:
            stamp[sel] = rng.integers(0, stamp_counts[name], sel.sum())
        else:
            stamp[sel] = rng.choice(stamp_counts[name], size=int(sel.sum()), p=w / w.sum())
    return stamp


def _congestion(rng, tmap: TissueMap, pts: np.ndarray, kind: np.ndarray, px_per_um: float) -> np.ndarray:
    """Foci of packed red cells (congested vessels, small haemorrhages): the cells they cover are removed
    from ``kind`` (set to -1) in place; returns the red cells' (x, y), level-0 px."""
    f = tmap.factor_px
    tissue_cells = np.argwhere(tmap.tissue > 0.95)
    area_mm2 = tissue_cells.shape[0] * (f / px_per_um / 1000.0) ** 2
    n = int(rng.poisson(CONGESTION_PER_MM2 * area_mm2))
    if n == 0 or len(tissue_cells) == 0:
        return np.zeros((0, 2))
    centres = (tissue_cells[rng.integers(0, len(tissue_cells), n)][:, ::-1] + rng.random((n, 2))) * f
    radii = rng.uniform(8.0, 22.0, n) * px_per_um
    red = []
    for (cx, cy), r in zip(centres, radii):
        kind[np.hypot(pts[:, 0] - cx, pts[:, 1] - cy) < r + 3 * px_per_um] = -1
        step = RED_CELL_SPACING_UM * px_per_um
        gy, gx = np.mgrid[-r:r:step, -r:r:step * 0.9]
        cand = np.c_[gx.ravel(), gy.ravel()] + rng.normal(0, 0.2 * step, (gx.size, 2))
        cand = cand[(np.hypot(*cand.T) < r) & (rng.random(len(cand)) < 0.85)]
        red.append(np.round(cand + (cx, cy)))
    red = np.vstack(red)
    w, h = tmap.size_wh
    return red[(red[:, 0] >= 0) & (red[:, 0] < w) & (red[:, 1] >= 0) & (red[:, 1] < h)]


def _inside_tumor_zone(tmap: TissueMap, pts: np.ndarray) -> np.ndarray:
    """Exact polygon test: inside a tumour-zone polygon, outside necrosis / exclusion / blurred polygons."""
    polys = {c: [p for k, p in tmap.polygons if k == c] for c in (TUMORZONE, NECROSIS, EXCLUDED, BLURRY)}
    grid = {"factor_px": tmap.factor_px, "shape": tmap.tissue.shape}
    inside = inside_any(polys[TUMORZONE], pts[:, 0], pts[:, 1], **grid)
    outside = ~inside_any(polys[NECROSIS] + polys[EXCLUDED] + polys[BLURRY], pts[:, 0], pts[:, 1], **grid)
    return inside & outside
