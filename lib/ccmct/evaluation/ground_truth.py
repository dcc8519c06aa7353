"""Ground truth for evaluation: mitotic-figure points per slide, and which slides a result file covers.

Paper semantics (the authors' `lib/calculate_F1.py`; docs/evaluation.md): the ground truth of a slide is the first vertex (x1, y1) of every
annotation with ``agreedClass == MITOTIC_FIGURE`` (any annotation type), and only slides present in the
result file are evaluated.

Content is checked, not trusted (docs/reliability.md): the database's class 2 must be *named* as a mitotic
figure (``Mitotic figure``, ``Mitose``, ``mitosis`` ...; not a look-alike), so that evaluating detections
against a tumour-zone, high-MC-area or other non-cell database fails by class name instead of giving F1 0;
points with NULL / NaN / non-numeric coordinates or outside their slide are skipped with a warning
(:meth:`ccmct.data.sliderunner.SlideRunnerDB.spots`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import re
import warnings

import numpy as np

from ccmct.config.dataset import MITOTIC_FIGURE
from ccmct.data.sliderunner import SlideRunnerDB
from ccmct.errors import DatabaseError

GroundTruth = Mapping[str, np.ndarray]
"""Slide file name -> (M, 2) float64 [x, y] level-0 px."""


def load_ground_truth(db_path: str | os.PathLike[str], *, slides: Iterable[str] | None = None,
                      class_id: int = MITOTIC_FIGURE) -> dict[str, np.ndarray]:
    """Points of one class per slide from a SlideRunner database.

    Args:
        db_path: SlideRunner ``.sqlite`` (MEL, HEAEL, ODAEL or a subset database).
        slides: only these slides (file names, or paths compared by file name; each must exist in the
            database); default all slides. The returned keys are these strings as given.
        class_id: ``agreedClass`` to read (default mitotic figure).

    Returns:
        Slide file name -> (M, 2) float64 [x, y] level-0 px (M may be 0).

    Raises:
        DatabaseError: unreadable database, or a requested slide is not in it.
    """
    with SlideRunnerDB.open(db_path) as db:
        slide_table = db.slides()
        if class_id == MITOTIC_FIGURE:
            check_mitotic_class(db.class_names(), db_path)
        points = db.spots(classes=[class_id], types=None)
    uid_by_name = {Path(str(name)).name: int(uid) for uid, name in slide_table[["uid", "filename"]].to_numpy()}
    wanted = list(uid_by_name) if slides is None else [str(s) for s in slides]
    missing = sorted({Path(s).name for s in wanted} - set(uid_by_name))
    if missing:
        raise DatabaseError(db_path, f"{len(missing)} slide(s) of the results are not in this database "
                                     f"(e.g. {missing[:3]}); evaluate results against the database of "
                                     "the same data root")
    xy = points[["x", "y"]].to_numpy(np.float64)
    slide_of = points["slide"].to_numpy()
    return {name: xy[slide_of == uid_by_name[Path(name).name]].reshape(-1, 2) for name in wanted}


_MITOTIC_NAME = re.compile(r"mito(tic|sis|se|ses|tische)", re.IGNORECASE)
_NOT_MITOTIC = re.compile(r"look|like|alike|imposter|mimic|non|keine|ähnlich", re.IGNORECASE)


def check_mitotic_class(class_names: Mapping[int, str], db_path: str | os.PathLike[str]) -> None:
    """Refuse a database whose class :data:`MITOTIC_FIGURE` is not named as a mitotic figure.

    Args:
        class_names: the database's ``Classes`` table, uid -> name.
        db_path: the database (named in the error).

    Raises:
        DatabaseError: class 2 has another name (e.g. 'Nekrosezone' of the tumour-zone database) or is missing
            from a non-empty ``Classes`` table. A database without any class name only warns: it cannot be
            checked.
    """
    if not class_names:
        warnings.warn(f"{db_path}: table Classes is empty; cannot confirm that class {MITOTIC_FIGURE} is the "
                      "mitotic figure", stacklevel=3)
        return
    name = class_names.get(MITOTIC_FIGURE)
    if name is not None and _MITOTIC_NAME.search(str(name)) and not _NOT_MITOTIC.search(str(name)):
        return
    listed = ", ".join(f"{uid} {n!r}" for uid, n in sorted(class_names.items()))
    what = f"class {MITOTIC_FIGURE} is {name!r}" if name is not None else f"there is no class {MITOTIC_FIGURE}"
    raise DatabaseError(db_path, f"not a mitotic-figure database: {what}, not a mitotic figure (classes: {listed}); "
                                 "evaluate against MITOS_WSI_CCMCT_{MEL,HEAEL,ODAEL}.sqlite")


def restrict_results(results: Mapping[str, np.ndarray], slides: Iterable[str]) -> dict[str, np.ndarray]:
    """The entries of ``results`` whose slide is in ``slides`` (order of ``results`` kept)."""
    keep = set(slides)
    return {name: boxes for name, boxes in results.items() if name in keep}
