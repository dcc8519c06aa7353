"""SlideRunner databases: reading the published files, writing the same schema, schema drift, bad input."""

from __future__ import annotations

import hashlib
import sqlite3
import warnings

import numpy as np
import pytest

from ccmct.data.sliderunner import AnnotationType, SlideRunnerDB, copy_database
from ccmct.errors import DatabaseError

TABLES = ("Slides", "Annotations", "Annotations_coordinates", "Annotations_label", "Classes", "Persons", "Log")


def _raw(path, sql, params=()):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _table_info(path, table):
    return _raw(path, f"PRAGMA table_info({table})")


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def made_db(tmp_path_factory):
    """A database written by SlideRunnerDB.create with one of each annotation type and ordered labels."""
    path = tmp_path_factory.mktemp("made") / "made.sqlite"
    with SlideRunnerDB.create(path) as db:
        s1 = db.add_slide("a.svs", 1000, 800)
        s2 = db.add_slide("b.svs")
        for name in ("Granulocyte", "Mitotic figure", "Tumor cell"):
            db.add_class(name)
        db.add_person("expert 1")
        db.add_person("expert 2")
        db.add_spots(s1, np.array([[10, 20], [30, 40]]), [2, 1], labels=[[(1, 2), (2, 1), (1, 2)], [(2, 1)]])
        db.add_annotation(s2, AnnotationType.POLYGON, [[0, 0], [100, 0], [100, 50], [0, 50]], 3, [(1, 3)])
        db.add_annotation(s2, AnnotationType.RECTANGLE, [[5, 6], [70, 80]], 1)
        db.add_annotation(s2, AnnotationType.CIRCLE, [[0, 0], [20, 20]], 2)
    return path


# ---------------------------------------------------------------------------------------- the real files
def test_real_tumorzone_tables(tumorzone_db):
    with SlideRunnerDB.open(tumorzone_db) as db:
        assert len(db.slides()) == 32
        assert db.class_names() == {1: "Tumorzone", 2: "Nekrosezone", 3: "unscharfe scan-area",
                                    4: "nicht tumorgewebe excludieren"}
        assert db.persons()["name"].tolist() == ["Christof"]
        assert db.find_slide("c91a842257ed2add5134.svs") == 1
        assert db.find_slide("/anywhere/WSI/ce949341ba99845813ac.svs") == 33   # base name compared
        annos = db.annotations()
        polygons = annos[annos["type"] == AnnotationType.POLYGON]
        # docs/data.md, SlideRunner's `annotations.py`: polygons class1 x41, class2 x6, class3 x3, class4 x63; 2 spots; 466 special spots
        assert polygons["agreed_class"].value_counts().to_dict() == {1: 41, 4: 63, 2: 6, 3: 3}
        spots = db.spots()
        assert (spots["type"] == AnnotationType.SPOT).sum() == 2
        assert (spots["type"] == AnnotationType.SPECIAL_SPOT).sum() == 466


def test_real_tumorzone_polygon_vertices_in_file_order(tumorzone_db):
    """Every vertex of this file has orderIdx 1: the order is the rows' insertion order (uid)."""
    with SlideRunnerDB.open(tumorzone_db) as db:
        uid = db.find_slide("c91a842257ed2add5134.svs")
        annos = db.slide_annotations(uid)
    polygons = [a for a in annos if a.type == AnnotationType.POLYGON]
    assert polygons, "slide c91a8... has tumor-zone polygons"
    for anno in polygons:
        raw = np.array(_raw(tumorzone_db, "SELECT coordinateX, coordinateY FROM Annotations_coordinates "
                                          "WHERE annoId = ? ORDER BY uid", (anno.uid,)), float)
        np.testing.assert_array_equal(anno.vertices_l0, raw)
        assert len(anno.vertices_l0) >= 3
        steps = np.linalg.norm(np.diff(anno.vertices_l0, axis=0), axis=1)
        assert np.median(steps) < 200  # a traced outline: neighbours are close, not a shuffled point cloud


def test_real_high_mc_rectangles(high_mc_db):
    with SlideRunnerDB.open(high_mc_db) as db:
        rects = {}
        for uid, name in db.slides()[["uid", "filename"]].itertuples(index=False):
            for anno in db.slide_annotations(int(uid)):
                assert anno.type == AnnotationType.RECTANGLE and anno.agreed_class == 1
                assert [(lab.person, lab.class_id, lab.order) for lab in anno.labels] == [(1, 1, 1)]
                rects.setdefault(name, []).append(anno.vertices_l0)
    assert sum(len(v) for v in rects.values()) == 33
    # docs/data.md, SlideRunner's `annotations.py` examples (x1, y1, x2, y2): orderIdx 1 = top-left, 2 = bottom-right
    big = {n: next(r for r in v if r[1, 0] - r[0, 0] > 6000) for n, v in rects.items()}
    np.testing.assert_array_equal(big["c91a842257ed2add5134.svs"], [[23245, 40847], [30263, 46098]])
    np.testing.assert_array_equal(big["9374efe6ac06388cc877.svs"], [[14024, 16105], [21057, 21369]])
    np.testing.assert_array_equal(big["1018715d369dd0df2fc0.svs"], [[47954, 16958], [55052, 22521]])


