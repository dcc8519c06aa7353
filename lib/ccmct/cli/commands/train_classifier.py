"""``ccmct train-classifier``: train the second-stage cell classifier (ResNet-18, MF / LA / Gr / TC)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccmct.cli.common import (
    add_data_root,
    add_device,
    add_json,
    add_preset,
    add_seed,
    add_variant,
    check_output,
    count,
    print_json,
    require_data_root,
)

EPILOG = """examples:
  ccmct train-classifier --data-root data --variant ODAEL --preset paper --out models/cls-ODAEL
  ccmct train-classifier --data-root demo --variant ODAEL --preset quick --out models/cls-demo
  ccmct train-classifier --data-root data --variant MEL --preset paper --weights resnet18.pth --out models/cls-MEL

The model directory gets weights.pt + config.json (use it with `ccmct classify`), history.csv,
confusion.csv (Table 3 on the test slides: rows true, columns predicted, order MF, LA, Gr, TC),
confusion.png and metrics.json. Validation uses held-out training slides (or, with fewer than 4 training
slides, the lower half of each); see docs/second_stage.md.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train-classifier", help="train the second-stage cell classifier (128 px patches, ResNet-18, fastai)",
        description="Train a 4-class cell classifier (mitotic figure, look-alike, granulocyte, tumor cell) on "
                    "128 x 128 px level-0 patches around the annotations of the training slides, validate on "
                    "held-out training slides, report test accuracy and the confusion matrix (paper Table 3).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_root(parser)
    add_variant(parser)
    add_preset(parser)
    parser.add_argument("--out", type=Path, required=True, help="model directory to write (created)")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--pretrained", dest="pretrained", action="store_true", default=None,
                       help="start from torchvision's ImageNet ResNet-18 (download; default: the preset's "
                            "choice, on for paper, off for smoke/quick)")
    start.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                       help="random initialisation")
    start.add_argument("--weights", type=Path, default=None,
                       help="start from a local torchvision resnet18 state dict (.pth), or from the ResNet-18 "
                            "backbone of a first-stage model directory (no download)")
    add_seed(parser, default=None, help="random seed, >= 0 (default: the preset's, 0)")
    parser.add_argument("--workers", type=count(0), default=None,
                        help="DataLoader reader processes (default: the preset's; 0 = read in the main process)")
    add_device(parser)
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_data_root(args.data_root, slides=True, databases=True, variant=args.variant)  # before the heavy imports and any work
    check_output(args.out, reads=[args.data_root, args.weights], kind="dir")
    from ccmct.training.classifier import train_classifier

    run_ = train_classifier(args.data_root, args.variant, args.preset, args.out, pretrained=args.pretrained,
                            weights_path=args.weights, seed=args.seed, num_workers=args.workers,
                            device=args.device, progress=not args.json)
    if args.json:
        print_json({"model_dir": str(run_.model_dir), "test_accuracy": run_.test_accuracy,
                    "validation": run_.validation, "history": run_.history.to_dict(orient="records"),
                    "confusion": run_.confusion.to_dict(orient="index"),
                    "counts": run_.counts.to_dict(orient="index")})
        return 0
    print(f"model directory: {run_.model_dir}")
    print(f"validation: {run_.validation['rule']} ({', '.join(run_.validation['valid_slides'])})")
    print(f"test accuracy: {run_.test_accuracy:.4f}")
    print("Table 3 (test patches; rows true, columns predicted):")
    print(run_.confusion.to_string())
    return 0
