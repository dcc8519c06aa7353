"""``ccmct synth``: write a synthetic data root (slides + databases + split) laid out like the real one."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  ccmct synth --out data/tiny                      # CI size: 4 slides of 3200 x 2560 px, seconds
  ccmct synth --out data/demo --preset demo        # 8 slides of 6400 x 4800 px (5 train / 3 test)
  ccmct synth --out data/large --preset large      # 3 slides of 40000 x 30000 px, for inference benchmarks
  ccmct synth --out data/demo --preset demo --seed 3 --json   # print counts per slide, class and variant
"""


def register(subparsers) -> None:
    from ccmct.cli.common import add_json, add_seed, positive_float

    parser = subparsers.add_parser(
        "synth", help="write a synthetic data root (slides, MEL/HEAEL/ODAEL/Tumorzone/HighMCAreas databases)",
        description="Write a synthetic miniature of the MITOS_WSI_CCMCT data set: Aperio-style .svs slides, the "
                    "five SlideRunner databases in the real schema and a split.json. The same seed gives the "
                    "same pixels and annotations; an interrupted run resumes (finished slides are kept).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="data root to create (WSI/, databases/, split.json)")
    parser.add_argument("--preset", choices=("tiny", "demo", "large"), default="tiny",
                        help="size: tiny (4 slides of 0.8 x 0.64 mm), demo (8 slides of 1.6 x 1.2 mm), "
                             "large (3 slides of 10 x 7.5 mm); default tiny")
    add_seed(parser, help="random seed (>= 0); default 0")
    parser.add_argument("--mpp", type=positive_float, default=0.25,
                        help="µm per level-0 pixel written into the slides (sizes stay physical); default 0.25")
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ccmct.cli.common import check_output, print_json, refuse_real_data_root
    from ccmct.synthetic import generate_dataset

    check_output(args.out, kind="dir")
    refuse_real_data_root(args.out)
    report = generate_dataset(args.out, preset=args.preset, seed=args.seed, mpp=args.mpp, progress=True)
    if args.json:
        print_json(report)
        return 0
    print(f"wrote {len(report['slides'])} slides to {args.out} (preset {args.preset}, seed {args.seed}, "
          f"mpp {args.mpp})")
    print(f"{'slide':26s} {'split':5s} {'size':>13s}  {'MF O/H/M':>14s} {'look-alikes O/H':>16s}")
    for name, info in report["slides"].items():
        c = info["counts"]
        mf = "/".join(str(c[v][2]) for v in ("ODAEL", "HEAEL", "MEL"))
        la = "/".join(str(c[v][7]) for v in ("ODAEL", "HEAEL"))
        print(f"{name:26s} {info['split']:5s} {info['width']:>6d}x{info['height']:<6d}  {mf:>14s} {la:>16s}")
    return 0
