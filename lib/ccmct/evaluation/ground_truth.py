"""Ground truth for evaluation: mitotic-figure points per slide, and which slides a result file covers.

Paper semantics (original_facts.md §5.1): the ground truth of a slide is the first vertex (x1, y1) of every
annotation with ``agreedClass == MITOTIC_FIGURE`` (any annotation type), and only slides present in the
result file are evaluated.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ccmct.config.dataset import MITOTIC_FIGURE
from ccmct.config.paths import DataRoot
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
    db = SlideRunnerDB.open(db_path)
    try:
        slide_table = db.slides()
        annotations = db.annotations()
        coordinates = db.coordinates()
    finally:
        db.close()
    uid_by_name = {Path(str(name)).name: int(uid) for uid, name in slide_table[["uid", "filename"]].to_numpy()}
    wanted = list(uid_by_name) if slides is None else [str(s) for s in slides]
    missing = sorted({Path(s).name for s in wanted} - set(uid_by_name))
    if missing:
        raise DatabaseError(db_path, f"{len(missing)} slide(s) of the results are not in this database "
                                     f"(e.g. {missing[:3]}); evaluate results against the database of "
                                     "the same data root")
    hot = annotations[annotations["agreed_class"] == class_id]
    first = coordinates.drop_duplicates("anno_id", keep="first").set_index("anno_id")
    hot = hot[hot["uid"].isin(first.index)]
    xy = first.loc[hot["uid"], ["x", "y"]].to_numpy(np.float64)
    slide_of = hot["slide"].to_numpy()
    return {name: xy[slide_of == uid_by_name[Path(name).name]].reshape(-1, 2) for name in wanted}


def slides_of_split(data_root: str | os.PathLike[str] | DataRoot, split: str) -> list[str]:
    """File names of a data root's ``'train'`` or ``'test'`` slides (its ``split.json`` or the paper's)."""
    root = data_root if isinstance(data_root, DataRoot) else DataRoot(data_root)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return sorted(name for name, s in root.split().items() if s == split)


def restrict_results(results: Mapping[str, np.ndarray], slides: Iterable[str]) -> dict[str, np.ndarray]:
    """The entries of ``results`` whose slide is in ``slides`` (order of ``results`` kept)."""
    keep = set(slides)
    return {name: boxes for name, boxes in results.items() if name in keep}
