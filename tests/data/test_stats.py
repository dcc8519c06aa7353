"""Table 1 / Table 6: counts per variant, the split and the tumor area (real tumor-zone file and built roots)."""

from __future__ import annotations

import json
import sqlite3
import warnings

import numpy as np
import pytest

from ccmct.cli import main
from ccmct.config.dataset import (
    GRANULOCYTE, LOOKALIKE, MITOTIC_FIGURE, REAL_SLIDES, TUMOR_CELL, TUMORZONE_CLASS,
)
from ccmct.config.paths import DataRoot, write_split
from ccmct.data.sliderunner import AnnotationType, SlideRunnerDB
from ccmct.data.stats import table1, table1_totals, tumor_pixels
from ccmct.data.svs_writer import write_svs
from ccmct.errors import DatabaseError, FileProblem

# MPP for the real tumor-zone polygons. The paper says 0.25 µm/px, but the authors' HPF crop sizes
# (4962 x 3721 px for 5 HPF etc., the authors' `AblationStudy/create_HPFsubsets.py`; docs/ablation.md) are reproduced exactly only with the slides'
# openslide mpp-x = 0.2533; their area script multiplied by that recorded MPP. With 0.25 every area would be
# 2.6 % too small.
REAL_MPP = 0.2533
# Tolerance: we rasterise the polygons' extent at downsample 32 instead of each scan's lowest pyramid level
# (the slides are not here); boundary pixels then differ by < 0.3 % for all 32 slides, so 0.5 % relative.
AREA_RTOL = 0.005


@pytest.fixture(scope="module")
def real_tumorzone_root(tmp_path_factory, tumorzone_db):
    root = tmp_path_factory.mktemp("real_root")
    (root / "databases").mkdir()
    (root / "databases" / tumorzone_db.name).symlink_to(tumorzone_db)
    return root


@pytest.fixture(scope="module")
def real_table(real_tumorzone_root):
    return table1(real_tumorzone_root, mpp=REAL_MPP)


def test_real_tumorzone_gives_the_32_slides_of_table1(real_table):
    facts = {s.filename: s for s in REAL_SLIDES}
    assert sorted(real_table["filename"]) == sorted(facts)
    assert list(real_table.columns) == ["filename", "split", "tumor_area_mm2", "mpp"]
    assert dict(zip(real_table["filename"], real_table["split"])) == {n: f.split for n, f in facts.items()}


@pytest.mark.parametrize("filename", [
    "ce949341ba99845813ac.svs",   # smallest area (13.94 mm²): most sensitive to boundary pixels
    "be10fa37ad6e88e1f406.svs",   # test slide
    "9374efe6ac06388cc877.svs",
    "8c9f9618fcaca747b7c3.svs",   # large, with necrosis / non-tumor holes
    "ac1168b2c893d2acad38.svs",   # largest (346.26 mm²)
    "1018715d369dd0df2fc0.svs",
])
def test_real_tumor_areas_match_the_paper(real_table, filename):
    paper = next(s.tumor_area_mm2 for s in REAL_SLIDES if s.filename == filename)
    ours = real_table.set_index("filename").loc[filename, "tumor_area_mm2"]
    assert ours == pytest.approx(paper, rel=AREA_RTOL)


def test_real_total_tumor_area_matches_table6(real_table):
    totals = table1_totals(real_table)
    assert totals.loc["all", "slides"] == 32 and totals.loc["train", "slides"] == 21
    assert totals.loc["all", "tumor_area_mm2"] == pytest.approx(4842.062, rel=0.002)  # paper Table 6
    assert totals.loc["train", "tumor_area_mm2"] + totals.loc["test", "tumor_area_mm2"] == pytest.approx(
        totals.loc["all", "tumor_area_mm2"])
    assert (real_table["tumor_area_mm2"] > 0).all()


def test_real_areas_need_the_subtraction(tumorzone_db, real_table):
    """Filling the tumor zone only (without clearing necrosis / non-tumor polygons) misses the paper."""
    name = "8c9f9618fcaca747b7c3.svs"
    with SlideRunnerDB.open(tumorzone_db) as db:
        polygons = [(a.agreed_class, a.vertices_l0) for a in db.slide_annotations(db.find_slide(name))
                    if a.type == AnnotationType.POLYGON]
    assert {c for c, _ in polygons} - {TUMORZONE_CLASS}, "this slide has polygons to subtract"
    extent = np.max([v.max(axis=0) for _, v in polygons], axis=0) + 1
    canvas = tuple(int(np.ceil(e / 32)) for e in extent)
    tumor_only = [(c, v) for c, v in polygons if c == TUMORZONE_CLASS]
    scale = (REAL_MPP * 32) ** 2 / 1e6
    full = tumor_pixels(polygons, canvas_wh=canvas, downsample=32) * scale
    assert full == pytest.approx(real_table.set_index("filename").loc[name, "tumor_area_mm2"])
    assert tumor_pixels(tumor_only, canvas_wh=canvas, downsample=32) * scale > 312.96 * (1 + 5 * AREA_RTOL)


