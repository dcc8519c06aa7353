"""``ccmct view`` in a real browser (headless Debian Chromium via Playwright): static from file:// and served.

The site is built from the ``tiny`` synthetic root and hand-made results (tests/viewer/conftest.py), so
every number the page draws is known. Without /usr/bin/chromium the tests skip with the reason (CI, with
``CCMCT_REQUIRE_SHARED_DATA=1``, fails instead). ``CCMCT_UPDATE_SCREENSHOT=1`` also writes the README's
docs/images/viewer.png from the static test's screenshot.
"""

from __future__ import annotations

import os
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ccmct.viewer.overlays import COLORS

from .chromium import READY, site_opens
from .conftest import N_FP, N_TP, THRESHOLD

REPO = Path(__file__).resolve().parents[2]
VIEWPORT = {"width": 1100, "height": 700}


def _open(browser, url: str):
    page = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(url)
    page.wait_for_function(READY, timeout=60_000)
    return page, errors


def _hex(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], float)


def colour_pixels(png: bytes, color: str, tolerance: float = 40.0) -> int:
    """Pixels of a screenshot within ``tolerance`` (RGB distance) of a CSS colour."""
    rgb = np.asarray(Image.open(BytesIO(png)).convert("RGB"), float)
    return int((np.linalg.norm(rgb - _hex(color), axis=2) < tolerance).sum())


def check_slide_page(page, case) -> None:
    """What both modes must show: the marks, next FN / FP, the scale bar, stage 2."""
    n_fn = case.n_gt - N_TP
    counts = page.evaluate("ccmctViewer.counts()")
    assert counts["drawn"]["tp"] == N_TP and counts["drawn"]["fp"] == N_FP and counts["drawn"]["fn"] == n_fn
    assert counts["marks"] == {"tp": N_TP, "fp": N_FP, "fn": n_fn}
    assert counts["drawn"]["gt"]["2"] == case.n_gt and counts["drawn"]["hotspots"] == 2
    # next FN: centred on the first missed mitosis (top to bottom), at 1 screen px per level-0 px
    first_fn = sorted(map(tuple, np.rint(case.fn_xy)), key=lambda p: (p[1], p[0]))[0]
    page.click("#next-fn")
    view = page.evaluate("ccmctViewer.viewport()")
    assert view["center_l0"] == pytest.approx(list(first_fn), abs=1.0)
    assert view["zoom"] == pytest.approx(1.0)
    assert page.inner_text("#info").startswith(f"FN 1/{n_fn}")
    # the scale bar at that zoom: 0.25 µm/px -> the longest 1-2-5 length under 150 px is 20 µm = 80 px
    assert case.mpp == pytest.approx(0.25)  # the tiny preset's default
    bar = page.evaluate("ccmctViewer.scaleBar()")
    assert bar["um"] == pytest.approx(20.0) and bar["px"] == pytest.approx(80.0, abs=0.5)
    assert page.inner_text("#scalebar-label") == "20 µm"
    assert page.eval_on_selector("#scalebar-bar", "e => e.getBoundingClientRect().width") == pytest.approx(
        bar["px"], abs=1.0)
    # keyboard: N steps to the second FN; P to the best-scored false positive
    page.keyboard.press("n")
    second_fn = sorted(map(tuple, np.rint(case.fn_xy)), key=lambda p: (p[1], p[0]))[1]
    assert page.evaluate("ccmctViewer.viewport()")["center_l0"] == pytest.approx(list(second_fn), abs=1.0)
    page.keyboard.press("p")
    assert page.evaluate("ccmctViewer.viewport()")["center_l0"] == pytest.approx(list(case.fp_xy[0]), abs=1.0)
    assert f"FP 1/{N_FP}: score 0.800" in page.inner_text("#info")
    # stage 2 (3 TP, 1 FP) from the selector, whole slide in view
    page.select_option("#stage", "1")
    page.evaluate("ccmctViewer.home()")
    drawn = page.evaluate("ccmctViewer.counts()")["drawn"]
    assert (drawn["tp"], drawn["fp"], drawn["fn"]) == (3, 1, case.n_gt - 3)
    page.select_option("#stage", "0")


def test_static_site_from_file_url(browser, static_site, viewer_case, tmp_path):
    stem = Path(viewer_case.slide).stem
    page, errors = _open(browser, (static_site / "slides" / f"{stem}.html").resolve().as_uri())
    check_slide_page(page, viewer_case)
    # screenshot of the whole slide: not blank, every overlay colour present
    page.evaluate("ccmctViewer.home()")
    page.wait_for_function("ccmctViewer.tilesLoaded()", timeout=60_000)
    png = page.screenshot()
    rgb = np.asarray(Image.open(BytesIO(png)).convert("RGB"))
    assert rgb.std() > 20  # tiles and overlays, not a blank page
    for layer in ("tp", "fp", "fn", "gt2", "zone"):
        assert colour_pixels(png, COLORS[layer]) > 30, layer
    page.evaluate("ccmctViewer.setLayer('tp', false)")
    assert page.evaluate("ccmctViewer.counts()")["drawn"]["tp"] == 0
    assert colour_pixels(page.screenshot(), COLORS["tp"]) < colour_pixels(png, COLORS["tp"])
    if os.environ.get("CCMCT_UPDATE_SCREENSHOT") == "1":
        save_readme_screenshot(png, REPO / "docs" / "images" / "viewer.png")
    assert errors == []
    page.close()


