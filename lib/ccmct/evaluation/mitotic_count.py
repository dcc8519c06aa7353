"""Mitotic count (MC): the most mitotic figures in any 10-HPF window of a slide, from points.

The area is ``n_hpf x HPF_AREA_MM2`` (10 x 0.237 = 2.37 mm²) at aspect 4:3, sized in pixels from the slide's
µm/px (as the authors size their HPF crops, the authors' `AblationStudy/create_HPFsubsets.py`; docs/ablation.md). Windows slide on a grid of
``cells_per_width`` steps per window width (default 8: step = W/8 = H/6, ~220 µm), counted with a 2-D
histogram and an integral image; the count is the maximum over grid positions (a lower bound of the
continuous maximum, short of it only where a better window sits between grid positions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ccmct.config.dataset import DETECTION_RADIUS_L0, HPF_AREA_MM2, HPF_ASPECT
from ccmct.evaluation.f1 import detections_after_nms
from ccmct.geometry import box_centers


def hpf_window_l0(mpp: float, *, n_hpf: float = 10) -> tuple[int, int]:
    """(width, height) in level-0 px of ``n_hpf`` high-power fields at aspect 4:3 for a slide of ``mpp`` µm/px."""
    area_mm2 = n_hpf * HPF_AREA_MM2
    aw, ah = HPF_ASPECT
    width_um = np.sqrt(area_mm2 * aw / ah) * 1000
    height_um = np.sqrt(area_mm2 * ah / aw) * 1000
    return int(width_um / mpp), int(height_um / mpp)


@dataclass(frozen=True)
class MitoticCount:
    """Result for one slide.

    Attributes:
        count: mitotic figures in the best window.
        x_l0, y_l0: top-left corner of the best window, level-0 px.
        width_l0, height_l0: window size, level-0 px.
        step_l0: grid step (x and y), level-0 px.
        density: window counts, shape (rows, cols): entry [r, c] = count of the window whose top-left is
            (c * step_l0, r * step_l0) — the MC heatmap (figures per n HPF).
    """

    count: int
    x_l0: float
    y_l0: float
    width_l0: int
    height_l0: int
    step_l0: float
    density: np.ndarray


def mitotic_count(points_l0: np.ndarray, *, mpp: float, n_hpf: float = 10, cells_per_width: int = 8,
                  extent_l0: tuple[float, float] | None = None) -> MitoticCount:
    """The n-HPF window with most points.

    Args:
        points_l0: (N, 2) [x, y] level-0 px (GT mitoses or detection centres).
        mpp: µm per level-0 px of the slide.
        n_hpf: window area in HPFs (0.237 mm² each).
        cells_per_width: grid steps per window width (the height gets 3/4 of them).
        extent_l0: slide (width, height) in px; default the points' bounding box.
    """
    width, height = hpf_window_l0(mpp, n_hpf=n_hpf)
    step = width / cells_per_width
    cells_y = max(1, int(round(height / step)))
    points = np.asarray(points_l0, np.float64).reshape(-1, 2)
    ext_w, ext_h = extent_l0 if extent_l0 is not None else (
        (points[:, 0].max() + 1, points[:, 1].max() + 1) if len(points) else (width, height))
    nx = max(int(np.ceil(ext_w / step)), cells_per_width)
    ny = max(int(np.ceil(ext_h / step)), cells_y)
    hist, _, _ = np.histogram2d(points[:, 1], points[:, 0], bins=(ny, nx), range=((0, ny * step), (0, nx * step)))
    integral = np.zeros((ny + 1, nx + 1))
    integral[1:, 1:] = hist.cumsum(0).cumsum(1)
    h, w = cells_y, cells_per_width
    density = integral[h:, w:] - integral[:-h, w:] - integral[h:, :-w] + integral[:-h, :-w]
    r, c = np.unravel_index(int(np.argmax(density)), density.shape)
    return MitoticCount(int(round(density[r, c])), c * step, r * step, width, height, step,
                        np.rint(density).astype(np.int64))


def mitotic_count_table(ground_truth: Mapping[str, np.ndarray], results: Mapping[str, np.ndarray], *,
                        threshold: float, mpp: float | Mapping[str, float], n_hpf: float = 10,
                        radius_l0: float = DETECTION_RADIUS_L0) -> pd.DataFrame:
    """Per slide: true MC (GT points) and predicted MC (detections > threshold after distance NMS).

    Returns:
        DataFrame indexed by slide with columns true_count, predicted_count, true_x_l0, true_y_l0,
        predicted_x_l0, predicted_y_l0.
    """
    rows = []
    for name, boxes in results.items():
        slide_mpp = mpp[name] if isinstance(mpp, Mapping) else mpp
        kept = detections_after_nms(np.asarray(boxes, np.float64).reshape(-1, 6), threshold, radius_l0)
        gt = np.asarray(ground_truth[name], np.float64).reshape(-1, 2)
        det = box_centers(kept)
        both = np.concatenate([gt, det]) if len(gt) + len(det) else np.zeros((1, 2))
        extent = (both[:, 0].max() + 1, both[:, 1].max() + 1)
        true = mitotic_count(gt, mpp=slide_mpp, n_hpf=n_hpf, extent_l0=extent)
        pred = mitotic_count(det, mpp=slide_mpp, n_hpf=n_hpf, extent_l0=extent)
        rows.append({"slide": name, "true_count": true.count, "predicted_count": pred.count,
                     "true_x_l0": true.x_l0, "true_y_l0": true.y_l0,
                     "predicted_x_l0": pred.x_l0, "predicted_y_l0": pred.y_l0})
    return pd.DataFrame(rows).set_index("slide") if rows else pd.DataFrame(
        columns=["true_count", "predicted_count"])


def count_correlation(table: pd.DataFrame) -> float:
    """Pearson correlation of predicted vs true mitotic counts over slides (NaN with < 2 slides or no spread)."""
    if len(table) < 2 or table["true_count"].std() == 0 or table["predicted_count"].std() == 0:
        return float("nan")
    return float(np.corrcoef(table["true_count"], table["predicted_count"])[0, 1])


def slide_mpps(data_root, slides, *, default: float | None = None) -> dict[str, float]:
    """µm/px of each slide read from its file under ``<root>/WSI``; ``default`` (the paper's 0.25 when None)
    for slides whose file is missing."""
    from ccmct.config.dataset import PAPER_MPP
    from ccmct.config.paths import DataRoot
    from ccmct.data.slides import open_slide

    root = data_root if isinstance(data_root, DataRoot) else DataRoot(data_root)
    out = {}
    for name in slides:
        path = root.slide_path(name)
        if path.exists():
            with open_slide(path) as slide:
                out[name] = float(slide.mpp)
        else:
            out[name] = PAPER_MPP if default is None else default
    return out


def slide_sizes_l0(data_root, slides) -> dict[str, tuple[int, int] | None]:
    """(width, height) level-0 px of each slide read from its file under ``<root>/WSI`` (None when the file
    is missing) — the extent a mitotic-count map should cover."""
    from ccmct.config.paths import DataRoot
    from ccmct.data.slides import open_slide

    root = data_root if isinstance(data_root, DataRoot) else DataRoot(data_root)
    out = {}
    for name in slides:
        path = root.slide_path(name)
        if path.exists():
            with open_slide(path) as slide:
                out[name] = tuple(int(v) for v in slide.dimensions)
        else:
            out[name] = None
    return out
