"""Running inference under ``torchrun``: one helper reads the launcher's environment, slides are sharded
across ranks, rank 0 gathers the detections and writes the one result file.

``torchrun --nproc_per_node=N --no-python ccmct infer ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; without them the same code runs as a single process. The process group uses NCCL when the
model runs on GPUs, gloo on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from ccmct.errors import CcmctError

__all__ = ["DistContext", "gather_to_main", "resolve_device", "shard_by_size", "shutdown", "start"]

GROUP_TIMEOUT = timedelta(hours=24)
"""How long a rank waits for the others at the final gather (a rank with fewer slides finishes early)."""


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a ``torchrun`` job (rank 0 of 1 when not launched by torchrun).

    Attributes:
        rank: global rank.
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        initialised: whether this module started the process group.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "DistContext":
        """Read ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (as set by torchrun)."""
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def resolve_device(requested: str | None, context: DistContext) -> torch.device:
    """The device of this rank: ``cuda:<local_rank>`` for ``cuda`` (default when a GPU exists), else CPU."""
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


def start(device: torch.device, context: DistContext | None = None) -> DistContext:
    """Join the process group when launched with ``WORLD_SIZE > 1`` (NCCL for GPUs, gloo for the CPU)."""
    context = context or DistContext.from_env()
    if context.world_size == 1 or dist.is_initialized():
        return context
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, timeout=GROUP_TIMEOUT,
                            device_id=device if device.type == "cuda" else None)
    return DistContext(context.rank, context.world_size, context.local_rank, initialised=True)


def shutdown(context: DistContext) -> None:
    """Leave the process group if :func:`start` joined it."""
    if context.initialised and dist.is_initialized():
        dist.destroy_process_group()


def shard_by_size(names: list[str], sizes: list[float], world_size: int) -> list[list[str]]:
    """Balanced, deterministic assignment of slides to ranks (largest first to the least-loaded rank).

    Args:
        names: slide names.
        sizes: work estimate of each slide (e.g. file size in bytes).
        world_size: number of ranks.

    Returns:
        One list per rank, each in the input order.

    Example:
        >>> shard_by_size(["a", "b", "c"], [10, 5, 4], 2)
        [['a'], ['b', 'c']]
    """
    loads = [0.0] * world_size
    owner: dict[str, int] = {}
    order = sorted(range(len(names)), key=lambda i: (-sizes[i], names[i]))
    for i in order:
        rank = min(range(world_size), key=lambda r: (loads[r], r))
        owner[names[i]] = rank
        loads[rank] += max(float(sizes[i]), 1.0)
    return [[name for name in names if owner[name] == rank] for rank in range(world_size)]


def gather_to_main(payload, context: DistContext) -> list | None:
    """Every rank's ``payload`` (any picklable object) on rank 0, in rank order; ``None`` on other ranks."""
    if context.world_size == 1:
        return [payload]
    gathered = [None] * context.world_size if context.is_main else None
    dist.gather_object(payload, gathered, dst=0)
    return gathered
