"""SlideRunner SQLite databases: read and write, in exactly the schema of the published files.

Tables (SlideRunner's `database.py` schema, docs/data.md): ``Slides``, ``Annotations`` (one object, ``agreedClass`` = ground truth),
``Annotations_coordinates`` (vertices in level-0 px, ``orderIdx`` 1-based), ``Annotations_label`` (one row
per individual vote, in the order given), ``Classes``, ``Persons``, ``Log``.

Reading never modifies the file (the connection is opened read-only). Writing goes to a temporary file that
is renamed into place when the writer is closed without error.

Example:
    >>> with SlideRunnerDB.open("MITOS_WSI_CCMCT_ODAEL.sqlite") as db:   # doctest: +SKIP
    ...     uid = db.find_slide("be10fa37ad6e88e1f406.svs")
    ...     cells = db.spots(uid)            # DataFrame: anno_id, x, y, agreed_class
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ccmct.errors import DatabaseError
from ccmct.atomicio import atomic_path


class AnnotationType(IntEnum):
    """SlideRunner ``Annotations.type`` values."""

    SPOT = 1
    RECTANGLE = 2
    POLYGON = 3
    SPECIAL_SPOT = 4
    CIRCLE = 5


# The DDL of the published databases, verbatim (MITOS_WSI_CCMCT_Tumorzone.sqlite).
SCHEMA_SQL = (
    "CREATE TABLE `Annotations_label` (\t`uid`\tINTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,\t`person`\tINTEGER,"
    "\t`class`\tINTEGER,\t`annoId`\tINTEGER)",
    "CREATE TABLE `Annotations_coordinates` (`uid`\tINTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,`coordinateX`"
    "\tINTEGER,`coordinateY`\tINTEGER,`slide`\tINTEGER,`annoId`\tINTEGER,`orderIdx`\tINTEGER)",
    "CREATE TABLE `Annotations` (`uid`\tINTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,`slide`\tINTEGER,`type`"
    "\tINTEGER,`agreedClass`\tINTEGER)",
    "CREATE TABLE `Classes` (`uid`\tINTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,`name`\tTEXT)",
    "CREATE TABLE `Persons` (`uid`\tINTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,`name`\tTEXT)",
    "CREATE TABLE `Slides` (`uid`\tINTEGER PRIMARY KEY AUTOINCREMENT UNIQUE,`filename`\tTEXT,`width`\tINTEGER,"
    "`height`\tINTEGER, `directory` TEXT)",
    "CREATE TABLE `Log` (`uid` INTEGER PRIMARY KEY AUTOINCREMENT,`dateTime` FLOAT,`labelId` INTEGER)",
)

REQUIRED_TABLES = ("Slides", "Annotations", "Annotations_coordinates", "Annotations_label", "Classes", "Persons")

_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Label:
    """One individual vote: ``person`` gave ``class_id``; ``order`` is 1 for the first label given."""

    person: int
    class_id: int
    order: int


@dataclass(frozen=True)
class Annotation:
    """One annotation with its vertices (level-0 px, in order) and its labels.

    Attributes:
        uid: ``Annotations.uid``.
        slide: slide uid.
        type: :class:`AnnotationType`.
        agreed_class: ``agreedClass`` (ground truth; 0 = none).
        vertices_l0: float array (n, 2) of (x, y).
        labels: individual labels in the order they were given.
    """

    uid: int
    slide: int
    type: AnnotationType
    agreed_class: int
    vertices_l0: np.ndarray
    labels: tuple[Label, ...]

    @property
    def x(self) -> float:
        return float(self.vertices_l0[0, 0])

    @property
    def y(self) -> float:
        return float(self.vertices_l0[0, 1])


def check_sqlite_file(path: Path) -> None:
    """Raise :class:`DatabaseError` unless ``path`` is an existing SQLite file."""
    if not path.exists():
        raise DatabaseError(path, "database file does not exist")
    if path.is_dir():
        raise DatabaseError(path, "is a folder, not a database file")
    with open(path, "rb") as handle:
        head = handle.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        raise DatabaseError(path, "not a SQLite database (wrong file header; truncated or HTML download?)")


class SlideRunnerDB:
    """A SlideRunner database. Use :meth:`open` to read, :meth:`create` to write a new one."""

    def __init__(self, connection: sqlite3.Connection, path: Path, *, final_path: Path | None = None):
        self._con = connection
        self.path = path
        self._final_path = final_path  # set for writers: renamed into place on close()

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "SlideRunnerDB":
        """Open an existing database read-only.

        Raises:
            DatabaseError: missing file, not SQLite, or without the SlideRunner tables.
        """
        path = Path(path)
        check_sqlite_file(path)
        try:
            con = sqlite3.connect(_readonly_uri(path), uri=True)
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as err:
            raise DatabaseError(path, f"cannot be read as SQLite ({err})") from err
        missing = [t for t in REQUIRED_TABLES if t not in tables]
        if missing:
            con.close()
            raise DatabaseError(path, f"not a SlideRunner database: missing table(s) {', '.join(missing)}")
        return cls(con, path)

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, overwrite: bool = False) -> "SlideRunnerDB":
        """Start a new database in the published schema; it appears at ``path`` on :meth:`close`."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise DatabaseError(path, "exists already (pass overwrite=True to replace it)")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        con = sqlite3.connect(tmp)
        for ddl in SCHEMA_SQL:
            con.execute(ddl)
        return cls(con, tmp, final_path=path)

    def close(self) -> None:
        """Close; a writer commits and renames its temporary file into place."""
        if self._con is None:
            return
        if self._final_path is not None:
            self._con.commit()
            self._con.close()
            os.replace(self.path, self._final_path)
            self.path = self._final_path
        else:
            self._con.close()
        self._con = None

    def abort(self) -> None:
        """Discard a writer's temporary file (nothing appears at the destination)."""
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._final_path is not None:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "SlideRunnerDB":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self._final_path is not None:
            self.abort()
        else:
            self.close()

    def _query(self, sql: str, params: Sequence = ()) -> pd.DataFrame:
        try:
            return pd.read_sql_query(sql, self._con, params=params)
        except (sqlite3.DatabaseError, pd.errors.DatabaseError) as err:
            raise DatabaseError(self.path, f"query failed ({err})") from err

    # ------------------------------------------------------------------ reading: tables
    def slides(self) -> pd.DataFrame:
        """Columns: uid, filename, width, height, directory (width/height may be missing)."""
        return self._query("SELECT uid, filename, width, height, directory FROM Slides ORDER BY uid")

    def classes(self) -> pd.DataFrame:
        """Columns: uid, name."""
        return self._query("SELECT uid, name FROM Classes ORDER BY uid")

    def class_names(self) -> dict[int, str]:
        """Class uid -> name, from the Classes table."""
        classes = self.classes()
        return dict(zip(classes["uid"].astype(int), classes["name"]))

    def persons(self) -> pd.DataFrame:
        """Columns: uid, name."""
        return self._query("SELECT uid, name FROM Persons ORDER BY uid")

    def find_slide(self, filename: str) -> int:
        """Slide uid by file name (base name compared).

        Raises:
            DatabaseError: no slide with that name.
        """
        name = Path(filename).name
        rows = self._con.execute("SELECT uid FROM Slides WHERE filename = ?", (name,)).fetchall()
        if not rows:
            raise DatabaseError(self.path, f"no slide named {name!r} in table Slides")
        return int(rows[0][0])

    def annotations(self, slide: int | None = None) -> pd.DataFrame:
        """Columns: uid, slide, type, agreed_class (one row per annotation)."""
        where, params = ("WHERE slide = ?", (slide,)) if slide is not None else ("", ())
        return self._query(
            f"SELECT uid, slide, type, agreedClass AS agreed_class FROM Annotations {where} ORDER BY uid", params)

    def class_counts(self) -> pd.DataFrame:
        """Annotations per slide and ``agreedClass`` (every annotation type), counted in SQL.

        Returns:
            DataFrame with columns slide (uid), agreed_class, n.
        """
        return self._query("SELECT slide, agreedClass AS agreed_class, COUNT(*) AS n FROM Annotations "
                           "GROUP BY slide, agreedClass ORDER BY slide, agreedClass")

    def coordinates(self, slide: int | None = None) -> pd.DataFrame:
        """Columns: anno_id, order, x, y (level-0 px), sorted by annotation and vertex order.

        Vertex order is ``orderIdx``, ties broken by row uid (insertion order): the published Tumorzone
        database stores ``orderIdx = 1`` for every vertex, its polygons are in insertion order.
        """
        where, params = ("WHERE slide = ?", (slide,)) if slide is not None else ("", ())
        coords = self._query(
            "SELECT annoId AS anno_id, orderIdx AS \"order\", coordinateX AS x, coordinateY AS y "
            f"FROM Annotations_coordinates {where} ORDER BY annoId, orderIdx, uid",
            params,
        )
        return _drop_bad_coordinates(coords, self.path, whole_annotations=True)

    def labels(self, slide: int | None = None) -> pd.DataFrame:
        """Columns: uid, anno_id, person, class_id, order (1 = first label given to that annotation)."""
        join, params = ("", ())
        if slide is not None:
            join, params = ("JOIN Annotations a ON a.uid = l.annoId WHERE a.slide = ?", (slide,))
        df = self._query(
            f"SELECT l.uid, l.annoId AS anno_id, l.person, l.class AS class_id FROM Annotations_label l {join} "
            "ORDER BY l.annoId, l.uid",
            params,
        )
        df["order"] = df.groupby("anno_id").cumcount() + 1
        return df

    def spots(self, slide: int | None = None, classes: Iterable[int] | None = None, *,
              types: Iterable[int] | None = (AnnotationType.SPOT, AnnotationType.SPECIAL_SPOT)) -> pd.DataFrame:
        """Point annotations as the cell consumers read them: the first vertex of each annotation.

        Args:
            slide: slide uid, or None for all slides.
            classes: keep these ``agreedClass`` values only.
            types: annotation types read (default spots and special spots; None: every type, e.g. the
                evaluation's ground truth, which takes the first vertex of any annotation).

        Returns:
            DataFrame with columns anno_id, slide, type, x, y (level-0 px, int64), agreed_class. Checked, not
            trusted — left out, with one warning per problem naming the database, the count and the first uid:
            annotations without any coordinate; with a NULL, NaN, infinite or non-numeric first vertex; outside
            their slide (negative, or beyond the ``Slides`` table's width / height where it records them).
        """
        where, params = ["1"], []
        if types is not None:
            kinds = [int(t) for t in types]
            where.append(f"type IN ({', '.join('?' * len(kinds))})")
            params.extend(kinds)
        if slide is not None:
            where.append("slide = ?")
            params.append(slide)
        if classes is not None:
            ids = [int(c) for c in classes]
            where.append(f"agreedClass IN ({', '.join('?' * len(ids))})")
            params.extend(ids)
        annos = self._query(
            "SELECT uid AS anno_id, slide, type, agreedClass AS agreed_class FROM Annotations "
            f"WHERE {' AND '.join(where)} ORDER BY uid",
            params,
        )
        coord_where, coord_params = ("WHERE slide = ?", (slide,)) if slide is not None else ("", ())
        first = self._query(  # first vertex of every annotation: lowest orderIdx, then lowest row uid
            "SELECT annoId AS anno_id, coordinateX AS x, coordinateY AS y FROM Annotations_coordinates "
            f"{coord_where} ORDER BY annoId, orderIdx, uid",
            coord_params,
        ).drop_duplicates("anno_id", keep="first")
        df = annos.merge(first, on="anno_id", how="left")[["anno_id", "slide", "type", "x", "y", "agreed_class"]]
        df = _drop_without_coordinates(df, self.path)
        return _drop_outside_slides(df, self.slides(), self.path)

    # ------------------------------------------------------------------ reading: objects
    def slide_annotations(self, slide: int, *, types: Iterable[int] | None = None,
                          check_polygons: bool = True) -> list[Annotation]:
        """All annotations of a slide as :class:`Annotation` objects (vertices in order, labels in order).

        Args:
            slide: slide uid.
            types: keep only these :class:`AnnotationType` values (default: all).

        Annotations that cannot be drawn are skipped with one warning naming the database and the first
        uid: no coordinates at all, a NULL / NaN / infinite / non-numeric coordinate, a polygon with fewer
        than 3 vertices, a rectangle or circle without exactly 2. (Writing such an annotation raises instead,
        see :meth:`add_annotation`.) Polygons that intersect themselves are kept as drawn, with a warning
        unless ``check_polygons=False`` (callers that aggregate the warning over slides: exports, Table 1).
        """
        annos = self.annotations(slide)
        coords = self.coordinates(slide)
        labels = self.labels(slide)
        if types is not None:
            annos = annos[annos["type"].isin([int(t) for t in types])]
            coords = coords[coords["anno_id"].isin(annos["uid"])]
            labels = labels[labels["anno_id"].isin(annos["uid"])]
        vertex_groups = {k: g[["x", "y"]].to_numpy(float) for k, g in coords.groupby("anno_id")}
        label_groups = {
            k: tuple(Label(int(p), int(c), int(o)) for p, c, o in g[["person", "class_id", "order"]].to_numpy())
            for k, g in labels.groupby("anno_id")
        }
        out: list[Annotation] = []
        skipped: dict[str, list[int]] = {}
        for uid, slide_uid, type_, agreed in annos[["uid", "slide", "type", "agreed_class"]].to_numpy():
            vertices = vertex_groups.get(uid)
            problem = _vertex_problem(int(type_), vertices)
            if problem:
                skipped.setdefault(problem, []).append(int(uid))
                continue
            out.append(Annotation(int(uid), int(slide_uid), AnnotationType(int(type_)), int(agreed), vertices,
                                  label_groups.get(uid, ())))
        for problem, uids in skipped.items():
            warnings.warn(f"{self.path}: {len(uids)} annotation(s) skipped: {problem} (first uid {uids[0]})",
                          stacklevel=2)
        crossing = self_intersecting([a for a in out if a.type == AnnotationType.POLYGON]) if check_polygons else []
        if crossing:
            warnings.warn(f"{self.path}: {len(crossing)} polygon(s) intersect themselves (first uid {crossing[0]}); "
                          "kept as drawn", stacklevel=2)
        return out

    # ------------------------------------------------------------------ writing
    def _require_writer(self) -> None:
        if self._final_path is None:
            raise DatabaseError(self.path, "opened read-only; use SlideRunnerDB.create() to write a database")

    def add_slide(self, filename: str, width: int | None = None, height: int | None = None,
                  directory: str = "", *, uid: int | None = None) -> int:
        """Insert a slide; returns its uid."""
        self._require_writer()
        cur = self._con.execute(
            "INSERT INTO Slides (uid, filename, width, height, directory) VALUES (?, ?, ?, ?, ?)",
            (uid, filename, width, height, directory),
        )
        return int(cur.lastrowid)

    def add_class(self, name: str, *, uid: int | None = None) -> int:
        self._require_writer()
        return int(self._con.execute("INSERT INTO Classes (uid, name) VALUES (?, ?)", (uid, name)).lastrowid)

    def add_person(self, name: str, *, uid: int | None = None) -> int:
        self._require_writer()
        return int(self._con.execute("INSERT INTO Persons (uid, name) VALUES (?, ?)", (uid, name)).lastrowid)

    def add_annotation(self, slide: int, type_: AnnotationType | int, vertices_l0: Sequence[Sequence[float]],
                       agreed_class: int, labels: Sequence[tuple[int, int]] = ()) -> int:
        """Insert one annotation with its vertices and ``labels`` = [(person, class), ...] in order."""
        self._require_writer()
        vertices = np.asarray(vertices_l0, dtype=float).reshape(-1, 2)
        _check_vertex_count(self._final_path, AnnotationType(int(type_)), len(vertices))
        cur = self._con.execute("INSERT INTO Annotations (slide, type, agreedClass) VALUES (?, ?, ?)",
                                (slide, int(type_), agreed_class))
        anno = int(cur.lastrowid)
        self._con.executemany(
            "INSERT INTO Annotations_coordinates (coordinateX, coordinateY, slide, annoId, orderIdx) "
            "VALUES (?, ?, ?, ?, ?)",
            [(int(round(x)), int(round(y)), slide, anno, i + 1) for i, (x, y) in enumerate(vertices)],
        )
        self._add_labels([(anno, p, c) for p, c in labels])
        return anno

    def add_spots(self, slide: int, xy_l0: np.ndarray, agreed_class: Sequence[int],
                  labels: Sequence[Sequence[tuple[int, int]]] | None = None) -> np.ndarray:
        """Bulk-insert point annotations (type SPOT). Returns their uids.

        Args:
            slide: slide uid.
            xy_l0: int array (n, 2) of centres, level-0 px.
            agreed_class: n ground-truth classes.
            labels: per spot, its labels [(person, class), ...] in the order they were given.
        """
        self._require_writer()
        xy = np.asarray(xy_l0).reshape(-1, 2)
        agreed = [int(c) for c in agreed_class]
        if len(agreed) != len(xy):
            raise ValueError(f"add_spots: {len(xy)} coordinates but {len(agreed)} classes")
        start = self._con.execute("SELECT COALESCE(MAX(uid), 0) FROM Annotations").fetchone()[0] + 1
        uids = np.arange(start, start + len(xy))
        self._con.executemany("INSERT INTO Annotations (uid, slide, type, agreedClass) VALUES (?, ?, 1, ?)",
                              [(int(u), slide, c) for u, c in zip(uids, agreed)])
        self._con.executemany(
            "INSERT INTO Annotations_coordinates (coordinateX, coordinateY, slide, annoId, orderIdx) "
            "VALUES (?, ?, ?, ?, 1)",
            [(int(x), int(y), slide, int(u)) for (x, y), u in zip(xy, uids)],
        )
        if labels is not None:
            self._add_labels([(int(u), p, c) for u, spot in zip(uids, labels) for p, c in spot])
        return uids

    def _add_labels(self, rows: list[tuple[int, int, int]]) -> None:
        if not rows:
            return
        start = self._con.execute("SELECT COALESCE(MAX(uid), 0) FROM Annotations_label").fetchone()[0] + 1
        self._con.executemany("INSERT INTO Annotations_label (uid, person, class, annoId) VALUES (?, ?, ?, ?)",
                              [(start + i, p, c, a) for i, (a, p, c) in enumerate(rows)])
        self._con.executemany("INSERT INTO Log (dateTime, labelId) VALUES (?, ?)",
                              [(0.0, start + i) for i in range(len(rows))])


