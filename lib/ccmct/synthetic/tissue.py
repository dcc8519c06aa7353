"""Slide-scale layout of a synthetic section: tissue, tumour zone, stroma islands, necrosis, density fields.

Everything here lives on a coarse grid (``factor_px`` level-0 px per cell, ~8 µm). Tissue is an irregular
union of smooth-noise blobs covering 45–68 % of the slide (less on the wide, sparse demo test slide). The tumour zone and its necrosis and exclusion
areas are polygons (level-0 px) exactly as in ``MITOS_WSI_CCMCT_Tumorzone.sqlite``; the coarse masks the
renderer and the cell layout use are rasterised *from* those polygons, so the database and the pixels agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import contourpy
import numpy as np
from matplotlib.path import Path as MplPath
from scipy import ndimage

from ccmct.synthetic.shapes import gaussian_spectrum_noise

TUMORZONE, NECROSIS, BLURRY, EXCLUDED = 1, 2, 3, 4
"""Classes of the tumour-zone database (1 'Tumorzone', 2 necrosis, 3 blurred scan area, 4 non-tumour)."""
TUMORZONE_CLASS_NAMES = {TUMORZONE: "Tumorzone", NECROSIS: "Nekrosezone", BLURRY: "unscharfe scan-area",
                         EXCLUDED: "nicht tumorgewebe excludieren"}


@dataclass(frozen=True)
class TissueMap:
    """Coarse maps and polygons of one slide.

    Attributes:
        factor_px: level-0 px per coarse cell.
        size_wh: level-0 (width, height) of the slide.
        tissue: (gh, gw) float32 soft tissue mask in [0, 1].
        tumor: (gh, gw) bool, inside the tumour zone and outside necrosis / exclusions.
        necrosis: (gh, gw) bool.
        stroma: (gh, gw) bool, tissue that is not tumour zone (incl. excluded islands).
        polygons: list of (class id, (n, 2) float array of level-0 (x, y) vertices).
        mitotic_field: (gh, gw) float32 relative mitotic density (hot spots), 0 outside the tumour.
        lookalike_field: (gh, gw) float32 relative look-alike density (higher near necrosis).
        eosinophil_field: (gh, gw) float32 relative eosinophil density.
        blur_boxes_l0: out-of-focus scanner stripes, (x1, y1, x2, y2) level-0 px (also polygons of class 3).
    """

    factor_px: int
    size_wh: tuple[int, int]
    tissue: np.ndarray
    tumor: np.ndarray
    necrosis: np.ndarray
    stroma: np.ndarray
    polygons: list[tuple[int, np.ndarray]]
    mitotic_field: np.ndarray
    lookalike_field: np.ndarray
    eosinophil_field: np.ndarray
    blur_boxes_l0: tuple[tuple[int, int, int, int], ...] = ()

    def coarse_index(self, x_l0: np.ndarray, y_l0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the coarse cells holding level-0 points, clipped to the grid."""
        gh, gw = self.tissue.shape
        row = np.clip((np.asarray(y_l0) // self.factor_px).astype(int), 0, gh - 1)
        col = np.clip((np.asarray(x_l0) // self.factor_px).astype(int), 0, gw - 1)
        return row, col


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Unit-std Gaussian-filtered white noise on a grid (wraps at the edges)."""
    field = gaussian_spectrum_noise(rng, shape, (sigma,), (1.0,))
    return field / max(float(field.std()), 1e-6)


def _tissue_mask(rng: np.random.Generator, shape: tuple[int, int], fraction: float) -> np.ndarray:
    """Irregular tissue blobs covering ``fraction`` of the grid, with glass along the slide border."""
    gh, gw = shape
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    cy, cx = gh * rng.uniform(0.4, 0.6), gw * rng.uniform(0.4, 0.6)
    radial = ((yy - cy) / (0.5 * gh)) ** 2 + ((xx - cx) / (0.55 * gw)) ** 2
    field = smooth_noise(rng, shape, min(shape) / 7) * 0.9 + smooth_noise(rng, shape, min(shape) / 25) * 0.25
    field -= 2.2 * radial
    border = np.minimum.reduce([yy, xx, gh - 1 - yy, gw - 1 - xx]) / max(min(shape) * 0.06, 1.0)
    field -= 8.0 * np.clip(1.0 - border, 0, 1) ** 2
    mask = field > np.quantile(field, 1.0 - fraction)
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
        mask = np.isin(labels, 1 + np.flatnonzero(sizes >= 0.04 * sizes.max()))
    return ndimage.binary_fill_holes(ndimage.binary_opening(mask, iterations=2))


def _contours(mask: np.ndarray, factor_px: int, min_cells: int) -> list[np.ndarray]:
    """Closed outer contours of a coarse mask as level-0 (x, y) polygons (at least ``min_cells`` inside)."""
    smooth = ndimage.gaussian_filter(np.pad(mask.astype(np.float32), 2), 1.0)
    lines = contourpy.contour_generator(z=smooth, line_type="Separate").lines(0.5)
    out = []
    for line in lines:
        if len(line) < 4:
            continue
        area = 0.5 * abs(np.dot(line[:, 0], np.roll(line[:, 1], 1)) - np.dot(line[:, 1], np.roll(line[:, 0], 1)))
        if area < min_cells:
            continue
        out.append(np.round((line - 2 + 0.5) * factor_px))  # integer vertices, as stored in the database
    return out


def rasterise(polygons: list[np.ndarray], shape: tuple[int, int], factor_px: int) -> np.ndarray:
    """Coarse bool mask of ``polygons`` (level-0 px) on a grid of ``factor_px`` cells (PIL scan conversion;
    exact up to the cells the outline crosses)."""
    from PIL import Image, ImageDraw

    gh, gw = shape
    image = Image.new("L", (gw, gh), 0)
    draw = ImageDraw.Draw(image)
    for poly in polygons:
        draw.polygon([(float(x) / factor_px - 0.5, float(y) / factor_px - 0.5) for x, y in poly], fill=1)
    return np.asarray(image, dtype=bool)


def inside_any(polygons: list[np.ndarray], x_l0: np.ndarray, y_l0: np.ndarray, *,
               factor_px: int | None = None, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Bool per level-0 point: inside at least one polygon (exact).

    With ``factor_px`` and ``shape`` (a coarse grid covering the points), points whose 3 x 3 coarse
    neighbourhood lies wholly inside or wholly outside the rasterised polygons are decided from the raster,
    and only the few near an outline are tested exactly: fast for hundreds of thousands of points.
    """
    points = np.c_[x_l0, y_l0].astype(float)
    out = np.zeros(len(points), bool)
    todo = np.ones(len(points), bool)
    if factor_px is not None and shape is not None and polygons:
        raster = rasterise(polygons, shape, factor_px)
        sure_in = ndimage.binary_erosion(raster, iterations=2, border_value=0)
        sure_out = ~ndimage.binary_dilation(raster, iterations=2)
        row = np.clip((points[:, 1] // factor_px).astype(int), 0, shape[0] - 1)
        col = np.clip((points[:, 0] // factor_px).astype(int), 0, shape[1] - 1)
        out = sure_in[row, col]
        todo = ~(out | sure_out[row, col])
    for poly in polygons:
        if todo.any():
            out[todo] |= MplPath(poly).contains_points(points[todo])
    return out


def _blobs_inside(rng, region: np.ndarray, n: int, radius_cells: tuple[float, float]) -> np.ndarray:
    """``n`` irregular blobs centred in ``region`` (coarse bool) and clipped to it."""
    out = np.zeros(region.shape, bool)
    inner = np.argwhere(ndimage.binary_erosion(region, iterations=3))
    if len(inner) == 0:
        return out
    yy, xx = np.mgrid[0:region.shape[0], 0:region.shape[1]]
    wobble = smooth_noise(rng, region.shape, 2.0)
    for cy, cx in inner[rng.integers(0, len(inner), n)]:
        r = rng.uniform(*radius_cells)
        out |= np.hypot(yy - cy, xx - cx) < r * (1 + 0.25 * wobble)
    return out & ndimage.binary_erosion(region, iterations=2)


def make_tissue_map(rng: np.random.Generator, size_wh: tuple[int, int], *, factor_px: int,
                    hotspot_sigma_cells: float, blur_probability: float = 0.0,
                    stripe_px: int = 1000, tissue_fraction: tuple[float, float] = (0.45, 0.68)) -> TissueMap:
    """Draw the layout of one slide (see module docstring).

    Args:
        rng: random generator.
        size_wh: level-0 (width, height), px.
        factor_px: level-0 px per coarse cell.
        hotspot_sigma_cells: spatial scale of the mitotic hot spots, coarse cells.
        blur_probability: chance of one out-of-focus scanner stripe (class 3 'unscharfe scan-area').
        stripe_px: width of a scanner stripe, level-0 px (Aperio: ~1000-2000).
        tissue_fraction: (min, max) share of the slide covered by tissue, drawn uniformly.
    """
    width, height = size_wh
    shape = (-(-height // factor_px), -(-width // factor_px))
    tissue = _tissue_mask(rng, shape, rng.uniform(*tissue_fraction))
    non_tumor = smooth_noise(rng, shape, min(shape) / 9) > rng.uniform(0.6, 1.2)
    tumor_raw = tissue & ~non_tumor
    tumor_raw = ndimage.binary_erosion(tumor_raw, iterations=2)
    labels, n = ndimage.label(tumor_raw)
    if n > 1:
        sizes = ndimage.sum(tumor_raw, labels, index=np.arange(1, n + 1))
        tumor_raw = np.isin(labels, 1 + np.flatnonzero(sizes >= 0.15 * sizes.max()))
    filled = ndimage.binary_fill_holes(tumor_raw)
    min_cells = 20
    zone_polys = _contours(filled, factor_px, min_cells * 3)
    zone = rasterise(zone_polys, shape, factor_px) & ndimage.binary_erosion(tissue, iterations=1)
    islands = zone & ~ndimage.binary_dilation(tumor_raw, iterations=1)
    excl_polys = _contours(islands, factor_px, min_cells)
    necro = _blobs_inside(rng, zone, int(rng.integers(1, 3)), (1.5, max(2.0, min(shape) / 18)))
    necro_polys = _contours(necro, factor_px, 8)
    excluded = rasterise(excl_polys, shape, factor_px)
    necrosis = rasterise(necro_polys, shape, factor_px) & zone
    tumor = zone & ~excluded & ~necrosis
    polygons = ([(TUMORZONE, p) for p in zone_polys] + [(NECROSIS, p) for p in necro_polys]
                + [(EXCLUDED, p) for p in excl_polys])
    soft_tissue = ndimage.gaussian_filter((tissue | zone).astype(np.float32), 0.8)
    blur = _blur_stripe(rng, zone, factor_px, (width, height), stripe_px) if rng.random() < blur_probability else ()
    polygons += [(BLURRY, np.array([(x1, y1), (x2, y1), (x2, y2), (x1, y2)], float)) for x1, y1, x2, y2 in blur]
    return TissueMap(factor_px, (width, height), soft_tissue, tumor, necrosis, tissue & ~zone | excluded,
                     polygons, *_density_fields(rng, tumor, necrosis, hotspot_sigma_cells), blur_boxes_l0=blur)


def _blur_stripe(rng, zone: np.ndarray, factor_px: int, size_wh: tuple[int, int], stripe_px: int):
    """One out-of-focus section of a scanner stripe crossing the tumour zone: ((x1, y1, x2, y2),)."""
    width, height = size_wh
    cols = np.flatnonzero(zone.any(axis=0))
    if len(cols) == 0:
        return ()
    w = int(min(stripe_px, width // 6))
    x1 = int(np.clip(rng.choice(cols) * factor_px - w // 2, 0, width - w))
    rows = np.flatnonzero(zone[:, x1 // factor_px:(x1 + w) // factor_px + 1].any(axis=1))
    if len(rows) == 0:
        return ()
    length = int(rng.uniform(0.15, 0.35) * height)
    y1 = int(np.clip(rng.choice(rows) * factor_px - length // 2, 0, height - length))
    return ((x1, y1, x1 + w, y1 + length),)


def _density_fields(rng, tumor: np.ndarray, necrosis: np.ndarray, sigma: float):
    """Relative densities of mitoses (log-normal field plus hot spots), look-alikes and eosinophils."""
    shape = tumor.shape
    lognormal = np.exp(rng.uniform(0.8, 1.5) * smooth_noise(rng, shape, sigma))
    spots = np.zeros(shape, np.float32)
    idx = np.argwhere(tumor)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    for cy, cx in idx[rng.integers(0, len(idx), int(rng.integers(1, 4)))] if len(idx) else []:
        spots += rng.uniform(3, 8) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (sigma * 0.8) ** 2))
    mitotic = (lognormal + spots) * tumor
    near_necrosis = np.exp(-ndimage.distance_transform_edt(~necrosis) / 12.0) if necrosis.any() else 0.0
    lookalike = np.exp(0.7 * smooth_noise(rng, shape, sigma)) * (1 + 4 * near_necrosis) * tumor
    eosinophil = np.exp(1.0 * smooth_noise(rng, shape, sigma * 0.7)) * tumor
    return mitotic.astype(np.float32), lookalike.astype(np.float32), eosinophil.astype(np.float32)
