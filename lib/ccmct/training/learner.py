"""The fastai Learner of a tile detector: data, model, loss, metrics and callbacks in one place.

:func:`build_learner` wires :class:`ccmct.training.data.PatchDataset` loaders (upper halves for training,
lower halves for validation), a detector of any registered detector kind (:mod:`ccmct.models.registry`; the
paper's :class:`ccmct.models.retinanet.RetinaNet` by default) built through its registry row, Adam, and the
metrics (each part of the detector's validation loss, patch-level F1). The detector owns its loss and its
post-processing (:mod:`ccmct.models.detector`): :class:`DetectorBatch` hands it the batch's targets
(``model(images, targets)``), :class:`ccmct.training.loss.DetectorLoss` sums its loss dict, and the validation
patch F1 reads its detections at the preset's validation score threshold. Parameter groups:
``model.param_groups()`` (backbone, then the rest), so ``learn.freeze()`` trains the heads only. Mixed
precision and channels-last on a GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial

import torch

from ccmct.config.paths import DataRoot
from ccmct.config.presets import DetectorPreset
from ccmct.models.detector import targets_from_padded, unwrap
from ccmct.models.registry import detector_kinds, model_kind
from ccmct.sampling.patches import PatchSampler, SlideCells
from ccmct.sampling.slides import load_training_slides
from ccmct.training.data import Normalise, PatchDataset, make_dataloader
from ccmct.distributed import resolve_device
from ccmct.training.distributed import DDPCallback, DistInfo
from ccmct.training.loss import DetectorLoss
from ccmct.training.metrics import LossPart, PatchF1
from ccmct.training.precision import add_cpu_autocast
from ccmct.data.slide_checks import root_mpp
from ccmct.config.units import PAPER_MPP

__all__ = ["DetectorBatch", "DetectorRun", "build_learner", "detector_config", "pick_device"]

try:
    from fastai.callback.core import Callback
except ImportError:  # pragma: no cover - fastai is a requirement
    Callback = object


@dataclass
class DetectorRun:
    """What :func:`build_learner` made: the Learner and the pieces around it."""

    learn: object
    config: object
    preset: DetectorPreset
    slides: list[SlideCells]
    train_ds: PatchDataset
    valid_ds: PatchDataset
    dist: DistInfo


def pick_device(dist: DistInfo | None = None) -> torch.device:
    """CUDA (this process's GPU) when available, else CPU (:func:`ccmct.distributed.resolve_device`)."""
    return resolve_device(None, dist or DistInfo())


def detector_config(preset: DetectorPreset, variant: str, *, backbone_init: str = "none",
                    mpp: float = PAPER_MPP, kind: str = "retinanet"):
    """The model config a preset trains for a detector ``kind`` (its config class's ``for_training``:
    for the RetinaNet the architecture sizes from the preset, ``mpp`` = µm/px of the training slides
    (:func:`training_mpp`), the rest the defaults).

    Raises:
        ValueError: ``kind`` is not a detector kind of :data:`ccmct.models.registry.MODEL_KINDS`.
    """
    if kind not in detector_kinds():
        raise ValueError(f"{kind!r} is not a detector kind; expected one of {list(detector_kinds())}")
    return model_kind(kind).config_class().for_training(preset, variant=variant, backbone_init=backbone_init,
                                                        mpp=mpp)


def training_mpp(root: DataRoot | str | os.PathLike[str]) -> float:
    """µm per level-0 px of a data root's training slides (recorded in the model config; docs/contracts.md)."""
    root = root if isinstance(root, DataRoot) else DataRoot(root)
    return root_mpp(root.slides("train").values())


def _splitter(model):
    return unwrap(model).param_groups()


class DetectorBatch(Callback):
    """Gives the detector its targets and sets its validation score threshold.

    Before each batch, ``xb = (images,)`` becomes ``(images, targets)`` (:func:`ccmct.models.detector.
    targets_from_padded` of the padded ``yb``, which stays for the metrics), so fastai's ``model(*xb)`` is the
    torchvision-style ``model(images, targets)``: the loss dict in training, ``(losses, detections)`` in
    validation. During validation the detector's ``score_threshold`` is ``val_score_threshold`` (the preset's
    patch-F1 threshold); otherwise its config's.
    """

    order = 5  # before the autocast callbacks (10) and the model call

    def __init__(self, val_score_threshold: float):
        self.val_score_threshold = float(val_score_threshold)

    def before_batch(self):
        images, = self.learn.xb
        self.learn.xb = (images, targets_from_padded(*self.learn.yb))

    def before_validate(self):
        unwrap(self.learn.model).score_threshold = self.val_score_threshold

    def after_validate(self):
        self._restore()

    def before_train(self):
        self._restore()

    def after_fit(self):
        self._restore()

    def _restore(self):
        model = unwrap(self.learn.model)
        model.score_threshold = float(model.config.score_threshold)


def build_learner(root: DataRoot | str | os.PathLike[str], variant: str, preset: DetectorPreset, *, seed: int = 0,
                  backbone_weights: str | os.PathLike[str] | None = None, dist: DistInfo | None = None,
                  device: torch.device | None = None, slides: list[SlideCells] | None = None,
                  num_workers: int | None = None, progress: bool = True, kind: str = "retinanet") -> DetectorRun:
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
        kind: detector kind of the registry (``"retinanet"``, the paper's; ``"fcos"``, a tiny test detector).
    """
    import fastai.callback.fp16  # noqa: F401 - adds Learner.to_fp16
    import fastai.callback.schedule  # noqa: F401 - adds Learner.fit_one_cycle
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.optimizer import Adam

    dist = dist or DistInfo()
    device = device or pick_device(dist)
    init = "none" if backbone_weights in (None, "none") else str(backbone_weights)
    config = detector_config(preset, variant, backbone_init=init, mpp=training_mpp(root), kind=kind)
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
    model = model_kind(kind).build(config, backbone_weights=backbone_weights).to(device)
    metrics = [*(LossPart(name) for name in type(model).loss_names), PatchF1()]
    cbs = [DetectorBatch(preset.val_score_threshold)] + ([DDPCallback(dist)] if dist.enabled else [])
    if preset.grad_clip is not None:
        from fastai.callback.training import GradientClip

        cbs.append(GradientClip(max_norm=preset.grad_clip))
    learn = Learner(dls, model, loss_func=DetectorLoss(), opt_func=Adam, splitter=_splitter, metrics=metrics,
                    cbs=cbs)
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
