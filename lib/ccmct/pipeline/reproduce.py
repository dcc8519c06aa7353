"""``ccmct reproduce``: the paper's study in one resumable command (docs/design.md, README "Real data").

:func:`plan_study` lists the steps (what is done already, the work each plans); :func:`probe_device` times a
few training batches and inference tiles on this machine's device, and :func:`estimate_s` multiplies them by a
step's planned count (an estimate, labelled so); :func:`run_study` runs the steps (skipping done ones) and
writes ``STUDY/report.md`` + ``summary.json`` with every number beside the paper's
(:mod:`ccmct.config.paper_values`).

torchrun: ``torchrun --nproc_per_node=N --no-python ccmct reproduce ...`` runs the same command on N ranks; the
training and inference steps (``Step.distributed``) run on every rank and share the work, with a barrier after
each; every other step (classifier training, re-scoring, ablation subsets and runs), the report and the timings
file are done by rank 0 only while the other ranks wait by polling the step's output (not a collective: a
paper-preset classifier training outlasts torch's collective timeout). A failing rank 0 ends the job (torchrun
stops the other ranks).
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass

from ccmct.atomicio import atomic_write_json
from ccmct.config.paths import DataRoot
from ccmct.pipeline.steps import StepTimer, study_steps
from ccmct.pipeline.study import Study


POLL_S = 10.0
"""Under torchrun, how often the other ranks look whether rank 0 finished a non-distributed step, s."""


@dataclass(frozen=True)
class Probe:
    """Seconds per unit of work on this device, measured (a few iterations after one warm-up)."""

    device: str
    detector_batch_s: float
    tile_s: float
    classifier_batch_s: float
    candidate_batch_s: float | None = None
    """A candidate-model training batch (``Study.fast`` only)."""
    screen_tile_s: float | None = None
    """A fast-mode screening tile (``FastOptions.screen_tile_px``, reduced px; ``Study.fast`` only)."""


def probe_device(study: Study, *, iterations: int = 1, items: int = 2) -> Probe:
    """Time detector training batches (forward + backward), inference tiles and classifier training batches on
    this machine's device: ``iterations`` passes over ``items`` patches after one warm-up pass (random weights
    and pixels, the preset's network and patch size), scaled linearly to the preset's batch sizes. Seconds on a
    2-core CPU; short on a GPU."""
    import torch
    import torchvision

    from ccmct.config.presets import detector_preset
    from ccmct.models.registry import model_kind
    from ccmct.training.classifier import classifier_preset
    from ccmct.training.learner import detector_config

    device = torch.device(study.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    preset, cpreset = detector_preset(study.preset), classifier_preset(study.preset)
    config = detector_config(preset, study.variants[0])
    model = model_kind("retinanet").build(config).to(device)

    def timed(fn) -> float:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / iterations / items

    def total(out) -> torch.Tensor:
        parts = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else [out]
        return sum(p.float().mean() for p in parts if torch.is_tensor(p))

    patches = torch.rand(items, 3, config.tile_px, config.tile_px, device=device)
    centre = config.tile_px / 2
    box = torch.tensor([[centre - config.gt_box_px / 2, centre - config.gt_box_px / 2,
                         centre + config.gt_box_px / 2, centre + config.gt_box_px / 2]], device=device)
    targets = [{"boxes": box, "labels": torch.zeros(1, dtype=torch.long, device=device)}] * items
    model.train()  # the detector's own loss (model(images, targets) -> loss dict), as in training
    train_s = timed(lambda: total(model(patches, targets)).backward()) * preset.batch_size
    model.eval()
    with torch.no_grad():
        tile_s = timed(lambda: model(patches))
    resnet = torchvision.models.resnet18(num_classes=4).to(device)
    cells = torch.rand(items, 3, 128, 128, device=device)
    cls_s = timed(lambda: resnet(cells).sum().backward()) * cpreset.batch_size
    fast = {}
    if study.fast:  # the candidate model of the preset: a training batch, a screening tile
        from ccmct.inference.fast import FastOptions
        from ccmct.models.candidate import CandidateConfig, CandidateNet
        from ccmct.training.candidate import candidate_preset

        kpreset = candidate_preset(study.preset)
        candidate = CandidateNet(CandidateConfig(channels=kpreset.channels)).to(device)
        small = torch.rand(items, 3, kpreset.input_px, kpreset.input_px, device=device)
        fast["candidate_batch_s"] = round(timed(lambda: total(candidate(small)).backward()) * kpreset.batch_size, 4)
        screen = torch.rand(items, 3, FastOptions().screen_tile_px, FastOptions().screen_tile_px, device=device)
        candidate.eval()
        with torch.no_grad():
            fast["screen_tile_s"] = round(timed(lambda: candidate(screen)), 5)
    return Probe(str(device), round(train_s, 4), round(tile_s, 5), round(cls_s, 4), **fast)


def _tiles(root: DataRoot, names, *, tile_px: int = 256) -> int:
    """Inference tiles of these slides at the authors' stride (0.9 tile): the full grid from the width / height
    a label database records, else from the slide file, else (a real slide neither there nor sized) from the
    paper's tumor area (Table 1) at 0.25 µm/px — the tissue tiles, roughly."""
    from ccmct.config.dataset import PAPER_MPP, REAL_SLIDES

    stride = int(0.9 * tile_px)
    names = list(names)
    sizes: dict = {}
    for v in ("ODAEL", "MEL", "HEAEL", "Tumorzone"):
        if root.database(v).exists():
            with sqlite3.connect(f"file:{root.database(v)}?mode=ro", uri=True) as con:
                for f, w, h in con.execute("SELECT filename, width, height FROM Slides"):
                    if w and h:
                        sizes.setdefault(f, (int(w), int(h)))
    area = {s.filename: s.tumor_area_mm2 for s in REAL_SLIDES}
    total = 0
    for name in names:
        if name not in sizes and root.slide_path(name).is_file():
            from ccmct.data.slides import open_slide

            with open_slide(root.slide_path(name)) as slide:
                sizes[name] = tuple(slide.dimensions)
        if name in sizes:
            w, h = sizes[name]
            total += math.ceil(w / stride) * math.ceil(h / stride)
        elif name in area:
            total += math.ceil(area[name] / (stride * PAPER_MPP / 1000) ** 2)
    return total


