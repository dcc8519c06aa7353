"""Exponential moving average of a detector's weights over training steps (``DetectorPreset.weight_average``).

Why: a short one-cycle run ends on whatever its last optimiser steps and last BatchNorm batches made of it.
Averaging the weights of the last few dozen steps removes that last-step noise. Measured on the CPU ``quick``
preset (decay 0.97, 3 seeds): it makes the validation loss monotone but neither shrinks the seed spread of the
test F1 nor raises it (0.006-0.016 lower in 6 of 6 paired detectors; docs/benchmarks.md, "Weight averaging,
measured"), so no built-in preset turns it on; it is there for custom presets.

What: after every optimiser step, ``avg = decay_t * avg + (1 - decay_t) * current`` for every floating-point
parameter *and buffer* (BatchNorm running mean / variance are averaged alike, so no extra pass over the data
recomputes them; integer buffers, e.g. ``num_batches_tracked``, are copied). ``decay_t = min(decay,
(1 + t) / (10 + t))`` with ``t`` the number of updates so far: the first steps, from random weights, are
forgotten quickly (the usual warm-up of EMA in detection training). Validation runs on the averaged weights,
so the history, early stopping and the exported model all describe the same weights. The average is
``torch._foreach_lerp_`` over the tensor lists (one fused call, no Python loop per tensor).

The state (:meth:`WeightAverage.state_dict`) is a dict of CPU tensors and an int, stored in the training
checkpoint, so a resumed run continues the same average (tests/training/test_weight_average.py).
"""

from __future__ import annotations

import torch

try:
    from fastai.callback.core import Callback
except ImportError:  # pragma: no cover - fastai is a requirement
    Callback = object

from ccmct.models.detector import unwrap

__all__ = ["WeightAverage", "decay_at"]


def decay_at(decay: float, updates: int) -> float:
    """The EMA decay used for update number ``updates`` (0-based): ``min(decay, (1 + t) / (10 + t))``."""
    return min(float(decay), (1.0 + updates) / (10.0 + updates))


class WeightAverage(Callback):
    """fastai callback keeping an exponential moving average of the model's weights and buffers.

    Args:
        decay: per-step decay in (0, 1); the average spans about ``1 / (1 - decay)`` steps.
        state: a :meth:`state_dict` to continue from (a resumed run), else the average starts at the model's
            weights when the first fit begins.
    """

    order = 30  # after the optimiser step and gradient clipping; before the Recorder reads validation

    def __init__(self, decay: float, state: dict | None = None):
        if not 0.0 < float(decay) < 1.0:
            raise ValueError(f"weight_average decay must lie in (0, 1), got {decay!r}")
        self.decay = float(decay)
        self.updates = int(state["updates"]) if state else 0
        self._avg: dict[str, torch.Tensor] | None = (
            {k: v.clone() for k, v in state["weights"].items()} if state else None)
        self._held: dict[str, torch.Tensor] | None = None

    # -- the average ----------------------------------------------------------------------------------------
    def _model_state(self) -> dict[str, torch.Tensor]:
        return unwrap(self.learn.model).state_dict()

    def _ensure(self) -> None:
        current = self._model_state()
        if self._avg is None:
            self._avg = {k: v.detach().clone() for k, v in current.items()}
        else:  # resumed from a checkpoint (CPU tensors): onto the model's device
            self._avg = {k: v.to(current[k].device) for k, v in self._avg.items()}
        if set(self._avg) != set(current):
            raise ValueError("weight average: the checkpoint's averaged weights do not match the model")
        self._float = [k for k, v in current.items() if v.is_floating_point()]

    def before_fit(self):
        self._ensure()

    @torch.no_grad()
    def update(self) -> None:
        """Fold the model's current weights into the average (one step)."""
        current = self._model_state()
        weight = 1.0 - decay_at(self.decay, self.updates)
        torch._foreach_lerp_([self._avg[k] for k in self._float], [current[k].detach() for k in self._float],
                             weight)
        for k, v in current.items():
            if not v.is_floating_point():
                self._avg[k].copy_(v)
        self.updates += 1

    def after_step(self):
        self.update()

    # -- validation on the averaged weights -----------------------------------------------------------------
    def before_validate(self):
        if self._avg is None or self.updates == 0:
            return
        model = unwrap(self.learn.model)
        self._held = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self._avg)

    def after_validate(self):
        if self._held is not None:
            unwrap(self.learn.model).load_state_dict(self._held)
            self._held = None

    def after_cancel_validate(self):
        self.after_validate()

    # -- what the schedule stores and exports ---------------------------------------------------------------
    def averaged(self) -> dict[str, torch.Tensor]:
        """The averaged weights (a CPU copy)."""
        return {k: v.detach().cpu().clone() for k, v in self._avg.items()}

    def reset(self, weights: dict[str, torch.Tensor]) -> None:
        """Start the average over from ``weights`` (after a stage restored its best weights)."""
        device = next(iter(self._avg.values())).device if self._avg else "cpu"
        self._avg = {k: v.detach().to(device).clone() for k, v in weights.items()}

    def state_dict(self) -> dict:
        """``{"updates": int, "weights": {name: CPU tensor}}`` — loadable with ``weights_only=True``."""
        return {"updates": self.updates, "weights": self.averaged()}
