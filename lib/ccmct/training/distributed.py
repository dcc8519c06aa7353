"""Data-parallel training under ``torchrun`` (one process per GPU, or several CPU processes with gloo).

fastai's own ``DistributedTrainer`` needs HuggingFace ``accelerate`` and CUDA; this module provides the same
two pieces with plain ``torch.distributed``: :func:`init_distributed` reads torchrun's environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and joins the process group (NCCL on GPUs, gloo on CPU), and
:class:`DDPCallback` wraps the Learner's model in ``DistributedDataParallel`` for each ``fit``. Each process
draws its own share of the training patches (see :class:`ccmct.training.data.PatchDataset`); validation runs
on the full validation set in every process, so every process takes the same early-stopping decision.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from fastai.callback.core import Callback

__all__ = ["DDPCallback", "DistInfo", "barrier", "init_distributed", "shutdown_distributed"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place: rank, world size, local rank (GPU index on its machine)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed() -> DistInfo:
    """Join torchrun's process group when ``WORLD_SIZE`` > 1 (idempotent); else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend, init_method="env://")
    return info


def barrier() -> None:
    """Wait for every process (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


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
