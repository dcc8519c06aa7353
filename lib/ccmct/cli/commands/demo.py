"""``ccmct demo``: the whole pipeline on synthetic data, with a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccmct.cli.common import add_json, check_output, count, print_json, require_data_root

EPILOG = """examples:
  ccmct demo                               # ./ccmct-demo: data, models, results, report.md, summary.json
  ccmct demo --out demo_out --preset smoke # seconds-scale check of the code path (not a useful detector)
  ccmct demo --seeds 0 1 2                 # one data set, both stages trained with 3 seeds: mean ± sd,
                                           # paired intervals of the paper's effects (seed 0 = the folder
                                           # of a single-seed demo; seeds 1, 2 in OUT/seeds/seed-<s>/)
  ccmct demo --fast                        # + the fast mode (docs/fast_mode.md): Table 4's fast row, its
                                           # paired difference to stage 2, candidate recall, speed-up
A rerun reuses every finished step (delete a step's output to redo it); a result file whose metadata lists
failed or pending slides is an unfinished step and runs again."""


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the whole pipeline on the synthetic data set",
                                   description=__doc__, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("ccmct-demo"), help="output folder (default ccmct-demo)")
    parser.add_argument("--preset", choices=("smoke", "quick", "paper"), default="quick",
                        help="training preset of both stages (default quick: ~20 min on a 2-core CPU)")
    parser.add_argument("--data-preset", choices=("tiny", "demo", "large"), default="demo",
                        help="synthetic data-set preset (default demo: 9 slides, 5 train / 4 test, one test "
                             "slide several 10-HPF windows large)")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="use this data root instead of generating OUT/data")
    parser.add_argument("--seed", type=count(0), default=0,
                        help="seed of the data (and of training when --seeds is not given; default 0)")
    parser.add_argument("--seeds", type=count(0), nargs="+", default=None, metavar="S",
                        help="training seeds: the training / inference steps run once per seed on the one data "
                             "set; summary.json gains per_seed, table4_mean, table4_sd and effects")
    parser.add_argument("--workers", type=count(0), default=None, help="DataLoader reader processes (default: auto)")
    parser.add_argument("--fast", action="store_true",
                        help="also the fast mode per label set (a candidate model at 4x reduced resolution, "
                             "confirmed by the cell classifier): one more Table 4 row, its paired difference to "
                             "stage 2, candidate recall and speed-up. Opt-in: about 5 more minutes per seed with "
                             "the quick preset on a 2-core CPU (docs/fast_mode.md)")
    add_json(parser)
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from ccmct.demo import DemoPlan, run_demo
    from ccmct.demo.report import markdown_table

    from ccmct.errors import CcmctError

    if args.data_root is not None:
        require_data_root(args.data_root, slides=True, databases=True)
    check_output(args.out, reads=[args.data_root], kind="dir")
    if args.seeds and len(set(args.seeds)) != len(args.seeds):
        raise CcmctError(f"--seeds: a seed repeats ({' '.join(map(str, args.seeds))})")
    plan = DemoPlan(out_dir=args.out, preset=args.preset, data_preset=args.data_preset, seed=args.seed,
                    data_root=args.data_root, workers=args.workers, seeds=tuple(args.seeds or ()), fast=args.fast)
    if args.json:  # stdout carries the one JSON document: the training loggers' epoch rows go to stderr
        import contextlib
        import sys

        with contextlib.redirect_stdout(sys.stderr):
            summary = run_demo(plan, progress=False)
    else:
        summary = run_demo(plan, progress=True)
    if args.json:
        print_json(summary)
        return 0
    import pandas as pd

    several = len(summary["seeds"]) > 1
    table, what = (summary["table4_mean"], f"mean over seeds {summary['seeds']}") if several else (
        summary["table4"], f"seed {summary['seeds'][0]}")
    for stage, rows in table.items():
        print(f"\nTable 4, {stage} (paper F1, {what}; rows trained on, columns tested on):")
        print(markdown_table(pd.DataFrame(rows).T.rename_axis("train")))
    for e in summary["effects"]:
        lo, hi = e["delta_f1_ci"]
        interval = f"[{lo:+.3f}, {hi:+.3f}]" if lo is not None else "[undefined]"
        delta = f"{e['delta_f1']:+.3f}" if e["delta_f1"] is not None else "undefined"
        print(f"{e['effect']}: {delta} {interval} -> {e['verdict']}")
    for seed, files in summary["failed_slides"].items():
        for file, slides in files.items():
            print(f"NOT EVALUATED (seed {seed}, {file}): " + "; ".join(f"{n}: {r}" for n, r in slides.items()))
    fast = summary.get("fast") or {}
    if fast:
        lo, hi = fast["delta_f1_ci"]
        interval = f"[{lo:+.3f}, {hi:+.3f}]" if lo is not None else "[undefined]"
        delta = f"{fast['delta_f1']:+.3f}" if fast["delta_f1"] is not None else "undefined"
        recall = "undefined" if fast["candidate_recall"] is None else f"{fast['candidate_recall']:.1%}"
        speed = "untimed" if fast["wall_ratio"] is None else f"{fast['wall_ratio']:.1f}x"
        print(f"fast vs stage 2 ({fast['variant']}-trained, {fast['test']} labels): {delta} {interval}; "
              f"candidate recall {recall}; speed-up on the test slides {speed}")
    print(f"\nchecks: {summary['checks']}")
    print(f"report: {args.out / 'report.md'}")
    return 0
