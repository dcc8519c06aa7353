"""Reduced-precision policy (ccmct.precision) and the fastai CPU autocast callback."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ccmct import precision
from ccmct.precision import CPU_BF16_ENV, autocast, autocast_dtype, cpu_bf16_enabled


def test_policy_per_device_and_environment_override(monkeypatch):
    assert autocast_dtype("cuda") == torch.float16
    monkeypatch.setenv(CPU_BF16_ENV, "0")
    assert not cpu_bf16_enabled() and autocast_dtype("cpu") is None
    with autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setenv(CPU_BF16_ENV, "1")
    assert autocast_dtype("cpu") == torch.bfloat16
    with autocast("cpu"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with autocast("cpu", enabled=False):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.delenv(CPU_BF16_ENV)
    assert cpu_bf16_enabled() == precision._cpu_bf16_native()  # the hardware probe decides


def test_cpu_autocast_callback_runs_the_forward_in_bf16_and_the_loss_in_float32(monkeypatch):
    import fastai.callback.progress  # noqa: F401 - Learner.no_bar
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.optimizer import SGD

    from ccmct.training.precision import CpuAutocast, add_cpu_autocast

    monkeypatch.setenv(CPU_BF16_ENV, "1")
    torch.manual_seed(0)
    x, y = torch.randn(32, 8), torch.randn(32, 1)
    data = [(x[i], y[i]) for i in range(32)]
    dls = DataLoaders.from_dsets(data, data, bs=8, device="cpu")
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    seen = {}

    def record(module, inputs, output):
        seen.setdefault("hidden", output.dtype)

    model[0].register_forward_hook(record)

    def loss(pred, target):
        seen["pred"], seen["autocast_in_loss"] = pred.dtype, torch.is_autocast_enabled("cpu")
        return nn.functional.mse_loss(pred, target)

    learn = Learner(dls, model, loss_func=loss, opt_func=SGD, lr=0.05)
    assert add_cpu_autocast(learn, "cpu") and any(isinstance(cb, CpuAutocast) for cb in learn.cbs)
    before = learn.validate()[0]
    with learn.no_bar(), learn.no_logging():
        learn.fit(3)
    assert seen == {"hidden": torch.bfloat16, "pred": torch.float32, "autocast_in_loss": False}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert learn.validate()[0] < before
    assert not torch.is_autocast_enabled("cpu")  # nothing left switched on
    monkeypatch.setenv(CPU_BF16_ENV, "0")
    assert not add_cpu_autocast(Learner(dls, nn.Linear(8, 1), loss_func=nn.MSELoss()), "cpu")
    assert not add_cpu_autocast(Learner(dls, nn.Linear(8, 1), loss_func=nn.MSELoss()), "cuda")
