"""Detector training in both CPU precisions (``cpu_precision`` fixture of tests/conftest.py): under bfloat16
autocast the forward pass runs in bf16 while weights, optimiser state and losses stay float32."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from ccmct.config.presets import Stage, detector_preset
from ccmct.training.learner import build_learner
from ccmct.training.precision import CpuAutocast
from ccmct.training.schedule import run_schedule

pytestmark = pytest.mark.timeout(1800)  # trains: longer than the default timeout on a loaded CPU

PRESET = dataclasses.replace(detector_preset("smoke"), patches_per_epoch=8, val_patches=4, batch_size=4,
                             stages=(Stage(1, 1, 1e-3, frozen=False),))


def test_one_pseudo_epoch_in_both_precisions(tiny_root, tmp_path, cpu_precision):
    run = build_learner(tiny_root, "ODAEL", PRESET, seed=0, num_workers=0, progress=False)
    autocasting = any(isinstance(cb, CpuAutocast) for cb in run.learn.cbs)
    assert autocasting == (cpu_precision == "bfloat16")
    seen = {}

    def record(module, inputs, output):  # returns None: the output is left alone
        seen.setdefault("conv", output.dtype)

    handle = run.learn.model.body.conv1.register_forward_hook(record)
    before = {k: v.clone() for k, v in run.learn.model.state_dict().items()}
    state = run_schedule(run, tmp_path)
    handle.remove()
    assert seen["conv"] == (torch.bfloat16 if autocasting else torch.float32)
    row = state["history"][0]
    assert all(math.isfinite(row[k]) for k in ("train_loss", "valid_loss", "focal_loss", "box_loss"))
    weights = run.learn.model.state_dict()
    assert all(v.dtype == before[k].dtype for k, v in weights.items())  # float32 weights stay float32
    assert any(not torch.equal(v, before[k]) for k, v in weights.items() if v.is_floating_point())
    assert not torch.is_autocast_enabled("cpu")
