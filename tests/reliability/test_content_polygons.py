"""Category 4, polygons: fewer than 3 vertices or self-intersecting — exports warn and stay valid JSON, the
tumour area warns and says what it did (docs/reliability.md)."""

from __future__ import annotations

import json
import warnings

import pytest
from clitools import explain
from content_cases import add_polygons, cases_named

from ccmct.data.export import to_coco, to_geojson
from ccmct.data.sliderunner import AnnotationType, SlideRunnerDB, self_intersecting


@pytest.mark.parametrize("case", cases_named("export-", "stats-"), ids=lambda c: c.name)
def test_case(case, battery_outcome):
    outcome = battery_outcome(case)
    assert outcome.passed, explain(outcome)


@pytest.fixture
def zones_db(tmp_path):
    path = tmp_path / "zones.sqlite"
    with SlideRunnerDB.create(path) as db:
        db.add_class("Tumorzone")
        s = db.add_slide("s.svs", 2000, 2000)
        db.add_annotation(s, AnnotationType.POLYGON, [[0, 0], [900, 0], [900, 900], [0, 900]], 1)
    add_polygons(path, slide_uid=1)
    return path


def test_self_intersection_detection():
    def poly(uid, vertices):
        return type("A", (), {"uid": uid, "vertices_l0": vertices, "type": AnnotationType.POLYGON})()

    square = [[0, 0], [10, 0], [10, 10], [0, 10]]
    repeated = [[0, 0], [10, 0], [10, 0], [10, 10], [0, 10], [0, 0]]  # repeated and closing vertices: simple
    bow_tie = [[0, 0], [10, 10], [10, 0], [0, 10]]
    pinched = [[0, 0], [10, 0], [5, 5], [10, 10], [0, 10], [5, 5]]  # touches itself at (5, 5)
    import numpy as np

    polygons = [poly(i, np.array(v, float)) for i, v in enumerate([square, repeated, bow_tie, pinched])]
    assert self_intersecting(polygons) == [2, 3]


def test_exports_keep_valid_json_and_warn(zones_db):
    for build in (to_geojson, to_coco):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            document = build(zones_db)
        text = json.dumps(document, allow_nan=False)  # strict JSON: raises on NaN / Infinity
        messages = " | ".join(str(w.message) for w in caught)
        assert "1 polygon(s) intersect themselves" in messages and "exported unchanged" in messages
        assert "polygon with fewer than 3 vertices" in messages and "non-numeric coordinates" in messages
        assert "NaN" not in text
    features = to_geojson(zones_db)["features"]
    assert sorted(f["properties"]["anno_id"] for f in features) == [1, 2]  # the square and the bow tie
