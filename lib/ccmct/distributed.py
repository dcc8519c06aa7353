"""torchrun and device state: the one place that reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``, picks this
process's device and joins or leaves the process group (docs/design.md, "One helper each").

``torchrun --nproc_per_node=N --no-python ccmct train|infer ...`` sets the three variables; without them the same
code runs as rank 0 of 1. The process group uses NCCL when this rank's device is a GPU, gloo on the CPU. The
layer-specific parts read their state from here: DDP wrapping of the Learner (:mod:`ccmct.training.distributed`)
and slide sharding / gathering of detections (:mod:`ccmct.inference.distributed`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from ccmct.errors import CcmctError

__all__ = ["GROUP_TIMEOUT", "DistContext", "barrier", "resolve_device", "shutdown", "start"]

GROUP_TIMEOUT = timedelta(hours=24)
"""How long a rank waits for the others at a collective (a rank with fewer slides finishes early)."""


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a ``torchrun`` job (rank 0 of 1 when not launched by torchrun).

    Attributes:
        rank: global rank.
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        initialised: whether :func:`start` joined the process group for this context.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """More than one process (data-parallel training, sharded inference)."""
        return self.world_size > 1

    @classmethod
    def from_env(cls) -> "DistContext":
        """Read ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (as set by torchrun); a malformed value is refused."""
        values = {}
        for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
            raw = os.environ.get(name, "").strip()
            try:
                values[name] = int(raw) if raw else default
            except ValueError:
                raise CcmctError(f"environment variable {name}={raw!r} is not an integer "
                                 "(it is set by torchrun; unset it to run as one process)") from None
        rank, world, local = values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"]
        if world < 1 or not 0 <= rank < world or local < 0:
            raise CcmctError(f"torchrun environment is inconsistent: RANK={rank} WORLD_SIZE={world} "
                             f"LOCAL_RANK={local} (need 0 <= RANK < WORLD_SIZE, LOCAL_RANK >= 0)")
        return cls(rank, world, local)


def resolve_device(requested: str | None = None, context: DistContext | None = None) -> torch.device:
    """The device of this rank: ``cuda:<local_rank>`` for ``cuda`` (default when a GPU exists), else CPU.

    Raises:
        CcmctError: a GPU is asked for but torch sees none, or the name is not ``cpu`` / ``cuda[:N]``.
    """
    context = context or DistContext()
    kind = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CcmctError(f"device {kind!r} was asked for but torch sees no GPU; use --device cpu")
        index = context.local_rank if kind == "cuda" else torch.device(kind).index
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    if kind != "cpu":
        raise CcmctError(f"device must be 'cpu' or 'cuda[:N]', got {requested!r}")
    return torch.device("cpu")


def start(device: torch.device | None = None, context: DistContext | None = None) -> DistContext:
    """Join the process group when launched with ``WORLD_SIZE > 1`` (NCCL for GPUs, gloo for the CPU).

    Idempotent: a group already started (by this or another layer) is reused. ``device`` defaults to
    :func:`resolve_device` for this rank.
    """
    context = context or DistContext.from_env()
    if context.world_size == 1 or dist.is_initialized():
        return context
    device = device if device is not None else resolve_device(None, context)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, timeout=GROUP_TIMEOUT,
                            device_id=device if device.type == "cuda" else None)
    return DistContext(context.rank, context.world_size, context.local_rank, initialised=True)


def barrier() -> None:
    """Wait for every process (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown(context: DistContext | None = None) -> None:
    """Leave the process group: the one :func:`start` joined for ``context``, or (``None``) any that is open."""
    if (context is None or context.initialised) and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
