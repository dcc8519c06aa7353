#!/usr/bin/env python
"""Second stage with the authors' arguments: ``results.p model_dir [imagePath]``.

    python 2nd_stage/Inference-CellClassifier.py results/RetinaNet-ODAEL-test.npz models/cls-ODAEL data/WSI

re-scores the first-stage detections in ``results`` (our ``.npz`` or the authors' ``.p.bz2``) with the cell
classifier in ``model_dir`` (``ccmct train-classifier``) and writes ``2ndstage_<results name>`` next to the
input. ``imagePath`` is the folder holding the slide files (default: ``$CCMCT_DATA_ROOT/WSI``, else
``data/WSI``). A thin shim over ``ccmct classify``, which has more options (--combine, --workers, ...).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if len(argv) not in (2, 3):
        print("usage: Inference-CellClassifier.py results model_dir [imagePath]  (see --help)", file=sys.stderr)
        return 2
    from ccmct.cli import main as ccmct_main
    from ccmct.config import DataRoot
    from ccmct.config.paths import default_data_root

    slide_dir = argv[2] if len(argv) == 3 else str(DataRoot(default_data_root()).wsi_dir)
    return ccmct_main(["classify", "--results", argv[0], "--model", argv[1], "--slide-dir", slide_dir])


if __name__ == "__main__":
    sys.exit(main())