def _screen_tiles(root: DataRoot, names, *, downsample: int = 4) -> int:
    """Fast-mode screening tiles of these slides: the full grid of ``FastOptions.screen_tile_px`` reduced-px
    tiles (:meth:`ccmct.inference.fast.FastDetector.grid`; tissue only in practice, so an upper bound), from the
    level-0 tile count of :func:`_tiles` (which sizes slides the same way) scaled by the area ratio."""
    from ccmct.inference.fast import FastOptions

    options = FastOptions()
    stride_l0 = (options.screen_tile_px - 2 * options.margin_px) * downsample
    tiles_l0 = _tiles(root, names)
    return math.ceil(tiles_l0 * (int(0.9 * 256) / stride_l0) ** 2) if tiles_l0 else 0


def _cells(root: DataRoot, variant: str, names) -> int:
    db = root.database(variant)
    if not db.exists():
        return 0
    names = list(names)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        marks = ",".join("?" * len(names))
        return int(con.execute(f"SELECT COUNT(*) FROM Annotations a JOIN Slides s ON a.slide = s.uid "
                               f"WHERE s.filename IN ({marks})", names).fetchone()[0]) if names else 0


def planned_work(study: Study, step) -> dict:
    """The step's planned count: detector / classifier training batches, inference tiles, cells to re-score."""
    from ccmct.config.presets import detector_preset
    from ccmct.training.classifier import classifier_preset

    preset, cpreset = detector_preset(study.preset), classifier_preset(study.preset)
    root, variant = step.work.get("root"), step.work.get("variant")
    root = root if isinstance(root, DataRoot) else DataRoot(root) if root else study.root
    detector_batches = math.ceil(preset.total_epochs * (preset.patches_per_epoch + preset.val_patches) / preset.batch_size)

    def tiles(split: str, where: DataRoot) -> int:
        return _tiles(where, where.slides(split))

    def classifier_batches() -> int:
        items = cpreset.items_per_epoch or _cells(root, variant, root.slides("train"))
        return math.ceil((cpreset.frozen_epochs + cpreset.epochs) * items / cpreset.batch_size)

    if step.kind == "train_detector":
        return {"detector_batches": detector_batches}
    if step.kind == "train_classifier":
        return {"classifier_batches": classifier_batches()}
    if step.kind == "infer":
        return {"tiles": tiles(step.work["split"], root)}
    if step.kind == "second_stage":
        return {"cells": _cells(root, variant, root.slides(step.work["split"]))}
    if step.kind == "train_candidate":
        from ccmct.training.candidate import candidate_preset

        kpreset = candidate_preset(study.preset)
        return {"candidate_batches": kpreset.epochs * (kpreset.patches_per_epoch // kpreset.batch_size)}
    if step.kind == "fast_infer":  # candidates to confirm: the label set's annotated cells stand in for them
        names = root.slides(step.work["split"])
        return {"screen_tiles": _screen_tiles(root, names), "cells": _cells(root, variant, names)}
    if step.kind == "ablation_run":  # a subset not created yet: its own training images are not counted
        own = tiles("train", root) if root.path.is_dir() else 0
        return {"detector_batches": detector_batches, "classifier_batches": classifier_batches(),
                "tiles": own + tiles("test", study.root)}
    return {}


def estimate_s(work: dict, probe: Probe) -> float | None:
    """Seconds a step's planned work takes at the probe's rates (None: no probed unit, e.g. subset creation)."""
    rates = {"detector_batches": probe.detector_batch_s, "tiles": probe.tile_s,
             "classifier_batches": probe.classifier_batch_s, "cells": probe.classifier_batch_s / 64,
             "candidate_batches": probe.candidate_batch_s, "screen_tiles": probe.screen_tile_s}
    parts = [n * rates[k] for k, n in work.items() if rates.get(k) is not None]
    return sum(parts) if parts else None


def plan_study(study: Study, *, probe: Probe | None = None) -> list[dict]:
    """The plan: every step with ``done``, its planned work and (given a probe) its estimated seconds; the
    report's evaluation parts last (``done`` None: recomputed from the files at every run)."""
    rows = []
    for step in study_steps(study, progress=False):
        work = planned_work(study, step)
        rows.append({"step": step.name, "done": bool(step.done()), "work": work,
                     "estimate_s": None if probe is None else estimate_s(work, probe)})
    rows += [{"step": name, "done": None, "work": {}, "estimate_s": None} for name in report_parts(study)]
    return rows


def report_parts(study: Study) -> list[str]:
    """The evaluation parts of the report (recomputed from the files at every run; seconds to minutes)."""
    parts = ["Table 1 (counts per label set)", "Table 3 (classifier confusion)",
             "thresholds on the training slides + Table 4 (test F1)"]
    if study.fast:
        parts.append("fast row: paired difference to stage 2, candidate recall, speed-up")
    return parts + (["Fig. 5 + Table 5 (ablation)"] if study.ablation else [])


def format_plan(study: Study, rows: list[dict], probe: Probe | None) -> str:
    """The plan as text: one line per step (done / to run, planned work, estimate)."""
    head = (f"plan: {len(study.root.slides('train'))} training + {len(study.root.slides('test'))} test slides, "
            f"variants {' '.join(study.variants)}, preset {study.preset}, seeds {' '.join(map(str, study.seeds))}, "
            f"ablation {'on' if study.ablation else 'off'}, fast mode {'on' if study.fast else 'off'}")
    lines = [head]
    if probe is not None:
        lines.append(f"estimates: measured probe on {probe.device}: {probe.detector_batch_s:.3g} s per detector "
                     f"training batch, {probe.tile_s:.3g} s per inference tile, {probe.classifier_batch_s:.3g} s per "
                     "classifier batch"
                     + (f", {probe.candidate_batch_s:.3g} s per candidate-model training batch, "
                        f"{probe.screen_tile_s:.3g} s per fast screening tile" if probe.candidate_batch_s else "")
                     + ", times each step's planned count (an estimate, not a promise)")
    total = 0.0
    for row in rows:
        est = row["estimate_s"]
        total += 0 if row["done"] or est is None else est
        when = "—" if est is None else _duration(est)
        work = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in row["work"].items())
        status = "eval" if row["done"] is None else "done" if row["done"] else "todo"
        lines.append(f"  [{status}] {row['step']:<52} {work:<44} est. {when}")
    if probe is not None:
        lines.append(f"estimated total of the steps to run: {_duration(total)}")
    return "\n".join(lines)


def _mtime(path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def run_study(study: Study, *, progress: bool = True) -> dict:
    """Run every step not done yet, then write ``report.md`` and ``summary.json``; returns the summary."""
    from ccmct.training.distributed import barrier, init_distributed

    dist = init_distributed()
    layout = study.layout
    if dist.is_main:
        layout.out.mkdir(parents=True, exist_ok=True)
    barrier()
    timer = StepTimer(layout.timings, label="reproduce")
    for step in study_steps(study, progress=progress):
        stamp = _mtime(layout.timings)
        timer.run(step, is_main=dist.is_main)
        if step.distributed:
            barrier()
        else:  # rank 0 runs it, for hours perhaps: poll instead of a collective that would time out. Rank 0
            # rewrites timings.json when it finished the step (also when its output is incomplete: failed slides)
            while not step.done() and _mtime(layout.timings) == stamp:
                time.sleep(POLL_S)
    if not dist.is_main:
        return {}
    from ccmct.pipeline.report import write_study_report

    summary = write_study_report(study, timings_s=timer.timings_s)
    atomic_write_json(layout.summary, summary)
    return summary


__all__ = ["Probe", "estimate_s", "format_plan", "plan_study",
           "planned_work", "probe_device", "run_study"]
