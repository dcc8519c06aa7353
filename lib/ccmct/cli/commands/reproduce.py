"""``ccmct reproduce``: the paper's whole study in one resumable command (plan, steps, report.md + summary.json)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccmct.cli.common import (
    add_data_root,
    add_device,
    add_json,
    check_output,
    count,
    positive_float,
    print_json,
    require_data_root,
)
from ccmct.types import VARIANTS

EPILOG = """examples:
  ccmct reproduce --data-root /data/ccmct --preset paper --out study --ablation --dry-run   # the plan only
  ccmct reproduce --data-root /data/ccmct --preset paper --out study --ablation             # overnight, GPU
  torchrun --nproc_per_node=4 --no-python ccmct reproduce --data-root /data/ccmct --preset paper --out study
      # training and inference steps shared by the 4 ranks; rank 0 writes the other steps and the report
  ccmct reproduce --data-root tiny --preset smoke --out study --ablation --hpf 0.5 --wsi 1   # code-path check
  ccmct reproduce --data-root /data/ccmct --preset paper --out study --fast   # + the fast row (docs/fast_mode.md)
The plan comes first: every step, whether it is done, its planned work and an estimated time from a short
measured probe on this machine's device (an estimate). A rerun skips every finished step."""


def register(subparsers) -> None:
    parser = subparsers.add_parser("reproduce", help="the paper's whole study: train, infer, evaluate, report",
                                   description=__doc__, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_root(parser)
    parser.add_argument("--preset", choices=("smoke", "quick", "paper"), default="paper",
                        help="training preset of both stages (default paper, the authors' schedule)")
    parser.add_argument("--out", type=Path, required=True, help="study folder (models/, results/, report.md, ...)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                        help="label sets both stages are trained on (default MEL HEAEL ODAEL: Table 4)")
    parser.add_argument("--ablation", action="store_true",
                        help="also the ablation study: subsets, one run each, Fig. 5 and Table 5")
    parser.add_argument("--hpf", type=positive_float, nargs="+", default=[5, 10, 50],
                        help="HPF ablation subset sizes (default 5 10 50, the paper's)")
    parser.add_argument("--wsi", type=count(1), nargs="+", default=[3, 6, 12],
                        help="WSI ablation subset sizes (default 3 6 12, the paper's)")
    parser.add_argument("--no-complete", action="store_true", help="skip the ablation run on the complete root")
    parser.add_argument("--seeds", type=count(0), nargs="+", default=[0], metavar="S",
                        help="training seeds (default 0); the first one's results fill the report")
    parser.add_argument("--fast", action="store_true",
                        help="also the fast mode per label set (a candidate model at 4x reduced resolution, "
                             "confirmed by that label set's cell classifier): one more Table 4 row, its paired "
                             "difference to stage 2, candidate recall and speed-up; planned with the probe's "
                             "estimate (opt-in, docs/fast_mode.md)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit without writing anything")
    add_device(parser)
    parser.add_argument("--workers", type=count(0), default=None, help="reader processes (default: the preset's)")
    add_json(parser)
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from ccmct.errors import CcmctError
    from ccmct.pipeline import Study
    from ccmct.pipeline.reproduce import format_plan, plan_study, probe_device, run_study

    require_data_root(args.data_root, databases=True, slides=not args.dry_run)
    check_output(args.out, reads=[args.data_root], kind="dir")
    if len(set(args.seeds)) != len(args.seeds):
        raise CcmctError(f"--seeds: a seed repeats ({' '.join(map(str, args.seeds))})")
    study = Study(out_dir=args.out, data_root=args.data_root, preset=args.preset, variants=tuple(args.variants),
                  seed=args.seeds[0], seeds=tuple(args.seeds), workers=args.workers, device=args.device,
                  ablation=args.ablation, hpf=tuple(args.hpf), wsi=tuple(args.wsi),
                  include_complete=not args.no_complete, fast=args.fast)
    from ccmct.training.distributed import init_distributed

    is_main = init_distributed().is_main  # under torchrun every rank runs this command; rank 0 prints
    probe = probe_device(study)
    rows = plan_study(study, probe=probe)
    if args.json and args.dry_run:
        if is_main:
            print_json({"plan": rows, "probe": probe.__dict__})
        return 0
    if not args.json and is_main:
        print(format_plan(study, rows, probe), flush=True)
    if args.dry_run:
        return 0
    if args.json:  # stdout carries one JSON document: the training loggers' rows go to stderr
        import contextlib
        import sys

        with contextlib.redirect_stdout(sys.stderr):
            summary = run_study(study, progress=False)
        if is_main:
            print_json(summary)
    else:
        run_study(study, progress=is_main)
        if is_main:
            print(f"report: {study.layout.report}")
    return 0
