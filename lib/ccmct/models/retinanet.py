"""The first-stage detector: ResNet backbone + FPN, RetinaNet heads on the stride-16 level only.

The paper (Bertram et al. 2019, after Lin et al. 2017, "Focal Loss for Dense Object Detection") uses a
ResNet-18 RetinaNet whose heads see only the 16x16 feature map of a 256 px patch. :class:`RetinaNet` follows
the tile-detector interface of :mod:`ccmct.models.detector`: ``model(images, targets)`` returns the loss dict
``{"focal", "box"}`` in training, ``model(images)`` the per-tile detections in eval mode. Everything anchor-
specific lives here: the stride-16 anchors (:func:`ccmct.models.anchors.make_anchors`), anchor matching
(:func:`match_anchors`), the focal + smooth-L1 loss (:func:`detection_loss`) and decoding + per-tile NMS
(:func:`postprocess`). Frames: the input is one tile, (B, 3, H, W) float, already normalised with
:attr:`DetectorConfig.mean` / ``std`` (:func:`ccmct.models.detector.prepare_tiles`); every box is xyxy in
tile px.

Example:
    >>> config = DetectorConfig()
    >>> model = RetinaNet(config).eval()
    >>> cls_logits, box_deltas = model.head_outputs(torch.zeros(2, 3, 256, 256))
    >>> cls_logits.shape, box_deltas.shape
    (torch.Size([2, 768, 1]), torch.Size([2, 768, 4]))
    >>> [sorted(d) for d in model(torch.zeros(2, 3, 256, 256))]
    [['boxes', 'labels', 'scores'], ['boxes', 'labels', 'scores']]
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops import FeaturePyramidNetwork, batched_nms, box_iou, sigmoid_focal_loss

from ccmct.config.dataset import MITOTIC_FIGURE
from ccmct.errors import ModelError
from ccmct.models.anchors import make_anchors
from ccmct.models.box_coder import decode, encode
from ccmct.models.detector import IMAGENET_MEAN, IMAGENET_STD, TileDetector, no_autocast, prepare_tiles
from ccmct.config.units import GT_BOX_UM, PAPER_MPP, TILE_UM, px

__all__ = ["BACKBONES", "AnchorDetector", "DetectorConfig", "RetinaNet", "detection_loss", "match_anchors",
           "postprocess", "preprocess"]


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

    def positive_anchors(self, gt_boxes: Tensor) -> Tensor:
        """The anchors of the configured tile that :func:`match_anchors` makes positive for these GT boxes
        (Tensor[G, 4] xyxy tile px): Tensor[n, 4] xyxy tile px."""
        anchors = self.anchors()
        gt = gt_boxes.reshape(1, -1, 4).float()
        state, _ = match_anchors(anchors, gt, torch.ones(gt.shape[:2], dtype=torch.long),
                                 iou_pos=self.match_iou_pos, iou_neg=self.match_iou_neg)
        return anchors[state[0] == 1]

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def for_training(cls, preset, *, variant: str, backbone_init: str = "none",
                     mpp: float = PAPER_MPP) -> "DetectorConfig":
        """The config a training preset builds: FPN / head sizes from the :class:`ccmct.config.presets.
        DetectorPreset`, provenance (preset name, label set, backbone weights source), ``mpp`` = µm/px of
        the training slides; the rest the defaults."""
        return cls(fpn_channels=preset.fpn_channels, head_convs=preset.head_convs, preset=preset.name,
                   variant=variant, backbone_init=backbone_init, mpp=mpp)

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


class AnchorDetector(TileDetector):
    """A tile detector whose head emits per-anchor logits and box deltas on the stride-16 anchor grid.

    Subclasses implement :meth:`head_outputs`; this class owns the anchors of the config, the loss
    (:func:`detection_loss` with the config's matching IoUs) and the post-processing (:func:`postprocess` at
    :attr:`score_threshold` / :attr:`nms_iou`). Loss and post-processing run in float32 outside any autocast.
    """

    loss_names = ("focal", "box")

    def __init__(self, config: DetectorConfig):
        super().__init__(config)
        self._anchors: dict[tuple[int, str], Tensor] = {}

    def head_outputs(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(cls_logits Tensor[B, A, n_classes], box_deltas Tensor[B, A, 4])``, A in the order of
        :func:`ccmct.models.anchors.make_anchors` for the images' size."""
        raise NotImplementedError

    def tile_anchors(self, tile_px: int, device: torch.device) -> Tensor:
        """Anchors of a ``tile_px`` square input, Tensor[A, 4] xyxy tile px, on ``device`` (cached)."""
        key = (int(tile_px), str(device))
        if key not in self._anchors:
            self._anchors[key] = self.config.anchors(int(tile_px)).to(device)
        return self._anchors[key]

    def compute(self, images: Tensor, targets: list[dict[str, Tensor]] | None, *,
                detect: bool) -> tuple[dict[str, Tensor], list[dict[str, Tensor]]]:
        cls_logits, box_deltas = self.head_outputs(images)
        if images.shape[-1] != images.shape[-2]:
            raise ValueError(f"square tiles expected, got {tuple(images.shape[-2:])} (H, W)")
        anchors = self.tile_anchors(images.shape[-1], box_deltas.device)
        losses: dict[str, Tensor] = {}
        detections: list[dict[str, Tensor]] = []
        with no_autocast(box_deltas.device):
            if targets is not None:
                gt_boxes, gt_labels = _padded(targets, box_deltas.device)
                losses = detection_loss(cls_logits, box_deltas, anchors, gt_boxes, gt_labels,
                                        iou_pos=self.config.match_iou_pos, iou_neg=self.config.match_iou_neg)
            if detect:
                per_tile = postprocess(cls_logits.float(), box_deltas.float(), anchors,
                                       score_threshold=self.score_threshold, iou_threshold=self.nms_iou)
                detections = [{"boxes": boxes, "scores": scores, "labels": labels}
                              for boxes, scores, labels in per_tile]
        return losses, detections


