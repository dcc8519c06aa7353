"""Running inference under ``torchrun``: slides are sharded across ranks, rank 0 gathers the detections and
writes the one result file. The torchrun state and device choice come from :mod:`ccmct.distributed`
(re-exported here for the inference layer).

``torchrun --nproc_per_node=N --no-python ccmct infer ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; without them the same code runs as a single process. The process group uses NCCL when the
model runs on GPUs, gloo on the CPU.
"""

from __future__ import annotations

import torch.distributed as dist

from ccmct.distributed import DistContext, resolve_device, shutdown, start

__all__ = ["DistContext", "gather_to_main", "resolve_device", "shard_by_size", "shutdown", "start"]


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
