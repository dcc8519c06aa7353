"""Fixtures of the viewer tests: hand-made result files on the ``tiny`` synthetic root, a built site, a browser.

The hand-made results make every expected mark known: on the test slide, detections exactly on
``N_TP`` isolated ground-truth mitoses (TP), ``N_FP`` detections far from any mitosis (FP), one detection
on a further mitosis but below the threshold (that mitosis stays missed), every other mitosis missed (FN).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from ccmct.config.paths import DataRoot
from ccmct.data.results import write_results
from ccmct.evaluation.ground_truth import load_ground_truth

from .chromium import browser_or_skip, launch

N_TP, N_FP = 5, 3
THRESHOLD = 0.5


@dataclass(frozen=True)
class ViewerCase:
    root: Path
    db: Path
    results: Path
    results2: Path
    slide: str
    other: str
    n_gt: int
    tp_xy: np.ndarray
    fp_xy: np.ndarray
    fn_xy: np.ndarray
    mpp: float


def _boxes(xy, scores) -> np.ndarray:
    xy = np.asarray(xy, float).reshape(-1, 2)
    return np.column_stack([xy - 25, xy + 25, np.full(len(xy), 2.0), np.asarray(scores, float)])


def make_case(root: Path, out: Path) -> ViewerCase:
    data = DataRoot(root)
    slide = sorted(data.test_slides())[0]
    other = sorted(n for n in data.split() if n != slide)[0]
    db = data.database("ODAEL")
    gt = load_ground_truth(db, slides=[slide, other])
    points = gt[slide]
    tree = cKDTree(points)
    isolated = [i for i in range(len(points)) if len(tree.query_ball_point(points[i], 60)) == 1]
    assert len(isolated) >= N_TP + 1, "the tiny slide needs isolated mitoses for the hand-made case"
    tp_idx, below_idx = isolated[:N_TP], isolated[N_TP]
    from ccmct.data.slides import open_slide

    with open_slide(data.slide_path(slide)) as handle:
        width, height = handle.dimensions
        mpp = handle.mpp
    rng = np.random.default_rng(0)
    fp = []
    while len(fp) < N_FP:
        p = rng.uniform([100, 100], [width - 100, height - 100])
        if tree.query(p)[0] > 150 and all(np.hypot(*(p - q)) > 150 for q in fp):
            fp.append(np.round(p))
    fp_xy = np.array(fp)
    tp_xy = points[tp_idx]
    boxes = np.concatenate([_boxes(tp_xy, [0.9] * N_TP), _boxes(fp_xy, [0.8, 0.7, 0.6]),
                            _boxes(points[[below_idx]], [0.2])])
    fn_mask = np.ones(len(points), bool)
    fn_mask[tp_idx] = False
    other_boxes = _boxes(gt[other][:2], [0.95, 0.95])
    out.mkdir(parents=True, exist_ok=True)
    results = write_results(out / "RetinaNet-ODAEL-test.npz", {slide: boxes, other: other_boxes})
    stage2 = {slide: np.concatenate([_boxes(tp_xy[:3], [0.9] * 3), _boxes(fp_xy[:1], [0.8])]),
              other: other_boxes}
    results2 = write_results(out / "2ndstage_RetinaNet-ODAEL-test.npz", stage2)
    return ViewerCase(Path(root), db, results, results2, slide, other, len(points), tp_xy, fp_xy,
                      points[fn_mask], mpp)


@pytest.fixture(scope="session")
def viewer_case(tiny_root, tmp_path_factory) -> ViewerCase:
    return make_case(tiny_root, tmp_path_factory.mktemp("viewer_results"))


@pytest.fixture(scope="session")
def static_site(viewer_case, tmp_path_factory) -> Path:
    """A static site (tiles on disk) of the hand-made case, stage 1 and stage 2."""
    from ccmct.viewer import ViewerPlan, build_site

    out = tmp_path_factory.mktemp("site") / "site"
    build_site(ViewerPlan(viewer_case.root, [viewer_case.results, viewer_case.results2], out,
                          db=viewer_case.db, thresholds=[THRESHOLD], progress=False))
    return out


@pytest.fixture(scope="module")
def browser():
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch(p)
        try:
            yield chromium
        finally:
            chromium.close()
