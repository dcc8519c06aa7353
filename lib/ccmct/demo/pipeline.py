"""The steps of ``ccmct demo`` (see :mod:`ccmct.demo`)."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from ccmct.config.paths import DataRoot
from ccmct.data.results import result_filename

log = logging.getLogger("ccmct.demo")

SUMMARY_FILE = "summary.json"
TIMINGS_FILE = "timings.json"
SEEDS_DIR = "seeds"
"""Folder (under the output folder) of the training seeds other than the data seed: ``seeds/seed-<s>/``."""


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
        seed: seed of data generation, and the training seed of a single-seed demo.
        data_root: use this data root instead of generating ``out_dir/data``.
        seeds: training seeds (default: just ``seed``). The data set is generated once (with ``seed``); the
            training, inference and re-scoring steps run once per training seed. Layout: the training seed
            equal to ``seed`` keeps the single-seed layout (``out_dir/models``, ``out_dir/results``), so a
            single-seed demo folder is the first seed of a multi-seed one; every other seed ``s`` lives in
            ``out_dir/seeds/seed-<s>/{models,results}``.
    """

    out_dir: Path
    preset: str = "quick"
    data_preset: str = "demo"
    train_variants: tuple[str, ...] = ("MEL", "ODAEL")
    seed: int = 0
    data_root: Path | None = None
    workers: int | None = None
    seeds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        seeds = tuple(int(s) for s in (self.seeds or (self.seed,)))
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"training seeds repeat: {seeds}")
        object.__setattr__(self, "seeds", seeds)

    @property
    def root(self) -> DataRoot:
        return DataRoot(self.data_root or self.out_dir / "data")

    def seed_dir(self, seed: int) -> Path:
        """Folder of one training seed's ``models/`` and ``results/`` (see ``seeds``)."""
        return self.out_dir if seed == self.seed else self.out_dir / SEEDS_DIR / f"seed-{seed}"

    def for_seed(self, seed: int) -> "DemoPlan":
        """The single-seed plan of one training seed: its folders, the shared data root."""
        return replace(self, out_dir=self.seed_dir(seed), seed=seed, seeds=(seed,), data_root=self.root.path)

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


def unfinished_slides(path: Path) -> dict[str, str]:
    """Slides a result file does not hold although its step meant to: ``{slide: reason}`` from its metadata
    (``pending``: an interrupted second stage; ``failed``: an unreadable slide in inference, also when the
    second stage re-scored a first-stage file with failed slides). Empty for a complete file."""
    from ccmct.data.results import read_metadata

    try:
        meta = read_metadata(path)
    except Exception as err:  # noqa: BLE001 - an unreadable result file is an unfinished step
        return {"*": f"unreadable result file ({err})"}
    out = {name: "pending (interrupted run)" for name in meta.get("pending") or []}
    for source in (meta, meta.get("stage1") or {}):
        out.update({name: f"failed: {reason}" for name, reason in (source.get("failed") or {}).items()})
    return out


def _result_ready(path: Path) -> bool:
    """A result file exists and its metadata lists no pending or failed slides."""
    return path.exists() and not unfinished_slides(path)


def _rescored_ready(rescored: Path, source: Path) -> bool:
    """A second-stage file is complete and was made from the current first-stage file (a first stage rerun,
    e.g. after a failed slide, makes the re-scoring stale)."""
    from ccmct.data.results import read_metadata

    if not _result_ready(rescored) or not source.exists():
        return False
    return read_metadata(rescored).get("stage1") == read_metadata(source)


def seed_steps(plan: DemoPlan, seed: int, *, progress: bool = True
               ) -> list[tuple[str, Callable[[], bool], Callable[[], object]]]:
    """The training / inference / re-scoring steps of one training seed, in order: (name, done?, action).

    Step names of the data seed are the single-seed demo's (``train stage 1 (MEL)``); other seeds' are
    prefixed ``seed <s>: ``.
    """
    from ccmct.inference.runner import run_inference
    from ccmct.inference.second_stage import classify_results
    from ccmct.training.classifier import default_start_weights, train_classifier
    from ccmct.training.run import train_detector

    sub, root = plan.for_seed(seed), plan.root
    prefix = "" if seed == plan.seed else f"seed {seed}: "
    steps = []
    for variant in plan.train_variants:
        steps.append((f"{prefix}train stage 1 ({variant})", lambda v=variant: _model_ready(sub.detector_dir(v)),
                      lambda v=variant: train_detector(root.path, v, plan.preset, sub.detector_dir(v), seed=seed,
                                                       num_workers=plan.workers, progress=progress)))
    for variant in plan.train_variants:
        steps.append((f"{prefix}train stage 2 ({variant})", lambda v=variant: _model_ready(sub.classifier_dir(v)),
                      lambda v=variant: train_classifier(root, v, plan.preset, sub.classifier_dir(v),
                                                         weights_path=default_start_weights(plan.preset,
                                                                                            sub.detector_dir(v)),
                                                         seed=seed, num_workers=plan.workers, progress=progress)))
    for variant in plan.train_variants:
        for which in ("train", "test"):
            slides = {name: root.slide_path(name) for name, s in sorted(root.split().items()) if s == which}
            out, rescored = sub.result_path(variant, which, 1), sub.result_path(variant, which, 2)
            steps.append((f"{prefix}infer {variant} {which}", lambda o=out: _result_ready(o),
                          lambda m=sub.detector_dir(variant), s=slides, o=out: run_inference(m, s, o,
                                                                                             progress=progress)))
            steps.append((f"{prefix}stage 2 {variant} {which}", lambda r=out, o=rescored: _rescored_ready(o, r),
                          lambda r=out, o=rescored, c=sub.classifier_dir(variant): classify_results(
                              c, r, root.wsi_dir, o, progress=progress)))
    return steps


def run_demo(plan: DemoPlan, *, progress: bool = True) -> dict:
    """Run every step of the demo and write the report; returns the summary (also ``summary.json``).

    Order: the synthetic data (once), then :func:`seed_steps` for every training seed, then the evaluation
    and ``report.md`` (a step added later, e.g. a viewer export, goes after the report here).
    """
    from ccmct.data.synthetic import generate_dataset

    plan.out_dir.mkdir(parents=True, exist_ok=True)
    timer = _Timer(plan.out_dir / TIMINGS_FILE)
    root = plan.root
    timer.run("synthetic data", _data_ready(root),
              lambda: generate_dataset(root.path, preset=plan.data_preset, seed=plan.seed, progress=progress))
    for seed in plan.seeds:
        for name, done, action in seed_steps(plan, seed, progress=progress):
            timer.run(name, done(), action)
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
