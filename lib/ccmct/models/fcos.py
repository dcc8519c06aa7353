"""A tiny anchor-free detector: torchvision's FCOS (Tian et al. 2019, "FCOS: Fully Convolutional One-Stage
Object Detection") on a small conv backbone with a two-level FPN (strides 8 and 16).

It is the second tile detector behind the interface of :mod:`ccmct.models.detector` (registry kind
``"fcos"``), small enough to train for a few steps on a CPU; it is not a model of the paper. torchvision's
:class:`~torchvision.models.detection.FCOS` owns the per-location assignment (centre sampling, scale ranges),
the losses (``classification`` sigmoid focal, ``bbox_regression`` GIoU, ``bbox_ctrness`` BCE) and the
post-processing (score = sqrt(class probability x centre-ness), top-k, per-tile NMS). Its resize / normalise
transform is bypassed: the input is already a normalised ``tile_px`` tile (``min_size = max_size = tile_px``
and an identity mean / std are set as well, so calling ``model.net`` directly does not resize either).
Frames: every box is xyxy in tile px, as everywhere in the detector interface.

Example:
    >>> config = FCOSConfig()
    >>> model = TinyFCOS(config).train()
    >>> images = torch.zeros(1, 3, config.tile_px, config.tile_px)
    >>> targets = [{"boxes": torch.tensor([[100.0, 100.0, 150.0, 150.0]]), "labels": torch.tensor([0])}]
    >>> sorted(model(images, targets))
    ['bbox_ctrness', 'bbox_regression', 'classification']
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields

import torch
from torch import Tensor, nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import FeaturePyramidNetwork

from ccmct.config.dataset import MITOTIC_FIGURE
from ccmct.config.units import GT_BOX_UM, PAPER_MPP, TILE_UM, px
from ccmct.models.detector import IMAGENET_MEAN, IMAGENET_STD, TileDetector, no_autocast

__all__ = ["FCOSConfig", "TinyFCOS"]

LEVEL_STRIDES_PX = (8, 16)
"""Strides of the two FPN levels the head sees, px (FCOS places one point per cell, its "anchor" size = stride)."""


@dataclass(frozen=True)
class FCOSConfig:
    """The tiny FCOS detector; saved as ``config.json`` (kind ``"fcos"``).

    Attributes:
        tile_px: side of the square input tile, px (a multiple of 16).
        gt_box_px: side of the square box made from a point annotation, px (as the RetinaNet's).
        channels: output channels of the backbone's 3x3 stride-2 conv stages (strides 2, 4, 8, 16); the last
            two feed the FPN.
        fpn_channels: channels of the FPN and the head (a multiple of 32: the head's GroupNorm has 32 groups).
        head_convs: conv + GroupNorm + ReLU layers in each head tower.
        mean, std: per-channel normalisation of RGB in [0, 1].
        score_threshold: minimum detection score kept by the post-processing.
        nms_iou: IoU of the per-tile NMS.
        class_ids: database class id of each output channel (mitotic figure).
        preset, variant, backbone_init: provenance (``backbone_init`` is always ``"none"``: random init).
        mpp: µm per level-0 px of the slides it was trained at.
    """

    tile_px: int = round(px(TILE_UM, PAPER_MPP))
    gt_box_px: float = px(GT_BOX_UM, PAPER_MPP)
    channels: tuple[int, ...] = (16, 32, 32, 32)
    fpn_channels: int = 32
    head_convs: int = 1
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    score_threshold: float = 0.3
    nms_iou: float = 0.4
    class_ids: tuple[int, ...] = (MITOTIC_FIGURE,)
    preset: str = ""
    variant: str = ""
    backbone_init: str = "none"
    mpp: float = PAPER_MPP

    def __post_init__(self):
        if not (isinstance(self.mpp, (int, float)) and math.isfinite(self.mpp) and self.mpp > 0):
            raise ValueError(f"mpp (µm per level-0 px) must be a positive number, got {self.mpp!r}")
        if self.tile_px <= 0 or self.tile_px % LEVEL_STRIDES_PX[-1]:
            raise ValueError(f"tile_px must be a positive multiple of {LEVEL_STRIDES_PX[-1]}, got {self.tile_px}")
        if len(self.channels) != 4 or min(self.channels) < 1:
            raise ValueError(f"channels must give 4 positive stage widths (strides 2, 4, 8, 16), got {self.channels}")
        if self.fpn_channels < 32 or self.fpn_channels % 32:
            raise ValueError(f"fpn_channels must be a positive multiple of 32, got {self.fpn_channels}")
        if self.backbone_init != "none":
            raise ValueError(f"the tiny FCOS starts from random init, got backbone_init={self.backbone_init!r}")

    @classmethod
    def for_training(cls, preset, *, variant: str, backbone_init: str = "none",
                     mpp: float = PAPER_MPP) -> "FCOSConfig":
        """The config a training preset builds: the defaults plus provenance; the preset's RetinaNet sizes
        (``fpn_channels``, ``head_convs``) do not apply. Raises ValueError for backbone weights."""
        return cls(preset=preset.name, variant=variant, backbone_init=backbone_init, mpp=mpp)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "FCOSConfig":
        """Inverse of :meth:`to_dict`. Raises ValueError naming unknown keys."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown FCOS config keys {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class _Backbone(nn.Module):
    """3x3 stride-2 conv + BatchNorm + ReLU stages, then an FPN over the stride-8 and stride-16 maps."""

    def __init__(self, channels: tuple[int, ...], out_channels: int):
        super().__init__()
        stages, c_in = [], 3
        for c_out in channels:
            stages.append(nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                                        nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)))
            c_in = c_out
        self.body = nn.ModuleList(stages)
        self.fpn = FeaturePyramidNetwork(list(channels[-2:]), out_channels)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        maps = []
        for stage in self.body:
            x = stage(x)
            maps.append(x)
        return self.fpn(OrderedDict([("p3", maps[-2]), ("p4", maps[-1])]))