_NEEDED_VERTICES = {AnnotationType.SPOT: 1, AnnotationType.SPECIAL_SPOT: 1, AnnotationType.RECTANGLE: 2,
                    AnnotationType.CIRCLE: 2, AnnotationType.POLYGON: 3}


def self_intersecting(polygons: Sequence[Annotation]) -> list[int]:
    """Uids of the polygon annotations whose outline crosses or touches itself (shapely ``is_simple`` of the
    closed ring; repeated consecutive vertices do not count)."""
    import shapely

    if not polygons:
        return []
    simple = shapely.is_simple(np.array([shapely.linearrings(_dedup(a.vertices_l0)) for a in polygons]))
    return [a.uid for a, ok in zip(polygons, simple) if not ok]


def _dedup(vertices: np.ndarray) -> np.ndarray:
    """Vertices without consecutive repeats (and without a closing repeat of the first), at least 3 kept."""
    v = np.asarray(vertices, dtype=np.float64)
    keep = np.ones(len(v), bool)
    keep[1:] = np.any(v[1:] != v[:-1], axis=1)
    v = v[keep]
    if len(v) > 1 and np.array_equal(v[0], v[-1]):
        v = v[:-1]
    return v if len(v) >= 3 else np.vstack([v, v[-1:].repeat(3 - len(v), axis=0)])


