"""``ccmct export``: a SlideRunner database as MS COCO or QuPath-compatible GeoJSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccmct.cli.common import add_json, check_output, one_line_warnings, positive_float, print_json, probability

EPILOG = """examples:
  ccmct export --db data/databases/MITOS_WSI_CCMCT_ODAEL.sqlite --format coco --out odael_coco.json
  ccmct export --db data/databases/MITOS_WSI_CCMCT_ODAEL.sqlite --format geojson \\
               --slide be10fa37ad6e88e1f406.svs --out be10fa37ad6e88e1f406.geojson   (drag into QuPath)
  ccmct export --results results/RetinaNet-ODAEL-test.npz --db data/databases/MITOS_WSI_CCMCT_ODAEL.sqlite \
               --threshold 0.62 --format geojson --slide be10fa37ad6e88e1f406.svs --out be10_eval.geojson
               (evaluated detections: QuPath detection objects classified TP / FP / FN, score as a measurement)
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a SlideRunner database as MS COCO or GeoJSON (QuPath)",
        description="COCO: bbox [x, y, w, h] in level-0 px, spots as square boxes of --box-size px. GeoJSON: "
                    "points for spots, polygons for rectangles/polygons, class name as classification, "
                    "properties.slide names the slide (QuPath: export one slide per file with --slide).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="SlideRunner database (.sqlite)")
    parser.add_argument("--format", choices=("coco", "geojson"), required=True, help="output format")
    parser.add_argument("--out", type=Path, required=True, help="output file (written atomically)")
    parser.add_argument("--box-size", type=positive_float, default=50.0,
                        help="COCO box side around a spot, level-0 px (default 50, the authors' 2 x 25 px)")
    parser.add_argument("--wsi-dir", type=Path, default=None,
                        help="COCO: folder of the slide files for image sizes missing from the database "
                             "(default: ../WSI next to the database's folder)")
    parser.add_argument("--slide", default=None,
                        help="GeoJSON: export only this slide (file name); default: every slide")
    parser.add_argument("--results", type=Path, default=None,
                        help="GeoJSON: export these detections (result file) evaluated against --db instead of the "
                             "database's annotations: QuPath detection objects classified TP / FP / FN")
    parser.add_argument("--threshold", type=probability, default=None,
                        help="with --results: detection threshold in [0, 1] (score > T is kept)")
    parser.add_argument("--matching", choices=("paper", "strict"), default="paper",
                        help="with --results: TP/FP/FN rule, as in ccmct evaluate (default paper)")
    parser.add_argument("--shape", choices=("point", "box"), default="point",
                        help="with --results: a point per object, or a --box-size square (default point)")
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with one_line_warnings("export"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ccmct.data.export import export_coco, export_geojson

    check_output(args.out, reads=[args.db, args.wsi_dir, args.results])
    if args.results is not None:
        document = _export_evaluated(args)
        summary = {"out": str(args.out), "format": "geojson", "features": len(document["features"]),
                   **{k: sum(f["properties"]["classification"]["name"] == k for f in document["features"])
                      for k in ("TP", "FP", "FN")}}
    elif args.format == "coco":
        document = export_coco(args.db, args.out, box_size_l0=args.box_size, wsi_dir=args.wsi_dir)
        summary = {"out": str(args.out), "format": "coco", "images": len(document["images"]),
                   "categories": len(document["categories"]), "annotations": len(document["annotations"])}
    else:
        document = export_geojson(args.db, args.out, slide=args.slide)
        summary = {"out": str(args.out), "format": "geojson", "features": len(document["features"])}
    if args.json:
        print_json(summary)
    else:
        print(", ".join(f"{k}: {v}" for k, v in summary.items()))
    return 0


def _export_evaluated(args: argparse.Namespace) -> dict:
    """``--results``: detections at ``--threshold`` marked TP / FP and missed ground truth FN (QuPath GeoJSON)."""
    from ccmct.data.export import export_detections_geojson
    from ccmct.data.results import read_results
    from ccmct.errors import CcmctError
    from ccmct.evaluation.marks import marks_by_slide, outcome_table

    if args.format != "geojson":
        raise CcmctError("--results exports QuPath detection objects: use --format geojson")
    if args.threshold is None:
        raise CcmctError("--results needs --threshold T (the detection threshold, e.g. from ccmct evaluate --optimize)")
    results = read_results(args.results)
    if args.slide is not None:
        if args.slide not in results:
            raise CcmctError(f"{args.results}: slide {args.slide!r} is not in the result file")
        results = {args.slide: results[args.slide]}
    marks = marks_by_slide(args.db, results, threshold=args.threshold, matching=args.matching)
    return export_detections_geojson({name: outcome_table(m) for name, m in marks.items()}, args.out,
                                     shape=args.shape, box_size_l0=args.box_size)