def save_readme_screenshot(png: bytes, target: Path, width: int = 880) -> None:
    """The README picture: the test's screenshot, scaled down, as a 256-colour PNG whose palette holds the
    overlay colours exactly (an adaptive palette alone would shift the thin marks' colours)."""
    image = Image.open(BytesIO(png)).convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    fixed = [int(c[i:i + 2], 16) for c in COLORS.values() for i in (1, 3, 5)]
    adaptive = image.quantize(256 - len(COLORS)).getpalette()[: 3 * (256 - len(COLORS))]
    palette = Image.new("P", (1, 1))
    palette.putpalette(fixed + adaptive)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    image.quantize(palette=palette, dither=Image.Dither.NONE).save(tmp, "PNG", optimize=True)
    os.replace(tmp, target)


def test_index_page_sorts_and_links(browser, static_site, viewer_case):
    page = browser.new_page(viewport=VIEWPORT)
    page.goto((static_site / "index.html").resolve().as_uri())
    names = page.eval_on_selector_all("tbody tr", "rows => rows.map(r => r.dataset.slide)")
    assert names == [viewer_case.slide, viewer_case.other]
    assert page.eval_on_selector_all("img.thumb", "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
    page.click("th:has-text('S1 F1')")  # ascending F1: the hand-made test slide (F1 0.11) before the other
    page.click("th:has-text('S1 F1')")  # descending
    names = page.eval_on_selector_all("tbody tr", "rows => rows.map(r => r.dataset.slide)")
    assert names == [viewer_case.other, viewer_case.slide]
    page.click(f"a[href='slides/{Path(viewer_case.slide).stem}.html']")
    page.wait_for_function(READY, timeout=60_000)
    assert page.evaluate("ccmctViewer.counts()")["drawn"]["tp"] == N_TP
    page.close()


def test_served_site(browser, viewer_case, tmp_path):
    """``ccmct view --serve --port 0``: the same pages, tiles rendered on demand by the server."""
    site = tmp_path / "served"
    command = [sys.executable, "-m", "ccmct.cli", "view", "--data-root", str(viewer_case.root),
               "--results", str(viewer_case.results), "--results", str(viewer_case.results2),
               "--threshold", str(THRESHOLD), "--out", str(site), "--serve", "--port", "0", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), (line, process.stderr.read() if process.poll() else "")
        base = line.split()[1].rsplit("/", 1)[0]
        assert not (site / "tiles").exists()
        page, errors = _open(browser, f"{base}/slides/{Path(viewer_case.slide).stem}.html")
        check_slide_page(page, viewer_case)
        png = page.screenshot()
        assert np.asarray(Image.open(BytesIO(png)).convert("RGB")).std() > 20
        assert errors == []
        page.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_many_detections_are_drawn_as_dots(browser, viewer_case, tmp_path):
    """Above 6,000 marks in view the page switches to one pixel buffer of dots; every mark is still drawn."""
    from ccmct.data.results import write_results
    from ccmct.viewer import ViewerPlan, build_site

    xs, ys = np.meshgrid(np.arange(40, 3160, 30.0), np.arange(40, 2520, 30.0))
    xy = np.column_stack([xs.ravel(), ys.ravel()])  # 30 px apart: distance NMS (25 px) keeps every one
    boxes = np.column_stack([xy - 25, xy + 25, np.full(len(xy), 2.0), np.full(len(xy), 0.9)])
    results = write_results(tmp_path / "grid.npz", {viewer_case.slide: boxes})
    site = tmp_path / "site"
    build_site(ViewerPlan(viewer_case.root, [results], site, db=viewer_case.db, thresholds=[0.5], progress=False))
    page, errors = _open(browser, (site / "slides" / f"{Path(viewer_case.slide).stem}.html").resolve().as_uri())
    counts = page.evaluate("ccmctViewer.counts()")
    assert counts["marks"]["tp"] + counts["marks"]["fp"] == len(xy) > 6000
    assert counts["drawn"]["tp"] + counts["drawn"]["fp"] == len(xy)
    for layer in ("gt2", "gt7", "gt1", "gt3", "fn", "tp"):
        page.evaluate(f"ccmctViewer.setLayer('{layer}', false)")
    png = page.screenshot()
    assert colour_pixels(png, COLORS["fp"], tolerance=10) > 4 * len(xy) // 2  # 2 x 2 px dots (some overlap)
    assert errors == []
    page.close()


def test_demo_site_opens(browser, viewer_case, tmp_path):
    """``write_demo_site`` (what ``ccmct demo`` writes as OUT/viewer): index -> first slide page, both stages."""
    from ccmct.viewer import write_demo_site

    out = tmp_path / "viewer"
    write_demo_site(viewer_case.root, {1: viewer_case.results, 2: viewer_case.results2}, {1: 0.5, 2: 0.5}, out,
                    progress=False)
    counts = site_opens(out, browser)
    assert counts["label"] == "stage 1: RetinaNet"
    assert counts["marks"] == {"tp": N_TP, "fp": N_FP, "fn": viewer_case.n_gt - N_TP}
