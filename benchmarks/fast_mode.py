"""Benchmark: fast mode vs the paper's two-stage pipeline, side by side in one run (issue 18; docs/fast_mode.md).

On a data root (``--data-root``, else the synthetic ``demo`` root generated into ``OUT/data``):

1. models of one label set (``--variant``, ``--preset``): the RetinaNet (``train_detector``), the cell
   classifier (``train_classifier``, started from that RetinaNet's backbone on CPU presets, as the demo does)
   and the candidate model (``train_candidate``); each is reused when its directory is complete;
2. inference on the training slides (cached: only used to choose each pipeline's threshold, the paper's rule)
   and, timed from scratch into a fresh folder, on the test slides: paper = ``run_inference`` then
   ``classify_results``; fast = ``run_fast_inference``; both with reader processes off (``--workers``);
3. ``compare_fast_to_paper``: F1 of both on the test slides, the paired slide-bootstrap interval of
   ``fast - paper``, the candidate stage's recall of the ground-truth mitoses;
4. FLOPs (``torch.utils.flop_counter.FlopCounterMode``, a multiply-add = 2) of one forward of each model,
   times the tiles / patches actually processed on the test slides; wall-clock ratio; time breakdown
   (paper: detector incl. reading, classifying; fast: reading, screening, classifying);
5. ``--large``: one 40000 x 30000 px synthetic slide (the ``large`` preset's size, tissue ellipses), timing
   only: the fast mode's screening in full; its classifier on ``--large-patches`` candidates and the paper
   detector on ``--large-tiles`` tissue tiles, extrapolated to the whole slide (labelled as estimates).
6. ``--large-root DIR``: the test slide of a ``ccmct synth --preset large`` root instead (40000 x 30000 px of
   rendered cells at a realistic density, with its ground truth): the fast mode in full (screening *and*
   classifying every candidate; its F1 at the fast threshold chosen above and its candidate recall on that
   slide's ODAEL labels); the paper detector on ``--large-tiles`` tissue tiles, its time, detections and
   FLOPs extrapolated to all tissue tiles, and its second stage estimated as those detections times the
   classifier's per-patch time measured in the fast run (labelled as estimates).

``--study DIR`` reuses a finished ``ccmct demo --fast`` / ``ccmct reproduce --fast`` folder instead of steps 1
and 2's training-slide inference: its data root (from its ``summary.json``, or ``--data-root``), the three
models of ``--variant`` (first training seed) and its result files. F1, the paired interval and the
candidate recall then come from the study's result files of *every* training seed, at the study's thresholds
(Table 4's rule: chosen on the training slides against the label set's own labels, floor 0.2 for both
classifier-scored pipelines), on the ODAEL test labels — the numbers of the study's report; the test slides
are still run again with both pipelines, timed into a fresh folder, for the wall times, their breakdown and
the FLOP counts. The study's own ``timings.json`` ratio is recorded beside it (``study_wall``).

    python benchmarks/fast_mode.py --json [--data-root DIR] [--out DIR] [--preset quick] [--large]
    python benchmarks/fast_mode.py --json --study ccmct-demo [--variant ODAEL] [--out DIR]

The machine matters (and whether it is shared): the JSON records the CPU, core count and torch threads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ccmct.config.paths import DataRoot  # noqa: E402
from ccmct.data.results import read_results  # noqa: E402
from ccmct.evaluation.fast_vs_paper import compare_fast_to_paper  # noqa: E402
from ccmct.inference.detector import InferenceOptions, WholeSlideDetector  # noqa: E402
from ccmct.inference.fast import FastDetector, FastOptions, load_fast_models, run_fast_inference  # noqa: E402
from ccmct.inference.runner import run_inference  # noqa: E402
from ccmct.inference.second_stage import classify_results  # noqa: E402
from ccmct.models.io import load_model_dir  # noqa: E402


def strict(value):
    """``value`` with every NaN / infinite float replaced by None (strict JSON: an undefined F1 is null)."""
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def flops(model: torch.nn.Module, shape: tuple[int, ...]) -> float:
    """FLOPs of one forward on a zero batch of ``shape`` (FlopCounterMode: a multiply-add = 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.zeros(shape))
    return float(counter.get_total_flops())


