"""Fixtures of the pipeline tests: a data root holding only the four real-format databases."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def real_format_root(tmp_path, tumorzone_db) -> Path:
    """``databases/`` only (no WSI): the authors' real Tumorzone database and MEL / HEAEL / ODAEL SlideRunner
    databases over the paper's 32 slide names (a few generated cells each; no split.json: the paper's split)."""
    from ccmct.config.dataset import CELL_CLASS_NAMES, DATABASE_FILES, LOOKALIKE, MITOTIC_FIGURE, REAL_SLIDES
    from ccmct.data.sliderunner import SlideRunnerDB

    root = tmp_path / "real_format"
    (root / "databases").mkdir(parents=True)
    shutil.copy(tumorzone_db, root / "databases" / DATABASE_FILES["Tumorzone"])
    rng = np.random.default_rng(0)
    for variant in ("MEL", "HEAEL", "ODAEL"):
        db = SlideRunnerDB.create(root / "databases" / DATABASE_FILES[variant])
        with db:
            for uid, name in CELL_CLASS_NAMES.items():
                db.add_class(name, uid=uid)
            for slide in REAL_SLIDES:
                sid = db.add_slide(slide.filename)
                db.add_spots(sid, rng.uniform(0, 5000, size=(3, 2)), [MITOTIC_FIGURE, MITOTIC_FIGURE, LOOKALIKE])
    return root
