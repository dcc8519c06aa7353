"""``ccmct view`` without a browser: the site's files, overlay numbers, resume, bad input, served tiles."""

from __future__ import annotations

import json
import re
import shutil
import threading
import urllib.error
import urllib.request
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ccmct.cli import main
from ccmct.viewer import ViewerPlan, build_site
from ccmct.viewer import tiles as tiles_mod

from .conftest import N_FP, N_TP, THRESHOLD


def _overlay(site: Path, stem: str) -> dict:
    text = (site / "overlays" / f"{stem}.js").read_text()
    assert text.startswith("window.CCMCT_SLIDE = ")
    return json.loads(text[len("window.CCMCT_SLIDE = "):].rstrip().rstrip(";"))


def test_static_site_files_and_overlay_numbers(static_site, viewer_case):
    stem = Path(viewer_case.slide).stem
    for rel in ("index.html", "ccmct-site.json", f"slides/{stem}.html", f"overlays/{stem}.js",
                f"thumbs/{stem}.jpg", "static/openseadragon/openseadragon.min.js", "static/viewer.js",
                "static/openseadragon/LICENSE.txt", f"tiles/{stem}.complete.json"):
        assert (static_site / rel).is_file(), rel
    assert not (static_site / ".ccmct-site-partial").exists()
    data = _overlay(static_site, stem)
    s1, s2 = data["stages"]
    assert sum(s1["tp"]) == N_TP and len(s1["tp"]) - sum(s1["tp"]) == N_FP
    assert s1["counts"] == {"tp": N_TP, "fp": N_FP, "fn": viewer_case.n_gt - N_TP}
    fn = np.array(s1["fn"]).reshape(-1, 2)
    assert sorted(map(tuple, fn)) == sorted(map(tuple, np.rint(viewer_case.fn_xy).astype(int)))
    assert s2["counts"] == {"tp": 3, "fp": 1, "fn": viewer_case.n_gt - 3}
    assert s1["threshold"] == THRESHOLD and data["mpp"] == pytest.approx(viewer_case.mpp)
    assert len(data["gt"]["2"]) // 2 == viewer_case.n_gt
    assert data["hotspot_true"]["count"] >= 1 and s1["hotspot"]["count"] == N_TP + N_FP
    assert data["zones"] and any(z["tumour"] for z in data["zones"])
    # every tile of the Deep Zoom pyramid is on disk and a JPEG
    marker = json.loads((static_site / "tiles" / f"{stem}.complete.json").read_text())
    files = list((static_site / "tiles" / f"{stem}_files").rglob("*.jpeg"))
    assert len(files) == marker["tiles"] > 0
    top = max(int(p.name) for p in (static_site / "tiles" / f"{stem}_files").iterdir())
    with Image.open(static_site / "tiles" / f"{stem}_files" / str(top) / "0_0.jpeg") as tile:
        assert tile.format == "JPEG" and tile.size == (tiles_mod.TILE_PX + tiles_mod.OVERLAP_PX,) * 2


def test_index_page_rows_and_f1_interval(static_site, viewer_case):
    page = (static_site / "index.html").read_text()
    rows = re.findall(r"<tr data-slide='([^']+)'>", page)
    assert rows == [viewer_case.slide, viewer_case.other]
    assert f"slides/{Path(viewer_case.slide).stem}.html" in page and "thumbs/" in page
    manifest = json.loads((static_site / "ccmct-site.json").read_text())
    first = manifest["rows"][0]["stages"][0]
    assert (first["detections"], first["tp"], first["fp"], first["fn"]) == (N_TP + N_FP, N_TP, N_FP,
                                                                             viewer_case.n_gt - N_TP)
    overall = manifest["overall"][0]
    assert overall["tp"] == N_TP + 2 and overall["f1_ci"] is not None
    assert overall["f1_ci"][0] <= overall["f1"] <= overall["f1_ci"][1]
    assert "slide-bootstrap interval" in page


def test_rerun_resumes_an_interrupted_build(viewer_case, tmp_path):
    site = tmp_path / "site"
    plan = ViewerPlan(viewer_case.root, [viewer_case.results], site, db=viewer_case.db, thresholds=[0.5],
                      slides=[viewer_case.slide], progress=False)
    build_site(plan)
    stem = Path(viewer_case.slide).stem
    tiles = sorted((site / "tiles" / f"{stem}_files").rglob("*.jpeg"))
    # simulate an interruption: marker, index and some tiles gone, the partial flag left behind
    (site / "tiles" / f"{stem}.complete.json").unlink()
    (site / "index.html").unlink()
    for tile in tiles[::3]:
        tile.unlink()
    (site / ".ccmct-site-partial").touch()
    kept = {p: p.stat().st_mtime_ns for p in tiles if p.exists()}
    build_site(plan)
    assert all(p.exists() for p in tiles) and (site / "index.html").exists()
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # complete tiles were not rewritten
    assert not (site / ".ccmct-site-partial").exists()


