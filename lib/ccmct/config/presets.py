"""Training presets of both stages, selected by name: ``smoke`` (seconds, CI), ``quick`` (CPU demo, minutes),
``paper``. Detector presets first, then the cell classifier's (:class:`ClassifierPreset`); an unknown name raises
:class:`UnknownPreset` for either.

The ``paper`` detector schedule is the paper's (Bertram et al. 2019, §"Technical validation"; docs/training.md): pseudo-epochs
of 5,000 patches of 256 px; 1 initial pseudo-epoch with the backbone frozen; the heads 3 x 10 pseudo-epochs
one-cycle at max lr 1e-4 with Adam; then the whole network 2 x 30 pseudo-epochs with early stopping on
validation, best model kept. ``quick`` and ``smoke`` start from random weights on CPU, so they train the
whole network from the start (freezing a random backbone teaches nothing). ``quick`` clips the gradients' global
norm at 1.0: without it, one seed in two of a 3-seed run diverged at the one-cycle's peak learning rate (its
validation focal loss jumped to ~300 and the classification head collapsed to "no mitosis"; docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from ccmct.errors import CcmctError

__all__ = ["CLASSIFIER_PRESETS", "DETECTOR_PRESETS", "ClassifierPreset", "DetectorPreset", "Stage", "UnknownPreset",
           "classifier_preset", "detector_preset"]


class UnknownPreset(CcmctError, ValueError):
    """A preset name that is not defined (detector or classifier); the message lists the valid names."""


@dataclass(frozen=True)
class Stage:
    """One block of the schedule: ``cycles`` one-cycle runs of ``epochs`` pseudo-epochs each.

    Attributes:
        cycles: one-cycle runs in this block.
        epochs: pseudo-epochs per cycle.
        lr_max: peak learning rate (heads; the backbone gets ``lr_max * backbone_lr_factor``).
        frozen: backbone frozen (its BatchNorm layers still adapt, as fastai does).
        early_stopping: stop a cycle when the validation F1 has not improved for ``patience`` epochs;
            the best weights of the block are restored at its end.
        backbone_lr_factor: discriminative learning rate of the unfrozen backbone.
    """

    cycles: int
    epochs: int
    lr_max: float
    frozen: bool
    early_stopping: bool = False
    backbone_lr_factor: float = 0.1


@dataclass(frozen=True)
class DetectorPreset:
    """Everything a detector training run needs besides the data.

    Attributes:
        name: preset name.
        patches_per_epoch: patches drawn per training pseudo-epoch (over all processes).
        val_patches: fixed validation patches (lower halves), drawn once per run.
        batch_size: patches per step and process.
        stages: the schedule, run in order.
        patience: early-stopping patience, pseudo-epochs.
        fpn_channels: FPN / head width.
        head_convs: 3x3 convs per head before the output conv.
        num_workers: patch reader processes per training process (0 = read in the training process: the
            fastest on a 2-core CPU, where a reader process competes with the model's threads).
        val_score_threshold: detection score for the validation patch F1.
        p_mitosis, p_negative, p_random: sampler case probabilities (paper 0.5 / 0.4 / 0.1).
        grad_clip: largest global L2 norm of the gradients per step (fastai ``GradientClip``, applied after
            mixed precision has unscaled them); ``None``: no clipping (the authors' recipe).
        weight_average: per-step decay of an exponential moving average of the weights and BatchNorm
            statistics (:mod:`ccmct.training.averaging`); validation and the exported model use the average.
            ``None`` (every built-in preset): the last (or best) weights as trained, as the authors. Measured on
            the quick preset (0.97, 3 seeds): no smaller seed spread and 0.006-0.016 lower test F1 in each of 6
            paired detectors (docs/benchmarks.md, "Weight averaging, measured"), so not adopted there.
    """

    name: str
    patches_per_epoch: int
    val_patches: int
    batch_size: int
    stages: tuple[Stage, ...]
    patience: int = 5
    fpn_channels: int = 256
    head_convs: int = 4
    num_workers: int = 4
    val_score_threshold: float = 0.5
    p_mitosis: float = 0.5
    p_negative: float = 0.4
    p_random: float = 0.1
    grad_clip: float | None = None
    weight_average: float | None = None

    @property
    def total_epochs(self) -> int:
        return sum(s.cycles * s.epochs for s in self.stages)


DETECTOR_PRESETS = MappingProxyType({
    "smoke": DetectorPreset(
        "smoke", patches_per_epoch=32, val_patches=8, batch_size=8, fpn_channels=32, head_convs=1,
        num_workers=0, stages=(Stage(1, 2, 1e-3, frozen=False, backbone_lr_factor=1.0),
                               Stage(1, 1, 1e-3, frozen=True))),
    "quick": DetectorPreset(
        "quick", patches_per_epoch=288, val_patches=128, batch_size=16, fpn_channels=64, head_convs=2,
        num_workers=0, grad_clip=1.0, stages=(Stage(1, 10, 2e-3, frozen=False, backbone_lr_factor=1.0),)),
    "paper": DetectorPreset(
        "paper", patches_per_epoch=5000, val_patches=1000, batch_size=16, patience=10,
        stages=(Stage(1, 1, 1e-4, frozen=True), Stage(3, 10, 1e-4, frozen=True),
                Stage(2, 30, 1e-4, frozen=False, early_stopping=True))),
})
"""Preset name -> :class:`DetectorPreset`."""


def detector_preset(name: str) -> DetectorPreset:
    """The detector preset called ``name``.

    Raises:
        UnknownPreset: unknown name (the message lists the valid ones).
    """
    try:
        return DETECTOR_PRESETS[name]
    except (KeyError, TypeError):
        msg = f"unknown detector preset {name!r}; choose one of {', '.join(DETECTOR_PRESETS)}"
        raise UnknownPreset(msg) from None


# --- second stage (cell classifier) -------------------------------------------------------------------
@dataclass(frozen=True)
class ClassifierPreset:
    """A training schedule for the cell classifier.

    Attributes:
        name: preset name.
        frozen_epochs: epochs with the ResNet body frozen (one cycle at ``max_lr``).
        epochs: epochs of the one cycle after unfreezing (max lr ``slice(max_lr / 10, max_lr)``).
        max_lr: maximum learning rate.
        pct_start: share of the unfrozen cycle spent warming up.
        batch_size: patches per step.
        items_per_epoch: training patches drawn per epoch (None: all of them).
        valid_items: validation patches evaluated each epoch (a fixed random subset; None: all).
        norm_items: training patches used to estimate the normalisation mean/std.
        pretrained: start from torchvision's ImageNet ResNet-18 (or a local file, see ``train_classifier``).
        num_workers: DataLoader reader processes.
        jitter_px: training patches' centres move by up to this many px (x and y), as a detector's centres do
            (0: always centred, as the authors' exported PNGs).
        seed: seeds torch / numpy / random and the validation-slide draw.
        combine: the second-stage score a study (``ccmct demo`` / ``reproduce``, the ablation) gives a
            detection: ``replace`` (the paper: P(mitotic figure)) or ``geometric_mean``
            (sqrt(P(mitotic figure) x first-stage score), :func:`ccmct.inference.second_stage.combine_scores`).
    """

    name: str
    frozen_epochs: int
    epochs: int
    max_lr: float
    pct_start: float
    batch_size: int
    items_per_epoch: int | None
    valid_items: int | None
    norm_items: int
    pretrained: bool
    num_workers: int
    jitter_px: int = 0
    seed: int = 0
    combine: str = "replace"


CLASSIFIER_PRESETS: dict[str, ClassifierPreset] = {
    # seconds: proves the code path (CI, notebook tests)
    "smoke": ClassifierPreset("smoke", frozen_epochs=1, epochs=1, max_lr=2e-3, pct_start=0.25, batch_size=16,
                              items_per_epoch=64, valid_items=32, norm_items=64, pretrained=False,
                              num_workers=0, jitter_px=4),
    # ~4 min on 2 CPU cores on the synthetic demo set. Meant to start from the first-stage backbone
    # (default_start_weights): one epoch for the head with the body frozen, then 4 epochs of the whole network at a
    # max lr low enough to keep the backbone's features (3e-3 for the head, 3e-4 for the stem). Training centres are
    # jittered by up to 6 px, as a detector's centres are. Random init (no detector given) works, more slowly.
    # Its P(mitotic figure) saturates (most detections near 0 or 1), so as the score alone it leaves the
    # threshold search a flat curve and the F1 follows each seed's hard decisions; a study therefore scores
    # with sqrt(P(mitotic figure) x first-stage score) (docs/benchmarks.md, "Why the second stage spread").
    "quick": ClassifierPreset("quick", frozen_epochs=1, epochs=4, max_lr=3e-3, pct_start=0.25, batch_size=32,
                              items_per_epoch=1152, valid_items=384, norm_items=256, pretrained=False,
                              num_workers=1, jitter_px=6, combine="geometric_mean"),
    # the authors' recipe (the authors' `2nd_stage` notebooks; docs/second_stage.md)
    "paper": ClassifierPreset("paper", frozen_epochs=1, epochs=10, max_lr=1e-2, pct_start=0.05, batch_size=16,
                              items_per_epoch=None, valid_items=None, norm_items=1024, pretrained=True,
                              num_workers=4),
}


def classifier_preset(name: str | ClassifierPreset) -> ClassifierPreset:
    """The preset of that name (a preset passes through).

    Raises:
        UnknownPreset: unknown name (the message lists the valid ones).
    """
    if isinstance(name, ClassifierPreset):
        return name
    if name not in CLASSIFIER_PRESETS:
        raise UnknownPreset(f"unknown classifier preset {name!r}; expected one of {sorted(CLASSIFIER_PRESETS)}")
    return CLASSIFIER_PRESETS[name]
