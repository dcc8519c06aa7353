"""``ccmct notebooks``: execute every notebook of the repository in pipeline order with papermill.

The notebooks share one data root and one output folder: Setup (synthetic data when asked) ->
RetinaNet-CCMCT-{MEL,HEAEL,ODAEL} -> whole-slide inference (library call, like ``ccmct infer``) ->
2nd_stage/CellClassification-{MEL,HEAEL,ODAEL} -> second-stage re-scoring (like ``ccmct classify``) ->
Evaluation -> ablation subsets (``ccmct ablation``) -> AblationStudy/Ablation-Train per subset ->
AblationStudy_Evaluation. The executed copies are kept in ``<out>/notebooks/``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ccmct.pipeline import Layout, Study
from ccmct.types import VARIANTS

log = logging.getLogger("ccmct.notebooks")

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository holding the notebooks (``lib/ccmct`` lives two levels below it)."""

CELL_TIMEOUT_S = 3600
"""Default papermill ``execution_timeout`` per notebook cell, seconds, for the ``smoke`` / ``quick`` presets
(their longest cell, a ``quick`` training on 2 CPU cores, takes ~10 min; docs/benchmarks.md). The ``paper``
preset has no default limit: its training cells run for hours on purpose."""


@dataclass(frozen=True)
class NotebookRun:
    """Where one ``ccmct notebooks`` run reads and writes.

    Attributes:
        data_root: the data root (created by Setup.ipynb when ``synthetic_preset`` is set and it is absent).
        out_dir: a study folder (:class:`ccmct.pipeline.Layout`): models/, results/, ablation/, ablation_runs/,
            figures/ (Fig. 5), notebooks/ (executed copies).
        preset: training preset of every notebook.
        synthetic_preset: let Setup.ipynb generate this synthetic preset into ``data_root``.
        hpf: HPF subset sizes of the ablation; ``wsi``: WSI subset sizes.
        ablation_subsets: train only these subsets (e.g. ``("0.5HPF",)``); None: every subset created.
        include_complete: also run the ablation notebook on the complete data root (Fig. 5's last point).
        cell_timeout_s: papermill's ``execution_timeout``: a cell running longer fails the run with a
            :class:`ccmct.errors.CcmctError` naming the notebook, instead of hanging. None (default): by
            preset, :data:`CELL_TIMEOUT_S`, or no limit for ``paper`` (its training cells run for hours);
            0: no limit.
    """

    data_root: Path
    out_dir: Path
    preset: str = "smoke"
    synthetic_preset: str | None = None
    hpf: tuple[float, ...] = (5, 10, 50)
    wsi: tuple[int, ...] = (3, 6, 12)
    ablation_subsets: tuple[str, ...] | None = None
    include_complete: bool = True
    repo: Path = REPO_ROOT
    kernel_name: str = "python3"
    cell_timeout_s: int | None = None

    def __post_init__(self):
        if self.cell_timeout_s is None and self.preset != "paper":
            object.__setattr__(self, "cell_timeout_s", CELL_TIMEOUT_S)

    @property
    def layout(self) -> Layout:
        return Layout(self.out_dir)

    @property
    def study(self) -> Study:
        """The study of this run (the notebooks train, the library infers and re-scores: :mod:`ccmct.pipeline`)."""
        return Study(out_dir=self.out_dir, data_root=self.data_root, preset=self.preset, workers=0,
                     hpf=self.hpf, wsi=self.wsi, include_complete=self.include_complete)


def _execute(run: NotebookRun, notebook: str, parameters: dict) -> Path:
    import papermill

    src = run.repo / notebook
    if not src.exists():
        from ccmct.errors import FileProblem

        raise FileProblem(src, "notebook not found (run from a checkout of the ccmct repository)")
    out = run.out_dir / "notebooks" / notebook
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    log.info("[notebooks] %s ...", notebook)
    try:
        papermill.execute_notebook(str(src), str(out), parameters=parameters, kernel_name=run.kernel_name,
                                   cwd=str(src.parent), progress_bar=False,
                                   execution_timeout=run.cell_timeout_s or None)
    except Exception as err:  # noqa: BLE001 - papermill / nbclient raise several unrelated types
        if type(err).__name__ not in ("CellTimeoutError", "TimeoutError", "DeadKernelError"):
            raise
        from ccmct.errors import FileProblem

        raise FileProblem(src, f"a cell did not finish within {run.cell_timeout_s} s ({type(err).__name__}); "
                               f"the partial copy is {out}") from err
    log.info("[notebooks] %s done in %.0f s", notebook, time.perf_counter() - start)
    return out


def run_notebooks(run: NotebookRun) -> list[Path]:
    """Execute every notebook in pipeline order; returns the executed copies."""
    from ccmct.pipeline.steps import SPLITS, infer_step, second_stage_step

    data, out = str(Path(run.data_root).resolve()), run.out_dir.resolve()
    run = NotebookRun(**{**run.__dict__, "out_dir": out, "data_root": Path(data)})
    executed = [_execute(run, "Setup.ipynb", {"data_root": data, "synthetic_preset": run.synthetic_preset})]
    study, layout = run.study, run.layout
    for variant in VARIANTS:
        executed.append(_execute(run, f"RetinaNet-CCMCT-{variant}.ipynb", {
            "data_root": data, "variant": variant, "preset": run.preset, "out_dir": str(layout.detector_dir(variant))}))
        for split in SPLITS:
            infer_step(study, variant, split, study.seed, progress=False).action()
    for variant in VARIANTS:
        executed.append(_execute(run, f"2nd_stage/CellClassification-{variant}.ipynb", {
            "data_root": data, "variant": variant, "preset": run.preset,
            "out_dir": str(layout.classifier_dir(variant)), "detector_dir": str(layout.detector_dir(variant))}))
        for split in SPLITS:
            second_stage_step(study, variant, split, study.seed, progress=False).action()
    executed.append(_execute(run, "Evaluation.ipynb", {"data_root": data, "results_dir": str(layout.results_dir)}))
    executed += _ablation(run)
    return executed


def _ablation(run: NotebookRun) -> list[Path]:
    """The ablation subsets (the pipeline's step), one executed Ablation-Train.ipynb per subset, then
    AblationStudy_Evaluation.ipynb drawing Fig. 5 to the layout's ``figures/figure5.png``."""
    from ccmct.pipeline.ablation import run_ablation
    from ccmct.pipeline.steps import ablation_subsets_step

    layout = run.layout
    subsets, runs = layout.ablation_subsets_dir, layout.ablation_runs_dir
    ablation_subsets_step(run.study, progress=False).action()
    run_ablation(subsets, runs, full_root=run.data_root, preset=run.preset, progress=False,
                 subsets=run.ablation_subsets, include_complete=run.include_complete,
                 extra_parameters={"workers": 0})
    copies = sorted((runs).glob("*/*.ipynb"))
    layout.figures_dir.mkdir(parents=True, exist_ok=True)
    return copies + [_execute(run, "AblationStudy_Evaluation.ipynb", {
        "runs_dir": str(runs), "figure_path": str(layout.figure5)})]