def _vertex_problem(type_: int, vertices: np.ndarray | None) -> str | None:
    """Why an annotation read from a file cannot be used, or None when it can."""
    if type_ not in AnnotationType._value2member_map_:
        return f"unknown annotation type {type_}"
    if vertices is None or len(vertices) == 0:
        return "no coordinates"
    kind = AnnotationType(type_)
    need = _NEEDED_VERTICES[kind]
    if kind == AnnotationType.POLYGON and len(vertices) < need:
        return "polygon with fewer than 3 vertices"
    if kind in (AnnotationType.RECTANGLE, AnnotationType.CIRCLE) and len(vertices) != need:
        return f"{kind.name.lower()} without exactly 2 vertices"
    return None


def _readonly_uri(path: Path) -> str:
    """SQLite URI that opens ``path`` read-only (percent-encoded, so '?' or '#' in names are safe)."""
    return Path(path).resolve().as_uri() + "?mode=ro"


def _check_vertex_count(path: Path | None, type_: AnnotationType, n: int) -> None:
    need = _NEEDED_VERTICES[type_]
    ok = n >= need if type_ == AnnotationType.POLYGON else n == need
    if not ok:
        raise DatabaseError(path or Path("?"), f"a {type_.name.lower()} annotation needs "
                            f"{'at least ' if type_ == AnnotationType.POLYGON else ''}{need} vertices, got {n}")


