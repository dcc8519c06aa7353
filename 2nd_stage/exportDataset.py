#!/usr/bin/env python
"""Export the second stage's cell patches as PNG files in the authors' folder layout.

    python 2nd_stage/exportDataset.py --variant ODAEL --data-root data --out DataODAEL

writes ``<out>/{train,test}/{Mitosis,Mitosislike,Granulocytes,Tumorcells}/<annotation id>.png``: a 128 x 128 px
level-0 patch centred on every mitotic figure, look-alike, granulocyte and tumor-cell annotation of the
variant's database (ambiguous/other cells are not exported), split by the data root's train/test split.
Patches that reach outside a slide are padded with white. An interrupted export resumes (existing files
are kept).

One script for the three variants (the authors had exportDataset_{MEL,HEAEL,ODAEL}.py). Training does not
need these files: ``ccmct train-classifier`` reads the patches straight from the slides. A thin shim over
:func:`ccmct.sampling.cells.export_patches`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: python 2nd_stage/exportDataset.py --variant ODAEL "
                                            "--data-root data --out DataODAEL")
    parser.add_argument("--variant", choices=("MEL", "HEAEL", "ODAEL"), required=True,
                        help="label set (database) whose annotations are exported")
    parser.add_argument("--data-root", type=Path, required=True, help="data root holding WSI/ and databases/")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--size", type=int, default=128, help="patch side in level-0 px (default 128)")
    args = parser.parse_args(argv)

    from ccmct.errors import CcmctError
    from ccmct.sampling.cells import cell_table, export_patches

    try:
        counts = export_patches(cell_table(args.data_root, args.variant), args.data_root, args.out,
                                size_px=args.size)
    except CcmctError as err:
        print(f"exportDataset: error: {err}", file=sys.stderr)
        return 2
    for key in sorted(counts):
        print(f"{key}: {counts[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
