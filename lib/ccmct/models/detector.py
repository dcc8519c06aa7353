"""The tile-detector interface, torchvision detection style: a detector owns its loss and its post-processing.

Training (:mod:`ccmct.training`), whole-slide inference (:mod:`ccmct.inference.detector`) and the validation
patch F1 use only this contract, so another detector is one new module and one row of
:data:`ccmct.models.registry.MODEL_KINDS` (role ``"detector"``); anchors, strides and box coding stay inside
the detector's module (:mod:`ccmct.models.retinanet`, :mod:`ccmct.models.fcos`). docs/design.md, "Detector
interface", has the same contract in prose.

Frames and units: one input is one square tile of ``config.tile_px`` level-0 px (at ``config.mpp`` µm/px);
every box, in and out, is ``(x1, y1, x2, y2)`` float in that tile's px (origin = the tile's top-left corner,
``x1 < x2``, ``y1 < y2``); a detected box may reach past the tile (RetinaNet does not clip; torchvision's
FCOS clips to the tile). Class indices index ``config.class_ids`` (0 = mitotic figure).

``model(images, targets=None)`` with ``images`` float Tensor[B, 3, T, T], normalised by
:func:`prepare_tiles` (or :class:`ccmct.training.data.Normalise`) with ``config.mean`` / ``config.std``:

- training mode: ``targets`` (required) is one dict per image, ``{"boxes": float Tensor[n, 4] tile px,
  "labels": int64 Tensor[n] class index}`` (``n`` may be 0); returns ``dict[str, Tensor]`` of scalar loss
  parts whose sum is the training loss (names in ``type(model).loss_names``);
- eval mode: returns one dict per image, ``{"boxes": float32 Tensor[n, 4] tile px, "scores": float32
  Tensor[n] in (0, 1], decreasing, "labels": int64 Tensor[n] class index}``: detections with score above
  ``model.score_threshold`` after per-tile NMS at ``model.nms_iou`` (both start as the config's values and
  may be set, like torchvision's ``score_thresh`` / ``nms_thresh``);
- eval mode with ``targets`` (validation): ``(losses, detections)`` from one forward pass.

``model.param_groups()`` returns ``[backbone parameters, the rest]``: a frozen training stage trains the
second group only. A detector's config dataclass has ``tile_px``, ``gt_box_px``, ``mean``, ``std``,
``score_threshold``, ``nms_iou``, ``class_ids``, ``mpp``, ``preset``, ``variant``, ``to_dict`` /
``from_dict`` and ``for_training(preset, *, variant, backbone_init, mpp)`` (the config a training preset
builds). Its registry builder takes ``(config, *, backbone_weights=None)``.

Example:
    >>> from ccmct.models.registry import model_kind
    >>> kind = model_kind("fcos")
    >>> config = kind.config_class()()
    >>> model = kind.build(config).eval()
    >>> out = model(prepare_tiles(torch.zeros(2, config.tile_px, config.tile_px, 3, dtype=torch.uint8),
    ...                           config.mean, config.std))
    >>> sorted(out[0]), out[0]["boxes"].shape[1]
    (['boxes', 'labels', 'scores'], 4)
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""RGB mean of the input normalisation of every detector (ImageNet statistics, as torchvision's weights)."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""RGB standard deviation of the same normalisation."""

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "TileDetector", "no_autocast", "prepare_tiles", "targets_from_padded",
           "unwrap"]


class TileDetector(nn.Module):
    """Base class of the tile detectors: the train / eval dispatch of ``forward`` (see the module docstring).

    A subclass sets :attr:`loss_names` and implements :meth:`compute` and :meth:`param_groups`; it keeps
    ``config`` and the two post-processing attributes :attr:`score_threshold` and :attr:`nms_iou`.
    """

    loss_names: tuple[str, ...] = ()
    """Keys of the loss dict, in the order they are summed."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.score_threshold = float(config.score_threshold)
        self.nms_iou = float(config.nms_iou)

    def forward(self, images: Tensor, targets: list[dict[str, Tensor]] | None = None):
        if self.training and targets is None:
            raise ValueError("a detector in training mode needs targets (one dict of boxes / labels per image)")
        if targets is not None and len(targets) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(targets)} targets")
        losses, detections = self.compute(images, targets, detect=not self.training)
        if self.training:
            return losses
        return (losses, detections) if targets is not None else detections

    def compute(self, images: Tensor, targets: list[dict[str, Tensor]] | None, *,
                detect: bool) -> tuple[dict[str, Tensor], list[dict[str, Tensor]]]:
        """One forward pass: the loss dict if ``targets`` is given (else ``{}``), the detections if ``detect``
        (else ``[]``). Frames and dtypes as in the module docstring."""
        raise NotImplementedError

    def param_groups(self) -> list[list[nn.Parameter]]:
        """``[backbone parameters, every other parameter]`` (each parameter exactly once)."""
        raise NotImplementedError


def prepare_tiles(tiles, mean, std) -> Tensor:
    """Uint8 RGB tiles -> the detector's normalised input.

    Args:
        tiles: (B, H, W, 3) uint8 numpy array or tensor (RGB, as read from a slide).
        mean, std: per-channel normalisation of RGB in [0, 1] (the config's ``mean`` / ``std``).

    Returns:
        float32 Tensor[B, 3, H, W] ``(x / 255 - mean) / std`` on the input's device.

    Raises:
        ValueError: not (B, H, W, 3) uint8.
    """
    x = torch.from_numpy(np.ascontiguousarray(tiles)) if isinstance(tiles, np.ndarray) else tiles
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        msg = f"expected (B, H, W, 3) uint8 RGB tiles, got {tuple(x.shape)} {x.dtype}"
        raise ValueError(msg)
    mean_t = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x.permute(0, 3, 1, 2).float() / 255.0 - mean_t) / std_t


def targets_from_padded(boxes: Tensor, labels: Tensor) -> list[dict[str, Tensor]]:
    """The training batch's padded targets as one dict per image.

    Args:
        boxes: float Tensor[B, G, 4] xyxy tile px (rows of label 0 are padding).
        labels: int64 Tensor[B, G]: 1 = mitotic figure, 0 = padding (:func:`ccmct.training.data.collate_patches`).

    Returns:
        ``[{"boxes": Tensor[n_b, 4], "labels": int64 Tensor[n_b] (class index: label - 1)}]``, padding dropped.
    """
    keep = labels > 0
    return [{"boxes": b[k], "labels": (lab[k] - 1).long()} for b, lab, k in zip(boxes, labels, keep)]


def unwrap(model: nn.Module) -> Any:
    """The detector inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    return getattr(model, "module", model)


def no_autocast(device: torch.device | str) -> contextlib.AbstractContextManager:
    """Leave any ``torch.autocast`` of ``device``'s type: losses and post-processing run in float32."""
    device_type = torch.device(device).type
    if device_type not in ("cpu", "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device_type, enabled=False)
