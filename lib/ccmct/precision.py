"""Reduced-precision policy: which ``torch.autocast`` a device gets, for training and inference alike.

- CUDA: float16 (with fastai's gradient scaler when training).
- CPU: bfloat16 where the CPU computes it natively (oneDNN reports bf16 support: AVX512-BF16 or AMX, e.g.
  AMD Zen 4, Intel Sapphire Rapids). On the 2-core AMD EPYC of our CI machines this makes the ResNet-18 +
  FPN training step x1.83 and its forward x1.66 faster (``benchmarks/cpu_precision.py``, 2026-12-02;
  docs/results/benchmarks/cpu_precision.json). Elsewhere: float32,
  since emulated bf16 is slower than float32.
- ``CCMCT_CPU_BF16=0`` in the environment turns the CPU path off (float32 everywhere), ``=1`` forces it on.

Weights, optimiser state and losses stay float32; only the convolutions and matrix products run in reduced
precision, and outputs are cast back to float32 before the loss or post-processing.
"""

from __future__ import annotations

import contextlib
import functools
import os

import torch

CPU_BF16_ENV = "CCMCT_CPU_BF16"


@functools.lru_cache(maxsize=1)
def _cpu_bf16_native() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the probe: be conservative
        return False


def cpu_bf16_enabled() -> bool:
    """Whether CPU work runs under bfloat16 autocast (``CCMCT_CPU_BF16`` overrides the hardware probe)."""
    setting = os.environ.get(CPU_BF16_ENV, "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    return _cpu_bf16_native()


def autocast_dtype(device: str | torch.device) -> torch.dtype | None:
    """The autocast dtype for ``device``: float16 on CUDA, bfloat16 on a bf16-capable CPU, else None."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.float16
    if kind == "cpu" and cpu_bf16_enabled():
        return torch.bfloat16
    return None


def autocast(device: str | torch.device, *, enabled: bool = True):
    """A ``torch.autocast`` context for ``device`` per :func:`autocast_dtype` (a no-op context where None)."""
    dtype = autocast_dtype(device) if enabled else None
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


__all__ = ["CPU_BF16_ENV", "autocast", "autocast_dtype", "cpu_bf16_enabled"]
