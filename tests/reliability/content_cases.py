"""Battery cases of category 4, database and slide content (issue 14 item 4; docs/reliability.md).

Each case builds a damaged copy of one input in its scratch folder — never the workspace's shared root — and
runs the real command line (:func:`battery.run_case`). ``content_cases()`` is what the test modules
``test_content_*.py`` run; the battery script can add them to its table the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
from battery import Case

CATEGORY = "content"
TITLE = "4. database and slide content checked (databases, polygons, slides)"


# ---------------------------------------------------------------------------------------------- builders
def scratch_root(ws, scratch: Path) -> Path:
    """A data root in ``scratch``: the workspace's slides linked, its databases copied (free to damage)."""
    root = scratch / "root"
    (root / "databases").mkdir(parents=True, exist_ok=True)
    if not (root / "WSI").exists():
        (root / "WSI").symlink_to(ws.root / "WSI")
    for db in (ws.root / "databases").glob("*.sqlite"):
        shutil.copyfile(db, root / "databases" / db.name)
    if (ws.root / "split.json").exists():
        shutil.copyfile(ws.root / "split.json", root / "split.json")
    return root


def damage_coordinates(db: Path, class_id: int = 2) -> list[int]:
    """Give three annotations of ``class_id`` a NULL, a text and a negative first coordinate; returns their uids."""
    con = sqlite3.connect(db)
    try:
        uids = [u for (u,) in con.execute("SELECT uid FROM Annotations WHERE agreedClass = ? ORDER BY uid LIMIT 3",
                                          (class_id,))]
        for uid, value in zip(uids, (None, "twelve", -40)):
            con.execute("UPDATE Annotations_coordinates SET coordinateX = ? WHERE annoId = ?", (value, uid))
        con.commit()
    finally:
        con.close()
    return uids


def add_polygons(db: Path, slide_uid: int = 1, class_id: int = 1) -> None:
    """Add a self-intersecting polygon (bow tie), a 2-vertex 'polygon' and a polygon with a NaN vertex."""
    con = sqlite3.connect(db)
    try:
        shapes = ([(100, 100), (500, 500), (500, 100), (100, 500)], [(50, 50), (90, 90)],
                  [(10, 10), (float("nan"), 60), (60, 60)])
        for vertices in shapes:
            anno = con.execute("INSERT INTO Annotations (slide, type, agreedClass) VALUES (?, 3, ?)",
                               (slide_uid, class_id)).lastrowid
            con.executemany("INSERT INTO Annotations_coordinates (coordinateX, coordinateY, slide, annoId, orderIdx) "
                            "VALUES (?, ?, ?, ?, ?)",
                            [(x, y, slide_uid, anno, i + 1) for i, (x, y) in enumerate(vertices)])
        con.commit()
    finally:
        con.close()


def strict_json_file(path: Path) -> str | None:
    """Problem with a JSON output file (missing, or not strict JSON), or None."""
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    if not path.is_file():
        return f"{path} was not written"
    try:
        json.loads(path.read_text(), parse_constant=refuse)
    except ValueError as err:
        return f"{path}: {err}"
    return None


def warned(*texts: str):
    """A check: exit 0 (checked by the battery) and every text among stderr's warning lines."""
    def check(proc, ws, scratch):
        missing = [t for t in texts if t not in proc.stderr]
        return f"no warning with {missing!r} in stderr:\n{proc.stderr[-1500:]}" if missing else None
    return check


def all_of(*checks):
    def check(proc, ws, scratch):
        for c in checks:
            problem = c(proc, ws, scratch)
            if problem:
                return problem
        return None
    return check


def corrupt_level0(path: Path) -> Path:
    """Overwrite every level-0 tile of a slide with garbage: it opens, but no level-0 pixel can be read."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        spans = list(zip(page.dataoffsets, page.databytecounts))
    with open(path, "r+b") as handle:
        for offset, count in spans:
            handle.seek(offset)
            handle.write(b"\xff" * count)
    return path


def results_on(path: Path, boxes_by_slide: dict[str, np.ndarray]) -> Path:
    from ccmct.data.results import write_results

    return write_results(path, boxes_by_slide)


def boxes_around(centres) -> np.ndarray:
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    n = len(centres)
    return np.column_stack([centres - 25, centres + 25, np.zeros(n), np.linspace(0.3, 0.9, n)])


def slide_of_split(ws, split: str) -> str:
    """The first slide (by name) of the workspace root's ``split``."""
    from ccmct.config.paths import DataRoot

    return sorted(n for n, s in DataRoot(ws.root).split().items() if s == split)[0]


def rescaled_slide(src: Path, dst: Path, mpp: float) -> Path:
    """A copy of a slide's pixels that records another µm/px."""
    from ccmct.data.slides import open_slide
    from ccmct.data.svs_writer import write_svs

    with open_slide(src) as slide:
        width, height = slide.dimensions
        image = slide.read_l0(0, 0, (width, height))
    return write_svs(dst, image, mpp=mpp)


# ---------------------------------------------------------------------------------------------- cases
def _eval_db(name: str):
    def build(ws, scratch):
        return ["evaluate", "--db", ws.root / "databases" / name, "--results", ws.results, "--threshold", "0.5",
                "--json"], []
    return build