class TinyFCOS(TileDetector):
    """torchvision FCOS with a tiny backbone (see the module docstring); the tile-detector contract of
    :mod:`ccmct.models.detector`.

    Args:
        config: the architecture (:class:`FCOSConfig`).
        backbone_weights: only ``None`` / ``"none"`` (random init).
    """

    loss_names = ("classification", "bbox_regression", "bbox_ctrness")

    def __init__(self, config: FCOSConfig, *, backbone_weights=None):
        if backbone_weights not in (None, "none"):
            raise ValueError("the tiny FCOS has no pretrained backbone; it starts from random init")
        super().__init__(config)
        backbone = _Backbone(config.channels, config.fpn_channels)
        anchors = AnchorGenerator(sizes=tuple((s,) for s in LEVEL_STRIDES_PX),
                                  aspect_ratios=((1.0,),) * len(LEVEL_STRIDES_PX))
        head = FCOSHead(config.fpn_channels, 1, len(config.class_ids), num_convs=config.head_convs)
        self.net = FCOS(backbone, num_classes=len(config.class_ids), min_size=config.tile_px,
                        max_size=config.tile_px, image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0],
                        anchor_generator=anchors, head=head, score_thresh=config.score_threshold,
                        nms_thresh=config.nms_iou)

    def param_groups(self) -> list[list[nn.Parameter]]:
        backbone = list(self.net.backbone.body.parameters())
        ids = {id(p) for p in backbone}
        return [backbone, [p for p in self.parameters() if id(p) not in ids]]

    def compute(self, images: Tensor, targets: list[dict[str, Tensor]] | None, *,
                detect: bool) -> tuple[dict[str, Tensor], list[dict[str, Tensor]]]:
        net = self.net
        image_list = ImageList(images, [tuple(images.shape[-2:])] * images.shape[0])
        features = list(net.backbone(images).values())
        head_outputs = net.head(features)
        anchors = net.anchor_generator(image_list, features)
        per_level = [f.shape[2] * f.shape[3] for f in features]
        losses: dict[str, Tensor] = {}
        detections: list[dict[str, Tensor]] = []
        with no_autocast(images.device):
            head_outputs = {k: v.float() for k, v in head_outputs.items()}
            if targets is not None:
                tv_targets = [{"boxes": t["boxes"].to(images.device, torch.float32),
                               "labels": t["labels"].to(images.device, torch.int64)} for t in targets]
                losses = net.compute_loss(tv_targets, head_outputs, anchors, per_level)
            if detect:
                net.score_thresh, net.nms_thresh = self.score_threshold, self.nms_iou
                split_outputs = {k: list(v.split(per_level, dim=1)) for k, v in head_outputs.items()}
                split_anchors = [list(a.split(per_level)) for a in anchors]
                found = net.postprocess_detections(split_outputs, split_anchors, image_list.image_sizes)
                detections = [{"boxes": d["boxes"].float(), "scores": d["scores"].float(),
                               "labels": d["labels"].long()} for d in found]
        return losses, detections
