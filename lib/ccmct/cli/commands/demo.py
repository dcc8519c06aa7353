"""``ccmct demo``: the whole pipeline on synthetic data, with a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccmct.cli.common import add_json, print_json

EPILOG = """examples:
  ccmct demo                               # ./ccmct-demo: data, models, results, report.md, summary.json
  ccmct demo --out demo_out --preset smoke # seconds-scale check of the code path (not a useful detector)
A rerun reuses every finished step (delete a step's output to redo it)."""


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the whole pipeline on the synthetic data set",
                                   description=__doc__, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("ccmct-demo"), help="output folder (default ccmct-demo)")
    parser.add_argument("--preset", choices=("smoke", "quick", "paper"), default="quick",
                        help="training preset of both stages (default quick: ~20 min on a 2-core CPU)")
    parser.add_argument("--data-preset", choices=("tiny", "demo", "large"), default="demo",
                        help="synthetic data-set preset (default demo: 8 slides, 5 train / 3 test)")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="use this data root instead of generating OUT/data")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and training (default 0)")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader reader processes (default: auto)")
    add_json(parser)
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from ccmct.demo import DemoPlan, run_demo
    from ccmct.demo.report import markdown_table

    plan = DemoPlan(out_dir=args.out, preset=args.preset, data_preset=args.data_preset, seed=args.seed,
                    data_root=args.data_root, workers=args.workers)
    summary = run_demo(plan, progress=not args.json)
    if args.json:
        print_json(summary)
        return 0
    import pandas as pd

    for stage, rows in summary["table4"].items():
        print(f"\nTable 4, {stage} (paper F1; rows trained on, columns tested on):")
        print(markdown_table(pd.DataFrame(rows).T.rename_axis("train")))
    print(f"\nchecks: {summary['checks']}")
    print(f"report: {args.out / 'report.md'}")
    return 0
