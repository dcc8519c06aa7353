"""One call that trains a detector end to end: :func:`train_detector` (what ``ccmct train`` runs)."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from pathlib import Path

import torch

from ccmct.config.presets import DetectorPreset, detector_preset
from ccmct.jsonable import strict
from ccmct.training.distributed import barrier, init_distributed
from ccmct.training.export import export_detector, read_summary
from ccmct.training.learner import build_learner, detector_config, training_mpp
from ccmct.training.schedule import CHECKPOINT_DIR, copy_state_for_report, run_schedule

__all__ = ["same_schedule", "schedule_of", "train_detector", "trained_as"]

log = logging.getLogger(__name__)


def schedule_of(preset: str | DetectorPreset) -> dict:
    """What of a preset a detector was made by, as ``training.json`` records it (``schedule``): every field (lr,
    epochs, clipping, weight averaging, sampler mix ...) except the reader processes, which change nothing."""
    preset = detector_preset(preset) if isinstance(preset, str) else preset
    return strict({**dataclasses.asdict(preset), "num_workers": None})


def trained_as(out_dir: str | os.PathLike[str], root, variant: str, preset: str | DetectorPreset, *, seed: int = 0,
               backbone_weights: str | os.PathLike[str] | None = None, kind: str = "retinanet") -> dict | None:
    """The ``training.json`` summary of a finished model in ``out_dir`` that ``train_detector`` with these
    arguments would make (same architecture config, seed and schedule), else None (missing, unfinished, or
    made by another preset — e.g. one from before the preset changed, which must be trained again)."""
    preset = detector_preset(preset) if isinstance(preset, str) else preset
    out_dir = Path(out_dir)
    if not _has_model_files(out_dir):
        return None  # before opening the training slides for the config
    return _finished(out_dir, _config_dict(root, variant, preset, backbone_weights, kind), seed, preset)


def _config_dict(root, variant: str, preset: DetectorPreset, backbone_weights, kind: str) -> dict:
    init = "none" if backbone_weights in (None, "none") else str(backbone_weights)
    return detector_config(preset, variant, backbone_init=init, mpp=training_mpp(root), kind=kind).to_dict()


def _has_model_files(out_dir: Path) -> bool:
    return (out_dir / "weights.pt").is_file() and (out_dir / "config.json").is_file()


def _finished(out_dir: Path, config_dict: dict, seed: int, preset: DetectorPreset) -> dict | None:
    """``training.json`` of a finished model with this config, seed and the preset's schedule."""
    if not _has_model_files(out_dir):
        return None
    done = read_summary(out_dir)
    if (done and done.get("finished") and done.get("config") == config_dict and done.get("seed") == seed
            and same_schedule(done.get("schedule"), schedule_of(preset))):
        return done
    return None


def same_schedule(recorded, expected: dict) -> bool:
    """A recorded schedule (``training.json``) is ``expected``; a field the record lacks counts as equal when
    ``expected`` holds that field's default, i.e. the behaviour from before the field existed (a model trained
    before ``weight_average`` was added is not trained again for a preset that leaves it off)."""
    if not isinstance(recorded, dict):
        return False
    defaults = strict({f.name: f.default for f in dataclasses.fields(DetectorPreset)
                       if f.default is not dataclasses.MISSING})
    missing = set(expected) - set(recorded)
    return (set(recorded) <= set(expected) and all(recorded[k] == expected[k] for k in recorded)
            and all(k in defaults and expected[k] == defaults[k] for k in missing))


def train_detector(root: str | os.PathLike[str], variant: str, preset: str | DetectorPreset,
                   out_dir: str | os.PathLike[str], *, seed: int = 0,
                   backbone_weights: str | os.PathLike[str] | None = None, num_workers: int | None = None,
                   progress: bool = True, kind: str = "retinanet") -> dict:
    """Train the first-stage detector and write a model directory.

    Runs on one process, or data-parallel under ``torchrun`` (see :mod:`ccmct.training.distributed`).
    An interrupted run resumes from ``out_dir/checkpoint``; a finished one is not trained again.

    Args:
        root: data root.
        variant: MEL, HEAEL or ODAEL.
        preset: ``smoke`` / ``quick`` / ``paper`` or a :class:`DetectorPreset`.
        out_dir: model directory to write (``weights.pt``, ``config.json``, ``training.json``).
        seed: seeds weights and patch draws.
        backbone_weights: ``None`` (random init), ``"pretrained"`` (torchvision ImageNet) or a local file.
        num_workers: patch reader processes (default: the preset's).
        progress: fastai progress bars.
        kind: detector kind of :data:`ccmct.models.registry.MODEL_KINDS` (default the paper's RetinaNet).

    Returns:
        The summary written to ``training.json``: variant, preset, seed, epochs, seconds, ``final`` and
        ``best`` validation rows (``valid_loss``, ``focal_loss``, ``box_loss``, ``patch_f1``), ``history``.
    """
    preset = detector_preset(preset) if isinstance(preset, str) else preset
    out_dir = Path(out_dir)
    dist = init_distributed()
    config_dict = _config_dict(root, variant, preset, backbone_weights, kind)
    # the schedule is part of what a model was made by: a changed preset trains again instead of reusing a model
    # that no longer matches it
    schedule = schedule_of(preset)
    done = _finished(out_dir, config_dict, seed, preset)
    if done:
        log.info("%s: already trained (delete it to train again)", out_dir)
        return done
    if dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    barrier()
    start = time.perf_counter()
    run = build_learner(root, variant, preset, seed=seed, backbone_weights=backbone_weights, dist=dist,
                        num_workers=num_workers, progress=progress, kind=kind)
    state = run_schedule(run, out_dir, is_main=dist.is_main)
    report = copy_state_for_report(state)
    history = report["history"]
    best = next((r for r in history if r["epoch"] == state["stage_best_epoch"]), None)
    summary = {"finished": True, "variant": variant, "preset": preset.name, "seed": seed,
               "world_size": dist.world_size, "epochs": len(history), "seconds": time.perf_counter() - start,
               "patches_per_epoch": preset.patches_per_epoch, "initial": report.get("initial"),
               "final": history[-1] if history else None,
               "best": best, "config": config_dict, "schedule": schedule, "history": history}
    if dist.is_main:
        model = getattr(run.learn.model, "module", run.learn.model)
        export_detector(out_dir, model.float(), run.config, summary)
        shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
    barrier()
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return summary
