"""``ccmct stats``: Table 1 (per slide) and the Table 6 totals of a data root."""

from __future__ import annotations

import argparse

from ccmct.cli.common import add_data_root, add_json, one_line_warnings, positive_float, print_json, require_data_root

EPILOG = """examples:
  ccmct stats --data-root data                       slides' own MPP, counts from every database present
  ccmct stats --data-root data --mpp 0.2533 --json   without slide files (MPP implied by the paper's HPF sizes)
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "stats", help="Table 1: per-slide counts and tumor area from whatever databases are present",
        description="Per slide: split, mitotic figures / look-alikes / granulocytes / tumor cells in each variant "
                    "database present (MEL, HEAEL, ODAEL) and the tumor area in mm² from the tumor-zone database "
                    "(tumor polygons minus necrosis / blurry / non-tumor polygons); then totals by split.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_root(parser)
    parser.add_argument("--mpp", type=positive_float, default=None,
                        help="µm per level-0 pixel for the tumor area; overrides the slides' own and is required "
                             "when the slide files are not in DATA_ROOT/WSI (default: read from each slide)")
    parser.add_argument("--downsample", type=positive_float, default=None,
                        help="level-0 px per raster px for the tumor area when a slide file is absent "
                             "(default 32; with the file: its lowest pyramid level, as the authors did)")
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with one_line_warnings("stats"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import pandas as pd

    from ccmct.data.stats import TUMOR_AREA_DOWNSAMPLE, table1, table1_totals

    require_data_root(args.data_root, databases=True)
    downsample = args.downsample or TUMOR_AREA_DOWNSAMPLE
    table = table1(args.data_root, mpp=args.mpp, downsample=downsample)
    if args.json:
        rows = table.astype(object).where(table.notna(), None).to_dict(orient="records")
        print_json(rows)
        return 0
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_columns", None):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        print()
        print(table1_totals(table).to_string(float_format=lambda v: f"{v:.2f}"))
    return 0