def test_reading_never_modifies_the_file(tumorzone_db, high_mc_db):
    before = {p: _sha256(p) for p in (tumorzone_db, high_mc_db)}
    for path in before:
        with SlideRunnerDB.open(path) as db:
            db.slides(), db.spots(), db.labels(), db.class_counts()
            for uid in db.slides()["uid"][:3]:
                db.slide_annotations(int(uid))
            with pytest.raises(DatabaseError, match="read-only"):
                db.add_slide("new.svs")
            with pytest.raises(DatabaseError, match="read-only"):
                db.add_spots(1, np.array([[1, 2]]), [2])
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                db._con.execute("INSERT INTO Classes (name) VALUES ('x')")
    assert {p: _sha256(p) for p in before} == before


# ---------------------------------------------------------------------------------------- writing
@pytest.mark.parametrize("table", TABLES)
def test_created_schema_equals_the_published_one(made_db, tumorzone_db, high_mc_db, table):
    assert _table_info(made_db, table) == _table_info(tumorzone_db, table)
    if table == "Log":  # HighMCAreas has Log's columns in another order (schema drift in the wild)
        assert _table_info(made_db, table) != _table_info(high_mc_db, table)
        assert {c[1] for c in _table_info(made_db, table)} == {c[1] for c in _table_info(high_mc_db, table)}
    else:
        assert _table_info(made_db, table) == _table_info(high_mc_db, table)


def test_round_trip_of_every_annotation_type_and_label_order(made_db):
    with SlideRunnerDB.open(made_db) as db:
        slides = db.slides()
        assert slides["filename"].tolist() == ["a.svs", "b.svs"]
        assert slides.loc[0, ["width", "height"]].tolist() == [1000, 800]
        assert slides.loc[1, ["width", "height"]].isna().all()
        spots = db.spots(db.find_slide("a.svs"))
        assert spots[["x", "y", "agreed_class"]].values.tolist() == [[10, 20, 2], [30, 40, 1]]
        assert db.spots(classes=[2])["agreed_class"].tolist() == [2]
        first = db.slide_annotations(db.find_slide("a.svs"))[0]
        assert [(lab.person, lab.class_id, lab.order) for lab in first.labels] == [(1, 2, 1), (2, 1, 2), (1, 2, 3)]
        shapes = db.slide_annotations(db.find_slide("b.svs"))
        assert [a.type for a in shapes] == [AnnotationType.POLYGON, AnnotationType.RECTANGLE, AnnotationType.CIRCLE]
        np.testing.assert_array_equal(shapes[0].vertices_l0, [[0, 0], [100, 0], [100, 50], [0, 50]])
        assert (shapes[0].x, shapes[0].y) == (0.0, 0.0)
        assert db.slide_annotations(db.find_slide("b.svs"), types=[AnnotationType.RECTANGLE])[0].agreed_class == 1
        counts = db.class_counts()
        assert counts["n"].sum() == 5 and set(counts.columns) == {"slide", "agreed_class", "n"}


def test_writer_is_atomic(tmp_path):
    path = tmp_path / "x.sqlite"
    with pytest.raises(RuntimeError):
        with SlideRunnerDB.create(path) as db:
            db.add_slide("a.svs")
            assert not path.exists()          # only the temporary file exists while writing
            raise RuntimeError("boom")
    assert not path.exists() and list(tmp_path.iterdir()) == []
    SlideRunnerDB.create(path).close()
    with pytest.raises(DatabaseError, match="exists already"):
        SlideRunnerDB.create(path)
    SlideRunnerDB.create(path, overwrite=True).close()


def test_copy_database_keeps_named_slides(made_db, tmp_path):
    out = copy_database(made_db, tmp_path / "copy.sqlite", keep_slides=["b.svs"])
    with SlideRunnerDB.open(out) as db:
        assert db.slides()["filename"].tolist() == ["b.svs"]
        assert len(db.annotations()) == 3 and len(db.labels()) == 1
    assert list(tmp_path.iterdir()) == [out]


