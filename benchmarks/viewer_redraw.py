"""``ccmct view``: overlay redraw time in headless Chromium with many detections on one slide.

Writes a synthetic ``tiny`` data root, a result file with ``--detections`` random detections (plus a
detection on every ground-truth mitosis) on its test slide, builds a static site, opens the slide page in
Debian's headless Chromium (Playwright, software rendering) and times, at the whole-slide view and at 1
screen px per level-0 px, ``--frames`` overlay redraws alone (``ccmctViewer.redraw()``) and ``--frames``
zoom steps (``ccmctViewer.zoomTo``: OpenSeadragon's viewport and tile drawing plus the overlay, i.e. the
work of one animation frame). Prints milliseconds per redraw / step; ``--json`` prints one JSON document.

    python benchmarks/viewer_redraw.py --detections 50000
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detections", type=int, default=50_000)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from ccmct.config.paths import DataRoot
    from ccmct.data.results import write_results
    from ccmct.synthetic import generate_dataset
    from ccmct.evaluation.ground_truth import load_ground_truth
    from ccmct.viewer import ViewerPlan, build_site

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate_dataset(tmp / "root", preset="tiny", seed=0, progress=False)
        root = DataRoot(tmp / "root")
        slide = sorted(root.test_slides())[0]
        gt = load_ground_truth(root.database("ODAEL"), slides=[slide])[slide]
        rng = np.random.default_rng(0)
        xy = np.concatenate([gt, rng.uniform([0, 0], [3200, 2560], size=(args.detections, 2))])
        boxes = np.column_stack([xy - 25, xy + 25, np.full(len(xy), 2.0), rng.uniform(0.5, 1.0, len(xy))])
        results = write_results(tmp / "many.npz", {slide: boxes})
        t0 = time.perf_counter()
        build_site(ViewerPlan(root.path, [results], tmp / "site", thresholds=[0.5], radius_l0=1.0, progress=False))
        build_s = time.perf_counter() - t0
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto((tmp / "site" / "slides" / f"{Path(slide).stem}.html").as_uri())
            page.wait_for_function("window.ccmctViewer && ccmctViewer.isOpen()", timeout=120_000)
            timings = {}
            for name, zoom in (("whole slide", None), ("1 px per level-0 px", 1.0)):
                script = f"""() => {{
                    const v = ccmctViewer; const z = {zoom if zoom else 'null'};
                    const base = z === null ? v.viewport().zoom : z;
                    v.zoomTo(base, 1600, 1280);
                    let overlay = 0;
                    for (let i = 0; i < {args.frames}; i++) overlay += v.redraw();
                    const t0 = performance.now();
                    for (let i = 0; i < {args.frames}; i++) v.zoomTo(base * (1 + 0.001 * (i % 2)), 1600, 1280);
                    return [overlay / {args.frames}, (performance.now() - t0) / {args.frames}, v.counts().drawn];
                }}"""
                overlay_ms, frame_ms, drawn = page.evaluate(script)
                timings[name] = {"overlay_ms": round(overlay_ms, 2), "zoom_step_ms": round(frame_ms, 2),
                                 "marks_drawn": drawn["tp"] + drawn["fp"] + drawn["fn"]}
            browser.close()
    document = {"detections": int(len(xy)), "frames": args.frames, "site_build_s": round(build_s, 1),
                "redraw": timings, "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}"}
    if args.json:
        print(json.dumps(document, indent=1))
    else:
        print(f"{document['detections']} detections; site built in {document['site_build_s']} s")
        for name, t in timings.items():
            print(f"  {name}: overlay {t['overlay_ms']} ms per redraw, zoom step (viewport + tiles + overlay) "
                  f"{t['zoom_step_ms']} ms ({t['marks_drawn']} marks drawn)")


if __name__ == "__main__":
    main()
