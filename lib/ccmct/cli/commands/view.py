"""``ccmct view``: a zoomable whole-slide viewer site with ground truth, detections and the hotspot."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ccmct.cli.common import (
    add_data_root,
    add_json,
    count,
    positive_float,
    print_json,
    probability_below_one,
)

EPILOG = """examples:
  ccmct view --data-root data --results results/RetinaNet-ODAEL-test.npz \\
             --results results/2ndstage_RetinaNet-ODAEL-test.npz --threshold 0.5 --out site
             # then open site/index.html in a browser (works from the file system)
  ccmct view --data-root data --results results/RetinaNet-ODAEL-test.npz \\
             --optimize-on results/RetinaNet-ODAEL-train.npz --out site --serve --port 8000
             # tiles rendered on demand: no tile folder for real 100k x 80k px slides
  ccmct view ... --slides be10fa37ad6e88e1f406.svs --region be10fa37ad6e88e1f406.svs:40000,20000,8000,6000 --out site

Static mode writes a Deep Zoom JPEG pyramid per slide (resumable; measured sizes in docs/viewer.md) and
refuses a build whose estimate exceeds --max-gb. Colours: TP green,
FP red, FN (missed) dashed blue; keys N / Shift+N next / previous FN, P / Shift+P FP, S stage, H home."""

_REGION = re.compile(r"^(?:(?P<slide>.+):)?(?P<x>\d+),(?P<y>\d+),(?P<w>\d+),(?P<h>\d+)$")


def _region(text: str):
    match = _REGION.match(text.strip())
    if not match or int(match["w"]) == 0 or int(match["h"]) == 0:
        raise argparse.ArgumentTypeError(f"expected [SLIDE:]X,Y,W,H in level-0 px (W, H > 0), got {text!r}")
    from ccmct.viewer.tiles import Region

    return match["slide"], Region(int(match["x"]), int(match["y"]), int(match["w"]), int(match["h"]))


def _port(text: str) -> int:
    """argparse ``type=``: a TCP port 0..65535 (0 = any free port)."""
    value = count(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port 0..65535, got {text!r}")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "view", help="build a browser viewer of slides with ground truth, detections (TP/FP/FN) and hotspots",
        description=__doc__ + " An index page (one row per slide, sortable) and one OpenSeadragon page per "
                              "slide; opens from the file system, or served with --serve.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_root(parser)
    parser.add_argument("--results", type=Path, action="append", required=True, metavar="FILE",
                        help="result file (.npz or .p.bz2); repeat for stage 1 and stage 2")
    parser.add_argument("--db", type=Path, default=None,
                        help="label database with the ground truth (default: the data root's ODAEL database)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--threshold", type=float, nargs="+", metavar="T",
                      help="detection threshold in [0, 1] (score > T is kept): one, or one per --results")
    mode.add_argument("--optimize-on", type=Path, nargs="+", metavar="TRAIN_RESULTS",
                      help="choose each threshold on training results (one per --results), as "
                           "ccmct evaluate --optimize")
    parser.add_argument("--min-threshold", type=probability_below_one, default=0.5,
                        help="with --optimize-on: lowest threshold tried (default 0.5)")
    parser.add_argument("--slides", nargs="+", default=None, metavar="NAME",
                        help="only these slides (file names; default every slide of the result files)")
    parser.add_argument("--out", type=Path, required=True, help="site folder (index.html inside)")
    parser.add_argument("--serve", action="store_true",
                        help="serve the site on 127.0.0.1 with tiles rendered on demand (no tile folder)")
    parser.add_argument("--port", type=_port, default=8000, help="with --serve: port (default 8000; 0 = any)")
    parser.add_argument("--region", type=_region, action="append", default=[], metavar="[SLIDE:]X,Y,W,H",
                        help="static tiles only for this level-0 rectangle (repeatable; without SLIDE: every "
                             "slide); the page opens on it")
    parser.add_argument("--max-gb", type=positive_float, default=10.0,
                        help="refuse a static build whose estimated tiles exceed this (default 10 GB)")
    parser.add_argument("--workers", type=count(1), default=2, help="tile-writer threads (default 2)")
    parser.add_argument("--matching", choices=["paper", "strict"], default="paper",
                        help="TP/FP/FN rule, as in ccmct evaluate (default paper)")
    parser.add_argument("--radius", type=positive_float, default=None,
                        help="match and NMS radius in level-0 px (default 25, the paper's)")
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ccmct.config.dataset import DETECTION_RADIUS_L0
    from ccmct.viewer import ViewerPlan, build_site

    regions: dict = {}
    for slide, region in args.region:
        regions.setdefault(slide, []).append(region)
    plan = ViewerPlan(
        data_root=args.data_root, results=list(args.results), out=args.out, db=args.db,
        thresholds=args.threshold, optimize_on=args.optimize_on, min_threshold=args.min_threshold,
        slides=args.slides, tiles="served" if args.serve else "static", regions=regions, max_gb=args.max_gb,
        workers=max(1, args.workers), matching=args.matching,
        radius_l0=DETECTION_RADIUS_L0 if args.radius is None else args.radius, progress=not args.json)
    manifest = build_site(plan)
    summary = {"out": str(args.out), "index": str(Path(args.out) / "index.html"), "tiles": manifest["tiles"],
               "slides": len(manifest["slides"]), "overall": manifest["overall"]}
    if args.json and not args.serve:
        print_json(summary)
    elif not args.serve:
        print(f"wrote {summary['index']} ({summary['slides']} slides, {manifest['tiles']} tiles); "
              + "; ".join(f"{o['label']}: T={o['threshold']:.2f} F1 {o['f1']}" for o in manifest["overall"]))
    if args.serve:
        from ccmct.viewer.server import serve

        try:
            serve(args.out, port=args.port, announce=lambda line: print(line, flush=True))
        except KeyboardInterrupt:
            print("stopped", flush=True)
        except OSError as err:
            from ccmct.errors import CcmctError

            raise CcmctError(f"--port {args.port}: cannot listen on 127.0.0.1 ({err.strerror})") from err
    return 0
