"""``ccmct export --results ... --format geojson``: evaluated detections as QuPath detection objects."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ccmct.cli import main
from ccmct.data.export import OUTCOME_COLORS

from .conftest import N_FP, N_TP


def _export(case, out, *extra):
    return main(["export", "--results", str(case.results), "--db", str(case.db), "--format", "geojson",
                 "--out", str(out), "--slide", case.slide, *map(str, extra)])


def test_points_classified_tp_fp_fn_with_scores(viewer_case, tmp_path, capsys):
    out = tmp_path / "eval.geojson"
    assert _export(viewer_case, out, "--threshold", "0.5", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["TP"], summary["FP"], summary["FN"]) == (N_TP, N_FP, viewer_case.n_gt - N_TP)
    document = json.loads(out.read_text())
    assert document["type"] == "FeatureCollection"
    by_class: dict[str, list] = {}
    for feature in document["features"]:
        props = feature["properties"]
        assert props["objectType"] == "detection" and props["slide"] == viewer_case.slide
        assert feature["geometry"]["type"] == "Point"
        by_class.setdefault(props["classification"]["name"], []).append(feature)
    fp_xy = [f["geometry"]["coordinates"] for f in by_class["FP"]]
    assert np.allclose(sorted(fp_xy), sorted(viewer_case.fp_xy.tolist()))
    assert sorted(f["properties"]["measurements"]["score"] for f in by_class["FP"]) == pytest.approx([0.6, 0.7, 0.8])
    assert all(f["properties"]["measurements"]["score"] == pytest.approx(0.9) for f in by_class["TP"])
    assert all(f["properties"]["measurements"] == {} for f in by_class["FN"])
    red = [int(OUTCOME_COLORS["FP"][i:i + 2], 16) for i in (1, 3, 5)]
    assert by_class["FP"][0]["properties"]["classification"]["color"] == red


def test_boxes_and_strict_matching(viewer_case, tmp_path):
    out = tmp_path / "boxes.geojson"
    assert _export(viewer_case, out, "--threshold", "0.5", "--shape", "box", "--matching", "strict") == 0
    feature = json.loads(out.read_text())["features"][0]
    ring = np.array(feature["geometry"]["coordinates"][0])
    assert feature["geometry"]["type"] == "Polygon" and len(ring) == 5 and (ring[0] == ring[-1]).all()
    assert np.ptp(ring[:, 0]) == pytest.approx(50) and np.ptp(ring[:, 1]) == pytest.approx(50)


def test_bad_options_are_one_line(viewer_case, tmp_path, capsys):
    assert _export(viewer_case, tmp_path / "a.geojson") == 2
    assert "--threshold" in capsys.readouterr().err
    code = main(["export", "--results", str(viewer_case.results), "--db", str(viewer_case.db), "--format", "coco",
                 "--threshold", "0.5", "--out", str(tmp_path / "b.json")])
    assert code == 2 and "geojson" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        _export(viewer_case, tmp_path / "c.geojson", "--threshold", "1.5")
    assert exit_info.value.code == 2
    assert not list(tmp_path.iterdir())