def _numeric(column: pd.Series) -> pd.Series:
    """Coordinates as float64: text, blobs, NULL and NaN become NaN (SQLite keeps whatever a tool wrote)."""
    return pd.to_numeric(column, errors="coerce").astype(np.float64)


def _drop_bad_coordinates(coords: pd.DataFrame, path: Path, *, whole_annotations: bool) -> pd.DataFrame:
    """Vertices whose x or y is NULL, NaN, infinite or not a number are not trusted: every annotation with one
    is skipped (a polygon without one of its vertices is another shape), with one warning naming the file,
    the count and the first uid. Coordinates come back as float64 level-0 px."""
    coords = coords.assign(x=_numeric(coords["x"]), y=_numeric(coords["y"]))
    bad = ~(np.isfinite(coords["x"].to_numpy()) & np.isfinite(coords["y"].to_numpy()))
    if bad.any():
        bad_annos = coords.loc[bad, "anno_id"].unique()
        warnings.warn(f"{path}: {len(bad_annos)} annotation(s) with NULL, NaN, infinite or non-numeric "
                      f"coordinates skipped (first uid {int(bad_annos[0])})", stacklevel=4)
        drop = coords["anno_id"].isin(bad_annos) if whole_annotations else bad
        coords = coords.loc[~drop].reset_index(drop=True)
    return coords