def test_real_root_needs_mpp_without_slide_files(real_tumorzone_root):
    with pytest.raises(FileProblem, match=r"WSI/.*\.svs: slide '.*' is not on disk and no --mpp was given"):
        table1(real_tumorzone_root)


def test_cli_stats_json_on_the_real_tumorzone(real_tumorzone_root, capsys):
    assert main(["stats", "--data-root", str(real_tumorzone_root), "--mpp", "0.2535", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 32
    assert all(r["tumor_area_mm2"] > 10 and r["split"] in ("train", "test") for r in rows)
    assert main(["stats", "--data-root", str(real_tumorzone_root), "--mpp", "0.2535"]) == 0
    text = capsys.readouterr().out
    assert "ce949341ba99845813ac.svs" in text and "all" in text


def test_cli_stats_bad_input_is_one_line(tmp_path, capsys):
    assert main(["stats", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ccmct stats: error: ") and "databases" in err[0]
    with pytest.raises(SystemExit):
        main(["stats", "--data-root", str(tmp_path), "--mpp", "-1"])


# ------------------------------------------------------------------------------------------ tumor pixels
def test_tumor_pixels_fill_then_subtract():
    outer = np.array([[0, 0], [999, 0], [999, 999], [0, 999]])
    hole = np.array([[200, 200], [599, 200], [599, 599], [200, 599]])
    assert tumor_pixels([(TUMORZONE_CLASS, outer)], canvas_wh=(100, 100), downsample=10) == 100 * 100
    # the hole is cleared whatever the order of the polygons in the database
    for polygons in ([(1, outer), (2, hole)], [(4, hole), (1, outer)]):
        pixels = tumor_pixels(polygons, canvas_wh=(100, 100), downsample=10)
        assert 100 * 100 - 41 * 41 <= pixels <= 100 * 100 - 39 * 39


# ------------------------------------------------------------------------------------------ a built root
def _cells(db, slide, counts):
    rng = np.random.default_rng(slide)
    classes = [c for c, n in counts.items() for _ in range(n)]
    db.add_spots(slide, rng.integers(0, 1000, (len(classes), 2)), classes)


@pytest.fixture(scope="module")
def built_root(tmp_path_factory):
    """Three slides: s1 (train, slide file on disk), s2 (test), s3 (only in ODAEL and the tumor zone)."""
    root = DataRoot(tmp_path_factory.mktemp("built"))
    root.databases_dir.mkdir(parents=True)
    root.wsi_dir.mkdir()
    counts = {
        "ODAEL": {"s1.svs": {MITOTIC_FIGURE: 5, LOOKALIKE: 7, GRANULOCYTE: 2, TUMOR_CELL: 11, 4: 3},
                  "s2.svs": {MITOTIC_FIGURE: 9, LOOKALIKE: 1, TUMOR_CELL: 4},
                  "s3.svs": {MITOTIC_FIGURE: 1}},
        "MEL": {"s1.svs": {MITOTIC_FIGURE: 4, GRANULOCYTE: 2, TUMOR_CELL: 10},
                "s2.svs": {MITOTIC_FIGURE: 8, 4: 1}},
    }
    for variant, per_slide in counts.items():
        with SlideRunnerDB.create(root.database(variant)) as db:
            for name, per_class in per_slide.items():
                _cells(db, db.add_slide(name), per_class)
    with SlideRunnerDB.create(root.database("Tumorzone")) as db:
        for name in ("Tumorzone", "Nekrosezone", "unscharfe scan-area"):
            db.add_class(name)
        s1 = db.add_slide("s1.svs")
        db.add_annotation(s1, AnnotationType.POLYGON, [[0, 0], [1999, 0], [1999, 999], [0, 999]], TUMORZONE_CLASS)
        db.add_annotation(s1, AnnotationType.POLYGON, [[0, 0], [999, 0], [999, 999], [0, 999]], 3)
        s2 = db.add_slide("s2.svs", 4000, 4000)
        db.add_annotation(s2, AnnotationType.POLYGON, [[0, 0], [3199, 0], [3199, 3199], [0, 3199]], TUMORZONE_CLASS)
        db.add_slide("s3.svs")
    # s1 on disk: 2048 x 1024 px at 0.5 µm/px -> its lowest level (4x) is the raster, its MPP the scale
    write_svs(root.slide_path("s1.svs"), np.full((1024, 2048, 3), 240, np.uint8), mpp=0.5, compression="zlib")
    write_split(root.split_file, ["s1.svs", "s3.svs"], ["s2.svs"])
    return root, counts


def test_counts_per_variant_split_and_area(built_root):
    root, counts = built_root
    table = table1(root.path, mpp=0.25).set_index("filename")
    assert list(table.index) == ["s3.svs", "s1.svs", "s2.svs"]  # by ODAEL mitotic figures, as the paper
    assert table["split"].to_dict() == {"s1.svs": "train", "s2.svs": "test", "s3.svs": "train"}
    for variant, per_slide in counts.items():
        for name, per_class in per_slide.items():
            assert table.loc[name, f"mitotic_figure_{variant}"] == per_class.get(MITOTIC_FIGURE, 0)
            assert table.loc[name, f"lookalike_{variant}"] == per_class.get(LOOKALIKE, 0)
            assert table.loc[name, f"granulocyte_{variant}"] == per_class.get(GRANULOCYTE, 0)
            assert table.loc[name, f"tumor_cell_{variant}"] == per_class.get(TUMOR_CELL, 0)
            assert table.loc[name, f"annotations_{variant}"] == sum(per_class.values())
    assert table.loc["s3.svs", ["mitotic_figure_MEL", "annotations_MEL"]].isna().all()  # not in MEL: missing, not 0
    assert "mitotic_figure_HEAEL" not in table.columns
    # s1: 2000 x 1000 px tumor minus its left half, mpp override 0.25 -> 1000 x 1000 px x 0.0625 µm² = 0.0625 mm²
    assert table.loc["s1.svs", "tumor_area_mm2"] == pytest.approx(0.0625, rel=0.01)
    # s2: no file -> Slides extent 4000 px at downsample 32, 3200 x 3200 px x 0.0625 µm² = 0.64 mm²
    assert table.loc["s2.svs", "tumor_area_mm2"] == pytest.approx(0.64, rel=0.02)
    assert table.loc["s3.svs", "tumor_area_mm2"] == 0.0
    totals = table1_totals(table.reset_index())
    assert totals.loc["test", "mitotic_figure_ODAEL"] == 9 and totals.loc["train", "mitotic_figure_ODAEL"] == 6
    assert totals.loc["all", "annotations_ODAEL"] == 28 + 14 + 1
    assert totals.loc["all", "mitotic_figure_MEL"] == 12


def test_area_uses_the_slides_own_mpp_when_present(built_root, tmp_path):
    root, _ = built_root
    areas = table1(root.path, mpp=1.0).set_index("filename")  # s2 needs an mpp; s1 takes the override
    assert areas.loc["s1.svs", "mpp"] == 1.0
    only_s1 = tmp_path / "root"
    (only_s1 / "databases").mkdir(parents=True)
    with SlideRunnerDB.create(only_s1 / "databases" / "MITOS_WSI_CCMCT_Tumorzone.sqlite") as db:
        db.add_class("Tumorzone")
        s1 = db.add_slide("s1.svs")
        db.add_annotation(s1, AnnotationType.POLYGON, [[0, 0], [1999, 0], [1999, 999], [0, 999]], 1)
    (only_s1 / "WSI").symlink_to(root.wsi_dir)
    row = table1(only_s1).iloc[0]  # no --mpp: the slide records 0.5 µm/px
    assert row["mpp"] == pytest.approx(0.5)
    assert row["tumor_area_mm2"] == pytest.approx(2000 * 1000 * 0.25 / 1e6, rel=0.01)


def test_short_polygon_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "databases" / "MITOS_WSI_CCMCT_Tumorzone.sqlite"
    with SlideRunnerDB.create(path) as db:
        db.add_class("Tumorzone")
        s1 = db.add_slide("s1.svs", 1000, 1000)
        db.add_annotation(s1, AnnotationType.POLYGON, [[0, 0], [639, 0], [639, 639], [0, 639]], 1)
    con = sqlite3.connect(path)  # a degenerate 2-vertex 'polygon' as found in hand-made files
    anno = con.execute("INSERT INTO Annotations (slide, type, agreedClass) VALUES (1, 3, 1)").lastrowid
    con.executemany("INSERT INTO Annotations_coordinates (coordinateX, coordinateY, slide, annoId, orderIdx) "
                    "VALUES (?, ?, 1, ?, ?)", [(700, 700, anno, 1), (900, 900, anno, 2)])
    con.commit()
    con.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = table1(tmp_path, mpp=1.0)
    assert any("polygon with fewer than 3 vertices" in str(w.message) and str(path) in str(w.message)
               for w in caught)
    assert table.loc[0, "tumor_area_mm2"] == pytest.approx(640 * 640 / 1e6, rel=0.02)


# ------------------------------------------------------------------------------------------ the authors' method
def _zone_db(path, polygons, *, classes=("Nekrosezone", "Tumorzone"), size=None):
    """A tumor-zone database whose class named 'Tumorzone' is uid 2 (not 1): found by name, not by number."""
    with SlideRunnerDB.create(path) as db:
        for name in classes:
            db.add_class(name)
        slide = db.add_slide("s1.svs", *(size or (None, None)))
        for class_id, vertices in polygons:
            db.add_annotation(slide, AnnotationType.POLYGON, vertices, class_id)
    return path


def test_with_the_slide_the_class_named_tumorzone_is_filled_with_truncated_coordinates(tmp_path):
    root = DataRoot(tmp_path)
    # level 0 2048 x 1024 -> lowest level 512 x 256 (downsample 4). Top-left vertices at 4 * k + 3 land on
    # canvas k + 0.75: truncated to k (the authors' np.int32), rounded they would give k + 1 (1 px less a side)
    # (PIL happens to floor float vertices as well; the explicit truncation keeps the authors' rule regardless)
    tumor = [[3, 3], [1200, 3], [1200, 800], [3, 800]]
    necrosis = [[403, 403], [600, 403], [600, 600], [403, 600]]
    _zone_db(root.database("Tumorzone"), [(2, tumor), (1, necrosis)])
    write_svs(root.slide_path("s1.svs"), np.full((1024, 2048, 3), 240, np.uint8), mpp=0.25, compression="zlib")
    row = table1(root.path).iloc[0]
    # canvas (truncated): tumor x 0..300, y 0..200 = 301 x 201 px; necrosis x 100..150 = 51 x 51 px cleared
    assert row["tumor_area_mm2"] == pytest.approx((301 * 201 - 51 * 51) * (4 * 0.25) ** 2 / 1e6, rel=1e-12)
    assert row["mpp"] == pytest.approx(0.25)


def test_without_the_slide_the_extent_raster_is_used(tmp_path):
    root = DataRoot(tmp_path)
    _zone_db(root.database("Tumorzone"), [(2, [[0, 0], [3199, 0], [3199, 3199], [0, 3199]])], size=(4000, 4000))
    row = table1(root.path, mpp=0.25).iloc[0]
    assert row["tumor_area_mm2"] == pytest.approx(3200 * 3200 * 0.25 ** 2 / 1e6, rel=0.02)


def test_a_database_without_a_tumorzone_class_is_refused(tmp_path):
    root = DataRoot(tmp_path)
    _zone_db(root.database("Tumorzone"), [(1, [[0, 0], [99, 0], [99, 99]])], classes=("Mitotic figure",),
             size=(1000, 1000))
    with pytest.raises(DatabaseError, match=r"Tumorzone\.sqlite: no class named 'Tumorzone'.*1 'Mitotic figure'"):
        table1(root.path, mpp=0.25)


def test_self_intersecting_and_outside_polygons_warn_and_say_what_was_done(tmp_path):
    root = DataRoot(tmp_path)
    bow_tie = [[0, 0], [800, 800], [800, 0], [0, 800]]               # crosses itself at (400, 400)
    outside = [[-400, 100], [1500, 100], [1500, 700], [-400, 700]]  # beyond the 1024 x 1024 slide
    _zone_db(root.database("Tumorzone"), [(2, bow_tie), (2, outside)])
    write_svs(root.slide_path("s1.svs"), np.full((1024, 1024, 3), 240, np.uint8), mpp=0.25, compression="zlib")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        row = table1(root.path).iloc[0]
    messages = [str(w.message) for w in caught]
    assert any("1 polygon(s) intersect themselves" in m and "filled as drawn" in m for m in messages), messages
    assert any("reach outside the slide" in m and "clipped to the slide" in m for m in messages), messages
    assert 0 < row["tumor_area_mm2"] <= 1024 * 1024 * 0.25 ** 2 / 1e6