# ---------------------------------------------------------------------------------------- schema drift
def test_schema_drift_extra_column_and_log_order(tmp_path):
    """Files in the wild: an extra ``coordinateZ`` column and Log's columns in another order."""
    path = tmp_path / "drift.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE Slides (uid INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, filename TEXT, width INTEGER,
                             height INTEGER, directory TEXT);
        CREATE TABLE Annotations (uid INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, slide INTEGER, type INTEGER,
                                  agreedClass INTEGER);
        CREATE TABLE Annotations_coordinates (uid INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, coordinateX INTEGER,
                                  coordinateY INTEGER, coordinateZ INTEGER, slide INTEGER, annoId INTEGER,
                                  orderIdx INTEGER);
        CREATE TABLE Annotations_label (uid INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, person INTEGER,
                                        class INTEGER, annoId INTEGER);
        CREATE TABLE Classes (uid INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, name TEXT);
        CREATE TABLE Persons (uid INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, name TEXT);
        CREATE TABLE Log (dateTime FLOAT, uid INTEGER PRIMARY KEY AUTOINCREMENT, labelId INTEGER);
        INSERT INTO Slides (filename) VALUES ('z.svs');
        INSERT INTO Classes (name) VALUES ('Mitotic figure');
        INSERT INTO Annotations (slide, type, agreedClass) VALUES (1, 1, 1), (1, 3, 1);
        INSERT INTO Annotations_coordinates (coordinateX, coordinateY, coordinateZ, slide, annoId, orderIdx)
            VALUES (7, 8, 0, 1, 1, 1), (0, 0, 0, 1, 2, 1), (9, 0, 0, 1, 2, 2), (9, 9, 0, 1, 2, 3);
        INSERT INTO Annotations_label (person, class, annoId) VALUES (1, 1, 1);
        INSERT INTO Log (dateTime, labelId) VALUES (1.5, 1);
    """)
    con.commit()
    con.close()
    with SlideRunnerDB.open(path) as db:
        assert db.spots()[["x", "y"]].values.tolist() == [[7, 8]]
        annos = db.slide_annotations(db.find_slide("z.svs"))
        np.testing.assert_array_equal(annos[1].vertices_l0, [[0, 0], [9, 0], [9, 9]])
        assert annos[0].labels[0].class_id == 1


# ---------------------------------------------------------------------------------------- bad input
def test_not_a_sqlite_file(tmp_path):
    path = tmp_path / "page.sqlite"
    path.write_text("<html>figshare error page</html>")
    with pytest.raises(DatabaseError, match=r"page\.sqlite: not a SQLite database"):
        SlideRunnerDB.open(path)
    with pytest.raises(DatabaseError, match="does not exist"):
        SlideRunnerDB.open(tmp_path / "missing.sqlite")
    with pytest.raises(DatabaseError, match="is a folder"):
        SlideRunnerDB.open(tmp_path)


def test_sqlite_without_sliderunner_tables(tmp_path):
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE Slides (uid INTEGER, filename TEXT)")
    con.commit()
    con.close()
    with pytest.raises(DatabaseError, match=r"other\.sqlite: not a SlideRunner database: missing table\(s\) Annot"):
        SlideRunnerDB.open(path)


def test_unknown_slide_filename(made_db):
    with SlideRunnerDB.open(made_db) as db, pytest.raises(DatabaseError, match=r"made\.sqlite: no slide named 'c"):
        db.find_slide("c.svs")


def test_annotation_without_coordinates_and_short_polygon_are_skipped_with_a_warning(made_db, tmp_path):
    path = tmp_path / "broken.sqlite"
    path.write_bytes(made_db.read_bytes())
    con = sqlite3.connect(path)
    con.execute("INSERT INTO Annotations (slide, type, agreedClass) VALUES (1, 1, 2)")      # spot, no vertex
    cur = con.execute("INSERT INTO Annotations (slide, type, agreedClass) VALUES (1, 3, 3)")  # 2-vertex polygon
    con.executemany("INSERT INTO Annotations_coordinates (coordinateX, coordinateY, slide, annoId, orderIdx) "
                    "VALUES (?, ?, 1, ?, ?)", [(0, 0, cur.lastrowid, 1), (5, 5, cur.lastrowid, 2)])
    con.commit()
    con.close()
    with SlideRunnerDB.open(path) as db:
        with pytest.warns(UserWarning, match=r"broken\.sqlite: 1 annotation\(s\) without coordinates skipped"):
            spots = db.spots(1)
        assert len(spots) == 2
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            annos = db.slide_annotations(1)
        messages = sorted(str(w.message) for w in caught)
        assert len(messages) == 2 and all(str(path) in m for m in messages)
        assert "skipped: no coordinates (first uid 6)" in messages[0]
        assert "skipped: polygon with fewer than 3 vertices (first uid 7)" in messages[1]
        assert [a.uid for a in annos] == [1, 2]


def test_writing_a_short_polygon_raises(tmp_path):
    with SlideRunnerDB.create(tmp_path / "w.sqlite") as db:
        slide = db.add_slide("a.svs")
        with pytest.raises(DatabaseError, match=r"w\.sqlite: a polygon annotation needs at least 3 vertices, got 2"):
            db.add_annotation(slide, AnnotationType.POLYGON, [[0, 0], [1, 1]], 1)
        with pytest.raises(DatabaseError, match="rectangle annotation needs 2 vertices, got 1"):
            db.add_annotation(slide, AnnotationType.RECTANGLE, [[0, 0]], 1)
