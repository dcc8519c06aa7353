"""Export a SlideRunner database to MS COCO or to QuPath-compatible GeoJSON.

**COCO** (https://cocodataset.org/#format-data): one image per slide (``id`` = ``Slides.uid``, width and
height from the ``Slides`` table, else from the slide file in ``wsi_dir`` (default: ``../WSI`` next to the
database's folder), else ``null`` with a warning), one category per ``Classes`` row, one annotation per
database annotation with ``bbox`` = [x, y, width, height] in level-0 px (the authors' exporter wrote
x1, y1, x2, y2), ``area``, ``iscrowd`` 0, ``category_id`` = ``agreedClass``. Spots become a square box of
``box_size_l0`` centred on the cell; rectangles and circles their corners' box; polygons their bounding box
plus ``segmentation`` (area = polygon area). Annotations without an agreed class (0) are not valid COCO
categories and are left out with a warning. ``info`` and ``licenses`` are the authors'.

**GeoJSON** (what QuPath imports by drag and drop): a ``FeatureCollection``; spots are ``Point`` features,
rectangles and polygons ``Polygon`` features (closed rings), circles a 64-gon. Every feature has
``properties.objectType`` "annotation", ``classification`` {name, colorRGB (QuPath's packed signed ARGB
int), color [r, g, b]} (absent for agreed class 0, i.e. unclassified), ``slide`` (file name) and
``anno_id``. QuPath attaches a GeoJSON file to the image that is open, so export one slide per file
(``slide=``) for QuPath; without it the file holds every slide, told apart by ``properties.slide``.

Content is checked, not trusted: annotations with NULL / NaN / non-numeric coordinates, polygons with fewer than 3
vertices and points outside their slide are left out with a warning (:mod:`ccmct.data.sliderunner`), so the
JSON stays valid; polygons that intersect themselves are exported unchanged, with one warning.

Both writers are atomic (temporary file, then rename).

Example:
    >>> from ccmct.data.export import export_coco, export_geojson
    >>> export_coco("MITOS_WSI_CCMCT_ODAEL.sqlite", "odael.json", box_size_l0=50)    # doctest: +SKIP
    >>> export_geojson("MITOS_WSI_CCMCT_ODAEL.sqlite", "be10.geojson",
    ...                slide="be10fa37ad6e88e1f406.svs")                         # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ccmct.data.sliderunner import AnnotationType, SlideRunnerDB, self_intersecting
from ccmct.atomicio import atomic_write_json

COCO_INFO = {
    "description": "Large-Scale Mitotic Figure Dataset for Canine Cutaneous Mast Cell Tumors (MITOS_WSI_CMCT)",
    "version": "1.0",
    "year": 2019,
    "contributor": "Christof A. Bertram, Marc Aubreville, Christian Marzahl, Andreas Maier, Robert Klopfleisch",
    "date_created": "2019/07/05",
}
COCO_LICENSES = [{"id": 1, "name": "Attribution-NonCommercial-NoDerivs License (CC BY-NC-ND 2.0)",
                  "url": "http://creativecommons.org/licenses/by-nc-nd/2.0/"}]

# matplotlib's tab10, by class id: colours only tell classes apart, they carry no meaning.
_PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
            (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
_SHAPES = (AnnotationType.RECTANGLE, AnnotationType.POLYGON, AnnotationType.CIRCLE)
CIRCLE_VERTICES = 64


def export_coco(db_path: str | os.PathLike[str], out_path: str | os.PathLike[str], *, box_size_l0: float = 50,
                wsi_dir: str | os.PathLike[str] | None = None) -> dict:
    """Write a database as MS COCO JSON (see the module docstring); returns the document written.

    Args:
        db_path: SlideRunner database.
        out_path: destination ``.json``.
        box_size_l0: side of the square box around a spot, level-0 px (the authors: 50).
        wsi_dir: folder of the slide files, for image sizes missing from the ``Slides`` table.
    """
    document = to_coco(db_path, box_size_l0=box_size_l0, wsi_dir=wsi_dir)
    write_json_atomic(out_path, document)
    return document


def export_geojson(db_path: str | os.PathLike[str], out_path: str | os.PathLike[str], *,
                   slide: str | None = None) -> dict:
    """Write a database (or one ``slide`` of it, by file name) as GeoJSON; returns the document written."""
    document = to_geojson(db_path, slide=slide)
    write_json_atomic(out_path, document)
    return document


def to_coco(db_path: str | os.PathLike[str], *, box_size_l0: float = 50,
            wsi_dir: str | os.PathLike[str] | None = None) -> dict:
    """The COCO document of a database (see :func:`export_coco`)."""
    if not box_size_l0 > 0:
        raise ValueError(f"box_size_l0 must be > 0, got {box_size_l0}")
    db_path = Path(db_path)
    wsi_dir = Path(wsi_dir) if wsi_dir is not None else db_path.resolve().parent.parent / "WSI"
    with SlideRunnerDB.open(db_path) as db:
        slides = db.slides()
        categories = [{"id": int(u), "name": str(n)} for u, n in db.class_names().items()]
        spots = db.spots()
        shapes = [a for uid in slides["uid"]
                  for a in db.slide_annotations(int(uid), types=_SHAPES, check_polygons=False)]
    _warn_self_intersecting(db_path, shapes, "their COCO area is the shoelace value of the outline as drawn")
    annotations = _coco_spots(spots, box_size_l0) + [_coco_shape(a) for a in shapes]
    unclassified = [a for a in annotations if a["category_id"] == 0]
    if unclassified:
        warnings.warn(f"{db_path}: {len(unclassified)} annotation(s) without an agreed class (0) left out of "
                      f"the COCO file (first uid {unclassified[0]['id']})", stacklevel=2)
    annotations = sorted((a for a in annotations if a["category_id"] != 0), key=lambda a: a["id"])
    return {"info": dict(COCO_INFO), "licenses": [dict(x) for x in COCO_LICENSES],
            "images": _coco_images(slides, wsi_dir, db_path), "categories": categories,
            "annotations": annotations}


def _coco_images(slides: pd.DataFrame, wsi_dir: Path, db_path: Path) -> list[dict]:
    images, missing = [], []
    for uid, name, width, height in slides[["uid", "filename", "width", "height"]].itertuples(index=False):
        if not (pd.notna(width) and pd.notna(height) and width > 0 and height > 0):
            width, height = _slide_size(wsi_dir / name)
            if width is None:
                missing.append(name)
        images.append({"license": 1, "file_name": name, "id": int(uid),
                       "width": None if width is None else int(width),
                       "height": None if height is None else int(height)})
    if missing:
        warnings.warn(f"{db_path}: no width/height in table Slides and no slide file in {wsi_dir} for "
                      f"{len(missing)} slide(s) (first {missing[0]!r}); their COCO images have width/height null",
                      stacklevel=3)
    return images


def _slide_size(path: Path) -> tuple[int | None, int | None]:
    if not path.exists():
        return None, None
    from ccmct.data.slides import open_slide

    with open_slide(path) as slide:
        return slide.dimensions


def _coco_spots(spots: pd.DataFrame, box_size_l0: float) -> list[dict]:
    half = box_size_l0 / 2
    area = float(box_size_l0) ** 2
    return [{"id": int(a), "image_id": int(s), "category_id": int(c),
             "bbox": [float(x) - half, float(y) - half, float(box_size_l0), float(box_size_l0)],
             "area": area, "iscrowd": 0}
            for a, s, x, y, c in spots[["anno_id", "slide", "x", "y", "agreed_class"]].itertuples(index=False)]


def _coco_shape(anno) -> dict:
    v = anno.vertices_l0
    x1, y1 = v.min(axis=0)
    x2, y2 = v.max(axis=0)
    out = {"id": anno.uid, "image_id": anno.slide, "category_id": anno.agreed_class,
           "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "iscrowd": 0}
    if anno.type == AnnotationType.POLYGON:
        out["segmentation"] = [v.ravel().astype(float).tolist()]
        out["area"] = polygon_area(v)
    elif anno.type == AnnotationType.CIRCLE:
        out["area"] = float(np.pi * ((x2 - x1) / 2) ** 2)
    else:
        out["area"] = float((x2 - x1) * (y2 - y1))
    return out


def polygon_area(vertices: np.ndarray) -> float:
    """Area of a simple polygon (shoelace formula), in squared units of ``vertices`` (n, 2).

    Example:
        >>> polygon_area(np.array([[0, 0], [4, 0], [4, 3], [0, 3]]))
        12.0
    """
    x, y = np.asarray(vertices, float).T
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def to_geojson(db_path: str | os.PathLike[str], *, slide: str | None = None) -> dict:
    """The GeoJSON ``FeatureCollection`` of a database or of one slide (see :func:`export_geojson`).

    Raises:
        DatabaseError: ``slide`` is not in the database.
    """
    with SlideRunnerDB.open(db_path) as db:
        slides = db.slides()
        if slide is not None:
            slides = slides[slides["uid"] == db.find_slide(slide)]
        names = dict(zip(slides["uid"].astype(int), slides["filename"]))
        classes = {cid: _classification(cid, name) for cid, name in db.class_names().items()}
        features, shapes = [], []
        for uid in names:
            spots = db.spots(uid)
            features += [_feature({"type": "Point", "coordinates": [int(x), int(y)]}, int(a), int(c), names[uid],
                                  classes)
                         for a, x, y, c in spots[["anno_id", "x", "y", "agreed_class"]].itertuples(index=False)]
            slide_shapes = db.slide_annotations(uid, types=_SHAPES, check_polygons=False)
            shapes += slide_shapes
            features += [_feature(_shape_geometry(a), a.uid, a.agreed_class, names[uid], classes)
                         for a in slide_shapes]
    _warn_self_intersecting(db_path, shapes, "QuPath shows them as drawn")
    features.sort(key=lambda f: f["properties"]["anno_id"])
    return {"type": "FeatureCollection", "features": features}


def _warn_self_intersecting(db_path, shapes, consequence: str) -> None:
    """One warning for every polygon of the export that crosses itself: written unchanged (valid JSON)."""
    crossing = self_intersecting([a for a in shapes if a.type == AnnotationType.POLYGON])
    if crossing:
        warnings.warn(f"{db_path}: {len(crossing)} polygon(s) intersect themselves (first uid {crossing[0]}); "
                      f"exported unchanged, {consequence}", stacklevel=3)


def _classification(class_id: int, name: str) -> dict:
    r, g, b = _PALETTE[(int(class_id) - 1) % len(_PALETTE)]
    argb = (0xFF << 24) | (r << 16) | (g << 8) | b
    return {"name": name, "colorRGB": argb - (1 << 32), "color": [r, g, b]}


def _feature(geometry: dict, anno_id: int, class_id: int, slide: str, classes: dict) -> dict:
    properties = {"objectType": "annotation", "slide": slide, "anno_id": int(anno_id)}
    if class_id in classes:
        properties["classification"] = classes[class_id]
    elif class_id != 0:
        properties["classification"] = _classification(class_id, f"class {class_id}")
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def _shape_geometry(anno) -> dict:
    v = anno.vertices_l0
    if anno.type == AnnotationType.RECTANGLE:
        (x1, y1), (x2, y2) = v.min(axis=0), v.max(axis=0)
        ring = [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
    elif anno.type == AnnotationType.CIRCLE:
        centre, radius = v.mean(axis=0), abs(v[1, 0] - v[0, 0]) / 2
        angles = np.linspace(0, 2 * np.pi, CIRCLE_VERTICES, endpoint=False)
        ring = np.stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], 1).tolist()
    else:
        ring = v.tolist()
    ring = [[float(x), float(y)] for x, y in ring]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def write_json_atomic(path: str | os.PathLike[str], document) -> Path:
    """Write strict JSON (NaN/Infinity -> null, :mod:`ccmct.jsonable`) to a temporary file beside ``path``, then
    rename it into place."""
    return atomic_write_json(path, document, indent=None)


# --------------------------------------------------------------------------- evaluated detections (QuPath)
OUTCOME_COLORS = {"TP": "#00e676", "FP": "#ff1744", "FN": "#2979ff"}
"""Colours of evaluated detections (true positive, false positive, missed ground truth), CSS hex; the
viewer (``ccmct view``) draws with the same ones (docs/viewer.md)."""


def _outcome_classification(name: str) -> dict:
    color = OUTCOME_COLORS[name]
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return {"name": name, "colorRGB": ((0xFF << 24) | (r << 16) | (g << 8) | b) - (1 << 32), "color": [r, g, b]}


def detections_geojson(slides: dict, *, shape: str = "point", box_size_l0: float = 50.0) -> dict:
    """Evaluated detections as a GeoJSON ``FeatureCollection`` of QuPath *detection* objects.

    Args:
        slides: slide file name -> ``{"xy": (N, 2) level-0 px, "outcome": (N,) of "TP" | "FP" | "FN",
            "score": (N,) float (NaN where there is none, i.e. for FN ground truth)}``.
        shape: ``"point"`` (a ``Point`` per object) or ``"box"`` (a square ``Polygon`` of ``box_size_l0``).
        box_size_l0: box side, level-0 px (default 50 = 2 x the paper's 25 px radius).

    Every feature has ``properties.objectType`` "detection", ``classification`` {name TP/FP/FN,
    colorRGB, color}, ``measurements`` {"score": s} (detections only; QuPath's measurement map) and
    ``slide``. As for :func:`to_geojson`, QuPath imports one slide per file.
    """
    if shape not in ("point", "box"):
        raise ValueError(f"shape must be 'point' or 'box', got {shape!r}")
    if not box_size_l0 > 0:
        raise ValueError(f"box_size_l0 must be > 0, got {box_size_l0}")
    classes = {name: _outcome_classification(name) for name in OUTCOME_COLORS}
    half = box_size_l0 / 2
    features = []
    for slide, data in slides.items():
        xy = np.asarray(data["xy"], np.float64).reshape(-1, 2)
        outcomes = list(data["outcome"])
        scores = np.asarray(data["score"], np.float64).reshape(-1)
        for (x, y), outcome, score in zip(xy.tolist(), outcomes, scores.tolist()):
            if shape == "point":
                geometry = {"type": "Point", "coordinates": [x, y]}
            else:
                ring = [[x - half, y - half], [x + half, y - half], [x + half, y + half], [x - half, y + half]]
                geometry = {"type": "Polygon", "coordinates": [ring + [ring[0]]]}
            properties = {"objectType": "detection", "classification": classes[str(outcome)], "slide": slide,
                          "measurements": {} if score != score else {"score": float(score)}}
            features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    return {"type": "FeatureCollection", "features": features}


def export_detections_geojson(slides: dict, out_path: str | os.PathLike[str], *, shape: str = "point",
                              box_size_l0: float = 50.0) -> dict:
    """Write :func:`detections_geojson` atomically; returns the document written."""
    document = detections_geojson(slides, shape=shape, box_size_l0=box_size_l0)
    write_json_atomic(out_path, document)
    return document
