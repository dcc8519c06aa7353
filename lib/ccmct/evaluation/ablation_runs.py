"""Running the ablation study: one execution of ``AblationStudy/Ablation-Train.ipynb`` per subset.

Layout of a runs folder (``ccmct ablation run --out RUNS``)::

    RUNS/<name>/Ablation-Train.ipynb    the executed notebook (papermill), its outputs included
    RUNS/<name>/detector/, classifier/  the trained models (model directories)
    RUNS/<name>/*.npz                   result files (stage 1 / stage 2, subset training images / full test)
    RUNS/<name>/summary.json            what the evaluation notebook reads (:func:`write_run_summary`)

``<name>`` is the subset's name (``5HPF``, ``3WSI``, ...) or ``complete`` for the reference run on the full data
root. A run whose ``summary.json`` exists for the same preset is not repeated (resume after interruption).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from ccmct.config.paths import DataRoot
from ccmct.errors import CcmctError, FileProblem
from ccmct.evaluation.ablation import SUMMARY_FILE, read_summary

NOTEBOOK_NAME = "Ablation-Train.ipynb"
SUBSET_MANIFEST = "subset.json"  # written by ccmct.data.subsets_{hpf,wsi}


def default_notebook() -> Path:
    """``AblationStudy/Ablation-Train.ipynb`` of the checkout this package is installed from."""
    return Path(__file__).resolve().parents[3] / "AblationStudy" / NOTEBOOK_NAME


def training_set_summary(data_root: str | os.PathLike[str] | DataRoot, *, variant: str = "ODAEL") -> dict:
    """What a run trains on: name, kind, n, training slides, training mitotic figures, annotated area (mm²).

    A subset root answers from its ``subset.json``; any other root is the ``complete`` set: its training
    slides and their mitotic figures in ``variant``. The annotated area of HPF subsets is the crops' area;
    of WSI subsets and the complete set the tumor area of the training slides (:func:`ccmct.data.stats.table1`;
    the slide area where no tumor-zone database exists).
    """
    from ccmct.data.stats import table1

    root = data_root if isinstance(data_root, DataRoot) else DataRoot(data_root)
    if (root.path / SUBSET_MANIFEST).exists():
        from ccmct.data.subsets import read_manifest

        m = read_manifest(root.path)
        summary = {"name": m["name"], "kind": m["kind"], "n": m["n"], "n_train_slides": m["n_train_slides"],
                   "train_mitoses": m["train_mitoses"], "train_area_mm2": m.get("train_area_mm2"),
                   "train_slides": sorted(root.slides("train"))}
        if summary["train_area_mm2"] is None:
            summary["train_area_mm2"] = _train_area_mm2(root, table1(root.path))
        return summary
    table = table1(root.path)
    train = table[table["split"] == "train"]
    column = f"mitotic_figure_{variant}"
    if column not in train:
        raise FileProblem(root.database(variant), f"no {variant} database in this data root")
    return {"name": "complete", "kind": "complete", "n": int(len(train)), "n_train_slides": int(len(train)),
            "train_mitoses": int(train[column].sum()), "train_area_mm2": _train_area_mm2(root, table),
            "train_slides": sorted(train["filename"])}


def _train_area_mm2(root: DataRoot, table) -> float:
    train = table[table["split"] == "train"]
    area = train["tumor_area_mm2"].astype(float)
    if area.isna().any():
        area = _slide_areas_mm2(root, list(train["filename"]))
    return float(area.sum())


def _slide_areas_mm2(root: DataRoot, names: list[str]):
    import pandas as pd

    from ccmct.data.slides import open_slide

    areas = []
    for name in names:
        with open_slide(root.slide_path(name)) as slide:
            w, h = slide.dimensions
            areas.append(w * h * slide.mpp**2 / 1e6)
    return pd.Series(areas, dtype=float)


def _f1_or_none(value) -> float | None:
    """F1 as a JSON value: None where it is undefined (no TP, FP or FN at all)."""
    return None if value is None or value != value else float(value)


def _counts(result: dict) -> dict:
    out = {k: int(result[k]) for k in ("tp", "fp", "fn")}
    out["f1"] = _f1_or_none(result["f1"])
    if "threshold" in result:
        out["threshold"] = float(result["threshold"])
    if "strict" in result:
        out["strict"] = _counts(result["strict"])
    if "per_slide" in result:  # per-slide TP/FP/FN: the slide bootstrap of the notebook's intervals
        out["per_slide"] = {str(name): {k: int(c[k]) for k in ("tp", "fp", "fn")}
                            for name, c in result["per_slide"].items()}
    return out


def write_run_summary(run_dir: str | os.PathLike[str], *, training_set: dict, variant: str, preset: str,
                      trainval: dict[str, dict], test: dict[str, dict], test_root: str | os.PathLike[str],
                      files: dict[str, str] | None = None) -> Path:
    """Write ``<run_dir>/summary.json`` atomically.

    Args:
        run_dir: the run's folder.
        training_set: :func:`training_set_summary` of the subset trained on.
        variant, preset: label set and training preset.
        trainval: ``{"stage1": {...}, "stage2": {...}}`` threshold search on the subset's own training
            images, each with at least ``f1`` and ``threshold`` (the best F1 and where it was found).
        test: ``{"stage1": {...}, "stage2": {...}}`` F1 on the full test slides at those thresholds, each with
            ``tp``, ``fp``, ``fn``, ``f1`` (the paper's matching), optionally ``strict``: the same counts with
            one-to-one matching (which also counts the mitoses of slides without any detection as FN), and
            optionally ``per_slide`` (``F1Result.as_dict()``'s; only TP/FP/FN per slide are kept).
        test_root: the full data root whose test slides were used.
        files: names of the models and result files in ``run_dir``.
    """
    run_dir = Path(run_dir)
    summary = {
        **{k: v for k, v in training_set.items() if k != "train_slides"},
        "train_slides": training_set.get("train_slides", []),
        "variant": variant, "preset": preset, "test_root": str(Path(test_root).resolve()),
        "trainval": {s: {"f1": _f1_or_none(r["f1"]), "threshold": float(r["threshold"])} for s, r in trainval.items()},
        "test": {s: _counts(r) for s, r in test.items()},
        "files": dict(files or {}),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / (SUMMARY_FILE + ".tmp")
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, run_dir / SUMMARY_FILE)
    return run_dir / SUMMARY_FILE


def _is_done(run_dir: Path, preset: str) -> bool:
    try:
        return read_summary(run_dir / SUMMARY_FILE).get("preset") == preset
    except CcmctError:
        return False


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
    """Execute the training notebook once per subset (papermill) and return the run summaries.

    Args:
        subsets_dir: folder made by ``ccmct ablation hpf|wsi``.
        out_dir: runs folder (see the module docstring).
        full_root: the complete data root: its test slides are the test set of every run, and it is the
            training set of the ``complete`` run.
        preset: training preset (``smoke``, ``quick``, ``paper``).
        subsets: only these runs (subset names, and/or ``complete``).
        include_complete: also train on the complete root.
        notebook: the parameterised training notebook (default :func:`default_notebook`).
        variant: label set.
        progress: show papermill's progress bar.
        extra_parameters: more notebook parameters (e.g. ``{"device": "cuda"}``).

    Returns:
        run name -> its summary.
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
        if not _is_done(run_dir, preset):
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


__all__ = ["NOTEBOOK_NAME", "default_notebook", "plan_runs", "run_ablation", "training_set_summary",
           "write_run_summary"]
