"""The steps of ``ccmct demo`` (see :mod:`ccmct.demo`)."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ccmct.config.paths import DataRoot
from ccmct.data.results import result_filename

log = logging.getLogger("ccmct.demo")

SUMMARY_FILE = "summary.json"
TIMINGS_FILE = "timings.json"


@dataclass(frozen=True)
class DemoPlan:
    """What the demo runs and where.

    Attributes:
        out_dir: everything goes here: ``data/`` (synthetic root, unless ``data_root``), ``models/``,
            ``results/``, ``figures/``, ``report.md``, ``summary.json``.
        preset: training preset of both stages (``quick`` by default; ``smoke`` for a code-path check).
        data_preset: synthetic data-set preset.
        train_variants: label sets both stages are trained on: one detector and one cell classifier each; as
            in the paper's Table 4, a detector's output is re-scored by the classifier of the same label set.
        seed: seed of data generation and training.
        data_root: use this data root instead of generating ``out_dir/data``.
    """

    out_dir: Path
    preset: str = "quick"
    data_preset: str = "demo"
    train_variants: tuple[str, ...] = ("MEL", "ODAEL")
    seed: int = 0
    data_root: Path | None = None
    workers: int | None = None

    @property
    def root(self) -> DataRoot:
        return DataRoot(self.data_root or self.out_dir / "data")

    @property
    def models_dir(self) -> Path:
        return self.out_dir / "models"

    @property
    def results_dir(self) -> Path:
        return self.out_dir / "results"

    def detector_dir(self, variant: str) -> Path:
        return self.models_dir / f"RetinaNet-{variant}"

    def classifier_dir(self, variant: str) -> Path:
        return self.models_dir / f"CellClassifier-{variant}"

    def result_path(self, variant: str, split: str, stage: int) -> Path:
        return self.results_dir / result_filename(variant, split, stage=stage)


@dataclass
class _Timer:
    path: Path
    timings_s: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.path.exists():
            self.timings_s.update(json.loads(self.path.read_text()))

    def run(self, step: str, done: bool, action: Callable[[], object]) -> None:
        """Run ``action`` unless ``done``; record its wall time under ``step`` (kept from an earlier run)."""
        if done:
            log.info("[demo] %-28s reused (output exists)", step)
            return
        log.info("[demo] %-28s running ...", step)
        start = time.perf_counter()
        action()
        self.timings_s[step] = round(time.perf_counter() - start, 1)
        log.info("[demo] %-28s done in %.0f s", step, self.timings_s[step])
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.timings_s, indent=1))
        os.replace(tmp, self.path)


def _data_ready(root: DataRoot) -> bool:
    return root.split_file.exists() and all(root.database(v).exists() for v in ("MEL", "HEAEL", "ODAEL"))


def _model_ready(model_dir: Path) -> bool:
    return (model_dir / "config.json").exists() and (model_dir / "weights.pt").exists()


def run_demo(plan: DemoPlan, *, progress: bool = True) -> dict:
    """Run every step of the demo and write the report; returns the summary (also ``summary.json``)."""
    from ccmct.data.synthetic import generate_dataset
    from ccmct.inference.runner import run_inference
    from ccmct.inference.second_stage import classify_results
    from ccmct.training.classifier import default_start_weights, train_classifier
    from ccmct.training.run import train_detector

    plan.out_dir.mkdir(parents=True, exist_ok=True)
    timer = _Timer(plan.out_dir / TIMINGS_FILE)
    root = plan.root
    timer.run("synthetic data", _data_ready(root),
              lambda: generate_dataset(root.path, preset=plan.data_preset, seed=plan.seed, progress=progress))
    for variant in plan.train_variants:
        timer.run(f"train stage 1 ({variant})", _model_ready(plan.detector_dir(variant)),
                  lambda v=variant: train_detector(root.path, v, plan.preset, plan.detector_dir(v), seed=plan.seed,
                                                   num_workers=plan.workers, progress=progress))
    for variant in plan.train_variants:
        timer.run(f"train stage 2 ({variant})", _model_ready(plan.classifier_dir(variant)),
                  lambda v=variant: train_classifier(root, v, plan.preset, plan.classifier_dir(v),
                                                     weights_path=default_start_weights(plan.preset, plan.detector_dir(v)),
                                                     seed=plan.seed, num_workers=plan.workers, progress=progress))
    split = root.split()
    for variant in plan.train_variants:
        for which in ("train", "test"):
            slides = {name: root.slide_path(name) for name, s in sorted(split.items()) if s == which}
            out = plan.result_path(variant, which, 1)
            timer.run(f"infer {variant} {which}", out.exists(),
                      lambda m=plan.detector_dir(variant), s=slides, o=out: run_inference(m, s, o, progress=progress))
            rescored = plan.result_path(variant, which, 2)
            timer.run(f"stage 2 {variant} {which}", rescored.exists(),
                      lambda r=out, o=rescored, c=plan.classifier_dir(variant): classify_results(c, r, root.wsi_dir, o,
                                                                 progress=progress))
    from ccmct.demo.report import write_report

    start = time.perf_counter()
    summary = write_report(plan, timings_s=timer.timings_s)
    summary["timings_s"]["evaluate + report"] = round(time.perf_counter() - start, 1)
    from ccmct.viewer.demo import write_demo_viewer

    start = time.perf_counter()
    summary["viewer"] = write_demo_viewer(plan, summary, progress=progress)  # OUT/viewer/ (docs/viewer.md)
    summary["timings_s"]["viewer"] = round(time.perf_counter() - start, 1)
    _write_json(plan.out_dir / SUMMARY_FILE, summary)
    return summary


def _write_json(path: Path, document: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=1))
    os.replace(tmp, path)
