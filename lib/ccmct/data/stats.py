"""The data set's own tables: Table 1 (per slide) and the totals of Table 6, from whatever databases exist.

Per slide: the train/test split, the number of mitotic figures, look-alikes, granulocytes and tumor cells
(``Annotations.agreedClass``) in every variant database present (MEL, HEAEL, ODAEL), and the tumor area.

Tumor area — two methods; the docstring of :func:`tumor_areas` and its warnings say which one a slide got:

- **With the slide file** in ``WSI/``: exactly the authors' method (``databaseStatistics.ipynb``): the canvas
  is the slide's lowest pyramid level, the polygons of the class *named* ``Tumorzone`` are filled with 1 with
  their vertices divided by that level's downsample and truncated to integers (``np.int32``, as the authors
  passed them to ``cv2.fillPoly``), then every polygon of the other classes (necrosis, blurry scan area,
  non-tumor tissue) is filled with 0; area = filled pixels x (downsample x µm/px)², with the slide's own MPP
  (or ``mpp=``).
- **Without it** (the published databases alone): the same fill-then-clear raster on a canvas covering the
  slide's extent (from the ``Slides`` table, else the polygons' own) at :data:`TUMOR_AREA_DOWNSAMPLE`,
  vertices not truncated, ``mpp`` required. A raster rather than the polygons' shoelace areas, because the
  exclusion polygons overlap each other and reach outside the tumor zone: subtracting shoelace areas
  undercounts by up to 0.7 % per slide, the raster reproduces the paper's Table 1 within 0.3 %.

Polygons that intersect themselves are filled as drawn (PIL's scan-line fill, even-odd rule: a part the
outline encloses twice stays empty), with one warning; polygons reaching outside the slide are clipped to the
canvas, with one warning.

Example:
    >>> from ccmct.data.stats import table1, table1_totals
    >>> table = table1("data", mpp=0.2533)          # doctest: +SKIP
    >>> table1_totals(table).loc["all", "tumor_area_mm2"]   # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import warnings

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from ccmct.config.dataset import GRANULOCYTE, LOOKALIKE, MITOTIC_FIGURE, TUMOR_CELL, TUMORZONE_CLASS
from ccmct.config.paths import DataRoot
from ccmct.data.sliderunner import AnnotationType, SlideRunnerDB, self_intersecting
from ccmct.errors import DatabaseError, FileProblem
from ccmct.types import VARIANTS

CELL_COLUMNS = {
    MITOTIC_FIGURE: "mitotic_figure",
    LOOKALIKE: "lookalike",
    GRANULOCYTE: "granulocyte",
    TUMOR_CELL: "tumor_cell",
}
"""Class id -> column prefix; a column is ``<prefix>_<variant>``, e.g. ``mitotic_figure_ODAEL``."""

TUMOR_AREA_DOWNSAMPLE = 32
"""Canvas downsample (level-0 px per canvas px) when the slide file is absent. With it, the published
tumor-zone polygons reproduce the paper's Table 1 areas within 0.3 % at one MPP (0.2533-0.2537 µm/px for
all 32 slides, tests/data/test_stats.py); 16 and 64 scatter more."""


def table1(data_root: str | os.PathLike[str], *, mpp: float | None = None,
           downsample: int = TUMOR_AREA_DOWNSAMPLE) -> pd.DataFrame:
    """Table 1 of the paper for a data root: one row per slide found in any of its databases.

    Args:
        data_root: folder with ``databases/`` (and optionally ``WSI/``, ``split.json``).
        mpp: µm per level-0 pixel for the tumor area; overrides the slides' own. Required for slides
            whose file is not in ``WSI/``.
        downsample: canvas downsample when the slide file is absent (see :data:`TUMOR_AREA_DOWNSAMPLE`).

    Returns:
        DataFrame with columns filename, split, tumor_area_mm2 (NaN without the tumor-zone database), mpp
        (µm/px used for the area), then for each variant database present ``<class>_<variant>`` counts
        (see :data:`CELL_COLUMNS`) and ``annotations_<variant>`` (all annotations, as in Table 6); nullable
        integers, missing where a slide is absent from that database. Sorted like the paper: by mitotic
        figures of the most complete variant present (ODAEL, HEAEL, MEL), then by file name.

    Raises:
        FileProblem: no database in ``databases/``; a slide with tumor polygons but neither its file nor
            ``mpp``.
    """
    root = DataRoot(data_root)
    present = [v for v in VARIANTS if root.database(v).exists()]
    tumorzone = root.database("Tumorzone")
    if not present and not tumorzone.exists():
        names = ", ".join(root.database(v).name for v in (*VARIANTS, "Tumorzone"))
        raise FileProblem(root.databases_dir, f"no SlideRunner database found (expected any of {names})")
    counts = {v: _variant_counts(root.database(v), v) for v in present}
    areas = (tumor_areas(tumorzone, wsi_dir=root.wsi_dir, mpp=mpp, downsample=downsample)
             if tumorzone.exists() else pd.DataFrame(columns=["tumor_area_mm2", "mpp"], dtype=float))
    names = sorted(set(areas.index).union(*(set(c.index) for c in counts.values())))
    split = root.split()
    table = pd.DataFrame({"filename": names, "split": [split.get(n, "train") for n in names]})
    table = table.join(areas.astype(float), on="filename")
    for variant in present:
        table = table.join(counts[variant], on="filename")
    sort_by = [f"mitotic_figure_{v}" for v in ("ODAEL", "HEAEL", "MEL") if v in present][:1] + ["filename"]
    return table.sort_values(sort_by, kind="stable").reset_index(drop=True)


def table1_totals(table: pd.DataFrame) -> pd.DataFrame:
    """Totals of a :func:`table1` by split, as in the paper's Table 6.

    Returns:
        DataFrame indexed ``train``, ``test``, ``all`` with column ``slides`` and the sum of every count
        column and of ``tumor_area_mm2`` (NaN when no slide has an area).
    """
    numeric = [c for c in table.columns if c not in ("filename", "split", "mpp")]
    rows = {}
    for name, part in (("train", table[table["split"] == "train"]), ("test", table[table["split"] == "test"]),
                       ("all", table)):
        row = {"slides": len(part)}
        row.update({c: part[c].sum(min_count=1) for c in numeric})
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def _variant_counts(db_path: Path, variant: str) -> pd.DataFrame:
    """Per slide file name: annotations per cell class and in total in one variant database."""
    with SlideRunnerDB.open(db_path) as db:
        slides = db.slides().set_index("uid")["filename"]
        counts = db.class_counts()
    wide = counts.pivot_table(index="slide", columns="agreed_class", values="n", aggfunc="sum", fill_value=0)
    out = pd.DataFrame(index=slides.index)
    for class_id, prefix in CELL_COLUMNS.items():
        column = wide[class_id] if class_id in wide.columns else 0
        out[f"{prefix}_{variant}"] = pd.Series(column, index=wide.index).reindex(out.index, fill_value=0)
    out[f"annotations_{variant}"] = wide.sum(axis=1).reindex(out.index, fill_value=0)
    out.index = slides.reindex(out.index).to_numpy()
    return out.astype("Int64")


TUMORZONE_CLASS_NAME = "Tumorzone"
"""Name of the tumor-zone class in ``Classes`` (the published file: uid 1); the other classes are cleared."""


def tumor_areas(db_path: str | os.PathLike[str], *, wsi_dir: str | os.PathLike[str] | None = None,
                mpp: float | None = None, downsample: int = TUMOR_AREA_DOWNSAMPLE) -> pd.DataFrame:
    """Tumor area of every slide of a tumor-zone database (see the module docstring for the two methods).

    Args:
        db_path: ``MITOS_WSI_CCMCT_Tumorzone.sqlite`` or a database with a class named ``Tumorzone``.
        wsi_dir: where the slide files are looked for: a slide found there gets the authors' exact method
            (its lowest level as the canvas, vertices truncated to integers).
        mpp: µm per level-0 pixel; overrides the slides' own, required for slides without a file.
        downsample: level-0 px per canvas px when the slide file is absent (extent raster).

    Returns:
        DataFrame indexed by slide file name with columns tumor_area_mm2 and mpp (µm/px used).

    Raises:
        DatabaseError: no class named ``Tumorzone`` in the database's ``Classes`` table.
        FileProblem: a slide with polygons but neither its file nor ``mpp``.
    """
    from ccmct.data.slides import open_slide

    db_path = Path(db_path)
    rows = {}
    crossing: list[tuple[str, int]] = []
    clipped: list[str] = []
    with SlideRunnerDB.open(db_path) as db:
        tumor_class = _tumorzone_class(db, db_path)
        for uid, name, width, height in db.slides()[["uid", "filename", "width", "height"]].itertuples(False):
            annotations = db.slide_annotations(int(uid), types=[AnnotationType.POLYGON], check_polygons=False)
            crossing += [(name, u) for u in self_intersecting(annotations)]
            polygons = [(a.agreed_class, a.vertices_l0) for a in annotations]
            slide_file = Path(wsi_dir) / name if wsi_dir is not None else None
            if slide_file is not None and slide_file.exists():
                with open_slide(slide_file, mpp=mpp) as slide:
                    level = slide.level_count - 1
                    canvas_wh, ds, slide_mpp = slide.level_dimensions[level], slide.level_downsamples[level], slide.mpp
                    size_wh = slide.dimensions
                if polygons and _reaches_outside(polygons, size_wh):
                    clipped.append(name)
                pixels = tumor_pixels(polygons, canvas_wh=canvas_wh, downsample=ds, tumor_class=tumor_class,
                                      truncate=True)
            elif not polygons:
                rows[name] = (0.0, np.nan if mpp is None else float(mpp))
                continue
            elif mpp is None:
                raise FileProblem(slide_file or db_path, f"slide {name!r} is not on disk and no --mpp was given: "
                                  "cannot convert its tumor polygons to mm² (pass mpp, e.g. 0.2533)")
            else:
                extent = _extent_l0(polygons, width, height)
                canvas_wh = (int(np.ceil(extent[0] / downsample)), int(np.ceil(extent[1] / downsample)))
                ds, slide_mpp = float(downsample), float(mpp)
                pixels = tumor_pixels(polygons, canvas_wh=canvas_wh, downsample=ds, tumor_class=tumor_class)
            rows[name] = (pixels * (slide_mpp * ds) ** 2 / 1e6, slide_mpp)
    if crossing:
        warnings.warn(f"{db_path}: {len(crossing)} polygon(s) intersect themselves (first uid {crossing[0][1]} on "
                      f"{crossing[0][0]}); tumor area: filled as drawn (even-odd rule: a part the outline "
                      "encloses twice stays empty)", stacklevel=2)
    if clipped:
        warnings.warn(f"{db_path}: polygons of {len(clipped)} slide(s) reach outside the slide (first "
                      f"{clipped[0]}); tumor area: clipped to the slide", stacklevel=2)
    return pd.DataFrame.from_dict(rows, orient="index", columns=["tumor_area_mm2", "mpp"])


def _tumorzone_class(db: SlideRunnerDB, db_path: Path) -> int:
    """The uid of the class named ``Tumorzone`` (case and spaces ignored)."""
    names = db.class_names()
    found = [uid for uid, name in names.items() if str(name).strip().lower() == TUMORZONE_CLASS_NAME.lower()]
    if not found:
        listed = ", ".join(f"{uid} {name!r}" for uid, name in sorted(names.items())) or "none"
        raise DatabaseError(db_path, f"no class named {TUMORZONE_CLASS_NAME!r} in table Classes (classes: "
                                     f"{listed}); not a tumor-zone database")
    return int(found[0])


def _reaches_outside(polygons: list[tuple[int, np.ndarray]], size_wh: tuple[int, int]) -> bool:
    v = np.concatenate([vertices for _, vertices in polygons])
    return bool((v < 0).any() or (v[:, 0] >= size_wh[0]).any() or (v[:, 1] >= size_wh[1]).any())


def _extent_l0(polygons: list[tuple[int, np.ndarray]], width, height) -> tuple[float, float]:
    """(width, height) of the slide in level-0 px: the Slides table's, else the polygons' bounding extent."""
    if pd.notna(width) and pd.notna(height) and width > 0 and height > 0:
        return float(width), float(height)
    top = np.max([v.max(axis=0) for _, v in polygons], axis=0)
    return float(top[0]) + 1, float(top[1]) + 1


def tumor_pixels(polygons: list[tuple[int, np.ndarray]], *, canvas_wh: tuple[int, int],
                 downsample: float, tumor_class: int = TUMORZONE_CLASS, truncate: bool = False) -> int:
    """Canvas pixels inside the tumor zone: ``tumor_class`` polygons filled, then every other class cleared.

    Args:
        polygons: (class id, vertices (n, 2) in level-0 px) pairs.
        canvas_wh: canvas (width, height) in canvas px.
        downsample: level-0 px per canvas px.
        tumor_class: class id of the tumor zone (:func:`tumor_areas` looks it up by name).
        truncate: truncate the canvas coordinates to integers first, as the authors did (``np.int32``).

    Returns:
        The number of tumor pixels on the canvas (PIL ``ImageDraw.polygon``: edges included, like
        OpenCV's ``fillPoly`` the authors used).

    Example:
        >>> square = np.array([[0, 0], [99, 0], [99, 99], [0, 99]])
        >>> tumor_pixels([(1, square)], canvas_wh=(10, 10), downsample=10)
        100
    """
    canvas = Image.new("L", (max(int(canvas_wh[0]), 1), max(int(canvas_wh[1]), 1)), 0)
    draw = ImageDraw.Draw(canvas)
    for fill, keep in ((1, lambda c: c == tumor_class), (0, lambda c: c != tumor_class)):
        for class_id, vertices in polygons:
            if keep(class_id):
                xy = np.asarray(vertices, float) / downsample
                if truncate:
                    xy = np.trunc(xy)
                draw.polygon([tuple(p) for p in xy.tolist()], fill=fill)
    return int(np.count_nonzero(np.asarray(canvas)))
