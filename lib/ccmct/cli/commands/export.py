"""``ccmct export``: a SlideRunner database as MS COCO or QuPath-compatible GeoJSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccmct.cli.common import add_json, check_output, one_line_warnings, positive_float, print_json

EPILOG = """examples:
  ccmct export --db data/databases/MITOS_WSI_CCMCT_ODAEL.sqlite --format coco --out odael_coco.json
  ccmct export --db data/databases/MITOS_WSI_CCMCT_ODAEL.sqlite --format geojson \\
               --slide be10fa37ad6e88e1f406.svs --out be10fa37ad6e88e1f406.geojson   (drag into QuPath)
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
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with one_line_warnings("export"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ccmct.data.export import export_coco, export_geojson

    check_output(args.out, reads=[args.db, args.wsi_dir])
    if args.format == "coco":
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
