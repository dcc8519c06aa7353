"""The first-stage detector: ResNet backbone + FPN, RetinaNet heads on the stride-16 level only.

The paper (Bertram et al. 2019, after Lin et al. 2017, "Focal Loss for Dense Object Detection") uses a
ResNet-18 RetinaNet whose heads see only the 16x16 feature map of a 256 px patch. Frames: the input is
one tile, (B, 3, H, W) float, already normalised with :attr:`DetectorConfig.mean` / ``std``
(:func:`preprocess` does it); every box is xyxy in tile px.

Example:
    >>> config = DetectorConfig()
    >>> model = RetinaNet(config).eval()
    >>> cls_logits, box_deltas = model(torch.zeros(2, 3, 256, 256))
    >>> cls_logits.shape, box_deltas.shape
    (torch.Size([2, 768, 1]), torch.Size([2, 768, 4]))
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import Tensor, nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops import FeaturePyramidNetwork, batched_nms

from ccmct.config.dataset import MITOTIC_FIGURE
from ccmct.errors import ModelError
from ccmct.models.anchors import make_anchors
from ccmct.models.box_coder import decode
from ccmct.config.units import GT_BOX_UM, PAPER_MPP, TILE_UM, px

__all__ = ["BACKBONES", "DetectorConfig", "RetinaNet", "postprocess", "preprocess"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

BACKBONES = {"resnet18": (256, 512), "resnet34": (256, 512), "resnet50": (1024, 2048)}
"""Supported torchvision backbones -> channels of (layer3 = stride 16, layer4 = stride 32)."""


@dataclass(frozen=True)
class DetectorConfig:
    """Everything that defines the detector and how its output is read; saved as ``config.json``.

    Box size and anchors (see docs/training.md): a point annotation becomes a ``gt_box_px`` square
    (50 px = 2 x the 25 px detection radius, 12.5 µm at 0.25 µm/px, the cell size); anchors 40/50/60 px on
    the 16 px grid. Every GT square then overlaps its nearest 50 px anchor at IoU >= 0.54, so each
    annotation has a positive anchor at the 0.5 IoU threshold (the authors' 19.2-28.8 px anchors never
    reach IoU 0.5 with their 50 px boxes).

    Attributes:
        tile_px: side of the square input patch, px (level 0).
        stride_px: stride of the detection level, px.
        anchor_sizes_px: anchor sides, px.
        gt_box_px: side of the square box made from a point annotation, px.
        backbone: torchvision ResNet name (key of :data:`BACKBONES`).
        fpn_channels: channels of the FPN output and of the heads.
        head_convs: 3x3 conv + ReLU layers in each head before its output conv.
        prior_prob: initial foreground probability (bias init of the classifier output).
        mean, std: per-channel normalisation of RGB in [0, 1].
        score_threshold: minimum sigmoid score kept by :func:`postprocess` (paper: 0.3).
        nms_iou: IoU of the per-tile NMS (paper: 0.4).
        match_iou_pos, match_iou_neg: anchor matching: IoU >= pos -> positive, < neg -> background.
        class_ids: database class id of each output channel (mitotic figure).
        preset, variant, backbone_init: provenance (training preset, label set, backbone weights source).
        mpp: µm per level-0 px of the slides it was trained at (:mod:`ccmct.config.units`); every px size
            above is meant at this resolution. Configs written without it are read as 0.25 (docs/contracts.md).
    """

    tile_px: int = round(px(TILE_UM, PAPER_MPP))
    stride_px: int = 16
    anchor_sizes_px: tuple[float, ...] = (40.0, 50.0, 60.0)
    gt_box_px: float = px(GT_BOX_UM, PAPER_MPP)
    backbone: str = "resnet18"
    fpn_channels: int = 256
    head_convs: int = 4
    prior_prob: float = 0.01
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    score_threshold: float = 0.3
    nms_iou: float = 0.4
    match_iou_pos: float = 0.5
    match_iou_neg: float = 0.4
    class_ids: tuple[int, ...] = (MITOTIC_FIGURE,)
    preset: str = ""
    variant: str = ""
    backbone_init: str = "none"
    mpp: float = PAPER_MPP

    def __post_init__(self):
        if not (isinstance(self.mpp, (int, float)) and math.isfinite(self.mpp) and self.mpp > 0):
            raise ValueError(f"mpp (µm per level-0 px) must be a positive number, got {self.mpp!r}")
        if self.backbone not in BACKBONES:
            msg = f"backbone {self.backbone!r} not supported; expected one of {sorted(BACKBONES)}"
            raise ValueError(msg)
        if self.stride_px != 16:
            msg = f"stride_px must be 16 (the heads sit on the stride-16 FPN level), got {self.stride_px}"
            raise ValueError(msg)
        make_anchors(self.tile_px, self.stride_px, self.anchor_sizes_px)  # validates tile/sizes

    @property
    def n_anchors_per_cell(self) -> int:
        return len(self.anchor_sizes_px)

    def anchors(self, tile_px: int | None = None) -> Tensor:
        """Anchors of a ``tile_px`` input (default the configured tile), Tensor[A, 4] xyxy tile px."""
        return make_anchors(tile_px or self.tile_px, self.stride_px, self.anchor_sizes_px)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "DetectorConfig":
        """Inverse of :meth:`to_dict`. Raises ValueError naming unknown keys."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            msg = f"unknown detector config keys {unknown}"
            raise ValueError(msg)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def build_backbone(name: str, weights: str | os.PathLike[str] | None = None) -> nn.Module:
    """A torchvision ResNet returning ``{"c4": stride-16, "c5": stride-32}`` feature maps.

    Args:
        name: key of :data:`BACKBONES`.
        weights: ``None`` / ``"none"`` (random init), ``"pretrained"`` (torchvision's ImageNet weights,
            downloaded into ``$TORCH_HOME``) or the path of a local ResNet state dict (``.pth``; ``fc.*``
            keys are ignored; loaded with ``weights_only=True``).

    Raises:
        ModelError: the weights file is missing, unsafe or does not fit the backbone; or the ImageNet
            weights cannot be downloaded.
    """
    if name not in BACKBONES:
        msg = f"backbone {name!r} not supported; expected one of {sorted(BACKBONES)}"
        raise ValueError(msg)
    factory = getattr(torchvision.models, name)
    if weights == "pretrained":
        try:
            resnet = factory(weights="IMAGENET1K_V1")
        except Exception as err:  # noqa: BLE001 - offline download errors come in many types
            raise ModelError(Path(os.environ.get("TORCH_HOME", "~/.cache/torch")),
                             f"cannot get torchvision's ImageNet weights for {name} ({err}); "
                             "pass a local weights file (--weights FILE) instead") from err
    else:
        resnet = factory(weights=None)
        if weights not in (None, "none"):
            _load_backbone_file(resnet, Path(weights))
    return IntermediateLayerGetter(resnet, return_layers={"layer3": "c4", "layer4": "c5"})


