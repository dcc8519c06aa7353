"""The training schedule of a preset, with checkpoints so that an interrupted run resumes.

The schedule is a list of *units*: one one-cycle fit of ``stage.epochs`` pseudo-epochs each (``stage.cycles``
units per stage). After every pseudo-epoch the main process writes ``<out>/checkpoint/state.pt`` (model and
optimizer state, unit, epoch within it, global pseudo-epoch, early-stopping state, history; a plain dict
loadable with ``weights_only=True``) atomically. A new run with the same ``--out`` skips the finished units
and restarts the interrupted one at its next pseudo-epoch (fastai ``fit_one_cycle(start_epoch=...)``, which
keeps the one-cycle position). Stages with early stopping end a cycle when the validation patch F1 has not
improved for ``preset.patience`` pseudo-epochs and restore the best weights of the stage at its end.

Resume is exact: a run killed at any point and resumed ends with weights bit-identical to an uninterrupted
run on the same machine (tests/training/test_resume_exact.py). The checkpoint also holds the RNG states and the
CUDA gradient scaler (:mod:`ccmct.training.resume`); the optimiser state is loaded *after* the unit's
``freeze()`` / ``unfreeze()``, which clear it (fastai), so a unit resumed in its middle keeps its Adam moments;
a run killed inside a pseudo-epoch repeats that pseudo-epoch with the same patch draws.

With ``preset.weight_average`` set (no built-in preset; measured on ``quick``, not adopted) a :class:`ccmct.training.averaging.WeightAverage`
keeps a moving average of the weights over the whole schedule; validation, the best-of-stage weights and the
result are the averaged weights, and the average (with its update count) is part of the checkpoint.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch
from fastai.callback.core import Callback, CancelFitException

from ccmct.config.presets import DetectorPreset, Stage
from ccmct.errors import CcmctError
from ccmct.training import resume
from ccmct.training.averaging import WeightAverage
from ccmct.atomicio import atomic_path

__all__ = ["CHECKPOINT_DIR", "ScheduleCallback", "load_state", "run_schedule", "units"]

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"


def units(preset: DetectorPreset) -> list[tuple[int, Stage]]:
    """The schedule flattened to ``(stage index, stage)`` per one-cycle fit."""
    return [(i, stage) for i, stage in enumerate(preset.stages) for _ in range(stage.cycles)]


def _unwrap(model):
    return getattr(model, "module", model)


def _plain(obj):
    """fastai's optimizer state (fastcore ``L``, numpy scalars) as plain containers for ``weights_only``."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) or type(obj).__name__ == "L":
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _atomic_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_state(out_dir: Path, config_dict: dict) -> dict | None:
    """The checkpoint of an interrupted run in ``out_dir`` (None if there is none).

    Raises:
        CcmctError: the checkpoint belongs to another model configuration or cannot be read.
    """
    path = Path(out_dir) / CHECKPOINT_DIR / STATE_FILE
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise CcmctError(f"{path}: cannot read the checkpoint ({err}); delete it to start over") from err
    if state.get("config") != config_dict:
        raise CcmctError(f"{path}: checkpoint of another configuration (preset / variant / architecture); "
                         "use another --out or delete the checkpoint folder")
    return state


def _new_state(config_dict: dict) -> dict:
    return {"config": config_dict, "unit": 0, "epoch_in_unit": 0, "global_epoch": 0, "stage_best": None,
            "stage_best_epoch": -1, "wait": 0, "stage_of_best": -1, "history": [], "model": None, "opt": None,
            "best_model": None, "initial": None, "rng": None, "average": None}


class ScheduleCallback(Callback):
    """Per pseudo-epoch: sets the training draw, records history, keeps the best, early-stops, checkpoints."""

    order = 60  # after the Recorder (50): metrics of the epoch are in learn.final_record

    def __init__(self, state: dict, *, unit: int, stage_index: int, stage: Stage, start_epoch: int,
                 patience: int, checkpoint: Path | None, averager: WeightAverage | None = None):
        self.state, self.unit, self.stage_index, self.stage = state, unit, stage_index, stage
        self.start_epoch, self.patience, self.checkpoint = start_epoch, patience, checkpoint
        self.averager = averager

    def before_fit(self):
        # after fastai's MixedPrecision (order 10) made a fresh gradient scaler: a unit resumed in its middle
        # continues with the scaler of the interrupted run
        if self.start_epoch > 0:
            resume.restore_scaler(self.learn, self.state.get("rng"))

    def before_epoch(self):
        if self.epoch >= self.start_epoch:
            self.dls.train.dataset.set_epoch(self.state["global_epoch"])
            self._started = time.perf_counter()

    def after_epoch(self):
        if self.epoch < self.start_epoch or not hasattr(self.learn, "final_record"):
            return
        names = self.recorder.metric_names[1:-1]
        row = dict(zip(names, [float(v) if v is not None else None for v in self.learn.final_record]))
        row.update(unit=self.unit, stage=self.stage_index, epoch=self.state["global_epoch"],
                   frozen=self.stage.frozen, seconds=round(time.perf_counter() - self._started, 2))
        state = self.state
        state["history"].append(row)
        state["global_epoch"] += 1
        state["epoch_in_unit"] = self.epoch + 1
        score = (row.get("patch_f1") or 0.0, -(row.get("valid_loss") or 0.0))
        if state["stage_of_best"] != self.stage_index or state["stage_best"] is None or score > tuple(state["stage_best"]):
            # the weights that were validated: the average when there is one
            best = (self.averager.averaged() if self.averager is not None else
                    {k: v.detach().cpu().clone() for k, v in _unwrap(self.model).state_dict().items()})
            state.update(stage_best=list(score), stage_of_best=self.stage_index, wait=0,
                         stage_best_epoch=row["epoch"], best_model=best)
        else:
            state["wait"] += 1
        self._save()
        if self.stage.early_stopping and state["wait"] >= self.patience:
            raise CancelFitException()

    def _save(self):
        if self.checkpoint is None:
            return
        self.state["model"] = _unwrap(self.model).state_dict()
        self.state["opt"] = self.learn.opt.state_dict()
        self.state["rng"] = resume.capture(self.learn)
        self.state["average"] = self.averager.state_dict() if self.averager is not None else None
        _atomic_save(_plain(self.state), self.checkpoint)
        self.state["model"] = self.state["opt"] = self.state["average"] = None


