"""Patch datasets over slides and the fastai DataLoaders that feed the detector.

Patches are read on the fly (nothing is exported): each reader process opens its own slide handles
(:func:`ccmct.data.slides.cached_slide`). A training pseudo-epoch draws fresh patches from
``(seed, epoch, rank)``; the validation patches are drawn once. Batches are
``(images uint8 [B, 3, S, S], boxes float [B, G, 4] xyxy patch px, labels long [B, G])`` with padding rows of
label 0; they are normalised on the device (``after_batch``), in channels-last order on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ccmct.data.slides import cached_slide
from ccmct.sampling.patches import PatchSampler, PatchSpecs
from ccmct.training.augment import StainJitter, augment_patch

__all__ = ["Normalise", "PatchDataset", "collate_patches", "make_dataloader"]


class PatchDataset(torch.utils.data.Dataset):
    """``n_patches`` patches of one half, redrawn per pseudo-epoch.

    Args:
        sampler: where patches come from.
        n_patches: patches per pseudo-epoch (of this process).
        seed: base seed; epoch ``e`` of rank ``r`` uses ``default_rng([seed, e, r])``.
        augment: apply :func:`ccmct.training.augment.augment_patch` (training only).
        rank: process rank (different patches per data-parallel process).
        fixed: draw once (validation): :meth:`set_epoch` does not redraw.
    """

    def __init__(self, sampler: PatchSampler, n_patches: int, *, seed: int, augment: bool, rank: int = 0,
                 fixed: bool = False, stain: StainJitter | None = StainJitter()):
        self.sampler, self.n_patches, self.seed = sampler, int(n_patches), int(seed)
        self.augment, self.rank, self.fixed, self.stain = augment, rank, fixed, stain
        self.paths = [str(s.path) for s in sampler.slides]
        self.epoch = -1
        self.specs: PatchSpecs | None = None
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw the patches of pseudo-epoch ``epoch`` (no-op for a fixed set after the first draw)."""
        if self.specs is not None and (self.fixed or epoch == self.epoch):
            return
        self.epoch = int(epoch)
        self.specs = self.sampler.draw(self.n_patches, np.random.default_rng([self.seed, self.epoch, self.rank]))

    def __len__(self) -> int:
        return self.n_patches

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Patch ``i`` before augmentation: (S, S, 3) uint8 RGB and (G, 4) float32 boxes, patch px."""
        slide_index, x_l0, y_l0, _ = self.specs[i]
        tile = self.sampler.tile_px
        image = cached_slide(self.paths[slide_index]).read_l0(x_l0, y_l0, (tile, tile))
        return image, self.sampler.targets(slide_index, x_l0, y_l0)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, boxes = self.read(i)
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, self.rank, int(i), 1])
            image, boxes = augment_patch(image, boxes, rng, stain=self.stain)
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1), torch.from_numpy(boxes)


def collate_patches(items) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack images; pad boxes to the largest count in the batch (at least one row, label 0 = padding)."""
    images = torch.stack([img for img, _ in items])
    n_max = max(1, max(len(b) for _, b in items))
    boxes = torch.zeros(len(items), n_max, 4)
    labels = torch.zeros(len(items), n_max, dtype=torch.long)
    for row, (_, b) in enumerate(items):
        boxes[row, : len(b)] = b
        labels[row, : len(b)] = 1
    return images, boxes, labels


@dataclass(frozen=True)
class Normalise:
    """``after_batch``: uint8 images -> float, (x / 255 - mean) / std; channels-last on CUDA."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, batch):
        images, *rest = batch
        mean = torch.tensor(self.mean, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, 3, 1, 1)
        x = (images.float() / 255.0 - mean) / std
        if x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        return (x, *rest)


def make_dataloader(dataset: PatchDataset, *, batch_size: int, num_workers: int, normalise: Normalise,
                    device: torch.device | str | None = None, drop_last: bool = False):
    """A fastai ``DataLoader`` over a :class:`PatchDataset` (worker processes read patches)."""
    from fastai.data.load import DataLoader

    return DataLoader(dataset, bs=batch_size, num_workers=num_workers, shuffle=False, drop_last=drop_last,
                      create_batch=collate_patches, after_batch=normalise, device=device,
                      pin_memory=torch.cuda.is_available(), persistent_workers=False)
