"""Category 4, databases: coordinates and classes are checked, not trusted (docs/reliability.md)."""

from __future__ import annotations

import sqlite3
import warnings

import numpy as np
import pytest
from clitools import explain
from content_cases import cases_named, damage_coordinates

from ccmct.data.sliderunner import AnnotationType, SlideRunnerDB
from ccmct.errors import DatabaseError
from ccmct.evaluation.ground_truth import check_mitotic_class, load_ground_truth


@pytest.mark.parametrize("case", cases_named("evaluate-"), ids=lambda c: c.name)
def test_case(case, battery_outcome):
    outcome = battery_outcome(case)
    assert outcome.passed, explain(outcome)


@pytest.fixture
def cells_db(tmp_path):
    """Five mitotic figures on a 1000 x 800 px slide and one on a slide of unknown size."""
    path = tmp_path / "cells.sqlite"
    with SlideRunnerDB.create(path) as db:
        for uid, name in ((1, "Granulocyte"), (2, "Mitotic figure"), (7, "Mitotic figure look-alike")):
            db.add_class(name, uid=uid)
        a = db.add_slide("a.svs", 1000, 800)
        b = db.add_slide("b.svs")
        db.add_spots(a, np.array([[10, 10], [20, 20], [30, 30], [40, 40], [999, 799]]), [2] * 5)
        db.add_spots(b, np.array([[5000, 5000]]), [2])
        db.add_annotation(a, AnnotationType.RECTANGLE, [[100, 100], [150, 150]], 2)  # GT: its first vertex
    return path


def _set(path, anno_id, x, y):
    con = sqlite3.connect(path)
    con.execute("UPDATE Annotations_coordinates SET coordinateX = ?, coordinateY = ? WHERE annoId = ?", (x, y, anno_id))
    con.commit()
    con.close()


def test_bad_coordinates_are_skipped_with_one_warning_each(cells_db):
    _set(cells_db, 1, None, 10)            # NULL
    _set(cells_db, 2, "twelve", 20)        # text
    _set(cells_db, 3, float("inf"), 30)    # stored as Inf by SQLite
    _set(cells_db, 4, -3, 40)              # left of the slide
    _set(cells_db, 5, 1000, 10)            # at x = width: beyond the 1000 px slide
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gt = load_ground_truth(cells_db)
    messages = [str(w.message) for w in caught]
    assert any("3 annotation(s) with NULL, NaN, infinite or non-numeric coordinates skipped (first uid 1)" in m
               for m in messages), messages
    assert any("2 annotation(s) outside their slide" in m and "(first uid 4)" in m for m in messages), messages
    np.testing.assert_array_equal(gt["a.svs"], [[100, 100]])   # only the rectangle's first vertex is left
    np.testing.assert_array_equal(gt["b.svs"], [[5000, 5000]])  # size unknown: only negatives are refused
    with SlideRunnerDB.open(cells_db) as db:                    # the same rules for every consumer of spots()
        assert db.spots()["anno_id"].tolist() == [6]


def test_polygon_with_a_text_vertex_is_skipped_whole(tmp_path):
    path = tmp_path / "zones.sqlite"
    with SlideRunnerDB.create(path) as db:
        s = db.add_slide("s.svs")
        db.add_annotation(s, AnnotationType.POLYGON, [[0, 0], [10, 0], [10, 10], [0, 10]], 1)
        db.add_annotation(s, AnnotationType.POLYGON, [[0, 0], [20, 0], [20, 20], [0, 20]], 1)
    con = sqlite3.connect(path)
    con.execute("UPDATE Annotations_coordinates SET coordinateY = 'x' WHERE annoId = 2 AND orderIdx = 3")
    con.commit()
    con.close()
    with SlideRunnerDB.open(path) as db, pytest.warns(UserWarning, match="non-numeric coordinates skipped"):
        polygons = db.slide_annotations(1)
    assert [p.uid for p in polygons] == [1]  # not a triangle made of the three remaining vertices


@pytest.mark.parametrize("names, ok", [
    ({2: "Mitotic figure"}, True), ({2: "Mitose"}, True), ({2: "mitosis"}, True),
    ({2: "Mitotic figure look-alike"}, False), ({2: "Nekrosezone"}, False), ({1: "10hpf selection"}, False),
    ({2: "Mitotic figure lookalike"}, False), ({2: "Tumor cell"}, False),
])
def test_class_2_must_be_named_as_a_mitotic_figure(names, ok, tmp_path):
    if ok:
        check_mitotic_class(names, tmp_path / "x.sqlite")
    else:
        with pytest.raises(DatabaseError, match=r"x\.sqlite: not a mitotic-figure database"):
            check_mitotic_class(names, tmp_path / "x.sqlite")


def test_a_database_without_class_names_only_warns(tmp_path):
    with pytest.warns(UserWarning, match="table Classes is empty"):
        check_mitotic_class({}, tmp_path / "x.sqlite")


def test_damage_helper_hits_mitotic_figures(tiny_root, tmp_path):
    """The battery's damaged database really loses those annotations from the ground truth."""
    import shutil

    db = shutil.copyfile(tiny_root / "databases" / "MITOS_WSI_CCMCT_ODAEL.sqlite", tmp_path / "odael.sqlite")
    before = sum(len(v) for v in load_ground_truth(db).values())
    uids = damage_coordinates(db)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        after = sum(len(v) for v in load_ground_truth(db).values())
    assert len(uids) == 3 and after == before - 3
