"""Training the fast mode's candidate model (:mod:`ccmct.models.candidate`): ``ccmct train --model candidate``.

Same data as the detector (docs/training.md): the 50 / 40 / 10 sampler (:class:`ccmct.sampling.patches.PatchSampler`)
over the upper halves of the training slides, validation on the lower halves, the same labels (mitotic
figures of the label set). A patch is read at the reduced resolution (:func:`ccmct.data.levels.read_reduced`,
the same reader inference uses), augmented with the detector's dihedral + stain jitter, and its target is a
Gaussian heat map around every mitotic-figure centre (:func:`ccmct.models.candidate.heat_maps`).

Schedule: Adam with a one-cycle learning rate (torch's ``OneCycleLR``), bf16 autocast on capable CPUs
(:mod:`ccmct.precision`). After every epoch ``OUT/checkpoint/state.pt`` (a plain dict, ``weights_only``
loadable) is written atomically; a rerun resumes from it, and a finished model directory is not trained again.

Recall first: after training, the threshold is the highest likelihood that still keeps a candidate within
25 px of ``target_recall`` (95 %) of the validation mitoses (:func:`choose_threshold`); it is written into the
model's ``config.json``. Single process (the model is small; torchrun is not needed to train it).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from ccmct.config.dataset import DETECTION_RADIUS_L0
from ccmct.data.levels import LevelPlan, level_plan, read_reduced
from ccmct.data.slides import cached_slide, open_slide
from ccmct.errors import CcmctError, SlideError
from ccmct.models.candidate import CandidateConfig, CandidateNet, cells_to_input_px, heat_maps, normalise
from ccmct.precision import autocast
from ccmct.sampling.patches import PatchSampler
from ccmct.sampling.slides import load_training_slides
from ccmct.training.augment import augment_patch
from ccmct.atomicio import atomic_path, atomic_write_json

__all__ = ["CANDIDATE_PRESETS", "CandidatePreset", "ReducedPatchDataset", "candidate_preset", "choose_threshold",
           "train_candidate"]

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"
SUMMARY_FILE = "training.json"
MIN_THRESHOLD, MAX_THRESHOLD = 0.01, 0.5
"""Bounds of the recall-tuned threshold (below 0.01 every texture is a candidate; above 0.5 is not recall-first)."""


@dataclass(frozen=True)
class CandidatePreset:
    """A candidate-model training run besides the data.

    Attributes:
        name: preset name.
        input_px: patch side, reduced px (x ``downsample`` = level-0 px).
        patches_per_epoch, val_patches: drawn per epoch / once (lower halves).
        batch_size: patches per step.
        epochs: one one-cycle run of this many epochs.
        lr_max: peak learning rate.
        channels: the net's two block widths.
        num_workers: patch reader processes (0: read in the training process).
    """

    name: str
    input_px: int
    patches_per_epoch: int
    val_patches: int
    batch_size: int
    epochs: int
    lr_max: float
    channels: tuple[int, int]
    num_workers: int = 0


CANDIDATE_PRESETS = {
    "smoke": CandidatePreset("smoke", input_px=64, patches_per_epoch=32, val_patches=16, batch_size=8, epochs=2,
                             lr_max=3e-3, channels=(8, 16)),
    "quick": CandidatePreset("quick", input_px=128, patches_per_epoch=1024, val_patches=128, batch_size=16,
                             epochs=8, lr_max=3e-3, channels=(16, 32)),
    "paper": CandidatePreset("paper", input_px=256, patches_per_epoch=5000, val_patches=1000, batch_size=32,
                             epochs=30, lr_max=1e-3, channels=(32, 64), num_workers=4),
}
"""Preset name -> :class:`CandidatePreset` (same names as the detector's presets)."""


def candidate_preset(name: str) -> CandidatePreset:
    """The preset called ``name``. Raises CcmctError listing the valid ones."""
    try:
        return CANDIDATE_PRESETS[name]
    except KeyError:
        raise CcmctError(f"unknown candidate preset {name!r}; choose one of {', '.join(CANDIDATE_PRESETS)}") from None


class ReducedPatchDataset(torch.utils.data.Dataset):
    """Sampler patches read at the reduced resolution, redrawn per epoch (like the detector's PatchDataset).

    Item ``i``: ``(uint8 Tensor[3, P, P], float (G, 2) mitotic-figure centres in input px)``. Patch origins
    are snapped down to a multiple of ``downsample`` so that level-0 and reduced pixels align.
    """

    def __init__(self, sampler: PatchSampler, n_patches: int, config: CandidateConfig, input_px: int, *,
                 seed: int, augment: bool, fixed: bool = False):
        self.sampler, self.n_patches, self.config, self.input_px = sampler, int(n_patches), config, int(input_px)
        self.seed, self.augment, self.fixed = int(seed), augment, fixed
        self.paths = [str(s.path) for s in sampler.slides]
        self._plans: dict[str, LevelPlan] = {}
        self.epoch, self.specs = -1, None
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        if self.specs is not None and (self.fixed or epoch == self.epoch):
            return
        self.epoch = int(epoch)
        self.specs = self.sampler.draw(self.n_patches, np.random.default_rng([self.seed, self.epoch]))

    def __len__(self) -> int:
        return self.n_patches

    def _plan(self, path: str) -> LevelPlan:
        if path not in self._plans:
            self._plans[path] = level_plan(cached_slide(path).level_downsamples, self.config.downsample)
        return self._plans[path]

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Patch ``i`` before augmentation: (P, P, 3) uint8 and (G, 4) boxes in input px."""
        slide_index, x_l0, y_l0, _ = self.specs[i]
        d = self.config.downsample
        x_l0, y_l0 = x_l0 - x_l0 % d, y_l0 - y_l0 % d
        path = self.paths[slide_index]
        image = read_reduced(cached_slide(path), self._plan(path), x_l0, y_l0, (self.input_px, self.input_px))
        return image, self.sampler.targets(slide_index, x_l0, y_l0) / d

    def __getitem__(self, i: int) -> tuple[torch.Tensor, np.ndarray]:
        image, boxes = self.read(i)
        if self.augment:
            image, boxes = augment_patch(image, boxes, np.random.default_rng([self.seed, self.epoch, int(i), 1]))
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1), centres.astype(np.float64)


def _collate(items):
    return torch.stack([image for image, _ in items]), [centres for _, centres in items]


def choose_threshold(best_scores: np.ndarray, target_recall: float) -> float:
    """The highest threshold keeping ``target_recall`` of the figures.

    Args:
        best_scores: per validation mitotic figure, the highest candidate likelihood within the radius
            (0 when there is none).
        target_recall: wanted share of figures with a candidate.

    Returns:
        The threshold, clipped to [MIN_THRESHOLD, MAX_THRESHOLD] (MAX when there are no figures).

    Example:
        >>> choose_threshold(np.array([0.9, 0.8, 0.3, 0.05]), 0.75)
        0.3
    """
    scores = np.sort(np.asarray(best_scores, dtype=np.float64))[::-1]
    if len(scores) == 0:
        return MAX_THRESHOLD
    k = max(0, math.ceil(target_recall * len(scores)) - 1)
    return float(np.clip(scores[k], MIN_THRESHOLD, MAX_THRESHOLD))


def _atomic_save(obj, path: Path) -> None:
    if path.suffix == ".json":
        atomic_write_json(path, obj)
        return
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _read_summary(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _level0_mpp(path: Path) -> float:
    """µm per level-0 px of a training slide (0.0 when the slide records none)."""
    try:
        with open_slide(path) as slide:
            return float(slide.mpp)
    except SlideError:
        return 0.0


@torch.no_grad()
def _validate(model: CandidateNet, dataset: ReducedPatchDataset, device: torch.device, batch_size: int) -> dict:
    """Validation loss and, per validation figure, the best candidate likelihood within the radius."""
    model.eval()
    config = model.config
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=_collate)
    losses, best, n_candidates = [], [], 0
    for images, centres in loader:
        with autocast(device):
            logits = model(normalise(images.to(device), config)).float()
        heat = heat_maps(centres, tuple(logits.shape[-2:]), config).to(device)
        losses.append(float(model.loss(logits, heat)["loss"]) * len(images))
        for (cells, scores), gt in zip(model.peaks(logits, threshold=1e-4), centres):
            n_candidates += int((scores >= config.threshold).sum())
            if len(gt) == 0:
                continue
            found = np.zeros(len(gt))
            if len(cells):
                peaks_l0 = cells_to_input_px(cells, config.map_stride) * config.downsample
                for i, near in enumerate(cKDTree(peaks_l0).query_ball_point(gt * config.downsample,
                                                                             r=DETECTION_RADIUS_L0)):
                    found[i] = scores[near].max() if near else 0.0
            best.append(found)
    best_scores = np.concatenate(best) if best else np.zeros(0)
    return {"valid_loss": float(np.sum(losses) / max(len(dataset), 1)), "best_scores": best_scores,
            "candidates_per_patch": n_candidates / max(len(dataset), 1)}


def train_candidate(root: str | os.PathLike[str], variant: str, preset: str | CandidatePreset,
                    out_dir: str | os.PathLike[str], *, seed: int = 0, downsample: int = 4,
                    num_workers: int | None = None, device: str | None = None, progress: bool = True) -> dict:
    """Train the candidate model and write its model directory (``weights.pt``, ``config.json``, ``training.json``).

    Args:
        root: data root (only training slides are opened).
        variant: MEL, HEAEL or ODAEL.
        preset: ``smoke`` / ``quick`` / ``paper`` or a :class:`CandidatePreset`.
        out_dir: model directory.
        seed: seeds weights and patch draws.
        downsample: level-0 px per input px (4 = the first pyramid level of Aperio slides).
        num_workers: patch reader processes (default: the preset's).
        device: ``cpu`` / ``cuda`` (default: cuda when available).
        progress: tqdm bar over epochs.

    Returns:
        The summary in ``training.json``: ``finished``, ``config``, ``seed``, ``history`` (per epoch
        ``train_loss``, ``valid_loss``), ``threshold``, ``valid_recall`` at it, ``candidates_per_patch``.

    Raises:
        CcmctError: unknown preset, no training slide, a checkpoint of another configuration.
    """
    from tqdm.auto import tqdm

    from ccmct.models.io import save_model_dir

    preset = candidate_preset(preset) if isinstance(preset, str) else preset
    out_dir = Path(out_dir)
    slides = load_training_slides(root, variant)
    config = CandidateConfig(downsample=int(downsample), input_mpp=_level0_mpp(slides[0].path) * int(downsample),
                             channels=preset.channels, preset=preset.name, variant=variant)
    key = {"config": config.to_dict(), "seed": seed, "input_px": preset.input_px}
    done = _read_summary(out_dir)
    if done and done.get("finished") and done.get("key") == key and (out_dir / "weights.pt").is_file():
        log.info("%s: already trained (delete it to train again)", out_dir)
        return done
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    kw = {"tile_px": preset.input_px * config.downsample, "box_px": config.gt_box_px}
    train_ds = ReducedPatchDataset(PatchSampler(slides, half="train", **kw), preset.patches_per_epoch, config,
                                   preset.input_px, seed=seed, augment=True)
    valid_ds = ReducedPatchDataset(PatchSampler(slides, half="valid", **kw), preset.val_patches, config,
                                   preset.input_px, seed=seed + 1, augment=False, fixed=True)
    torch.manual_seed(seed)
    model = CandidateNet(config).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=preset.lr_max)
    steps = preset.epochs * (preset.patches_per_epoch // preset.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=preset.lr_max, total_steps=max(steps, 1))
    state = _load_checkpoint(out_dir, key)
    history: list[dict] = []
    start_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["opt"])
        schedule.load_state_dict(state["sched"])
        history, start_epoch = list(state["history"]), int(state["epoch"])
        log.info("%s: resuming at epoch %d of %d", out_dir, start_epoch, preset.epochs)
    started = time.perf_counter()
    workers = preset.num_workers if num_workers is None else num_workers
    for epoch in tqdm(range(start_epoch, preset.epochs), disable=not progress, desc="candidate model", unit="epoch"):
        train_ds.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(train_ds, batch_size=preset.batch_size, shuffle=False, drop_last=True,
                                             num_workers=workers, collate_fn=_collate)
        model.train()
        losses = []
        for images, centres in loader:
            with autocast(device):
                logits = model(normalise(images.to(device), config)).float()
            loss = model.loss(logits, heat_maps(centres, tuple(logits.shape[-2:]), config).to(device))["loss"]
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        valid = _validate(model, valid_ds, device, preset.batch_size)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else None,
                        "valid_loss": valid["valid_loss"]})
        _atomic_save({"key": key, "epoch": epoch + 1, "history": history, "model": model.state_dict(),
                      "opt": optimiser.state_dict(), "sched": schedule.state_dict()},
                     out_dir / CHECKPOINT_DIR / STATE_FILE)
    valid = _validate(model, valid_ds, device, preset.batch_size)
    threshold = choose_threshold(valid["best_scores"], config.target_recall)
    config = dataclasses.replace(config, threshold=threshold)
    model.config = config
    recall = float(np.mean(valid["best_scores"] >= threshold)) if len(valid["best_scores"]) else None
    final = _validate(model, valid_ds, device, preset.batch_size)
    summary = {"finished": True, "key": key, "kind": "candidate", "variant": variant, "preset": preset.name,
               "seed": seed, "epochs": preset.epochs, "seconds": time.perf_counter() - started,
               "threshold": threshold, "valid_recall": recall, "valid_mitoses": int(len(valid["best_scores"])),
               "candidates_per_patch": final["candidates_per_patch"], "history": history,
               "config": config.to_dict()}
    save_model_dir(out_dir, model.float().cpu(), config)
    _atomic_save(summary, out_dir / SUMMARY_FILE)
    shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
    return summary


def _load_checkpoint(out_dir: Path, key: dict) -> dict | None:
    path = out_dir / CHECKPOINT_DIR / STATE_FILE
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
        raise CcmctError(f"{path}: cannot read the checkpoint ({err}); delete it to start over") from None
    if state.get("key") != key:
        raise CcmctError(f"{path}: checkpoint of another configuration (preset / variant / downsample / seed); "
                         "use another --out or delete the checkpoint folder")
    return state
