"""What the viewer draws on a slide, as plain data in level-0 px (docs/viewer.md).

Per slide: ground-truth cells by class (from the label database), the tumour-zone polygons, and per
result file ("stage") the detections kept at its threshold marked TP / FP, the missed ground truth (FN)
under the evaluation's matching (:func:`ccmct.evaluation.marks.slide_marks`, the same rule as ``ccmct
evaluate``), and the true and predicted 10-HPF hotspots (:func:`ccmct.evaluation.mitotic_count`).
Coordinates are rounded to whole level-0 px, scores to 4 decimals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ccmct.config.dataset import GRANULOCYTE, LOOKALIKE, MITOTIC_FIGURE, TUMOR_CELL, TUMORZONE_CLASS
from ccmct.data.export import OUTCOME_COLORS
from ccmct.evaluation.marks import SlideMarks, slide_marks
from ccmct.evaluation.mitotic_count import MitoticCount, mitotic_count

GT_CLASSES = (MITOTIC_FIGURE, LOOKALIKE, GRANULOCYTE, TUMOR_CELL)
"""Ground-truth classes drawn (toggles on the slide page), in legend order."""

COLORS = {
    "tp": OUTCOME_COLORS["TP"], "fp": OUTCOME_COLORS["FP"], "fn": OUTCOME_COLORS["FN"],
    f"gt{MITOTIC_FIGURE}": "#ffea00", f"gt{LOOKALIKE}": "#e040fb", f"gt{GRANULOCYTE}": "#ff9100",
    f"gt{TUMOR_CELL}": "#8d6e63",
    "hotspot_true": "#00e5ff", "hotspot_pred": "#ff6d00", "zone": "#1a237e", "zone_other": "#757575",
}
"""Overlay colours (CSS hex) by layer; docs/viewer.md explains them."""


@dataclass(frozen=True)
class Stage:
    """One result file shown on the slide pages.

    Attributes:
        label: name in the stage selector (e.g. "stage 1: RetinaNet-ODAEL-test").
        path: the result file.
        results: slide -> (N, 6) detections, level-0 px.
        threshold: detections need ``score > threshold``.
    """

    label: str
    path: Path
    results: dict
    threshold: float


def _flat(points: np.ndarray) -> list[int]:
    return np.rint(np.asarray(points, np.float64).reshape(-1, 2)).astype(np.int64).ravel().tolist()


def _hotspot(mc: MitoticCount) -> dict:
    return {"x": round(mc.x_l0), "y": round(mc.y_l0), "w": int(mc.width_l0), "h": int(mc.height_l0),
            "count": int(mc.count)}


def stage_overlay(stage: Stage, name: str, gt_mitoses: np.ndarray, *, mpp: float, extent_l0: tuple[int, int],
                  matching: str, radius_l0: float) -> tuple[dict, SlideMarks]:
    """The detections layer of one stage on one slide, and the marks it was drawn from."""
    boxes = np.asarray(stage.results.get(name, np.zeros((0, 6))), np.float64).reshape(-1, 6)
    marks = slide_marks(boxes, gt_mitoses, threshold=stage.threshold, matching=matching, radius_l0=radius_l0)
    fn_xy = marks.gt_xy_l0[~marks.gt_tp]
    predicted = mitotic_count(marks.det_xy_l0, mpp=mpp, extent_l0=extent_l0)
    c = marks.counts
    layer = {
        "label": stage.label, "file": stage.path.name, "threshold": float(stage.threshold),
        "matching": matching, "counts": {"tp": c.tp, "fp": c.fp, "fn": c.fn},
        "f1": None if c.f1 != c.f1 else round(float(c.f1), 4),
        "skipped": bool(marks.skipped),
        "det": _flat(marks.det_xy_l0), "score": np.round(marks.det_score, 4).tolist(),
        "tp": marks.det_tp.astype(np.int8).tolist(), "fn": _flat(fn_xy),
        "hotspot": _hotspot(predicted),
    }
    return layer, marks


def read_slide_labels(db_path: Path, name: str) -> dict[int, np.ndarray]:
    """Ground-truth points by class (:data:`GT_CLASSES`) of one slide, level-0 px."""
    from ccmct.data.sliderunner import SlideRunnerDB

    with SlideRunnerDB.open(db_path) as db:
        spots = db.spots(db.find_slide(name), classes=GT_CLASSES)
    return {cid: spots.loc[spots["agreed_class"] == cid, ["x", "y"]].to_numpy(np.float64) for cid in GT_CLASSES}


def read_zones(zone_db: Path | None, name: str) -> list[dict]:
    """Tumour-zone polygons of a slide (class 1 = tumour zone; others are excluded areas); [] if none."""
    if zone_db is None or not Path(zone_db).exists():
        return []
    from ccmct.data.sliderunner import AnnotationType, SlideRunnerDB
    from ccmct.errors import DatabaseError

    with SlideRunnerDB.open(zone_db) as db:
        try:
            uid = db.find_slide(name)
        except DatabaseError:
            return []
        names = db.class_names()
        return [{"cls": int(a.agreed_class), "name": str(names.get(a.agreed_class, a.agreed_class)),
                 "tumour": int(a.agreed_class) == TUMORZONE_CLASS, "points": _flat(a.vertices_l0)}
                for a in db.slide_annotations(uid, types=(AnnotationType.POLYGON,))]


def slide_overlay(name: str, *, stem: str, width: int, height: int, mpp: float, split: str,
                  labels: dict[int, np.ndarray], zones: list[dict], stages: list[Stage], matching: str,
                  radius_l0: float, region: list[int] | None = None) -> tuple[dict, list[SlideMarks]]:
    """Everything the slide page draws (JSON-ready) and each stage's marks (for the index page)."""
    gt_mitoses = labels[MITOTIC_FIGURE]
    layers, marks = [], []
    for stage in stages:
        layer, mark = stage_overlay(stage, name, gt_mitoses, mpp=mpp, extent_l0=(width, height),
                                    matching=matching, radius_l0=radius_l0)
        layers.append(layer)
        marks.append(mark)
    true = mitotic_count(gt_mitoses, mpp=mpp, extent_l0=(width, height))
    document = {
        "name": name, "stem": stem, "width": int(width), "height": int(height), "mpp": float(mpp),
        "split": split, "radius_l0": float(radius_l0), "colors": COLORS, "region": region,
        "classes": [{"id": cid, "name": _CLASS_LABELS[cid]} for cid in GT_CLASSES],
        "gt": {str(cid): _flat(points) for cid, points in labels.items()},
        "zones": zones, "stages": layers, "hotspot_true": _hotspot(true),
    }
    return document, marks


_CLASS_LABELS = {MITOTIC_FIGURE: "mitotic figure", LOOKALIKE: "look-alike", GRANULOCYTE: "granulocyte",
                 TUMOR_CELL: "tumour cell"}


def overlay_script(document: dict) -> str:
    """The overlay as a script assigning ``window.CCMCT_SLIDE`` (file:// pages cannot fetch JSON)."""
    return "window.CCMCT_SLIDE = " + json.dumps(document, separators=(",", ":")) + ";\n"
