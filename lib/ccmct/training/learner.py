"""The fastai Learner of the detector: data, model, loss, metrics and callbacks in one place.

:func:`build_learner` wires :class:`ccmct.training.data.PatchDataset` loaders (upper halves for training,
lower halves for validation), :class:`ccmct.models.retinanet.RetinaNet`, :class:`DetectionLoss` (focal +
smooth-L1), Adam, and the metrics (validation focal / box loss, patch-level F1). Parameter groups: backbone,
then FPN + heads, so ``learn.freeze()`` trains the heads only. Mixed precision and channels-last on a GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial

import torch

from ccmct.config.paths import DataRoot
from ccmct.config.presets import DetectorPreset
from ccmct.models.retinanet import DetectorConfig, RetinaNet
from ccmct.sampling.patches import PatchSampler, SlideCells
from ccmct.sampling.slides import load_training_slides
from ccmct.training.data import Normalise, PatchDataset, make_dataloader
from ccmct.distributed import resolve_device
from ccmct.training.distributed import DDPCallback, DistInfo
from ccmct.training.loss import DetectionLoss
from ccmct.training.metrics import LossPart, PatchF1
from ccmct.training.precision import add_cpu_autocast
from ccmct.data.slide_checks import root_mpp
from ccmct.config.units import PAPER_MPP

__all__ = ["DetectorRun", "build_learner", "detector_config", "pick_device"]


@dataclass
class DetectorRun:
    """What :func:`build_learner` made: the Learner and the pieces around it."""

    learn: object
    config: DetectorConfig
    preset: DetectorPreset
    slides: list[SlideCells]
    train_ds: PatchDataset
    valid_ds: PatchDataset
    dist: DistInfo


def pick_device(dist: DistInfo | None = None) -> torch.device:
    """CUDA (this process's GPU) when available, else CPU (:func:`ccmct.distributed.resolve_device`)."""
    return resolve_device(None, dist or DistInfo())


def detector_config(preset: DetectorPreset, variant: str, *, backbone_init: str = "none",
                    mpp: float = PAPER_MPP) -> DetectorConfig:
    """The model config a preset trains (architecture sizes from the preset, ``mpp`` = µm/px of the training
    slides (:func:`training_mpp`), the rest the defaults)."""
    return DetectorConfig(fpn_channels=preset.fpn_channels, head_convs=preset.head_convs, preset=preset.name,
                          variant=variant, backbone_init=backbone_init, mpp=mpp)


def training_mpp(root: DataRoot | str | os.PathLike[str]) -> float:
    """µm per level-0 px of a data root's training slides (recorded in the model config; docs/contracts.md)."""
    root = root if isinstance(root, DataRoot) else DataRoot(root)
    return root_mpp(root.slides("train").values())


def _splitter(model: RetinaNet):
    return [list(model.body.parameters()), model.head_parameters()]


def build_learner(root: DataRoot | str | os.PathLike[str], variant: str, preset: DetectorPreset, *, seed: int = 0,
                  backbone_weights: str | os.PathLike[str] | None = None, dist: DistInfo | None = None,
                  device: torch.device | None = None, slides: list[SlideCells] | None = None,
                  num_workers: int | None = None, progress: bool = True) -> DetectorRun:
    """A ready-to-fit fastai Learner for one data root and label set.

    Args:
        root: data root (only its training slides are opened).
        variant: MEL, HEAEL or ODAEL.
        preset: sizes and schedule.
        seed: seeds the weights and every patch draw.
        backbone_weights: ``None`` / ``"pretrained"`` / a local ResNet state-dict file.
        dist: data-parallel placement (default: one process).
        device: default :func:`pick_device`.
        slides: pre-loaded training slides (default: :func:`load_training_slides`).
        num_workers: reader processes (default: the preset's).
        progress: show fastai's progress bars.
    """
    import fastai.callback.fp16  # noqa: F401 - adds Learner.to_fp16
    import fastai.callback.schedule  # noqa: F401 - adds Learner.fit_one_cycle
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.optimizer import Adam

    dist = dist or DistInfo()
    device = device or pick_device(dist)
    init = "none" if backbone_weights in (None, "none") else str(backbone_weights)
    config = detector_config(preset, variant, backbone_init=init, mpp=training_mpp(root))
    slides = slides if slides is not None else load_training_slides(root, variant)
    probabilities = (preset.p_mitosis, preset.p_negative, preset.p_random)
    kw = {"tile_px": config.tile_px, "box_px": config.gt_box_px, "probabilities": probabilities}
    train_ds = PatchDataset(PatchSampler(slides, half="train", **kw),
                            -(-preset.patches_per_epoch // dist.world_size), seed=seed, augment=True,
                            rank=dist.rank)
    valid_ds = PatchDataset(PatchSampler(slides, half="valid", **kw), preset.val_patches, seed=seed + 1,
                            augment=False, fixed=True)
    workers = preset.num_workers if num_workers is None else num_workers
    normalise = Normalise(config.mean, config.std)
    make = partial(make_dataloader, batch_size=preset.batch_size, num_workers=workers, normalise=normalise,
                   device=device)
    dls = DataLoaders(make(train_ds, drop_last=True), make(valid_ds), device=device)
    dls.n_inp = 1
    torch.manual_seed(seed)
    model = RetinaNet(config, backbone_weights=backbone_weights).to(device)
    anchors = config.anchors().to(device)
    loss = DetectionLoss(anchors, iou_pos=config.match_iou_pos, iou_neg=config.match_iou_neg)
    metrics = [LossPart("focal"), LossPart("box"),
               PatchF1(anchors, score_threshold=preset.val_score_threshold, iou_threshold=config.nms_iou)]
    cbs = [DDPCallback(dist)] if dist.enabled else []
    learn = Learner(dls, model, loss_func=loss, opt_func=Adam, splitter=_splitter, metrics=metrics, cbs=cbs)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
        learn.to_fp16()
    else:
        add_cpu_autocast(learn, device)  # bf16 on CPUs that compute it natively (ccmct.precision)
    if not progress or not dist.is_main:
        from fastai.callback.progress import ProgressCallback

        learn.remove_cb(ProgressCallback)
    if not dist.is_main:
        learn.logger = lambda *_: None
    return DetectorRun(learn, config, preset, slides, train_ds, valid_ds, dist)
