"""Gradient-norm clipping of the detector preset (``DetectorPreset.grad_clip``): every optimiser step sees gradients
of global L2 norm at most ``grad_clip``; ``None`` (the paper preset) adds no clipping."""

import dataclasses
import json

import pytest
import torch
from fastai.callback.core import Callback
from fastai.callback.training import GradientClip

from ccmct.config.presets import Stage, detector_preset
from ccmct.training.learner import build_learner

pytestmark = pytest.mark.timeout(1800)  # trains a few steps: longer than the default timeout on a loaded CPU

CLIP = 0.05


def _norm(model) -> float:
    grads = [p.grad.detach().float().norm() for p in model.parameters() if p.grad is not None]
    return float(torch.stack(grads).norm())


class _Norms(Callback):
    """Global gradient norm just before (order 10.5) or just after (order 12) fastai's GradientClip (order 11)."""

    def __init__(self, order):
        self.order, self.norms = order, []

    def before_step(self):
        self.norms.append(_norm(self.learn.model))


def test_quick_preset_clips_and_paper_preset_does_not():
    assert detector_preset("quick").grad_clip == 1.0
    assert detector_preset("paper").grad_clip is None  # the authors' recipe has no clipping


def test_every_step_is_clipped(tiny_root):
    preset = dataclasses.replace(detector_preset("smoke"), patches_per_epoch=16, val_patches=4, grad_clip=CLIP,
                                 stages=(Stage(1, 1, 1e-3, frozen=False),))
    run = build_learner(tiny_root, "ODAEL", preset, seed=0, progress=False)
    assert [cb.max_norm for cb in run.learn.cbs if isinstance(cb, GradientClip)] == [CLIP]
    before, after = _Norms(10.5), _Norms(12)
    run.learn.add_cbs([before, after])
    run.learn.fit(1, 1e-3)
    assert len(after.norms) == 16 // preset.batch_size
    assert max(before.norms) > CLIP  # the raw gradients are larger: the clip did something
    assert max(after.norms) <= CLIP * (1 + 1e-4)


def test_no_clip_callback_without_grad_clip(tiny_root):
    preset = dataclasses.replace(detector_preset("smoke"), grad_clip=None)
    run = build_learner(tiny_root, "ODAEL", preset, seed=0, progress=False)
    assert not any(isinstance(cb, GradientClip) for cb in run.learn.cbs)


def test_changed_schedule_trains_again(tiny_root, tmp_path):
    """A finished model is reused only for the same schedule: clipping added to the preset trains it again."""
    from ccmct.training.run import train_detector

    preset = dataclasses.replace(detector_preset("smoke"), patches_per_epoch=8, val_patches=4,
                                 stages=(Stage(1, 1, 1e-3, frozen=False),))
    out = tmp_path / "model"
    first = train_detector(tiny_root, "ODAEL", preset, out, seed=0, num_workers=0, progress=False)
    assert first["schedule"]["grad_clip"] is None
    made = (out / "weights.pt").stat().st_mtime_ns
    again = train_detector(tiny_root, "ODAEL", dataclasses.replace(preset, num_workers=2), out, seed=0,
                           num_workers=0, progress=False)
    assert (out / "weights.pt").stat().st_mtime_ns == made and again["seconds"] == first["seconds"]
    clipped = train_detector(tiny_root, "ODAEL", dataclasses.replace(preset, grad_clip=CLIP), out, seed=0,
                             num_workers=0, progress=False)
    assert (out / "weights.pt").stat().st_mtime_ns != made
    assert clipped["schedule"]["grad_clip"] == CLIP
    assert json.loads((out / "training.json").read_text())["schedule"]["grad_clip"] == CLIP
