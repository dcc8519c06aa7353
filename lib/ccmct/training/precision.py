"""fastai callback: bfloat16 autocast for training on a CPU (see :mod:`ccmct.precision` for the policy).

fastai's own ``MixedPrecision`` callback is CUDA-only (it builds ``torch.autocast('cuda')`` and a gradient
scaler). On a CPU with native bf16 no scaler is needed: bf16 has float32's exponent range. The forward pass
runs under ``torch.autocast('cpu', bfloat16)``; predictions are cast back to float32 and autocast is left
*before* the loss, so the loss and every weight / optimiser update stay float32.
"""

from __future__ import annotations

import torch
from fastai.callback.core import Callback
from fastai.torch_core import to_float

from ccmct.precision import autocast, autocast_dtype


class CpuAutocast(Callback):
    """bfloat16 autocast of the forward pass (training and validation batches)."""

    order = 10  # where fastai's MixedPrecision sits: after the batch is on the device, before the model

    def before_fit(self):
        self._context = None

    def before_batch(self):
        self._context = autocast("cpu")  # the one policy: bf16 where ccmct.precision says so
        self._context.__enter__()

    def after_pred(self):
        self.learn.pred = to_float(self.pred)
        self._leave()

    def after_batch(self):
        self._leave()  # a batch that ended early (e.g. an exception before after_pred)

    def _leave(self):
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None


def add_cpu_autocast(learn, device: torch.device | str) -> bool:
    """Add :class:`CpuAutocast` to ``learn`` when ``device`` is a CPU that gets bf16 (returns whether it did)."""
    if torch.device(device).type == "cpu" and autocast_dtype("cpu") == torch.bfloat16:
        learn.add_cb(CpuAutocast())
        return True
    return False


__all__ = ["CpuAutocast", "add_cpu_autocast"]