def _load_backbone_file(resnet: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise ModelError(path, "backbone weights file does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise ModelError(path, f"not a safe torch state dict ({err})") from err
    if not isinstance(state, dict):
        raise ModelError(path, f"expected a state dict, found {type(state).__name__}")
    state = {k.removeprefix("module.").removeprefix("backbone.body."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    expected = {k for k in resnet.state_dict() if not k.startswith("fc.")}
    missing = sorted(expected - set(state))
    if missing:
        raise ModelError(path, f"{len(missing)} backbone weights missing (e.g. {missing[:3]}); "
                               "expected a torchvision ResNet state dict")
    try:
        resnet.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise ModelError(path, f"weights do not fit the backbone ({str(err).splitlines()[0]})") from err


class _Head(nn.Module):
    """``n_convs`` x (3x3 conv + ReLU), then a 3x3 conv to ``n_anchors * n_out`` channels."""

    def __init__(self, channels: int, n_convs: int, n_anchors: int, n_out: int, *, bias: float):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(n_convs):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
        self.tower = nn.Sequential(*layers)
        self.out = nn.Conv2d(channels, n_anchors * n_out, 3, padding=1)
        self.n_out = n_out
        for conv in [m for m in self.modules() if isinstance(m, nn.Conv2d)]:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.constant_(conv.bias, 0.0)
        nn.init.constant_(self.out.bias, bias)

    def forward(self, x: Tensor) -> Tensor:
        y = self.out(self.tower(x))                          # [B, K*n_out, rows, cols]
        b, _, rows, cols = y.shape
        y = y.permute(0, 2, 3, 1)                            # [B, rows, cols, K*n_out]
        return y.reshape(b, rows * cols * (y.shape[-1] // self.n_out), self.n_out)


class RetinaNet(nn.Module):
    """ResNet + FPN with classification and box heads on the stride-16 level.

    Args:
        config: the architecture (see :class:`DetectorConfig`).
        backbone_weights: see :func:`build_backbone` (default: random init; a saved model directory
            overwrites everything anyway).

    ``forward(images)``: images Tensor[B, 3, H, W] float, normalised, H and W multiples of 32. Returns
    ``(cls_logits Tensor[B, A, n_classes], box_deltas Tensor[B, A, 4])`` with A = (H/16)(W/16)K in the
    order of :func:`ccmct.models.anchors.make_anchors`.
    """

    def __init__(self, config: DetectorConfig, *, backbone_weights: str | os.PathLike[str] | None = None):
        super().__init__()
        self.config = config
        self.body = build_backbone(config.backbone, backbone_weights)
        self.fpn = FeaturePyramidNetwork(list(BACKBONES[config.backbone]), config.fpn_channels)
        # Only the stride-16 output is used: the stride-32 level feeds it through the top-down path, but its
        # own 3x3 output conv would be dead weight (and unused parameters break DistributedDataParallel).
        self.fpn.layer_blocks[1] = nn.Identity()
        k, n_classes = config.n_anchors_per_cell, len(config.class_ids)
        prior_bias = -math.log((1 - config.prior_prob) / config.prior_prob)
        self.cls_head = _Head(config.fpn_channels, config.head_convs, k, n_classes, bias=prior_bias)
        self.box_head = _Head(config.fpn_channels, config.head_convs, k, 4, bias=0.0)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.fpn(self.body(images))["c4"]        # stride 16
        return self.cls_head(features), self.box_head(features)

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters trained while the backbone is frozen (FPN + heads)."""
        return [p for m in (self.fpn, self.cls_head, self.box_head) for p in m.parameters()]


def preprocess(images, config: DetectorConfig) -> Tensor:
    """Uint8 RGB tiles -> the model's normalised input.

    Args:
        images: (B, H, W, 3) uint8 numpy array or tensor (RGB, as read from a slide).
        config: gives mean / std.

    Returns:
        float32 Tensor[B, 3, H, W] on the input's device.
    """
    x = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        msg = f"expected (B, H, W, 3) uint8 RGB tiles, got {tuple(x.shape)} {x.dtype}"
        raise ValueError(msg)
    mean = torch.tensor(config.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(config.std, device=x.device).view(1, 3, 1, 1)
    return (x.permute(0, 3, 1, 2).float() / 255.0 - mean) / std


@torch.no_grad()
def postprocess(cls_logits: Tensor, box_deltas: Tensor, anchors: Tensor, *, score_threshold: float,
                iou_threshold: float) -> list[tuple[Tensor, Tensor]]:
    """Detections per tile: sigmoid score > threshold, decode, per-tile NMS.

    Args:
        cls_logits: Tensor[B, A, C] (C = 1: mitotic figure; for C > 1 the best class's score is used).
        box_deltas: Tensor[B, A, 4].
        anchors: Tensor[A, 4] xyxy tile px (``config.anchors(tile_px)``).
        score_threshold: keep scores strictly above this (paper: 0.3).
        iou_threshold: NMS IoU within each tile (paper: 0.4).

    Returns:
        One ``(boxes_xyxy Tensor[n, 4] float32 tile px, scores Tensor[n] float32)`` per image, sorted by
        decreasing score. Boxes are not clipped to the tile.
    """
    scores = torch.sigmoid(cls_logits.float()).amax(dim=-1)          # [B, A]
    image_idx, anchor_idx = torch.nonzero(scores > score_threshold, as_tuple=True)
    kept_scores = scores[image_idx, anchor_idx]
    boxes = decode(box_deltas[image_idx, anchor_idx].float(), anchors.to(box_deltas.device)[anchor_idx])
    keep = batched_nms(boxes, kept_scores, image_idx, iou_threshold)  # sorted by decreasing score
    out = []
    for b in range(cls_logits.shape[0]):
        sel = keep[image_idx[keep] == b]
        out.append((boxes[sel], kept_scores[sel]))
    return out
