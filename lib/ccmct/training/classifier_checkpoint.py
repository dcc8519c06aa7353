"""Per-epoch checkpoints of a cell-classifier training run, so that an interrupted run resumes.

``<out_dir>/checkpoint.pt`` (written atomically after every epoch, removed when the run has finished)
holds the network's state dict, the optimiser state as plain tensors/lists/numbers, and a JSON string
with the run's signature (variant, preset, start weights, cell counts), the phase and epochs done, and the
history so far, and the RNG states of :func:`ccmct.training.resume.capture` (torch, numpy, Python, the
DataLoaders' own generators: the epoch sample and the augmentations repeat), so that a resumed run ends
bit-identical to an uninterrupted one. It is read with ``torch.load(weights_only=True)``. A checkpoint of
another run (different signature) is refused with a message, never silently mixed in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ccmct.errors import CcmctError
from ccmct.training import resume
from ccmct.atomicio import atomic_write

CHECKPOINT_FILE = "checkpoint.pt"


class CheckpointMismatch(CcmctError):
    """The output folder holds a checkpoint of a different training run."""


@dataclass
class TrainingState:
    """What a run has done so far (restored from a checkpoint or fresh).

    Attributes:
        rows: per-epoch history rows (dicts), epoch 0 = the untrained network.
        steps: per-step loss rows (dicts: phase, loss, smooth_loss).
        phase: the phase of the last finished epoch ('start', 'frozen' or 'unfrozen').
        epochs_done: finished epochs of that phase.
        rng: RNG states at the last checkpoint (:func:`ccmct.training.resume.capture`), None for a fresh run.
    """

    rows: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    phase: str = "start"
    epochs_done: int = 0
    rng: dict | None = None

    def done_in(self, phase: str, order: tuple[str, ...]) -> int:
        """Epochs already finished in ``phase`` (all of them if a later phase has started)."""
        if self.phase == phase:
            return self.epochs_done
        if order.index(self.phase) > order.index(phase):
            return 10**9
        return 0


def _plain(value):
    """fastai containers (``L``) and numpy scalars -> lists / Python numbers (``weights_only`` safe)."""
    if isinstance(value, np.generic):  # before float: np.float64 subclasses float but pickles as numpy
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "L":
        return [_plain(v) for v in value]
    return value


def save_checkpoint(out_dir: Path, learn, signature: dict, state: TrainingState) -> Path:
    """Write ``checkpoint.pt`` atomically."""
    path = Path(out_dir) / CHECKPOINT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"signature": signature, "rows": state.rows, "steps": state.steps, "phase": state.phase,
            "epochs_done": state.epochs_done}
    payload = {"model": {k: v.detach().cpu() for k, v in learn.model.state_dict().items()},
               "opt": _plain(learn.opt.state_dict()) if learn.opt is not None else {},
               "meta": json.dumps(meta, default=float), "rng": _plain(resume.capture(learn))}
    atomic_write(path, lambda handle: torch.save(payload, handle))
    return path


def load_checkpoint(out_dir: Path, signature: dict) -> tuple[TrainingState, dict, dict] | None:
    """The state, model state dict and optimiser state of an interrupted run, or None without a checkpoint.

    Raises:
        CheckpointMismatch: the checkpoint belongs to a run with another signature (or is unreadable).
    """
    path = Path(out_dir) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(payload["meta"])
    except Exception as err:  # noqa: BLE001 - many error types for a damaged file
        raise CheckpointMismatch(f"{path}: unreadable checkpoint ({err}); delete it to start over") from err
    if json.dumps(meta["signature"], sort_keys=True) != json.dumps(json.loads(json.dumps(signature, default=float)),
                                                                    sort_keys=True):
        raise CheckpointMismatch(f"{path}: checkpoint of a different run (other variant, preset, seed, start "
                                 "weights or data); use another --out or delete the file to start over")
    state = TrainingState(rows=meta["rows"], steps=meta["steps"], phase=meta["phase"],
                          epochs_done=int(meta["epochs_done"]), rng=payload.get("rng"))
    return state, payload["model"], payload["opt"]


def remove_checkpoint(out_dir: Path) -> None:
    (Path(out_dir) / CHECKPOINT_FILE).unlink(missing_ok=True)


def epoch_callbacks(out_dir: Path, signature: dict, state: TrainingState, phase: str, skip_epochs: int):
    """fastai callbacks for one phase: record raw step losses, then after each epoch append the history row
    and write the checkpoint."""
    from fastai.callback.core import Callback

    raw: list[float] = []
    consumed = [0]  # steps of this fit already moved into state.steps

    class RawLoss(Callback):
        order = 60

        def after_batch(self):
            if self.training:
                raw.append(self.learn.loss.detach().item())

    class Checkpoint(Callback):
        order = 70  # after fastai's Recorder (50): its values for this epoch exist

        def after_epoch(self):
            if self.epoch < skip_epochs:
                return
            values = self.recorder.values[-1]
            state.rows.append({"phase": phase, "epoch": len(state.rows), "epoch_in_phase": self.epoch + 1,
                               "train_loss": float(values[0]), "valid_loss": float(values[1]),
                               "valid_accuracy": float(values[2])})
            smooth = self.recorder.losses  # fastai's running mean, one per training step of this fit
            state.steps += [{"phase": phase, "loss": raw[i], "smooth_loss": float(smooth[i])}
                            for i in range(consumed[0], len(raw))]
            consumed[0] = len(raw)
            state.phase, state.epochs_done = phase, self.epoch + 1
            save_checkpoint(out_dir, self.learn, signature, state)

    return [RawLoss(), Checkpoint()]

