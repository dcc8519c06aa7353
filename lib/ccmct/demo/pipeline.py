"""The steps of ``ccmct demo`` (see :mod:`ccmct.demo`): a thin client of :mod:`ccmct.pipeline`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ccmct.atomicio import atomic_write_json
from ccmct.pipeline.done import unfinished_slides
from ccmct.pipeline.layout import SEEDS_DIR, SUMMARY_FILE, TIMINGS_FILE
from ccmct.pipeline.steps import StepTimer, data_step, seed_steps
from ccmct.pipeline.study import Study

log = logging.getLogger("ccmct.demo")

__all__ = ["DemoPlan", "SEEDS_DIR", "SUMMARY_FILE", "TIMINGS_FILE", "run_demo", "seed_steps", "unfinished_slides"]


@dataclass(frozen=True)
class DemoPlan(Study):
    """What the demo runs and where: a :class:`ccmct.pipeline.Study` on a synthetic data set.

    Attributes (beyond :class:`~ccmct.pipeline.Study`'s):
        out_dir: everything goes here (:class:`ccmct.pipeline.Layout`): ``data/`` (synthetic root, unless
            ``data_root``), ``models/``, ``results/``, ``figures/``, ``viewer/``, ``report.md``, ``summary.json``.
        data_preset: synthetic data-set preset, generated with ``seed``.
        variants: MEL and ODAEL by default (the paper's extremes).
        seeds: training seeds; the data set is generated once (with ``seed``), the training / inference /
            re-scoring steps run once per training seed (``seed`` in ``out_dir``, others in
            ``out_dir/seeds/seed-<s>/``).
        fast: also the fast mode per label set (``ccmct demo --fast``; opt-in: about 5 more minutes per seed
            with the quick preset on a 2-core CPU, docs/fast_mode.md): Table 4's ``fast`` row, its paired
            difference to stage 2, the candidate recall and the speed-up.
    """

    variants: tuple[str, ...] = ("MEL", "ODAEL")
    data_preset: str = "demo"

    @property
    def train_variants(self) -> tuple[str, ...]:
        return self.variants


def run_demo(plan: DemoPlan, *, progress: bool = True) -> dict:
    """Run every step of the demo and write the report; returns the summary (also ``summary.json``).

    Order: the synthetic data (once), then :func:`ccmct.pipeline.steps.seed_steps` for every training seed
    (with ``plan.fast`` also the candidate models and the fast inference), then the evaluation and
    ``report.md``, then the viewer.
    """
    layout = plan.layout
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    timer = StepTimer(layout.timings, label="demo")
    timer.run(data_step(plan, plan.data_preset, progress=progress))
    for seed in plan.seeds:
        for step in seed_steps(plan, seed, progress=progress):
            timer.run(step)
    from ccmct.demo.report import write_report

    start = time.perf_counter()
    summary = write_report(plan, timings_s=timer.timings_s)
    summary["timings_s"]["evaluate + report"] = round(time.perf_counter() - start, 1)
    from ccmct.viewer.demo import write_demo_viewer

    start = time.perf_counter()
    summary["viewer"] = write_demo_viewer(plan, summary, progress=progress)  # OUT/viewer/ (docs/viewer.md)
    summary["timings_s"]["viewer"] = round(time.perf_counter() - start, 1)
    atomic_write_json(layout.summary, summary)
    return summary