def _eval_damaged(ws, scratch):
    root = scratch_root(ws, scratch)
    db = root / "databases" / "MITOS_WSI_CCMCT_ODAEL.sqlite"
    damage_coordinates(db)
    return ["evaluate", "--db", db, "--results", ws.results, "--threshold", "0.5", "--json"], [db]


def _evaluate_json_ok(proc, ws, scratch):
    try:
        document = json.loads(proc.stdout)
    except ValueError as err:
        return f"stdout is not JSON ({err})"
    return None if "f1" in document else "no f1 in the JSON"


def _export(fmt: str):
    def build(ws, scratch):
        root = scratch_root(ws, scratch)
        db = root / "databases" / "MITOS_WSI_CCMCT_Tumorzone.sqlite"
        add_polygons(db)
        return ["export", "--db", db, "--format", fmt, "--out", scratch / f"out.{fmt}.json"], [db]
    return build


def _export_json_ok(fmt: str):
    def check(proc, ws, scratch):
        return strict_json_file(scratch / f"out.{fmt}.json")
    return check


def _stats_polygons(ws, scratch):
    root = scratch_root(ws, scratch)
    add_polygons(root / "databases" / "MITOS_WSI_CCMCT_Tumorzone.sqlite")
    return ["stats", "--data-root", root, "--json"], []


def _stats_without_tumorzone_class(ws, scratch):
    root = scratch_root(ws, scratch)
    con = sqlite3.connect(root / "databases" / "MITOS_WSI_CCMCT_Tumorzone.sqlite")
    con.execute("UPDATE Classes SET name = 'Tumor' WHERE name = 'Tumorzone'")
    con.commit()
    con.close()
    return ["stats", "--data-root", root], []


def _classify_corrupt(ws, scratch):
    wsi = scratch / "WSI"
    wsi.mkdir()
    good, bad = slide_of_split(ws, "test"), slide_of_split(ws, "train")
    os.symlink(ws.root / "WSI" / good, wsi / good)
    shutil.copyfile(ws.root / "WSI" / bad, wsi / bad)
    corrupt_level0(wsi / bad)
    results = results_on(scratch / "RetinaNet-ODAEL-test.npz",
                         {good: boxes_around([[400, 400], [900, 700]]), bad: boxes_around([[600, 500]])})
    return ["classify", "--model", ws.classifier, "--results", results, "--slide-dir", wsi,
            "--out", scratch / "2nd.npz", "--json", "--workers", "0"], [results]


def _classify_corrupt_workers(ws, scratch):
    argv, keep = _classify_corrupt(ws, scratch)
    return [*argv[:-1], "1"], keep


def _classify_mpp(ws, scratch):
    wsi = scratch / "WSI"
    wsi.mkdir()
    name = slide_of_split(ws, "test")
    rescaled_slide(ws.root / "WSI" / name, wsi / name, mpp=0.5)
    results = results_on(scratch / "RetinaNet-ODAEL-test.npz", {name: boxes_around([[400, 400]])})
    return ["classify", "--model", ws.classifier, "--results", results, "--slide-dir", wsi,
            "--out", scratch / "2nd.npz", "--json", "--workers", "0"], [results]


def content_cases() -> list[Case]:
    return [
        Case("evaluate-against-tumorzone-db", CATEGORY, _eval_db("MITOS_WSI_CCMCT_Tumorzone.sqlite"),
             contains="not a mitotic-figure database: class 2 is 'Nekrosezone'"),
        Case("evaluate-against-high-mc-db", CATEGORY, _eval_db("HighMCAreas.sqlite"),
             contains="not a mitotic-figure database: there is no class 2"),
        Case("evaluate-null-text-negative-coordinates", CATEGORY, _eval_damaged, expect="ok",
             check=all_of(warned("NULL, NaN, infinite or non-numeric coordinates skipped",
                                 "outside their slide"), _evaluate_json_ok)),
        Case("export-geojson-bad-polygons", CATEGORY, _export("geojson"), expect="ok",
             check=all_of(warned("polygon with fewer than 3 vertices", "intersect themselves",
                                 "non-numeric coordinates skipped"), _export_json_ok("geojson"))),
        Case("export-coco-bad-polygons", CATEGORY, _export("coco"), expect="ok",
             check=all_of(warned("intersect themselves", "COCO area is the shoelace value"),
                          _export_json_ok("coco"))),
        Case("stats-self-intersecting-polygon", CATEGORY, _stats_polygons, expect="ok",
             check=warned("intersect themselves", "tumor area: filled as drawn")),
        Case("stats-no-tumorzone-class", CATEGORY, _stats_without_tumorzone_class,
             contains="no class named 'Tumorzone'"),
        Case("classify-slide-unreadable-where-boxes-lie", CATEGORY, _classify_corrupt,
             contains="cannot be read where the boxes lie"),
        Case("classify-slide-unreadable-in-reader-process", CATEGORY, _classify_corrupt_workers,
             contains="cannot be read where the boxes lie"),
        Case("classify-slide-at-0.5-mpp", CATEGORY, _classify_mpp, expect="ok",
             check=warned("0.5 µm/px, 2.00x the ~0.25 µm/px")),
    ]


def cases_named(*prefixes: str) -> list[Case]:
    return [c for c in content_cases() if c.name.startswith(prefixes)]
