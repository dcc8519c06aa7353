"""COCO and GeoJSON export: read both back and compare with the database."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from ccmct.cli import main
from ccmct.data.export import COCO_INFO, export_coco, export_geojson, polygon_area
from ccmct.data.sliderunner import AnnotationType, SlideRunnerDB
from ccmct.data.svs_writer import write_svs
from ccmct.errors import DatabaseError

SPOTS_A = np.array([[100, 200], [300, 50], [700, 600], [10, 10]])
CLASSES_A = [2, 7, 1, 0]  # the last has no agreed class (0)
POLYGON = [[10, 10], [400, 20], [380, 300], [50, 250], [20, 100]]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """<root>/databases/cells.sqlite with 3 slides: a.svs (size in Slides), b.svs (file in <root>/WSI), c.svs
    (neither); spots, a polygon, a rectangle, a circle."""
    base = tmp_path_factory.mktemp("export")
    db_path = base / "databases" / "cells.sqlite"
    with SlideRunnerDB.create(db_path) as db:
        for uid, name in ((1, "Granulocyte"), (2, "Mitotic figure"), (3, "Tumor cell"),
                          (7, "Mitotic figure look-alike")):
            db.add_class(name, uid=uid)
        db.add_person("expert")
        a = db.add_slide("a.svs", 1000, 800)
        b = db.add_slide("b.svs")
        c = db.add_slide("c.svs")
        db.add_spots(a, SPOTS_A, CLASSES_A)
        db.add_annotation(b, AnnotationType.POLYGON, POLYGON, 3)
        db.add_annotation(b, AnnotationType.RECTANGLE, [[5, 6], [70, 80]], 1)
        db.add_annotation(c, AnnotationType.CIRCLE, [[100, 100], [140, 140]], 7)
        db.add_spots(c, np.array([[5, 5]]), [2])
    write_svs(base / "WSI" / "b.svs", np.full((300, 512, 3), 230, np.uint8), mpp=0.25)
    return base, db_path


def _db_spots(db_path):
    with SlideRunnerDB.open(db_path) as db:
        return db.spots()


def test_coco_round_trip(root, tmp_path):
    base, db_path = root
    out = tmp_path / "coco.json"
    with pytest.warns(UserWarning) as caught:
        export_coco(db_path, out, box_size_l0=50)
    messages = " ".join(str(w.message) for w in caught)
    assert "1 annotation(s) without an agreed class (0) left out" in messages
    assert "no width/height" in messages and "'c.svs'" in messages
    coco = json.loads(out.read_text())
    assert list(tmp_path.iterdir()) == [out]  # atomic: no temporary file left
    assert coco["info"] == COCO_INFO and coco["licenses"][0]["id"] == 1
    assert {c["id"]: c["name"] for c in coco["categories"]} == {1: "Granulocyte", 2: "Mitotic figure",
                                                               3: "Tumor cell", 7: "Mitotic figure look-alike"}
    images = {i["file_name"]: i for i in coco["images"]}
    assert (images["a.svs"]["width"], images["a.svs"]["height"]) == (1000, 800)   # Slides table
    assert (images["b.svs"]["width"], images["b.svs"]["height"]) == (512, 300)    # slide file in ../WSI
    assert images["c.svs"]["width"] is None
    by_id = {a["id"]: a for a in coco["annotations"]}
    spots = _db_spots(db_path)
    classified = spots[spots["agreed_class"] != 0]
    for anno_id, slide, x, y, cls in classified[["anno_id", "slide", "x", "y", "agreed_class"]].itertuples(index=False):
        a = by_id[anno_id]
        assert a["bbox"] == [x - 25, y - 25, 50, 50]  # COCO: [x, y, width, height]
        x0, y0, w, h = a["bbox"]
        assert (x0 + w / 2, y0 + h / 2) == (x, y)
        assert (a["image_id"], a["category_id"], a["area"], a["iscrowd"]) == (slide, cls, 2500, 0)
    shapes = [a for a in coco["annotations"] if a["id"] not in set(spots["anno_id"])]
    polygon = next(a for a in shapes if "segmentation" in a)
    assert polygon["segmentation"] == [np.ravel(POLYGON).astype(float).tolist()]
    assert polygon["bbox"] == [10, 10, 390, 290] and polygon["area"] == pytest.approx(polygon_area(np.array(POLYGON)))
    rect = next(a for a in shapes if a["category_id"] == 1)
    assert rect["bbox"] == [5, 6, 65, 74] and rect["area"] == 65 * 74
    circle = next(a for a in shapes if a["category_id"] == 7)
    assert circle["bbox"] == [100, 100, 40, 40] and circle["area"] == pytest.approx(np.pi * 400)
    assert len(coco["annotations"]) == len(classified) + 3
    assert all(a["category_id"] in {c["id"] for c in coco["categories"]} for a in coco["annotations"])


def test_coco_box_size(root, tmp_path):
    _, db_path = root
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coco = export_coco(db_path, tmp_path / "c.json", box_size_l0=30, wsi_dir=tmp_path)
    spot = next(a for a in coco["annotations"] if a["id"] == 1)
    assert spot["bbox"] == [85, 185, 30, 30] and spot["area"] == 900
    assert {i["file_name"]: i["width"] for i in coco["images"]}["b.svs"] is None  # wsi_dir without the file


def test_geojson_round_trip(root, tmp_path):
    _, db_path = root
    out = tmp_path / "all.geojson"
    export_geojson(db_path, out)
    doc = json.loads(out.read_text())
    assert doc["type"] == "FeatureCollection"
    features = {f["properties"]["anno_id"]: f for f in doc["features"]}
    spots = _db_spots(db_path)
    with SlideRunnerDB.open(db_path) as db:
        names = dict(zip(db.slides()["uid"], db.slides()["filename"]))
        class_names = db.class_names()
    for anno_id, slide, x, y, cls in spots[["anno_id", "slide", "x", "y", "agreed_class"]].itertuples(index=False):
        f = features[anno_id]
        assert f["geometry"] == {"type": "Point", "coordinates": [x, y]}
        assert f["properties"]["slide"] == names[slide] and f["properties"]["objectType"] == "annotation"
        if cls == 0:
            assert "classification" not in f["properties"]  # unclassified in QuPath
        else:
            classification = f["properties"]["classification"]
            assert classification["name"] == class_names[cls]
            r, g, b = classification["color"]
            assert classification["colorRGB"] == (255 << 24 | r << 16 | g << 8 | b) - (1 << 32)
    polygons = [f for f in doc["features"] if f["geometry"]["type"] == "Polygon"]
    assert len(polygons) == 3 and len(doc["features"]) == len(spots) + 3
    polygon = next(f for f in polygons if f["properties"]["classification"]["name"] == "Tumor cell")
    ring = polygon["geometry"]["coordinates"][0]
    assert ring == [[float(x), float(y)] for x, y in POLYGON + [POLYGON[0]]]   # closed, vertices in order
    rect = next(f for f in polygons if f["properties"]["classification"]["name"] == "Granulocyte")
    assert rect["geometry"]["coordinates"][0] == [[5, 6], [70, 6], [70, 80], [5, 80], [5, 6]]
    circle = next(f for f in polygons if f["properties"]["slide"] == "c.svs")["geometry"]["coordinates"][0]
    radii = np.linalg.norm(np.array(circle) - [120, 120], axis=1)
    assert circle[0] == circle[-1] and np.allclose(radii, 20)


def test_geojson_one_slide(root, tmp_path):
    _, db_path = root
    doc = export_geojson(db_path, tmp_path / "a.geojson", slide="a.svs")
    assert {f["properties"]["slide"] for f in doc["features"]} == {"a.svs"} and len(doc["features"]) == 4
    with pytest.raises(DatabaseError, match=r"cells\.sqlite: no slide named 'zzz\.svs'"):
        export_geojson(db_path, tmp_path / "z.geojson", slide="zzz.svs")
    assert not (tmp_path / "z.geojson").exists()


def test_real_high_mc_areas_to_coco_and_geojson(high_mc_db, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shipped Slides table has no sizes and the slides are not here
        coco = export_coco(high_mc_db, tmp_path / "hm.json")
    assert len(coco["images"]) == 32 and len(coco["annotations"]) == 33
    assert coco["categories"] == [{"id": 1, "name": "10hpf selection"}]
    names = {i["id"]: i["file_name"] for i in coco["images"]}
    boxes = {names[a["image_id"]]: a["bbox"] for a in coco["annotations"] if a["bbox"][2] > 6000}
    assert boxes["9374efe6ac06388cc877.svs"] == [14024, 16105, 21057 - 14024, 21369 - 16105]
    geo = export_geojson(high_mc_db, tmp_path / "hm.geojson", slide="9374efe6ac06388cc877.svs")
    (ring,) = geo["features"][0]["geometry"]["coordinates"]
    assert ring[0] == [14024, 16105] and ring[2] == [21057, 21369]


def test_cli_export(root, tmp_path, capsys):
    _, db_path = root
    out = tmp_path / "x.json"
    assert main(["export", "--db", str(db_path), "--format", "coco", "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    warned = captured.err.strip().splitlines()
    assert len(warned) == 2 and all(line.startswith("ccmct export: warning: ") for line in warned)
    assert "no width/height" in captured.err and "without an agreed class" in captured.err
    assert summary["annotations"] == len(json.loads(out.read_text())["annotations"]) == 4 + 3
    assert main(["export", "--db", str(db_path), "--format", "geojson", "--out", str(tmp_path / "y.geojson"),
                 "--slide", "b.svs"]) == 0
    assert "features: 2" in capsys.readouterr().out
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database")
    assert main(["export", "--db", str(bad), "--format", "coco", "--out", str(tmp_path / "z.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.sqlite: not a SQLite database" in err[0]
    with pytest.raises(SystemExit):
        main(["export", "--db", str(db_path), "--format", "coco", "--out", str(out), "--box-size", "0"])
