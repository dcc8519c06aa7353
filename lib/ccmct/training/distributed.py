"""Data-parallel training under ``torchrun`` (one process per GPU, or several CPU processes with gloo).

fastai's own ``DistributedTrainer`` needs HuggingFace ``accelerate`` and CUDA; this module provides the same
two pieces with plain ``torch.distributed``: :func:`init_distributed` joins the process group from torchrun's
environment through :mod:`ccmct.distributed` (the one module that reads it; NCCL on GPUs, gloo on CPU), and
:class:`DDPCallback` wraps the Learner's model in ``DistributedDataParallel`` for each ``fit``. Each process
draws its own share of the training patches (see :class:`ccmct.training.data.PatchDataset`); validation runs
on the full validation set in every process, so every process takes the same early-stopping decision.
"""

from __future__ import annotations

import torch
from fastai.callback.core import Callback

from ccmct.distributed import DistContext, barrier, shutdown, start

__all__ = ["DDPCallback", "DistInfo", "barrier", "init_distributed", "shutdown_distributed"]


DistInfo = DistContext
"""This process's place (rank, world size, local rank): :class:`ccmct.distributed.DistContext`."""


def init_distributed() -> DistContext:
    """Join torchrun's process group when ``WORLD_SIZE`` > 1 (idempotent); else a single process."""
    return start()


def shutdown_distributed() -> None:
    """Leave the process group if one is open."""
    shutdown()


class DDPCallback(Callback):
    """Wrap ``learn.model`` in ``DistributedDataParallel`` during each fit (re-wrapped after (un)freezing)."""

    order = 11  # after TrainEvalCallback, before the Recorder; as fastai's DistributedTrainer

    def __init__(self, info: DistInfo):
        self.info = info

    def before_fit(self):
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.info.local_rank] if torch.cuda.is_available() else None
        self.learn.model = DistributedDataParallel(self.learn.model, device_ids=device_ids)

    def after_fit(self):
        self.learn.model = self.learn.model.module
