"""``ccmct train``: train the first-stage RetinaNet detector on a data root (paper's stage 1)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccmct.cli.common import (
    add_data_root,
    add_json,
    add_preset,
    add_seed,
    add_variant,
    check_output,
    count,
    print_json,
    require_data_root,
)

_EPILOG = """examples:
  ccmct train --data-root data --variant ODAEL --preset paper --pretrained --out models/RetinaNet-ODAEL
  ccmct train --data-root demo --variant MEL --preset quick --out models/RetinaNet-MEL
  ccmct train --data-root demo --variant ODAEL --preset smoke --out /tmp/m --json
  torchrun --nproc_per_node=2 -m ccmct.cli train --data-root data --variant ODAEL --preset paper --out M
  ccmct train --model candidate --data-root data --variant ODAEL --preset quick --out models/Candidate-ODAEL

Running again with the same --out resumes an interrupted run from OUT/checkpoint/ (a finished run is not
trained again). The model directory holds weights.pt (state dict), config.json and training.json.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train the RetinaNet detector (stage 1) and write a model directory",
        description="Train the ResNet-18 RetinaNet on 256 px patches drawn 50/40/10 (mitotic figure / "
                    "look-alike, or for MEL ambiguous cell / random tissue) from the upper halves of the "
                    "training slides; validation on the lower halves. Test slides are never read.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_root(parser)
    add_variant(parser)
    add_preset(parser)
    parser.add_argument("--out", type=Path, required=True, help="model directory to write (created)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--pretrained", action="store_true",
                         help="start the backbone from torchvision's ImageNet weights (needs them cached in "
                              "$TORCH_HOME or internet); default: random init")
    weights.add_argument("--weights", type=Path, default=None,
                         help="start the backbone from a local torchvision ResNet-18 state dict (.pth)")
    add_seed(parser, help="seed of weights and patch draws (>= 0); default 0")
    parser.add_argument("--workers", type=count(0), default=None,
                        help="patch reader processes per training process; default: the preset's")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    from ccmct.models.registry import detector_kinds

    parser.add_argument("--model", choices=(*detector_kinds(), "candidate"), default="retinanet",
                        help="retinanet (default): the paper's detector; another tile detector of the model "
                             "registry (fcos: a tiny FCOS, random init, for tests); candidate: the fast mode's "
                             "small network on a reduced pyramid level (docs/fast_mode.md)")
    parser.add_argument("--downsample", type=count(1), default=4,
                        help="with --model candidate: level-0 px per input px (default 4, the first pyramid level)")
    add_json(parser)
    parser.set_defaults(func=_run)


def _run(args) -> int:
    require_data_root(args.data_root, slides=True, databases=True, variant=args.variant)  # before the heavy imports and any work
    check_output(args.out, reads=[args.data_root, args.weights], kind="dir")
    from ccmct.training.run import train_detector

    if args.model == "candidate":
        return _run_candidate(args)
    backbone = "pretrained" if args.pretrained else args.weights
    if args.model != "retinanet" and backbone is not None:
        from ccmct.errors import CcmctError

        raise CcmctError(f"--pretrained / --weights apply to the RetinaNet; --model {args.model} starts from "
                         "random init")
    summary = train_detector(args.data_root, args.variant, args.preset, args.out, seed=args.seed,
                             backbone_weights=backbone, num_workers=args.workers,
                             progress=not (args.no_progress or args.json), kind=args.model)
    import os

    if os.environ.get("RANK", "0") != "0":  # under torchrun only the main process reports
        return 0
    if args.json:
        print_json({k: v for k, v in summary.items() if k != "history"} | {"model_dir": str(args.out)})
    else:
        final = summary.get("final") or {}
        best = summary.get("best") or final
        print(f"model written to {args.out} ({summary['epochs']} pseudo-epochs, {summary['seconds']:.0f} s); "
              f"validation: loss {final.get('valid_loss', float('nan')):.3f}, "
              f"patch F1 {final.get('patch_f1', float('nan')):.3f} (best {best.get('patch_f1', float('nan')):.3f})")
    return 0


def _run_candidate(args) -> int:
    """``--model candidate``: :func:`ccmct.training.candidate.train_candidate`."""
    from ccmct.errors import CcmctError
    from ccmct.training.candidate import train_candidate

    if args.pretrained or args.weights is not None:
        raise CcmctError("--pretrained / --weights apply to the RetinaNet; the candidate model starts from random init")
    summary = train_candidate(args.data_root, args.variant, args.preset, args.out, seed=args.seed,
                              downsample=args.downsample, num_workers=args.workers,
                              progress=not (args.no_progress or args.json))
    if args.json:
        print_json({k: v for k, v in summary.items() if k not in ("history", "key")} | {"model_dir": str(args.out)})
    else:
        recall = summary.get("valid_recall")
        print(f"candidate model written to {args.out} ({summary['epochs']} epochs, {summary['seconds']:.0f} s); "
              f"threshold {summary['threshold']:.3g} keeps "
              f"{'n/a' if recall is None else f'{100 * recall:.0f} %'} of {summary['valid_mitoses']} "
              "validation mitoses")
    return 0