def _complete(model_dir: Path) -> bool:
    return (model_dir / "weights.pt").is_file() and (model_dir / "config.json").is_file()


def train_models(root: DataRoot, out: Path, variant: str, preset: str, seed: int) -> dict[str, Path]:
    from ccmct.training.candidate import train_candidate
    from ccmct.training.classifier import default_start_weights, train_classifier
    from ccmct.training.run import train_detector

    dirs = {"detector": out / f"RetinaNet-{variant}", "classifier": out / f"CellClassifier-{variant}",
            "candidate": out / f"Candidate-{variant}"}
    seconds = {}
    for name, train in (
            ("detector", lambda: train_detector(root.path, variant, preset, dirs["detector"], seed=seed, progress=False)),
            ("classifier", lambda: train_classifier(root, variant, preset, dirs["classifier"], seed=seed, progress=False,
                                                    weights_path=default_start_weights(preset, dirs["detector"]))),
            ("candidate", lambda: train_candidate(root.path, variant, preset, dirs["candidate"], seed=seed,
                                                  progress=False))):
        if not _complete(dirs[name]):
            started = time.perf_counter()
            train()
            seconds[name] = round(time.perf_counter() - started, 1)
    return dirs, seconds


class StudyError(Exception):
    """A ``--study`` folder the benchmark cannot reuse (``main`` prints it as one line and returns 2)."""


def reuse_study(study_dir: Path, variant: str, data_root: Path | None) -> dict:
    """What a finished study folder holds for ``variant``: data root, the first seed's model directories, and
    per training seed the four result files (paper two-stage and fast, training and test slides).

    Raises:
        StudyError: no ``summary.json`` (not finished), a missing data root, model directory or result file
            (a study run without ``--fast``: rerun it with ``--fast``, every finished step is reused).
    """
    from ccmct.pipeline.layout import Layout

    layout = Layout(study_dir)
    if not layout.summary.is_file():
        raise StudyError(f"{layout.summary}: missing; --study needs a finished `ccmct demo` / `ccmct reproduce` "
                         "folder")
    summary = json.loads(layout.summary.read_text())
    root = DataRoot(data_root or summary["data_root"])
    if not root.split_file.exists() and not root.database(variant).exists():
        raise StudyError(f"{root.path}: the study's data root is not there (give it with --data-root)")
    seeds = [int(s) for s in summary.get("seeds") or [summary.get("data_seed", 0)]]
    first = Layout(study_dir).seed_layout(seeds[0], seeds[0])
    dirs = {"detector": first.detector_dir(variant), "classifier": first.classifier_dir(variant),
            "candidate": first.candidate_dir(variant)}
    for name, path in dirs.items():
        if not _complete(path):
            hint = (" (the study ran without the fast mode: rerun it with --fast; every finished step is reused)"
                    if name == "candidate" else "")
            raise StudyError(f"{path}: no complete {name} model of {variant} in the study{hint}")
    files = {}
    for seed in seeds:
        lay = layout.seed_layout(seed, seeds[0])
        files[seed] = {(kind, split): path for split in ("train", "test")
                       for kind, path in (("paper", lay.result_path(variant, split, 2)),
                                          ("fast", lay.fast_result_path(variant, split)))}
        for path in files[seed].values():
            if not path.is_file():
                raise StudyError(f"{path}: missing in the study (rerun it{' with --fast' if 'Fast-' in path.name else ''};"
                                 " every finished step is reused)")
    timings = json.loads(layout.timings.read_text()) if layout.timings.is_file() else {}
    return {"root": root, "dirs": dirs, "seeds": seeds, "files": files, "timings": timings,
            "preset": summary.get("preset")}


