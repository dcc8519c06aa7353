"""The evaluation side of an ablation run: what it trained on and its ``summary.json``.

Running the ablation (training, inference) is the pipeline's job: :mod:`ccmct.pipeline.ablation` (runs folder
layout there). This module only describes a training set and writes / shapes a run's summary.
"""

from __future__ import annotations

import os
from pathlib import Path

from ccmct.atomicio import atomic_write_json
from ccmct.config.paths import DataRoot
from ccmct.errors import FileProblem
from ccmct.evaluation.ablation import SUMMARY_FILE

SUBSET_MANIFEST = "subset.json"  # written by ccmct.data.subsets_{hpf,wsi}


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
                      files: dict[str, str] | None = None, stage2_combine: str = "replace",
                      detector_schedule: dict | None = None) -> Path:
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
        stage2_combine: the second-stage score (``replace`` or ``geometric_mean``, the preset's ``combine``).
        detector_schedule: the detector preset as the model's ``training.json`` records it
            (:func:`ccmct.training.run.schedule_of`), so that a changed preset runs again.
    """
    run_dir = Path(run_dir)
    summary = {
        **{k: v for k, v in training_set.items() if k != "train_slides"},
        "train_slides": training_set.get("train_slides", []),
        "variant": variant, "preset": preset, "test_root": str(Path(test_root).resolve()),
        "trainval": {s: {"f1": _f1_or_none(r["f1"]), "threshold": float(r["threshold"])} for s, r in trainval.items()},
        "test": {s: _counts(r) for s, r in test.items()},
        "files": dict(files or {}), "stage2_combine": stage2_combine, "detector_schedule": detector_schedule,
    }
    return atomic_write_json(run_dir / SUMMARY_FILE, summary)


__all__ = ["training_set_summary", "write_run_summary"]
