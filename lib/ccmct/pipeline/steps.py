"""The steps of a study as plain functions over a :class:`ccmct.pipeline.study.Study`.

Each returns :class:`Step` objects: a name, a "done?" check over the study folder (docs/design.md), the action,
and the work it plans (training batches, inference tiles, ...) for the time estimate of ``ccmct reproduce``.
``distributed`` steps run on every torchrun rank (the training and inference functions share the work); the
others run on rank 0 only.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ccmct.atomicio import atomic_write_json
from ccmct.pipeline.done import data_ready, fast_ready, made_by, model_ready, rescored_ready
from ccmct.pipeline.study import Study

log = logging.getLogger("ccmct.pipeline")

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Step:
    """One resumable step.

    Attributes:
        name: shown in the plan and the timings (``train stage 1 (MEL)``).
        kind: ``data``, ``train_detector``, ``train_classifier``, ``infer``, ``second_stage``,
            ``train_candidate``, ``fast_infer`` (``Study.fast``), ``ablation_subsets``, ``ablation_run``.
        done: is its output there and complete?
        action: does the work (resumes where an earlier run stopped).
        distributed: runs on every torchrun rank (else rank 0 only).
        work: what it plans, for the estimate: ``variant``, ``split``, ``root`` (a data root), ``seed``.
    """

    name: str
    kind: str
    done: Callable[[], bool]
    action: Callable[[], object]
    distributed: bool = False
    work: dict = field(default_factory=dict)


def data_step(study: Study, data_preset: str, *, progress: bool = True) -> Step:
    """Generate the synthetic data root (the demo's first step)."""
    from ccmct.synthetic import generate_dataset

    root = study.root
    return Step("synthetic data", "data", lambda: data_ready(root),
                lambda: generate_dataset(root.path, preset=data_preset, seed=study.seed, progress=progress))


def train_detector_step(study: Study, variant: str, seed: int, *, prefix: str = "", progress: bool = True) -> Step:
    from ccmct.training.run import train_detector, trained_as

    out = study.for_seed(seed).detector_dir(variant)
    # done = trained with this preset's schedule and seed: a model from before the preset changed is trained again
    return Step(f"{prefix}train stage 1 ({variant})", "train_detector",
                lambda: trained_as(out, study.root.path, variant, study.preset, seed=seed) is not None,
                lambda: train_detector(study.root.path, variant, study.preset, out, seed=seed,
                                       num_workers=study.workers, progress=progress),
                distributed=True, work={"variant": variant, "root": study.root})


def train_classifier_step(study: Study, variant: str, seed: int, *, prefix: str = "", progress: bool = True
                          ) -> Step:
    from ccmct.training.classifier import default_start_weights, train_classifier, trained_as

    sub = study.for_seed(seed)
    out = sub.classifier_dir(variant)

    def done() -> bool:  # this preset and seed, started from the first-stage model now there
        return trained_as(out, variant, study.preset, seed=seed,
                          weights_path=default_start_weights(study.preset, sub.detector_dir(variant))) is not None

    return Step(f"{prefix}train stage 2 ({variant})", "train_classifier", done,
                lambda: train_classifier(study.root, variant, study.preset, out,
                                         weights_path=default_start_weights(study.preset, sub.detector_dir(variant)),
                                         seed=seed, num_workers=study.workers, device=study.device,
                                         progress=progress),
                work={"variant": variant, "root": study.root})


def infer_step(study: Study, variant: str, split: str, seed: int, *, prefix: str = "", progress: bool = True
               ) -> Step:
    """First-stage inference of one split's slides (``DataRoot.slides``)."""
    from ccmct.inference.runner import run_inference

    sub = study.for_seed(seed)
    out = sub.result_path(variant, split, 1)
    return Step(f"{prefix}infer {variant} {split}", "infer", lambda: made_by(out, sub.detector_dir(variant)),
                lambda: run_inference(sub.detector_dir(variant), study.root.slides(split), out,
                                      device=study.device, progress=progress),
                distributed=True, work={"variant": variant, "split": split, "root": study.root})


def second_stage_step(study: Study, variant: str, split: str, seed: int, *, prefix: str = "",
                      progress: bool = True) -> Step:
    """Re-score one first-stage result file with the classifier of the same label set (score: the preset's
    ``ClassifierPreset.combine``)."""
    from ccmct.inference.second_stage import classify_results

    sub = study.for_seed(seed)
    source, out = sub.result_path(variant, split, 1), sub.result_path(variant, split, 2)
    combine = study.second_stage_combine
    classifier_dir = sub.classifier_dir(variant)
    return Step(f"{prefix}stage 2 {variant} {split}", "second_stage",
                lambda: rescored_ready(out, source, combine, classifier_dir),
                lambda: classify_results(classifier_dir, source, study.root.wsi_dir, out,
                                         combine=combine, device=study.device, progress=progress,
                                         **({} if study.workers is None else {"num_workers": study.workers})),
                work={"variant": variant, "split": split, "root": study.root})


def train_candidate_step(study: Study, variant: str, seed: int, *, prefix: str = "", progress: bool = True
                         ) -> Step:
    """The fast mode's candidate model of one label set (same preset and seed as the two stages; one process:
    under torchrun rank 0 trains it, docs/fast_mode.md)."""
    from ccmct.training.candidate import train_candidate

    out = study.for_seed(seed).candidate_dir(variant)
    return Step(f"{prefix}train candidate ({variant})", "train_candidate", lambda: model_ready(out),
                lambda: train_candidate(study.root.path, variant, study.preset, out, seed=seed,
                                        num_workers=study.workers, device=study.device, progress=progress),
                work={"variant": variant, "root": study.root})


def fast_infer_step(study: Study, variant: str, split: str, seed: int, *, prefix: str = "", progress: bool = True
                    ) -> Step:
    """Fast-mode inference of one split's slides: the label set's candidate model, its candidates confirmed by
    the same label set's cell classifier (:func:`ccmct.inference.fast.run_fast_inference`; the result file
    format of stage 2, so Table 4's threshold rule and evaluation apply unchanged)."""
    from ccmct.inference.fast import FastOptions, run_fast_inference

    sub = study.for_seed(seed)
    out, candidate, classifier = sub.fast_result_path(variant, split), sub.candidate_dir(variant), \
        sub.classifier_dir(variant)
    options = FastOptions() if study.workers is None else FastOptions(workers=study.workers)
    return Step(f"{prefix}fast inference {variant} {split}", "fast_infer",
                lambda: fast_ready(out, candidate, classifier),
                lambda: run_fast_inference(candidate, classifier, study.root.slides(split), out, options=options,
                                           device=study.device, progress=progress),
                distributed=True, work={"variant": variant, "split": split, "root": study.root})


def seed_steps(study: Study, seed: int, *, progress: bool = True) -> list[Step]:
    """Both stages' training, inference on the training and test slides and re-scoring, for one training seed;
    with ``study.fast`` also the candidate models and the fast inference of both splits.

    Step names of the first seed carry no prefix (``train stage 1 (MEL)``); other seeds' ``seed <s>: ``.
    """
    prefix = "" if seed == study.seed else f"seed {seed}: "
    kw = {"prefix": prefix, "progress": progress}
    steps = [train_detector_step(study, v, seed, **kw) for v in study.variants]
    steps += [train_classifier_step(study, v, seed, **kw) for v in study.variants]
    for variant in study.variants:
        for split in SPLITS:
            steps += [infer_step(study, variant, split, seed, **kw), second_stage_step(study, variant, split, seed, **kw)]
    if study.fast:
        steps += [train_candidate_step(study, v, seed, **kw) for v in study.variants]
        steps += [fast_infer_step(study, v, split, seed, **kw) for v in study.variants for split in SPLITS]
    return steps


def ablation_subset_names(study: Study) -> list[str]:
    """Names of the subsets the ablation creates (``5HPF`` ..., ``3WSI`` ...; ``ccmct.data.subsets_*``)."""
    return [f"{n:g}HPF" for n in study.hpf] + [f"{int(n)}WSI" for n in study.wsi]


def ablation_subsets_step(study: Study, *, progress: bool = True) -> Step:
    """The HPF and WSI subsets of the ablation (paper Table 5), each a data root in ``ablation/``."""
    from ccmct.data.subsets import find_subsets
    from ccmct.data.subsets_hpf import create_hpf_subsets
    from ccmct.data.subsets_wsi import create_wsi_subsets

    out, names = study.layout.ablation_subsets_dir, ablation_subset_names(study)

    def done() -> bool:
        return out.is_dir() and set(names) <= set(find_subsets(out))

    def action() -> None:
        variants = [study.ablation_variant]
        if study.hpf:
            create_hpf_subsets(study.root.path, out, study.hpf, variants=variants, progress=progress)
        if study.wsi:
            create_wsi_subsets(study.root.path, out, study.wsi, variants=variants, seed=study.seed)

    return Step("ablation subsets", "ablation_subsets", done, action, work={"names": names})


def ablation_run_steps(study: Study, *, progress: bool = True) -> list[Step]:
    """One training + evaluation run per ablation subset, plus ``complete`` (:func:`ccmct.pipeline.ablation.run_subset`)."""
    from ccmct.pipeline.ablation import run_done, run_subset

    runs = study.layout.ablation_runs_dir
    subsets = study.layout.ablation_subsets_dir
    plan = {name: subsets / name for name in ablation_subset_names(study)}
    if study.include_complete:
        plan["complete"] = study.root.path
    return [Step(f"ablation run {name}", "ablation_run", lambda n=name: run_done(runs / n, study.preset),
                 lambda n=name, r=root: run_subset(r, study.root.path, runs / n, variant=study.ablation_variant,
                                                   preset=study.preset, device=study.device,
                                                   workers=study.workers or 0, seed=study.seed),
                 work={"variant": study.ablation_variant, "root": root, "ablation": True})
            for name, root in plan.items()]


def study_steps(study: Study, *, progress: bool = True) -> list[Step]:
    """Every resumable step of ``ccmct reproduce``, in order (the report is written after them)."""
    steps = [s for seed in study.seeds for s in seed_steps(study, seed, progress=progress)]
    if study.ablation:
        steps.append(ablation_subsets_step(study, progress=progress))
        steps += ablation_run_steps(study, progress=progress)
    return steps


class StepTimer:
    """Runs steps, skipping done ones, and keeps each step's wall time in ``timings.json`` (kept across runs)."""

    def __init__(self, path: Path, *, label: str = "pipeline") -> None:
        self.path, self.label = Path(path), label
        self.timings_s: dict[str, float] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def run(self, step: Step, *, is_main: bool = True) -> bool:
        """Run ``step`` unless done; returns whether it ran. Under torchrun, non-distributed steps run on rank 0."""
        if step.done():
            log.info("[%s] %-28s reused (output exists)", self.label, step.name)
            return False
        if not (step.distributed or is_main):
            return False
        log.info("[%s] %-28s running ...", self.label, step.name)
        start = time.perf_counter()
        step.action()
        if is_main:
            self.timings_s[step.name] = round(time.perf_counter() - start, 1)
            log.info("[%s] %-28s done in %.0f s", self.label, step.name, self.timings_s[step.name])
            atomic_write_json(self.path, self.timings_s)
        return True
