"""Helpers for the evaluation tests: a small SlideRunner database and fabricated detections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ccmct.config.dataset import LOOKALIKE, MITOTIC_FIGURE
from ccmct.data.sliderunner import SlideRunnerDB


def write_gt_db(path: Path, gt: dict[str, np.ndarray], *, lookalikes: dict[str, np.ndarray] | None = None) -> Path:
    """A SlideRunner DB with mitotic-figure spots (and optional look-alikes) per slide."""
    with SlideRunnerDB.create(path) as db:
        db.add_class("Mitotic figure", uid=MITOTIC_FIGURE)
        db.add_class("Look-alike", uid=LOOKALIKE)
        person = db.add_person("expert")
        for name, xy in gt.items():
            slide = db.add_slide(name)
            if len(xy):
                db.add_spots(slide, np.rint(xy).astype(int), [MITOTIC_FIGURE] * len(xy),
                             [[(person, MITOTIC_FIGURE)]] * len(xy))
            extra = (lookalikes or {}).get(name)
            if extra is not None and len(extra):
                db.add_spots(slide, np.rint(extra).astype(int), [LOOKALIKE] * len(extra),
                             [[(person, LOOKALIKE)]] * len(extra))
    return path


def fabricate_results(gt: dict[str, np.ndarray], rng: np.random.Generator, *, size_l0: float = 3000,
                      recall: float = 0.7, n_fp: int = 20, jitter_l0: float = 8) -> dict[str, np.ndarray]:
    """Detections = jittered copies of a fraction of the GT (high scores) + random false positives."""
    out = {}
    for name, xy in gt.items():
        hits = xy[rng.random(len(xy)) < recall]
        hits = hits + rng.normal(0, jitter_l0, hits.shape)
        false = rng.uniform(0, size_l0, (n_fp, 2))
        centres = np.concatenate([hits, false])
        scores = np.concatenate([rng.uniform(0.5, 1, len(hits)), rng.uniform(0.3, 0.9, n_fp)])
        out[name] = np.column_stack([centres - 12, centres + 12, np.zeros(len(centres)), scores])
    return out


@pytest.fixture()
def small_case(tmp_path):
    rng = np.random.default_rng(7)
    gt = {f"s{i}.svs": rng.uniform(0, 3000, (n, 2)).round() for i, n in enumerate((30, 0, 12, 50))}
    results = fabricate_results(gt, rng)
    results["s1.svs"] = np.zeros((0, 6))
    return write_gt_db(tmp_path / "gt.sqlite", gt), gt, results


@pytest.fixture()
def gt_db_writer():
    """The :func:`write_gt_db` helper."""
    return write_gt_db


@pytest.fixture()
def results_fabricator():
    """The :func:`fabricate_results` helper."""
    return fabricate_results