def test_region_writes_only_covering_tiles_and_opens_there(viewer_case, tmp_path):
    site = tmp_path / "site"
    region = tiles_mod.Region(1000, 800, 600, 400)
    build_site(ViewerPlan(viewer_case.root, [viewer_case.results], site, db=viewer_case.db, thresholds=[0.5],
                          slides=[viewer_case.slide], regions={None: [region]}, progress=False))
    stem = Path(viewer_case.slide).stem
    folder = site / "tiles" / f"{stem}_files"
    top = max(int(p.name) for p in folder.iterdir())
    written = {p.stem for p in (folder / str(top)).glob("*.jpeg")}
    # level-0 x 1000..1600 -> columns 3..6, y 800..1200 -> rows 3..4 of 254 px tiles
    assert written == {f"{c}_{r}" for c in range(3, 7) for r in range(3, 5)}
    assert _overlay(site, stem)["region"] == [1000, 800, 600, 400]
    assert tiles_mod.pyramid_complete(site, stem, [region])
    assert not tiles_mod.pyramid_complete(site, stem, None)


def test_cli_builds_and_prints_json(viewer_case, tmp_path, capsys):
    site = tmp_path / "site"
    code = main(["view", "--data-root", str(viewer_case.root), "--results", str(viewer_case.results),
                 "--threshold", "0.5", "--slides", viewer_case.other, "--out", str(site), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["slides"] == 1 and summary["overall"][0]["tp"] == 2 and (site / "index.html").exists()


def test_cli_optimize_on_training_results(viewer_case, tmp_path, capsys):
    site = tmp_path / "site"
    code = main(["view", "--data-root", str(viewer_case.root), "--results", str(viewer_case.results),
                 "--optimize-on", str(viewer_case.results), "--slides", viewer_case.other,
                 "--out", str(site), "--json"])
    assert code == 0
    # the hand-made scores are 0.9 / 0.8 / 0.7 / 0.6 (TP at 0.9): the search keeps only the TPs
    assert json.loads(capsys.readouterr().out)["overall"][0]["threshold"] == pytest.approx(0.8)


def _cli(args, capsys):
    code = main(["view", *map(str, args)])
    err = capsys.readouterr().err.strip()
    return code, err


def test_bad_input_is_one_line_and_writes_nothing(viewer_case, tmp_path, capsys):
    base = ["--data-root", viewer_case.root, "--results", viewer_case.results]
    # threshold outside [0, 1]
    code, err = _cli([*base, "--threshold", "1.5", "--out", tmp_path / "a"], capsys)
    assert code == 2 and "outside [0, 1]" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "a").exists()
    # --out is an input (the data root, or inside it)
    code, err = _cli([*base, "--threshold", "0.5", "--out", viewer_case.root / "site"], capsys)
    assert code == 2 and "--out" in err and len(err.splitlines()) == 1
    # results whose slide is not in the data root
    bogus = tmp_path / "bogus.npz"
    from ccmct.data.results import write_results

    write_results(bogus, {"0123456789abcdef0123.svs": np.array([[0, 0, 50, 50, 2, 0.9]])})
    code, err = _cli(["--data-root", viewer_case.root, "--results", bogus, "--threshold", "0.5",
                      "--out", tmp_path / "b"], capsys)
    assert code == 2 and "not in the data root" in err and "0123456789abcdef0123.svs" in err
    assert not (tmp_path / "b").exists()
    # a foreign non-empty folder
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("mine")
    code, err = _cli([*base, "--threshold", "0.5", "--out", tmp_path / "c"], capsys)
    assert code == 2 and "not a ccmct view site" in err


def test_unreadable_slide_is_one_line(viewer_case, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(viewer_case.root, root)
    (root / "WSI" / viewer_case.slide).write_bytes(b"not a slide at all")
    code, err = _cli(["--data-root", root, "--results", viewer_case.results, "--threshold", "0.5",
                      "--out", tmp_path / "site"], capsys)
    assert code == 2 and viewer_case.slide in err and len(err.splitlines()) == 1
    assert not (tmp_path / "site").exists()


def test_max_gb_refuses_with_the_estimate(viewer_case, tmp_path, capsys):
    code, err = _cli(["--data-root", viewer_case.root, "--results", viewer_case.results, "--threshold", "0.5",
                      "--max-gb", "0.0001", "--out", tmp_path / "site"], capsys)
    assert code == 2 and "would take about" in err and "--max-gb" in err
    assert not (tmp_path / "site").exists()  # refused before anything was written
    estimate = tiles_mod.estimate_bytes(Path(viewer_case.root) / "WSI" / viewer_case.slide)
    assert estimate["tiles"] > 100 and 1_000 < estimate["mean_tile_bytes"] < 100_000


def test_served_tiles_render_on_demand(viewer_case, tmp_path):
    from ccmct.viewer.server import make_server

    site = tmp_path / "site"
    build_site(ViewerPlan(viewer_case.root, [viewer_case.results], site, db=viewer_case.db, thresholds=[0.5],
                          slides=[viewer_case.slide], tiles="served", progress=False))
    assert not (site / "tiles").exists()
    server = make_server(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        stem = Path(viewer_case.slide).stem
        with urllib.request.urlopen(f"{base}/tiles/{stem}_files/12/0_0.jpeg", timeout=30) as reply:
            assert reply.headers["Content-Type"] == "image/jpeg"
            with Image.open(BytesIO(reply.read())) as tile:
                assert tile.format == "JPEG" and tile.size == (255, 255)
        with urllib.request.urlopen(f"{base}/tiles/{stem}_files/12/0_0.jpeg", timeout=30):
            pass
        info = server.renderer.tile.cache_info()
        assert (info.currsize, info.hits) == (1, 1)  # rendered once, then from the LRU cache
        for col in range(1, 6):  # one request after the other: one slide handle, reused from the pool
            with urllib.request.urlopen(f"{base}/tiles/{stem}_files/12/{col}_1.jpeg", timeout=30):
                pass
        assert server.renderer.opened == 1
        with urllib.request.urlopen(f"{base}/slides/{stem}.html", timeout=30) as reply:
            assert b"openseadragon.min.js" in reply.read()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/tiles/{stem}_files/12/999_0.jpeg", timeout=30)
        assert missing.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_write_demo_site_both_stages(viewer_case, tmp_path):
    from ccmct.viewer import write_demo_site

    out = tmp_path / "demo_out" / "viewer"
    manifest = write_demo_site(viewer_case.root, {1: viewer_case.results, 2: viewer_case.results2},
                               {1: 0.5, 2: 0.4}, out, progress=False)
    assert [s["label"] for s in manifest["stages"]] == ["stage 1: RetinaNet", "stage 2: RetinaNet + cell classifier"]
    assert [s["threshold"] for s in manifest["stages"]] == [0.5, 0.4]
    assert (out / "index.html").exists() and len(manifest["slides"]) == 2
    # a stage whose result file does not exist yet is left out; none at all -> nothing written
    assert write_demo_site(viewer_case.root, {1: tmp_path / "missing.npz"}, {1: 0.5}, tmp_path / "none") == {}
    assert not (tmp_path / "none").exists()


def test_region_for_a_slide_not_shown_is_refused(viewer_case, tmp_path, capsys):
    code, err = _cli(["--data-root", viewer_case.root, "--results", viewer_case.results, "--threshold", "0.5",
                      "--slides", viewer_case.slide, "--region", f"{viewer_case.other}:0,0,100,100",
                      "--out", tmp_path / "site"], capsys)
    assert code == 2 and "--region" in err and viewer_case.other in err
    with pytest.raises(SystemExit) as bad:
        main(["view", "--data-root", str(viewer_case.root), "--results", str(viewer_case.results),
              "--threshold", "0.5", "--region", "1,2,3", "--out", str(tmp_path / "x")])
    assert bad.value.code == 2
    assert not (tmp_path / "site").exists() and not (tmp_path / "x").exists()


def test_write_demo_viewer_with_a_demo_plan(viewer_case, tmp_path):
    """What ``ccmct demo`` calls after its report: the ODAEL test files of both stages, the report's thresholds."""
    from ccmct.demo import DemoPlan
    from ccmct.viewer.demo import write_demo_viewer

    plan = DemoPlan(out_dir=tmp_path / "demo", data_root=viewer_case.root)
    for stage, source in ((1, viewer_case.results), (2, viewer_case.results2)):
        target = plan.result_path("ODAEL", "test", stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    summary = {"thresholds": {"stage1": {"MEL": 0.9, "ODAEL": 0.5}, "stage2": {"MEL": 0.9, "ODAEL": 0.45}}}
    assert write_demo_viewer(plan, summary, progress=False) == "viewer/index.html"
    manifest = json.loads((plan.out_dir / "viewer" / "ccmct-site.json").read_text())
    assert [(s["label"], s["threshold"]) for s in manifest["stages"]] == [
        ("stage 1: RetinaNet", 0.5), ("stage 2: RetinaNet + cell classifier", 0.45)]
    assert [s["results"] for s in manifest["stages"]] == [
        str(plan.result_path("ODAEL", "test", s).resolve()) for s in (1, 2)]
