"""Running the ablation study (paper Fig. 5, Table 5): one training + evaluation run per subset.

Layout of a runs folder (``ccmct ablation run --out RUNS``; ``STUDY/ablation_runs`` of ``ccmct reproduce``)::

    RUNS/<name>/Ablation-Train.ipynb    the executed notebook (``ccmct ablation run``, papermill)
    RUNS/<name>/detector/, classifier/  the trained models (model directories)
    RUNS/<name>/*.npz                   result files (stage 1 / stage 2, subset training images / full test)
    RUNS/<name>/summary.json            what the evaluation reads (:func:`ccmct.evaluation.ablation_runs.write_run_summary`)

``<name>`` is the subset's name (``5HPF``, ``3WSI``, ...) or ``complete`` for the reference run on the full data
root. A run whose ``summary.json`` exists for the same preset is not repeated (resume after interruption).
The run itself is :func:`run_subset`; ``AblationStudy/Ablation-Train.ipynb`` is a thin notebook over it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ccmct.config.paths import DataRoot
from ccmct.errors import CcmctError, FileProblem
from ccmct.evaluation.ablation import SUMMARY_FILE, read_summary

NOTEBOOK_NAME = "Ablation-Train.ipynb"
ABLATION_MIN_THRESHOLD = 0.20
"""Lowest threshold of the ablation's threshold search (the authors' AblationStudy_Evaluation.ipynb)."""


def default_notebook() -> Path:
    """``AblationStudy/Ablation-Train.ipynb`` of the checkout this package is installed from."""
    return Path(__file__).resolve().parents[3] / "AblationStudy" / NOTEBOOK_NAME


def run_done(run_dir: Path, preset: str) -> bool:
    """A run's ``summary.json`` exists and was made with ``preset`` as it is now: its second-stage score and its
    detector schedule (a run from before the preset changed is run again; one whose summary records no
    schedule cannot be checked and is run again too)."""
    from ccmct.config.presets import classifier_preset
    from ccmct.training.run import same_schedule, schedule_of

    try:
        summary = read_summary(Path(run_dir) / SUMMARY_FILE)
    except CcmctError:
        return False
    return (summary.get("preset") == preset
            and summary.get("stage2_combine", "replace") == classifier_preset(preset).combine
            and same_schedule(summary.get("detector_schedule"), schedule_of(preset)))


@dataclass
class SubsetRun:
    """What :func:`run_subset` produced: the summary file, the training set, the threshold searches (for plots)."""

    summary_path: Path
    training_set: dict
    searches: dict
    test: dict


def run_subset(subset_root: str | os.PathLike[str], test_root: str | os.PathLike[str],
               out_dir: str | os.PathLike[str], *, variant: str = "ODAEL", preset: str = "quick",
               min_threshold: float = ABLATION_MIN_THRESHOLD, device: str | None = None, workers: int = 0,
               seed: int = 0, progress: bool = False) -> SubsetRun:
    """One ablation run, as the authors did it for each ablation model.

    1. first stage: the detector trained on the subset's training images (HPF crops or the kept slides);
    2. second stage: the cell classifier on the same subset's cells (CPU presets start it from this run's
       first-stage backbone, ``default_start_weights``; ``paper`` from ImageNet);
    3. detections on the subset's own training images and on the full test slides of ``test_root``;
    4. thresholds: per stage the first maximum of F1 on the subset's own training images (grid from
       ``min_threshold``); 5. test: paper and strict F1 on the full test slides at those thresholds;
    then ``out_dir/summary.json``. Every part resumes (finished models and result files are kept).
    """
    from ccmct.config.presets import classifier_preset
    from ccmct.data.results import read_results, result_filename
    from ccmct.evaluation import f1_scores, optimize_threshold
    from ccmct.evaluation.ablation_runs import training_set_summary, write_run_summary
    from ccmct.inference import InferenceOptions, run_inference
    from ccmct.inference.second_stage import classify_results
    from ccmct.training.classifier import default_start_weights, train_classifier, trained_as
    from ccmct.training.run import schedule_of, train_detector

    subset, full, out = DataRoot(subset_root), DataRoot(test_root), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    training_set = training_set_summary(subset, variant=variant)
    detector_dir, classifier_dir = out / "detector", out / "classifier"
    train_detector(subset.path, variant, preset, detector_dir, seed=seed, num_workers=workers, progress=progress)
    start = default_start_weights(preset, detector_dir)
    if trained_as(classifier_dir, variant, preset, seed=seed, weights_path=start) is None:
        for part in ("train", "test"):  # re-scored by an older classifier
            (out / result_filename(variant, part, stage=2)).unlink(missing_ok=True)
        train_classifier(subset, variant, preset, classifier_dir, device=device, progress=progress, seed=seed,
                         weights_path=start)
    files = {}
    for part, root in (("train", subset), ("test", full)):
        stage1 = out / result_filename(variant, part, stage=1)
        run_inference(detector_dir, root.slides(part), stage1, options=InferenceOptions(workers=workers),
                      device=device, progress=progress)
        stage2 = classify_results(classifier_dir, stage1, root.wsi_dir, out / result_filename(variant, part, stage=2),
                                  combine=classifier_preset(preset).combine, num_workers=workers, device=device,
                                  progress=progress)
        files[f"stage1_{part}"], files[f"stage2_{part}"] = stage1.name, Path(stage2).name
    trainval, test, searches = {}, {}, {}
    for stage in ("stage1", "stage2"):
        search = optimize_threshold(subset.database(variant), read_results(out / files[f"{stage}_train"]),
                                    min_threshold=min_threshold)
        searches[stage], trainval[stage] = search, {"f1": search.best_f1, "threshold": search.best_threshold}
        detections = read_results(out / files[f"{stage}_test"])
        paper, strict = (f1_scores(full.database(variant), detections, threshold=search.best_threshold, matching=m)
                         for m in ("paper", "strict"))
        test[stage] = {**paper.as_dict(), "strict": strict.as_dict()}
    path = write_run_summary(out, training_set=training_set, variant=variant, preset=preset, trainval=trainval,
                             test=test, test_root=full.path,
                             files={"detector": detector_dir.name, "classifier": classifier_dir.name, **files},
                             stage2_combine=classifier_preset(preset).combine,
                             detector_schedule=schedule_of(preset))
    return SubsetRun(path, training_set, searches, test)


def plan_runs(subsets_dir: str | os.PathLike[str], *, full_root: str | os.PathLike[str],
              subsets: Iterable[str] | None = None, include_complete: bool = True) -> dict[str, Path]:
    """Run name -> data root to train on: every subset found (or the named ones) plus ``complete``.

    Raises:
        FileProblem: a named subset does not exist.
    """
    from ccmct.data.subsets import find_subsets

    found = find_subsets(subsets_dir)
    if subsets is not None:
        missing = [s for s in subsets if s not in found and s != "complete"]
        if missing:
            raise FileProblem(subsets_dir, f"no subset(s) {', '.join(missing)} here (found: {', '.join(found) or 'none'})")
        wanted = list(subsets)
        found = {k: v for k, v in found.items() if k in wanted}
        include_complete = include_complete and "complete" in wanted
    plan = dict(found)
    if include_complete:
        plan["complete"] = Path(full_root)
    return plan


def run_ablation(subsets_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                 full_root: str | os.PathLike[str], preset: str = "quick", subsets: Iterable[str] | None = None,
                 include_complete: bool = True, notebook: str | os.PathLike[str] | None = None,
                 variant: str = "ODAEL", progress: bool = True, extra_parameters: dict | None = None) -> dict[str, dict]:
    """Execute the training notebook (a thin notebook over :func:`run_subset`) once per subset with papermill,
    keeping each executed copy; returns the run summaries (run name -> summary).

    Args:
        subsets_dir: folder made by ``ccmct ablation hpf|wsi``.
        out_dir: runs folder (see the module docstring).
        full_root: the complete data root: its test slides are every run's test set, and it is the training
            set of the ``complete`` run.
        preset: training preset (``smoke``, ``quick``, ``paper``).
        subsets: only these runs (subset names, and/or ``complete``).
        include_complete: also train on the complete root.
        notebook: the parameterised training notebook (default :func:`default_notebook`).
        variant: label set.
        progress: show papermill's progress bar.
        extra_parameters: more notebook parameters (e.g. ``{"device": "cuda"}``).
    """
    import papermill

    notebook = Path(notebook) if notebook else default_notebook()
    if not notebook.exists():
        raise FileProblem(notebook, "training notebook not found (pass --notebook)")
    out_dir = Path(out_dir)
    summaries = {}
    for name, root in plan_runs(subsets_dir, full_root=full_root, subsets=subsets,
                                include_complete=include_complete).items():
        run_dir = out_dir / name
        if not run_done(run_dir, preset):
            run_dir.mkdir(parents=True, exist_ok=True)
            params = {"subset_root": str(Path(root).resolve()), "test_root": str(Path(full_root).resolve()),
                      "out_dir": str(run_dir.resolve()), "variant": variant, "preset": preset,
                      **{k: ("" if v is None else v) for k, v in (extra_parameters or {}).items()}}
            try:
                papermill.execute_notebook(str(notebook), str(run_dir / NOTEBOOK_NAME), parameters=params,
                                           kernel_name="python3", progress_bar=progress, cwd=str(run_dir))
            except papermill.PapermillExecutionError as err:
                raise FileProblem(run_dir / NOTEBOOK_NAME, f"run {name!r} failed in cell {err.exec_count}: "
                                                           f"{err.ename}: {err.evalue} (the executed notebook "
                                                           "shows the traceback)") from err
        summaries[name] = read_summary(run_dir / SUMMARY_FILE)
    return summaries


__all__ = ["ABLATION_MIN_THRESHOLD", "NOTEBOOK_NAME", "SubsetRun", "default_notebook", "plan_runs",
           "run_ablation", "run_done", "run_subset"]