class RetinaNet(AnchorDetector):
    """ResNet + FPN with classification and box heads on the stride-16 level.

    Args:
        config: the architecture (see :class:`DetectorConfig`).
        backbone_weights: see :func:`build_backbone` (default: random init; a saved model directory
            overwrites everything anyway).

    ``forward(images, targets=None)``: the tile-detector contract of :mod:`ccmct.models.detector` (images
    Tensor[B, 3, T, T] float, normalised, T a multiple of 32). :meth:`head_outputs` gives the raw
    ``(cls_logits Tensor[B, A, n_classes], box_deltas Tensor[B, A, 4])`` with A = (H/16)(W/16)K.
    """

    def __init__(self, config: DetectorConfig, *, backbone_weights: str | os.PathLike[str] | None = None):
        super().__init__(config)
        self.body = build_backbone(config.backbone, backbone_weights)
        self.fpn = FeaturePyramidNetwork(list(BACKBONES[config.backbone]), config.fpn_channels)
        # Only the stride-16 output is used: the stride-32 level feeds it through the top-down path, but its
        # own 3x3 output conv would be dead weight (and unused parameters break DistributedDataParallel).
        self.fpn.layer_blocks[1] = nn.Identity()
        k, n_classes = config.n_anchors_per_cell, len(config.class_ids)
        prior_bias = -math.log((1 - config.prior_prob) / config.prior_prob)
        self.cls_head = _Head(config.fpn_channels, config.head_convs, k, n_classes, bias=prior_bias)
        self.box_head = _Head(config.fpn_channels, config.head_convs, k, 4, bias=0.0)

    def head_outputs(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.fpn(self.body(images))["c4"]        # stride 16
        return self.cls_head(features), self.box_head(features)

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters trained while the backbone is frozen (FPN + heads)."""
        return [p for m in (self.fpn, self.cls_head, self.box_head) for p in m.parameters()]

    def param_groups(self) -> list[list[nn.Parameter]]:
        return [list(self.body.parameters()), self.head_parameters()]


def preprocess(images, config: DetectorConfig) -> Tensor:
    """Uint8 RGB tiles (B, H, W, 3) -> the model's normalised input
    (:func:`ccmct.models.detector.prepare_tiles` with the config's mean / std)."""
    return prepare_tiles(images, config.mean, config.std)


def _padded(targets: list[dict[str, Tensor]], device: torch.device) -> tuple[Tensor, Tensor]:
    """Per-image targets -> ``(gt_boxes Tensor[B, G, 4], gt_labels Tensor[B, G] long, 1 = object, 0 = padding)``
    with G = max(1, most boxes in an image), the layout :func:`match_anchors` vectorises over."""
    n_max = max([1, *(len(t["boxes"]) for t in targets)])
    boxes = torch.zeros(len(targets), n_max, 4, device=device)
    labels = torch.zeros(len(targets), n_max, dtype=torch.long, device=device)
    for row, target in enumerate(targets):
        n = len(target["boxes"])
        boxes[row, :n] = target["boxes"].to(device=device, dtype=torch.float32)
        labels[row, :n] = 1
    return boxes, labels


def match_anchors(anchors: Tensor, gt_boxes: Tensor, gt_labels: Tensor, *, iou_pos: float,
                  iou_neg: float) -> tuple[Tensor, Tensor]:
    """Assign each anchor to a GT box.

    Args:
        anchors: Tensor[A, 4] xyxy tile px.
        gt_boxes: Tensor[B, G, 4] xyxy tile px (padding rows arbitrary).
        gt_labels: Tensor[B, G] long, 0 = padding.
        iou_pos: IoU >= this -> positive (matched to the best-overlapping GT).
        iou_neg: IoU < this -> background; in between -> ignored.

    Returns:
        ``(state Tensor[B, A] long: 1 positive, 0 background, -1 ignored; gt_index Tensor[B, A] long)``.
    """
    b, g = gt_labels.shape
    if g == 0:
        zeros = torch.zeros(b, anchors.shape[0], dtype=torch.long, device=anchors.device)
        return zeros, zeros
    iou = box_iou(anchors, gt_boxes.reshape(-1, 4)).reshape(anchors.shape[0], b, g).permute(1, 0, 2)
    iou = iou.masked_fill(~(gt_labels > 0)[:, None, :], -1.0)            # [B, A, G]
    best_iou, gt_index = iou.max(dim=-1)
    state = torch.full_like(gt_index, -1)
    state[best_iou < iou_neg] = 0
    state[best_iou >= iou_pos] = 1
    return state, gt_index


def detection_loss(cls_logits: Tensor, box_deltas: Tensor, anchors: Tensor, gt_boxes: Tensor, gt_labels: Tensor,
                   *, iou_pos: float = 0.5, iou_neg: float = 0.4, alpha: float = 0.25, gamma: float = 2.0,
                   beta: float = 1.0 / 9) -> dict[str, Tensor]:
    """Sigmoid focal loss (Lin et al. 2017) on all non-ignored anchors + smooth-L1 on the positive anchors'
    encoded boxes (:func:`ccmct.models.box_coder.encode`), each divided by the number of positives (at least 1).

    Args:
        cls_logits: Tensor[B, A, C]; box_deltas: Tensor[B, A, 4] (any float dtype; computed in float32).
        anchors: Tensor[A, 4] xyxy tile px.
        gt_boxes: Tensor[B, G, 4] xyxy tile px; gt_labels: Tensor[B, G] long, 0 = padding.
        iou_pos, iou_neg: matching thresholds (:func:`match_anchors`).
        alpha, gamma: focal loss parameters (paper / Lin et al.: 0.25, 2).
        beta: smooth-L1 transition point (in encoded units).

    Returns:
        ``{"focal": scalar Tensor, "box": scalar Tensor}``; the training loss is focal + box.
    """
    state, gt_index = match_anchors(anchors, gt_boxes.float(), gt_labels, iou_pos=iou_pos, iou_neg=iou_neg)
    positive = state == 1
    n_pos = positive.sum().clamp(min=1).float()
    target = positive.float()[..., None].expand_as(cls_logits)
    focal = sigmoid_focal_loss(cls_logits.float(), target, alpha=alpha, gamma=gamma, reduction="none")
    focal = (focal * (state >= 0).float()[..., None]).sum() / n_pos
    if positive.any():
        matched = torch.gather(gt_boxes.float(), 1, gt_index[..., None].expand(-1, -1, 4))[positive]
        anchor_rows = anchors.expand(state.shape[0], -1, -1)[positive]
        box = F.smooth_l1_loss(box_deltas.float()[positive], encode(matched, anchor_rows),
                               beta=beta, reduction="sum") / n_pos
    else:
        box = box_deltas.sum() * 0.0
    return {"focal": focal, "box": box}


@torch.no_grad()
def postprocess(cls_logits: Tensor, box_deltas: Tensor, anchors: Tensor, *, score_threshold: float,
                iou_threshold: float) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Detections per tile: sigmoid score > threshold, decode, per-tile NMS.

    Args:
        cls_logits: Tensor[B, A, C] (C = 1: mitotic figure; for C > 1 the best class's score is used).
        box_deltas: Tensor[B, A, 4].
        anchors: Tensor[A, 4] xyxy tile px (``config.anchors(tile_px)``).
        score_threshold: keep scores strictly above this (paper: 0.3).
        iou_threshold: NMS IoU within each tile (paper: 0.4).

    Returns:
        One ``(boxes_xyxy Tensor[n, 4] float32 tile px, scores Tensor[n] float32, labels Tensor[n] int64 class
        index)`` per image, sorted by decreasing score. Boxes are not clipped to the tile.
    """
    probabilities = torch.sigmoid(cls_logits.float())
    scores, classes = probabilities.max(dim=-1)                       # [B, A]
    image_idx, anchor_idx = torch.nonzero(scores > score_threshold, as_tuple=True)
    kept_scores = scores[image_idx, anchor_idx]
    boxes = decode(box_deltas[image_idx, anchor_idx].float(), anchors.to(box_deltas.device)[anchor_idx])
    keep = batched_nms(boxes, kept_scores, image_idx, iou_threshold)  # sorted by decreasing score
    kept_classes = classes[image_idx, anchor_idx]
    out = []
    for b in range(cls_logits.shape[0]):
        sel = keep[image_idx[keep] == b]
        out.append((boxes[sel], kept_scores[sel], kept_classes[sel]))
    return out
