"""``ccmct notebooks``: execute every notebook in pipeline order (papermill), keeping the executed copies."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccmct.cli.common import (
    add_data_root,
    check_output,
    count,
    positive_float,
    refuse_real_data_root,
    require_data_root,
)

EPILOG = """examples:
  ccmct notebooks --data-root data --synthetic tiny --preset smoke --out nb_out   # minutes, any CPU
  ccmct notebooks --data-root /data/ccmct --preset paper --out runs                # real data, GPU
Executed notebooks land in OUT/notebooks/; models in OUT/models/, result files in OUT/results/,
Fig. 5 in OUT/figures/figure5.png (a study folder, as ccmct reproduce writes)."""


def register(subparsers) -> None:
    parser = subparsers.add_parser("notebooks", help="execute every notebook in pipeline order",
                                   description=__doc__, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_root(parser)
    parser.add_argument("--preset", choices=("smoke", "quick", "paper"), default="smoke",
                        help="training preset of every notebook (default smoke)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--synthetic", choices=("tiny", "demo", "large"), default=None,
                        help="let Setup.ipynb generate this synthetic preset into --data-root (default: none, "
                             "the data root must exist)")
    parser.add_argument("--hpf", type=positive_float, nargs="+", default=None,
                        help="HPF subset sizes (default 5 10 50; use small values like 0.5 1 on synthetic data)")
    parser.add_argument("--wsi", type=count(1), nargs="+", default=None, help="WSI subset sizes (default 3 6 12)")
    parser.add_argument("--ablation-subsets", nargs="+", default=None,
                        help="train only these ablation subsets, e.g. 10HPF 6WSI (default: all created)")
    parser.add_argument("--no-complete", action="store_true",
                        help="skip the ablation run on the complete data root")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from ccmct.notebooks import NotebookRun, run_notebooks

    if args.synthetic:  # Setup.ipynb writes the synthetic root: it is an output, not an input
        check_output(args.data_root, kind="dir", what="--data-root")
        refuse_real_data_root(args.data_root, "--data-root")
        check_output(args.out, reads=[args.data_root], kind="dir")
    else:
        require_data_root(args.data_root, databases=True)
        check_output(args.out, reads=[args.data_root], kind="dir")
    extra = {k: tuple(v) for k, v in (("hpf", args.hpf), ("wsi", args.wsi), ("ablation_subsets",
                                                                              args.ablation_subsets)) if v}
    run = NotebookRun(data_root=args.data_root, out_dir=args.out, preset=args.preset,
                      synthetic_preset=args.synthetic, include_complete=not args.no_complete, **extra)
    for path in run_notebooks(run):
        print(path)
    return 0