def run_schedule(run, out_dir: Path, *, is_main: bool = True) -> dict:
    """Fit ``run.learn`` through ``run.preset``'s schedule, resuming from ``out_dir``'s checkpoint.

    Returns:
        The final state dict (``history``, ``best_model`` ...); the Learner's model holds the result (the best
        weights of the last stage if it used early stopping, else the last weights — averaged weights with
        ``preset.weight_average``).
    """
    learn, preset = run.learn, run.preset
    config_dict = run.config.to_dict()
    state = load_state(out_dir, config_dict) or _new_state(config_dict)
    averager = (WeightAverage(preset.weight_average, state.get("average"))
                if preset.weight_average is not None else None)
    state["average"] = None
    opt_state = None
    if state["model"] is not None:
        _unwrap(learn.model).load_state_dict(state["model"])
        opt_state = state["opt"]
        state["model"] = state["opt"] = None
    checkpoint = Path(out_dir) / CHECKPOINT_DIR / STATE_FILE if is_main else None
    if state.get("initial") is None:
        state["initial"] = _validate(learn)
    if averager is not None:
        learn.add_cb(averager)
    plan = units(preset)
    for unit, (stage_index, stage) in enumerate(plan):
        if unit < state["unit"]:
            continue
        learn.freeze() if stage.frozen else learn.unfreeze()  # fastai: both clear the optimiser state
        # Drop stale gradients: fastai's optimiser steps every parameter whose .grad is not None, so a backbone
        # frozen after an unfrozen unit would still be weight-decayed through its zeroed gradients, in an
        # uninterrupted run but not in a resumed one (whose parameters start without .grad).
        learn.model.zero_grad(set_to_none=True)
        start = state["epoch_in_unit"] if unit == state["unit"] else 0
        if opt_state is not None:  # the first unit of a resumed run: its RNGs, and its Adam moments if started
            if start > 0:
                learn.opt.load_state_dict(opt_state)
            resume.restore(state.get("rng"), learn)
            opt_state = None
        if start < stage.epochs and not (stage.early_stopping and state["wait"] >= preset.patience and start > 0):
            lr = stage.lr_max if stage.frozen else slice(stage.lr_max * stage.backbone_lr_factor, stage.lr_max)
            cb = ScheduleCallback(state, unit=unit, stage_index=stage_index, stage=stage, start_epoch=start,
                                  patience=preset.patience, checkpoint=checkpoint, averager=averager)
            learn.fit_one_cycle(stage.epochs, lr, start_epoch=start, cbs=[cb])
        last_of_stage = unit + 1 == len(plan) or plan[unit + 1][0] != stage_index
        if stage.early_stopping and last_of_stage and state["best_model"] is not None:
            _unwrap(learn.model).load_state_dict(state["best_model"])
            if averager is not None:  # the next stage averages on from the weights it starts with
                averager.reset(state["best_model"])
        if stage.early_stopping:
            state["wait"] = 0
        state.update(unit=unit + 1, epoch_in_unit=0)
        if checkpoint is not None:
            ScheduleCallback._save(_Saver(learn, state, checkpoint, averager))
    if averager is not None:
        learn.remove_cb(averager)
        # with early stopping at the end the model already holds the best (averaged) weights of that stage
        if averager.updates and not (plan and plan[-1][1].early_stopping):
            _unwrap(learn.model).load_state_dict(averager.averaged())
    return state


def _validate(learn) -> dict:
    """Validation loss, loss parts and patch F1 of the current weights (the untrained model's baseline)."""
    values = learn.validate()
    names = ["valid_loss"] + [m.name for m in learn.metrics]
    return {n: (float(v) if v is not None else None) for n, v in zip(names, values)}


class _Saver:
    """Just enough of a callback for :meth:`ScheduleCallback._save` between units."""

    def __init__(self, learn, state, checkpoint, averager=None):
        self.learn, self.model, self.state, self.checkpoint = learn, learn.model, state, checkpoint
        self.averager = averager


def copy_state_for_report(state: dict) -> dict:
    """History and best-epoch info without tensors."""
    return {k: copy.deepcopy(v) for k, v in state.items() if k not in ("model", "opt", "best_model", "average")}