def _drop_without_coordinates(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Spots without a usable first vertex (none, NULL, NaN, infinite or non-numeric) are skipped with a
    warning; the others get int64 coordinates (level-0 px, truncated as SlideRunner stores integers)."""
    missing = df["x"].isna() & df["y"].isna()
    if missing.any():
        warnings.warn(f"{path}: {int(missing.sum())} annotation(s) without coordinates skipped "
                      f"(first uid {int(df.loc[missing, 'anno_id'].iloc[0])})", stacklevel=3)
        df = df.loc[~missing].reset_index(drop=True)
    df = _drop_bad_coordinates(df, path, whole_annotations=False)
    df["x"] = df["x"].astype(np.int64)
    df["y"] = df["y"].astype(np.int64)
    return df


def _drop_outside_slides(df: pd.DataFrame, slides: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Points outside their slide are not trusted: negative coordinates always, and beyond the slide's width or
    height where the ``Slides`` table records them (the published files leave them NULL). Skipped with one
    warning naming the file, the count and the first uid."""
    if df.empty:
        return df
    size = slides.set_index("uid")[["width", "height"]].apply(pd.to_numeric, errors="coerce")
    width = df["slide"].map(size["width"]).to_numpy(np.float64)
    height = df["slide"].map(size["height"]).to_numpy(np.float64)
    x, y = df["x"].to_numpy(), df["y"].to_numpy()
    known = np.isfinite(width) & (width > 0) & np.isfinite(height) & (height > 0)
    beyond = (x >= np.where(known, width, np.inf)) | (y >= np.where(known, height, np.inf))
    outside = (x < 0) | (y < 0) | beyond
    if outside.any():
        first = int(df.loc[outside, "anno_id"].iloc[0])
        warnings.warn(f"{path}: {int(outside.sum())} annotation(s) outside their slide (negative, or beyond the "
                      f"width x height of table Slides) skipped (first uid {first})", stacklevel=3)
        df = df.loc[~outside].reset_index(drop=True)
    return df


def copy_database(src: str | os.PathLike[str], dst: str | os.PathLike[str], *,
                  keep_slides: Iterable[str] | None = None) -> Path:
    """Copy a database (same schema), optionally keeping only the named slides and their annotations.

    The copy is written to a temporary file and renamed into place. Used by the ablation subsets.
    """
    src, dst = Path(src), Path(dst)
    SlideRunnerDB.open(src).close()  # validates
    source = sqlite3.connect(_readonly_uri(src), uri=True)
    try:
        with atomic_path(dst) as tmp:
            target = sqlite3.connect(tmp)
            try:
                source.backup(target)
                if keep_slides is not None:
                    names = list(keep_slides)
                    marks = ", ".join("?" * len(names))
                    drop = [r[0] for r in
                            target.execute(f"SELECT uid FROM Slides WHERE filename NOT IN ({marks})", names)]
                    for uid in drop:
                        target.execute("DELETE FROM Annotations_label WHERE annoId IN "
                                       "(SELECT uid FROM Annotations WHERE slide = ?)", (uid,))
                        target.execute("DELETE FROM Annotations_coordinates WHERE slide = ?", (uid,))
                        target.execute("DELETE FROM Annotations WHERE slide = ?", (uid,))
                        target.execute("DELETE FROM Slides WHERE uid = ?", (uid,))
                target.commit()
            finally:
                target.close()
    finally:
        source.close()
    return dst
