"""The fast mode's candidate model: a small fully convolutional net on a reduced-resolution slide level.

Idea (docs/fast_mode.md; "Mitosis Detection, Fast and Slow", Jahanifar et al.): a light network looks at the
slide at ``downsample`` x fewer pixels per side (4x = the first Aperio pyramid level, ~1 µm/px on the real
scans) and outputs a mitosis-likelihood map; its local maxima above a low, recall-tuned threshold are the
*candidates*, which the existing second-stage cell classifier then confirms on level-0 patches.

Frames: *input px* = pixels of the reduced image the net reads (1 input px = ``downsample`` level-0 px);
*map cells* = the output map, ``map_stride`` input px per cell. Map cell ``(row i, column j)`` of an image
whose top-left corner is input px ``(ox, oy)`` has its centre at input px ``(ox + (j + 0.5) * map_stride,
oy + (i + 0.5) * map_stride)``, i.e. level-0 px ``downsample`` times that (:func:`cells_to_input_px`).

The model owns its loss (:meth:`CandidateNet.loss`, a focal loss on a Gaussian heat map around the
mitotic-figure centres) and its post-processing (:meth:`CandidateNet.peaks`, local maxima by max pooling), so
it can stand behind a detector interface later (issue 16) without its internals leaking.

Model directory: ``config.json`` ``{"format_version": 1, "kind": "candidate", "config": CandidateConfig}``
+ ``weights.pt`` (state dict), written and read by :mod:`ccmct.models.io`.

Example:
    >>> net = CandidateNet(CandidateConfig())
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 1, 32, 32])
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import sigmoid_focal_loss

from ccmct.config.dataset import DETECTION_RADIUS_L0
from ccmct.jsonable import json_default

__all__ = ["KIND", "CandidateConfig", "CandidateNet", "cells_to_input_px", "heat_maps", "normalise"]

KIND = "candidate"

GT_BOX_PX = 2 * DETECTION_RADIUS_L0
"""Side of the box written per candidate, level-0 px (the detector's 50 px; docs/training.md)."""


@dataclass(frozen=True)
class CandidateConfig:
    """Everything needed to use a trained candidate model (``config.json``).

    Attributes:
        downsample: level-0 px per input px (2 or 4: ~0.5 or ~1 µm/px on 0.25 µm/px scans).
        input_mpp: µm per input px of the training slides (level-0 µm/px x ``downsample``).
        channels: width of the two conv blocks (full input resolution, then ``map_stride``).
        map_stride: input px per output map cell (the second block's stride).
        threshold: candidates need a likelihood ``>= threshold`` (chosen on validation patches for
            ``target_recall``; low on purpose).
        target_recall: share of validation mitoses the threshold keeps a candidate for (within the radius).
        peak_radius_l0: a candidate is the maximum of its ``(2r + 1)`` neighbourhood, r in level-0 px.
        heat_sigma_l0: sigma of the Gaussian heat-map target around a mitotic-figure centre, level-0 px.
        focal_alpha: weight of the positive term of the focal loss (high = recall first).
        gt_box_px: side of the box written per candidate, level-0 px.
        patch_px: side of the level-0 patch the confirming classifier must take (paper: 128).
        mean, std: per-channel normalisation of [0, 1] RGB.
        preset, variant: training preset and label set.
    """

    downsample: int = 4
    input_mpp: float = 1.0
    channels: tuple[int, int] = (16, 32)
    map_stride: int = 2
    threshold: float = 0.1
    target_recall: float = 0.95
    peak_radius_l0: float = float(DETECTION_RADIUS_L0)
    heat_sigma_l0: float = 8.0
    focal_alpha: float = 0.75
    gt_box_px: int = GT_BOX_PX
    patch_px: int = 128
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)
    preset: str = ""
    variant: str = ""

    def __post_init__(self):
        if self.downsample < 1 or self.map_stride not in (1, 2, 4):
            raise ValueError(f"downsample must be >= 1 and map_stride 1, 2 or 4, got {self.downsample}, "
                             f"{self.map_stride}")
        if len(self.channels) != 2 or min(self.channels) < 1:
            raise ValueError(f"channels must be two positive widths, got {self.channels}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")

    @property
    def cell_l0(self) -> int:
        """Level-0 px per map cell."""
        return self.downsample * self.map_stride

    @property
    def peak_radius_cells(self) -> int:
        """Half-width of the local-maximum window, map cells (at least 1)."""
        return max(1, int(round(self.peak_radius_l0 / self.cell_l0)))

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=json_default))

    @classmethod
    def from_dict(cls, document: dict) -> "CandidateConfig":
        values = dict(document)
        for key in ("channels", "mean", "std"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def _block(c_in: int, c_out: int, *, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class CandidateNet(nn.Module):
    """Mitosis-likelihood map at ``1 / map_stride`` of the input resolution.

    Layers: two 3x3 convs at full input resolution, a strided 3x3 conv to ``map_stride``, two 3x3 convs
    (the second dilated 2: receptive field ~ 35 input px = 140 level-0 px at 4x, a cell and its
    surroundings), a 1x1 conv to one logit per cell.

    ``forward(images normalised [B, 3, H, W])`` -> logits ``[B, 1, H / map_stride, W / map_stride]``
    (H and W multiples of ``map_stride``).
    """

    def __init__(self, config: CandidateConfig):
        super().__init__()
        self.config = config
        c1, c2 = config.channels
        s = config.map_stride
        layers = [*_block(3, c1), *_block(c1, c1), *_block(c1, c2, stride=s), *_block(c2, c2),
                  *_block(c2, c2, dilation=2)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(c2, 1, 1)
        nn.init.constant_(self.head.bias, -math.log((1 - 0.01) / 0.01))  # prior p = 0.01 (RetinaNet's rule)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images))

    def loss(self, logits: torch.Tensor, heat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Focal loss (torchvision) of the map against a Gaussian heat map, per mitotic figure.

        Args:
            logits: ``[B, 1, h, w]`` from :meth:`forward`.
            heat: ``[B, 1, h, w]`` targets in [0, 1] (:func:`heat_maps`).

        Returns:
            ``{"loss": scalar}`` — the summed focal loss divided by the number of figures (at least 1).
        """
        n_pos = heat.detach().eq(1.0).sum().clamp(min=1).float()
        focal = sigmoid_focal_loss(logits.float(), heat.float(), alpha=self.config.focal_alpha, gamma=2.0,
                                   reduction="sum")
        return {"loss": focal / n_pos}

    @torch.no_grad()
    def peaks(self, logits: torch.Tensor, threshold: float | None = None
              ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Local maxima of the likelihood map above a threshold, per image.

        A cell is a peak when it equals the maximum of its ``(2r + 1)^2`` window (r =
        ``config.peak_radius_cells``; ``max_pool2d``) and its likelihood is ``>= threshold`` (default the
        config's). Plateaus give several peaks; the caller's distance NMS merges them.

        Returns:
            per image ``(cells int64 (n, 2) [column j, row i], likelihood float64 (n,))``.
        """
        threshold = self.config.threshold if threshold is None else threshold
        prob = torch.sigmoid(logits.float())
        r = self.config.peak_radius_cells
        local_max = F.max_pool2d(prob, kernel_size=2 * r + 1, stride=1, padding=r)
        is_peak = (prob == local_max) & (prob >= threshold)
        out = []
        for b in range(prob.shape[0]):
            rows, cols = torch.nonzero(is_peak[b, 0], as_tuple=True)
            cells = torch.stack([cols, rows], dim=1).cpu().numpy().astype(np.int64)
            out.append((cells, prob[b, 0, rows, cols].double().cpu().numpy()))
        return out


def normalise(images_uint8: torch.Tensor, config: CandidateConfig) -> torch.Tensor:
    """uint8 ``[B, 3, H, W]`` -> float ``(x / 255 - mean) / std`` (the candidate model's input; training and
    fast inference both call this one)."""
    mean = torch.tensor(config.mean, device=images_uint8.device).view(1, 3, 1, 1)
    std = torch.tensor(config.std, device=images_uint8.device).view(1, 3, 1, 1)
    return (images_uint8.float() / 255.0 - mean) / std


def cells_to_input_px(cells_ji: np.ndarray, map_stride: int) -> np.ndarray:
    """Centres of map cells ``[j, i]`` in input px of the image the map was computed on (float (n, 2))."""
    return (np.asarray(cells_ji, dtype=np.float64).reshape(-1, 2) + 0.5) * map_stride


def heat_maps(centres_input_px: list[np.ndarray], map_hw: tuple[int, int], config: CandidateConfig) -> torch.Tensor:
    """Gaussian heat-map targets (CenterNet style) for a batch.

    Args:
        centres_input_px: per image, (G, 2) float [x, y] mitotic-figure centres in input px.
        map_hw: (h, w) of the output map, cells.
        config: gives ``map_stride`` and the sigma (``heat_sigma_l0`` in level-0 px).

    Returns:
        float32 ``[B, 1, h, w]``: per cell the maximum over figures of ``exp(-d^2 / 2 sigma^2)``, d = distance
        of the cell centre to the figure centre; exactly 1 at the cell holding each centre.
    """
    h, w = map_hw
    s = config.map_stride
    sigma_cells = config.heat_sigma_l0 / config.cell_l0
    jj = torch.arange(w, dtype=torch.float32).view(1, 1, w)
    ii = torch.arange(h, dtype=torch.float32).view(1, h, 1)
    out = torch.zeros(len(centres_input_px), 1, h, w)
    for b, centres in enumerate(centres_input_px):
        centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
        if len(centres) == 0:
            continue
        cells = np.floor(centres / s)                       # the cell holding each centre
        inside = (cells[:, 0] >= 0) & (cells[:, 0] < w) & (cells[:, 1] >= 0) & (cells[:, 1] < h)
        exact = torch.from_numpy(centres / s - 0.5).float()  # centre in cell units (cell j's centre = j)
        cj, ci = exact[:, 0].view(-1, 1, 1), exact[:, 1].view(-1, 1, 1)
        g = torch.exp(-((jj - cj) ** 2 + (ii - ci) ** 2) / (2 * sigma_cells ** 2)).amax(dim=0)
        for j, i in cells[inside].astype(np.int64):
            g[i, j] = 1.0
        out[b, 0] = g
    return out