def study_comparison(reused: dict, variant: str, n_resamples: int, seed: int) -> dict:
    """F1 of both pipelines over every seed of the study, at the study's thresholds (Table 4's rule), paired
    interval and candidate recall on the comparison labels (the study report's numbers)."""
    from ccmct.evaluation import load_ground_truth, restrict_results
    from ccmct.evaluation.threshold import optimize_threshold
    from ccmct.pipeline.fast import COMPARE_TEST_LABELS
    from ccmct.pipeline.study import MIN_THRESHOLD, MIN_THRESHOLD_FAST

    root = reused["root"]
    train_slides, test_slides = root.slides("train"), root.slides("test")
    results, thresholds = {"fast": [], "paper": []}, {"fast": [], "paper": []}
    floors = {"fast": MIN_THRESHOLD_FAST, "paper": MIN_THRESHOLD[2]}
    for files in reused["files"].values():
        for kind in ("fast", "paper"):
            train = restrict_results(read_results(files[(kind, "train")]), train_slides)
            gt = load_ground_truth(root.database(variant), slides=list(train))
            thresholds[kind].append(optimize_threshold(gt, train, min_threshold=floors[kind]).best_threshold)
            results[kind].append(restrict_results(read_results(files[(kind, "test")]), test_slides))
    out = compare_fast_to_paper(root.database(COMPARE_TEST_LABELS), results["fast"], results["paper"],
                                threshold_fast=thresholds["fast"], threshold_paper=thresholds["paper"],
                                n_resamples=n_resamples, seed=seed)
    out["test_labels"] = COMPARE_TEST_LABELS
    out["threshold_rule"] = (f"training slides, {variant} labels, floor {floors['paper']} (Table 4's rule of the "
                             "study)")
    return out


def slides_of(root: DataRoot, split: str) -> dict[str, Path]:
    return {name: root.slide_path(name) for name, s in sorted(root.split().items()) if s == split}


def run_paper(dirs, slides, folder: Path, variant: str, split: str, workers: int) -> tuple[Path, dict]:
    stage1 = folder / f"RetinaNet-{variant}-{split}.npz"
    started = time.perf_counter()
    report = run_inference(dirs["detector"], slides, stage1, options=InferenceOptions(workers=workers),
                           device="cpu", progress=False)
    detect = time.perf_counter() - started
    started = time.perf_counter()
    stage2 = classify_results(dirs["classifier"], stage1, next(iter(slides.values())).parent,
                              folder / f"2ndstage_RetinaNet-{variant}-{split}.npz", num_workers=workers,
                              device="cpu", progress=False)
    classify = time.perf_counter() - started
    n_classified = sum(len(b) for b in read_results(stage2).values())
    return stage2, {"detector_incl_reading_s": detect, "classifying_s": classify, "total_s": detect + classify,
                    "tiles": report.tiles_processed, "tiles_total": report.tiles_total,
                    "stage1_detections": sum(report.n_detections.values()), "classified": n_classified}


def run_fast(dirs, slides, folder: Path, variant: str, split: str, workers: int) -> tuple[Path, dict]:
    out = folder / f"Fast-{variant}-{split}.npz"
    started = time.perf_counter()
    report, detector = run_fast_inference(dirs["candidate"], dirs["classifier"], slides, out,
                                          options=FastOptions(workers=workers), device="cpu", progress=False)
    total = time.perf_counter() - started
    parts = {key: sum(t[key] for t in detector.timings.values())
             for key in ("reading", "screening", "classifying", "candidates", "classified", "tiles")}
    levels = sorted({(t["level"], t["level_factor"]) for t in detector.timings.values()})
    return out, {"total_s": total, "reading_s": parts["reading"], "screening_s": parts["screening"],
                 "classifying_s": parts["classifying"], "screen_tiles": parts["tiles"],
                 "candidates": parts["candidates"], "classified": parts["classified"],
                 "levels_read": [list(level) for level in levels], "slides": len(report.n_detections)}


def flop_counts(dirs, paper: dict, fast: dict) -> dict:
    detector, det_config = load_model_dir(dirs["detector"], kind="retinanet")
    candidate, cand_config, classifier, cls_config = load_fast_models(dirs["candidate"], dirs["classifier"])
    tile = FastOptions().screen_tile_px
    per = {"detector_per_tile": flops(detector, (1, 3, det_config.tile_px, det_config.tile_px)),
           "classifier_per_patch": flops(classifier, (1, 3, cls_config.patch_size_px, cls_config.patch_size_px)),
           "candidate_per_screen_tile": flops(candidate, (1, 3, tile, tile))}
    paper_flops = paper["tiles"] * per["detector_per_tile"] + paper["classified"] * per["classifier_per_patch"]
    fast_flops = (fast["screen_tiles"] * per["candidate_per_screen_tile"]
                  + fast["classified"] * per["classifier_per_patch"])
    return {**per, "paper_total": paper_flops, "fast_total": fast_flops,
            "flops_ratio": paper_flops / fast_flops if fast_flops else None}


