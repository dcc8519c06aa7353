"""What a checkpoint must hold besides weights and optimiser state for a resumed run to be *exact*.

An interrupted training run that resumes from its last per-epoch checkpoint must end with weights bit-identical
to an uninterrupted run on the same machine (issue 14 item 7). Weights, optimiser state and the one-cycle
position (fastai ``start_epoch``) are restored by the schedules themselves; this module adds the rest:

- the random number generators: torch (CPU and every CUDA device), numpy's global generator, Python's
  ``random`` and each fastai DataLoader's own ``rng`` (it shuffles the classifier's epoch sample); torch's
  DataLoader draws its workers' base seed from torch's generator, so augmentations that use torch's RNG
  (the cell classifier's) repeat as well;
- the gradient scaler of fastai's ``MixedPrecision`` (CUDA float16): its scale and growth tracker.

The detector's patch draws need no state: pseudo-epoch ``e`` of rank ``r`` is drawn from ``(seed, e, r)``
(:class:`ccmct.training.data.PatchDataset`), so a run killed inside an epoch redraws that epoch's patches.
Everything is stored as tensors, lists and numbers, loadable with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["capture", "restore", "restore_scaler"]


def capture(learn=None) -> dict:
    """The RNG states (and, during a fit, the gradient scaler of ``learn``) as plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    snap = {"torch": torch.get_rng_state(),
            "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
            "numpy": [str(kind), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                      float(cached)],
            "python": [int(version), list(py_state), gauss_next],
            "loaders": {}}
    if learn is not None:
        for name in ("train", "valid"):
            loader = getattr(learn.dls, name, None)
            rng = getattr(loader, "rng", None)
            if isinstance(rng, random.Random):
                v, state, g = rng.getstate()
                snap["loaders"][name] = [int(v), list(state), g]
        scaler = getattr(learn, "scaler", None)
        if scaler is not None and hasattr(scaler, "state_dict"):
            snap["scaler"] = {k: (v if not isinstance(v, torch.Tensor) else v.detach().cpu())
                              for k, v in scaler.state_dict().items()}
    return snap


def restore(snap: dict | None, learn=None) -> None:
    """Put back the RNG states of :func:`capture` (no-op for ``None``: a checkpoint without them)."""
    if not snap:
        return
    torch.set_rng_state(snap["torch"])
    if snap.get("cuda") and torch.cuda.is_available() and len(snap["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(snap["cuda"])
    kind, keys, pos, has_gauss, cached = snap["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached)))
    version, state, gauss_next = snap["python"]
    random.setstate((int(version), tuple(int(v) for v in state), gauss_next))
    if learn is not None:
        for name, (v, state, g) in (snap.get("loaders") or {}).items():
            loader = getattr(learn.dls, name, None)
            if loader is not None and isinstance(getattr(loader, "rng", None), random.Random):
                loader.rng.setstate((int(v), tuple(int(x) for x in state), g))


def restore_scaler(learn, snap: dict | None) -> None:
    """Load the gradient scaler state of :func:`capture` into ``learn.scaler`` (call after fastai's
    ``MixedPrecision.before_fit`` created a fresh one; no-op without either)."""
    scaler = getattr(learn, "scaler", None)
    if snap and snap.get("scaler") and scaler is not None and hasattr(scaler, "load_state_dict"):
        scaler.load_state_dict(snap["scaler"])
