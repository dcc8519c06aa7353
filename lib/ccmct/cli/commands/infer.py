"""``ccmct infer``: stage-1 detections on the slides of one split (the paper's ``Inference-RetinaNet.py``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ccmct.cli.common import add_data_root, add_device, add_json, check_output, count, print_json, require_data_root

EPILOG = """examples:
  ccmct infer --model models/ODAEL --data-root data --split test
  ccmct infer --model models/ODAEL --data-root data --split train --out results/RetinaNet-ODAEL-train.npz
  ccmct infer --model models/ODAEL --data-root data --split test --out authors-style.p.bz2 --all-tiles
  torchrun --nproc_per_node=4 --no-python ccmct infer --model models/ODAEL --data-root data --split test
  ccmct infer --mode fast --model models/Candidate-ODAEL --classifier models/CellClassifier-ODAEL
              --data-root data --split test --out results/Fast-ODAEL-test.npz   (docs/fast_mode.md)

A rerun with the same --out skips slides finished earlier (kept in <out>.parts/). Exit code 0: every slide
done; 1: some slides were missing or unreadable (listed; the others are in the result file); 2: bad input.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "infer", help="detect mitotic figures on whole slides (stage 1)",
        description="Sliding-window detection over whole slides with a trained model directory: tissue tiles "
                    "only, tiles of the model's size (256 px) at the authors' stride (230 px) incl. the "
                    "right/bottom margins, per-tile NMS, "
                    "slide-level distance NMS (25 px).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True,
                        help="model directory (config.json + weights.pt from `ccmct train`)")
    add_data_root(parser)
    parser.add_argument("--split", choices=("test", "train"), required=True,
                        help="slides to process: the data root's test or train slides")
    parser.add_argument("--out", type=Path, default=None,
                        help="result file; .p.bz2 = the authors' pickle dict, else the primary .npz format "
                             "(default: ./RetinaNet-<variant>-<split>.npz)")
    parser.add_argument("--batch-size", type=count(1), default=16, help="tiles per forward pass (default 16)")
    parser.add_argument("--workers", type=count(0), default=2,
                        help="reader processes per slide, each with its own slide handle (default 2)")
    parser.add_argument("--all-tiles", action="store_true",
                        help="process every tile incl. background, as the authors did (default: tissue only)")
    add_device(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--mode", choices=("paper", "fast"), default="paper",
                        help="paper (default): the RetinaNet over level-0 tiles, as today; fast: --model is a "
                             "candidate model (`ccmct train --model candidate`) screening a reduced pyramid level, "
                             "each candidate confirmed by --classifier (docs/fast_mode.md)")
    parser.add_argument("--classifier", type=Path, default=None,
                        help="with --mode fast: the cell classifier directory (`ccmct train-classifier`); the "
                             "result's score is its P(mitotic figure)")
    add_json(parser)
    parser.set_defaults(func=run)


def _present_slides(data_root: Path, split: str) -> dict[str, Path]:
    """The split's slides, refusing a split of which not one slide file is there (nothing to do)."""
    from ccmct.errors import FileProblem

    from ccmct.config.paths import DataRoot

    slides = DataRoot(data_root).slides(split)
    if not slides:
        raise FileProblem(data_root, f"the {split!r} split of this data root lists no slides")
    if not any(path.is_file() for path in slides.values()):
        raise FileProblem(Path(data_root) / "WSI", f"none of the {len(slides)} {split!r} slides is there "
                                                   f"(e.g. {next(iter(slides))}); wrong --data-root or --split?")
    return slides


def run(args: argparse.Namespace) -> int:
    if args.mode == "fast" or args.classifier is not None:
        return _run_fast(args)
    reads = [args.model, args.data_root]
    require_data_root(args.data_root, slides=True)
    slides = _present_slides(args.data_root, args.split)
    for target in ([] if args.out is None else [args.out]):  # cheap checks first, then the model
        check_output(target, reads=reads, results=True)
    from ccmct.data.results import result_filename
    from ccmct.inference.detector import InferenceOptions
    from ccmct.inference.runner import run_inference, work_dir_for
    from ccmct.models.io import load_model_dir
    from ccmct.models.registry import detector_kinds

    _, config = load_model_dir(args.model, kind=detector_kinds())  # checks the directory before any work
    out = args.out
    if out is None:
        out = Path(result_filename(config.variant or args.model.name, args.split))
        check_output(out, reads=reads, results=True)
    check_output(work_dir_for(out), reads=reads, kind="dir", what="part-file folder")
    options = InferenceOptions(batch_size=args.batch_size, workers=args.workers, all_tiles=args.all_tiles)
    report = run_inference(args.model, slides, out, options=options,
                           device=args.device, progress=not args.no_progress)
    return _finish(report, as_json=args.json)


def _run_fast(args: argparse.Namespace) -> int:
    """``--mode fast``: candidate screening + classifier confirmation (:mod:`ccmct.inference.fast`)."""
    from ccmct.errors import CcmctError
    from ccmct.inference.fast import FastOptions, load_fast_models, run_fast_inference
    from ccmct.inference.runner import work_dir_for

    if args.mode != "fast":
        raise CcmctError("--classifier is used only with --mode fast (paper mode re-scores with `ccmct classify`)")
    if args.classifier is None:
        raise CcmctError("--mode fast needs --classifier CLS_DIR (the cell classifier that confirms candidates)")
    _, config, _, _ = load_fast_models(args.model, args.classifier)  # both directories checked before any work
    require_data_root(args.data_root, slides=True)
    slides = _present_slides(args.data_root, args.split)
    out = args.out or Path(f"Fast-{config.variant or args.model.name}-{args.split}.npz")
    reads = [args.model, args.classifier, args.data_root]
    check_output(out, reads=reads)
    check_output(work_dir_for(out), reads=reads, kind="dir", what="part-file folder")
    options = FastOptions(batch_size=max(args.batch_size, 1), workers=args.workers, all_tiles=args.all_tiles)
    report, _ = run_fast_inference(args.model, args.classifier, slides, out, options=options, device=args.device,
                                   progress=not args.no_progress)
    return _finish(report, as_json=args.json)


def _finish(report, *, as_json: bool) -> int:
    """Print the summary (rank 0) and return the exit code (1 when a slide failed)."""
    code = 1 if report.failed else 0
    if report.out is None:  # another rank: rank 0 reports
        return code
    if as_json:
        print_json(report.as_dict())
        return code
    log = logging.getLogger("ccmct.infer")
    total = sum(report.n_detections.values())
    log.info("wrote %s: %d slides, %d detections (%d computed, %d from earlier runs)", report.out,
             len(report.n_detections), total, len(report.computed), len(report.resumed))
    for name, reason in report.failed.items():
        log.error("failed: %s: %s", name, reason)
    return code