def sample_paper_detector(dirs, path: Path, n_tiles: int, workers: int):
    """The paper detector on ``n_tiles`` tissue tiles spread over the slide: ``(plan, sample, detections,
    seconds per tile)``, for extrapolating to all of the slide's tissue tiles."""
    from inference_throughput import subset

    detector, det_config = load_model_dir(dirs["detector"], kind="retinanet")
    paper = WholeSlideDetector(detector, det_config, options=InferenceOptions(workers=workers))
    plan = paper.plan(path)
    sample = subset(plan, n_tiles, tissue=True)
    started = time.perf_counter()
    detections = paper.detect_tiles(sample)
    return plan, sample, detections, (time.perf_counter() - started) / sample.n_selected


def large_slide(dirs, folder: Path, n_tiles: int, n_patches: int, workers: int) -> dict:
    """Timing on one 40000 x 30000 px slide (tissue ellipses of noise texture, no cells): the fast mode's
    screening in full; the classifier on ``n_patches`` of its candidates and the paper detector on ``n_tiles``
    tissue tiles, each extrapolated to the whole slide (labelled as estimates)."""
    from inference_throughput import LARGE_WH, write_large_slide

    from ccmct.inference.second_stage import rescore_slide

    path = folder / "large.svs"
    if not path.exists():
        started = time.perf_counter()
        write_large_slide(path, LARGE_WH)
        print(f"large slide written in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    candidate, cand_config, classifier, cls_config = load_fast_models(dirs["candidate"], dirs["classifier"])
    fast = FastDetector(candidate, cand_config, classifier, cls_config, options=FastOptions(workers=workers))
    started = time.perf_counter()
    screening = fast.screen(path)
    screen_s = time.perf_counter() - started
    take = np.linspace(0, len(screening.scores) - 1, min(n_patches, len(screening.scores))).round().astype(int)
    centres = screening.centres_l0[np.unique(take)] if len(screening.scores) else np.zeros((0, 2))
    rows = np.column_stack([centres - 25, centres + 25, np.zeros(len(centres)), np.ones(len(centres))])
    started = time.perf_counter()
    classified = rescore_slide(classifier, cls_config, path, rows, radius_l0=0.0, num_workers=workers, device="cpu")
    per_patch = (time.perf_counter() - started) / max(len(classified), 1)
    plan, sample, _, per_tile = sample_paper_detector(dirs, path, n_tiles, workers)
    return {"size_wh": list(LARGE_WH), "fast_screen_tiles": screening.tiles_processed,
            "fast_reading_s": screening.seconds["reading"], "fast_screening_s": screening.seconds["screening"],
            "fast_screen_total_s": screen_s, "fast_candidates": int(len(screening.scores)),
            "classifier_s_per_patch": per_patch, "classifier_sampled_patches": int(len(classified)),
            "fast_classifying_s_estimate": per_patch * len(screening.scores),
            "fast_total_s_estimate": screen_s + per_patch * len(screening.scores),
            "paper_tissue_tiles": plan.n_selected, "paper_sampled_tiles": sample.n_selected,
            "paper_detector_s_per_tile": per_tile, "paper_detector_s_estimate": per_tile * plan.n_selected,
            "note": "synthetic texture without cells: candidate counts are not those of a real slide; paper "
                    "detector and fast classifier times are measured on samples and extrapolated; the paper "
                    "pipeline's classifier time is not included (it depends on its detections)"}


def large_slide_with_cells(dirs, root: DataRoot, threshold_fast: float, n_tiles: int, workers: int,
                           per: dict) -> dict:
    """The fast mode in full and the paper pipeline on ``n_tiles`` sampled tissue tiles (extrapolated) on the
    test slide of a ``large`` synthetic root (see the module docstring, step 6)."""
    from ccmct.evaluation import f1_scores, load_ground_truth
    from ccmct.evaluation.fast_vs_paper import candidate_recall

    (name, path), *_ = slides_of(root, "test").items()
    candidate, cand_config, classifier, cls_config = load_fast_models(dirs["candidate"], dirs["classifier"])
    fast = FastDetector(candidate, cand_config, classifier, cls_config, options=FastOptions(workers=workers))
    started = time.perf_counter()
    rows = fast.detect(path).boxes
    fast_s = time.perf_counter() - started
    t = fast.timings[name]
    gt = load_ground_truth(root.database("ODAEL"), slides=[name])
    f1 = f1_scores(gt, {name: rows}, threshold=threshold_fast)
    per_patch = t["classifying"] / max(t["classified"], 1)

    plan, sample, sampled, per_tile = sample_paper_detector(dirs, path, n_tiles, workers)
    scale = plan.n_selected / sample.n_selected
    detections = len(sampled.boxes) * scale
    paper_detect_s, paper_classify_s = per_tile * plan.n_selected, per_patch * detections
    paper_flops = plan.n_selected * per["detector_per_tile"] + detections * per["classifier_per_patch"]
    fast_flops = t["tiles"] * per["candidate_per_screen_tile"] + t["classified"] * per["classifier_per_patch"]
    return {"slide": name, "size_wh": list(plan.grid.size_wh), "gt_mitoses_odael": int(len(gt[name])),
            "fast": {"total_s": fast_s, "reading_s": t["reading"], "screening_s": t["screening"],
                     "classifying_s": t["classifying"], "screen_tiles": t["tiles"], "candidates": t["candidates"],
                     "classified": t["classified"], "classifier_s_per_patch": per_patch,
                     "f1_odael": float(f1.f1) if np.isfinite(f1.f1) else None, "threshold": threshold_fast,
                     "candidate_recall": candidate_recall(gt, {name: rows})},
            "paper_estimate": {"tissue_tiles": plan.n_selected, "sampled_tiles": sample.n_selected,
                               "detector_s_per_tile": per_tile, "sampled_detections": int(len(sampled.boxes)),
                               "detections": detections, "detector_s": paper_detect_s,
                               "classifying_s": paper_classify_s, "total_s": paper_detect_s + paper_classify_s},
            "flops": {"paper_total_estimate": paper_flops, "fast_total": fast_flops,
                      "flops_ratio": paper_flops / fast_flops if fast_flops else None},
            "wall_ratio_estimate": (paper_detect_s + paper_classify_s) / fast_s,
            "note": "fast mode measured in full; the paper pipeline's detector time and detections measured on the "
                    "sampled tissue tiles and scaled to all of them, its second stage = those detections x the "
                    "classifier's per-patch time of the fast run (estimates)"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=None,
                        help="data root (default: synthetic demo in OUT; with --study: the study's)")
    parser.add_argument("--study", type=Path, default=None,
                        help="reuse a finished `ccmct demo --fast` / `ccmct reproduce --fast` folder: its data "
                             "root, models and result files (nothing is trained); the test slides are timed again")
    parser.add_argument("--out", type=Path, default=Path("bench_fast_mode"), help="work folder (models, results)")
    parser.add_argument("--variant", default="ODAEL")
    parser.add_argument("--preset", default="quick", help="training preset of all three models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0, help="reader processes of both pipelines")
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--large", action="store_true", help="also time one 40000 x 30000 px slide")
    parser.add_argument("--large-root", type=Path, default=None,
                        help="a `ccmct synth --preset large` root: time its test slide (cells, ground truth) instead")
    parser.add_argument("--large-tiles", type=int, default=200, help="paper detector tiles timed on the large slide")
    parser.add_argument("--large-patches", type=int, default=200, help="fast classifier patches timed on it")
    parser.add_argument("--shared", default="", help="note on other load on the machine, recorded in the JSON")
    parser.add_argument("--json", action="store_true", help="print the JSON document")
    args = parser.parse_args(argv)

    out = args.out
    try:
        reused = reuse_study(args.study, args.variant, args.data_root) if args.study is not None else None
    except StudyError as err:
        print(f"fast_mode.py: {err}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    started_all = time.perf_counter()
    if reused is not None:
        args.data_root, args.preset = reused["root"].path, reused["preset"] or args.preset
    elif args.data_root is None:
        from ccmct.synthetic import generate_dataset

        args.data_root = out / "data"
        if not (args.data_root / "split.json").exists():
            generate_dataset(args.data_root, preset="demo", seed=0, progress=False)
    root = DataRoot(args.data_root)
    if reused is None:
        dirs, train_seconds = train_models(root, out / "models", args.variant, args.preset, args.seed)
        cached = out / "results-train"
        cached.mkdir(exist_ok=True)
        train_slides = slides_of(root, "train")
        paper_train, _ = run_paper(dirs, train_slides, cached, args.variant, "train", args.workers)
        fast_train, _ = run_fast(dirs, train_slides, cached, args.variant, "train", args.workers)
    else:  # the study's models and training-slide results; its training times from its timings.json
        dirs = reused["dirs"]
        train_seconds = {name: reused["timings"].get(step) for name, step in (
            ("detector", f"train stage 1 ({args.variant})"), ("classifier", f"train stage 2 ({args.variant})"),
            ("candidate", f"train candidate ({args.variant})"))}

    timed = out / "results-test"
    shutil.rmtree(timed, ignore_errors=True)
    timed.mkdir()
    test_slides = slides_of(root, "test")
    paper_test, paper = run_paper(dirs, test_slides, timed, args.variant, "test", args.workers)
    fast_test, fast = run_fast(dirs, test_slides, timed, args.variant, "test", args.workers)

    if reused is None:
        comparison = compare_fast_to_paper(root.database(args.variant), read_results(fast_test),
                                           read_results(paper_test), fast_train=read_results(fast_train),
                                           paper_train=read_results(paper_train), n_resamples=args.bootstrap,
                                           seed=args.seed)
    else:
        comparison = study_comparison(reused, args.variant, args.bootstrap, args.seed)
    flop = flop_counts(dirs, paper, fast)
    document = {
        "benchmark": "fast_mode", "data_root": str(args.data_root), "variant": args.variant, "preset": args.preset,
        "seed": args.seed, "test_slides": len(test_slides),
        "f1_fast": comparison["f1_fast"], "f1_paper": comparison["f1_paper"], "delta_f1": comparison["delta_f1"],
        "delta_f1_ci": comparison["delta_f1_ci"], "fast_wins": comparison["fast_wins"],
        "threshold_fast": comparison["threshold_fast"], "threshold_paper": comparison["threshold_paper"],
        "candidate_recall": comparison["candidate_recall"]["recall"],
        "candidate_recall_detail": comparison["candidate_recall"],
        "flops_ratio": flop["flops_ratio"], "flops": flop,
        "wall_ratio": paper["total_s"] / fast["total_s"] if fast["total_s"] else None,
        "paper": paper, "fast": fast,
        "per_slide_s": {"paper": paper["total_s"] / len(test_slides), "fast": fast["total_s"] / len(test_slides)},
        "training_seconds": train_seconds,
        "n_seeds": comparison["n_seeds"], "n_slides": comparison["n_slides"],
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "cpu_bf16": os.environ.get("CCMCT_CPU_BF16", "auto"), "shared": args.shared},
    }
    if reused is not None:
        from ccmct.pipeline.fast import wall_times

        document["study"] = {"dir": str(args.study), "seeds": reused["seeds"],
                             "test_labels": comparison["test_labels"], "threshold_rule": comparison["threshold_rule"],
                             "study_wall": wall_times(reused["timings"], args.variant, reused["seeds"],
                                                      reused["seeds"][0])}
    if args.large or args.large_root is not None:
        (out / "fast_mode.json").write_text(json.dumps(strict(document), indent=1, allow_nan=False))  # kept if --large fails
    if args.large_root is not None:
        document["large_with_cells"] = large_slide_with_cells(
            dirs, DataRoot(args.large_root), comparison["threshold_fast"][0], args.large_tiles, args.workers, flop)
    elif args.large:
        document["large"] = large_slide(dirs, out, args.large_tiles, args.large_patches, args.workers)
    document["seconds"] = round(time.perf_counter() - started_all, 1)
    text = json.dumps(strict(document), indent=1, allow_nan=False)
    (out / "fast_mode.json").write_text(text)
    if args.json:
        print(text)
    else:
        print(f"F1 fast {document['f1_fast']} vs paper {document['f1_paper']}, delta {document['delta_f1']} "
              f"{document['delta_f1_ci']}; FLOPs x{document['flops_ratio']}, wall x{document['wall_ratio']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
