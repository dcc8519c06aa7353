"""``ccmct ablation hpf|wsi|run``: the ablation study's subsets and runs (paper Fig. 5, Table 5)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccmct.cli.common import (
    add_data_root,
    add_device,
    add_json,
    add_preset,
    add_seed,
    check_output,
    count,
    positive_float,
    print_json,
    require_data_root,
    require_folder,
)
from ccmct.types import VARIANTS

_EPILOG = """examples:
  ccmct ablation hpf --data-root data --hpf 5 10 50 --out ablation
  ccmct ablation hpf --data-root data --hpf 10 --anchor top-left --out ablation_authors
  ccmct ablation wsi --data-root data --wsi 3 6 12 --out ablation
  ccmct ablation run --subsets-dir ablation --data-root data --preset quick --out ablation_runs
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ablation", help="ablation study: HPF / WSI subsets and one training run per subset",
        description="Create the ablation subsets of a data root (each one a data root itself) and train + "
                    "evaluate the dual-stage detector on each (AblationStudy/Ablation-Train.ipynb).",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="ablation_command", metavar="SUBCOMMAND", required=True)
    _register_hpf(sub)
    _register_wsi(sub)
    _register_run(sub)


def _add_variants(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variants", nargs="+", default=["ODAEL"], choices=VARIANTS,
                        help="label databases to put into each subset (those present); default ODAEL as in the paper")


def _register_hpf(sub) -> None:
    p = sub.add_parser("hpf", help="n-HPF crops around the expert's high-MC rectangle (writes OUT/<n>HPF/)",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_root(p)
    p.add_argument("--hpf", nargs="+", type=positive_float, default=[5, 10, 50],
                   help="numbers of high-power fields (0.237 mm² each, aspect 4:3); default 5 10 50")
    p.add_argument("--out", type=Path, required=True, help="folder that receives one data root per subset")
    p.add_argument("--anchor", choices=["centre", "top-left"], default="centre",
                   help="centre: crop centred on the rectangle (paper, default); top-left: crop starts at the "
                        "rectangle's top-left corner (the authors' create_HPFsubsets.py)")
    p.add_argument("--compression", choices=["jpeg", "zlib"], default="jpeg",
                   help="crop tiles: jpeg q90 (default, like the authors' pyramids) or zlib (exact pixels)")
    p.add_argument("--mpp", type=positive_float, default=None,
                   help="µm per level-0 px for slides that record none (default: the slide's own mpp-x)")
    _add_variants(p)
    add_json(p)
    p.set_defaults(func=_run_hpf)


def _register_wsi(sub) -> None:
    p = sub.add_parser("wsi", help="databases keeping n training WSIs (writes OUT/<n>WSI/, WSI/ linked)",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_root(p)
    p.add_argument("--wsi", nargs="+", type=count(1), default=[3, 6, 12],
                   help="numbers of training slides to keep (test slides always kept); default 3 6 12")
    p.add_argument("--out", type=Path, required=True, help="folder that receives one data root per subset")
    add_seed(p, help="removal-order seed (>= 0) for roots other than the paper's 21 training slides; default 0")
    _add_variants(p)
    add_json(p)
    p.set_defaults(func=_run_wsi)


def _register_run(sub) -> None:
    p = sub.add_parser("run", help="run AblationStudy/Ablation-Train.ipynb once per subset (papermill)",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subsets-dir", type=Path, required=True, help="folder made by `ccmct ablation hpf|wsi`")
    add_data_root(p)
    p.add_argument("--out", type=Path, required=True,
                   help="runs folder: <out>/<subset>/ gets models, result files, summary.json, executed notebook")
    add_preset(p, default="quick")
    p.add_argument("--subsets", nargs="+", default=None, help="only these subsets (e.g. 5HPF 3WSI); default all")
    p.add_argument("--no-complete", action="store_true",
                   help="skip the reference run on the complete data root (default: run it as 'complete')")
    p.add_argument("--notebook", type=Path, default=None,
                   help="training notebook (default: AblationStudy/Ablation-Train.ipynb of this checkout)")
    p.add_argument("--variant", choices=VARIANTS, default="ODAEL",
                   help="label set to train on; default ODAEL (the paper's ablation)")
    add_device(p)
    p.add_argument("--workers", type=count(0), default=0, help="reader processes for inference; default 0")
    add_json(p)
    p.set_defaults(func=_run_run)


def _run_hpf(args) -> int:
    from ccmct.data.subsets_hpf import create_hpf_subsets

    require_data_root(args.data_root, databases=True)
    check_output(args.out, reads=[args.data_root], kind="dir")
    manifests = create_hpf_subsets(args.data_root, args.out, args.hpf, anchor=args.anchor, variants=args.variants,
                                   compression=args.compression, mpp=args.mpp, progress=not args.json)
    return _report(args, manifests)


def _run_wsi(args) -> int:
    from ccmct.data.subsets_wsi import create_wsi_subsets

    require_data_root(args.data_root, databases=True)
    check_output(args.out, reads=[args.data_root], kind="dir")
    manifests = create_wsi_subsets(args.data_root, args.out, args.wsi, variants=args.variants, seed=args.seed)
    return _report(args, manifests)


def _report(args, manifests: dict) -> int:
    if args.json:
        print_json({name: {k: v for k, v in m.items() if k != "slides"} for name, m in manifests.items()})
        return 0
    for name, m in manifests.items():
        line = f"{name}: {m['n_train_slides']} training slide(s), {m['train_mitoses']} training mitotic figures"
        if m["kind"] == "hpf":
            line += f", {m['train_area_mm2']:.2f} mm² training area"
            if m["adjusted"]:
                line += f"; crops shifted/cut to stay inside the slide: {', '.join(m['adjusted'])}"
        elif m["capped"]:
            line += f" (capped: the root has only {m['n_train_slides']})"
        print(line)
    return 0


def _run_run(args) -> int:
    from ccmct.pipeline.ablation import run_ablation

    require_folder(args.subsets_dir, "--subsets-dir")
    require_data_root(args.data_root, slides=True, databases=True)
    check_output(args.out, reads=[args.subsets_dir, args.data_root, args.notebook], kind="dir")
    summaries = run_ablation(args.subsets_dir, args.out, full_root=args.data_root, preset=args.preset,
                             subsets=args.subsets, include_complete=not args.no_complete,
                             notebook=args.notebook, variant=args.variant, progress=not args.json,
                             extra_parameters={"device": args.device, "workers": args.workers})
    if args.json:
        print_json(summaries)
    else:
        for name, s in summaries.items():
            print(f"{name}: dual-stage test F1 {_f1(s['test']['stage2'])} (stage 1 {_f1(s['test']['stage1'])})")
    return 0


def _f1(counts: dict) -> str:
    return "undefined (no detections)" if counts["f1"] is None else f"{counts['f1']:.4f}"
