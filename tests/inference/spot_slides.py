"""A hand-set "grey spot" detector and a slide with planted spots (helpers of tests/inference).

The detector needs no training: it fires exactly on pure grey (128, 128, 128) pixels and its box deltas decode
to the bounding box of the grey pixels it sees, so the whole-slide pipeline (tiling, tissue mask, DataLoader,
normalisation, decoding, per-tile NMS, shift to level 0, tile-edge handling, distance NMS) must return the
planted positions exactly.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ccmct.models.box_coder import encode
from ccmct.models.retinanet import AnchorDetector, DetectorConfig

SPOT_PX = 12
GREY = 128
SLIDE_WH = (1100, 900)
"""Tiles at stride 230: x origins 0, 230, 460, 690, 844; y origins 0, 230, 460, 644 (5 x 4 = 20 tiles)."""
WHITE_AREA = (760, 0, 1100, 300)
"""x0, y0, x1, y1 of the only tissue-free area: tile (col 4, row 0) = [844, 1100) x [0, 256) lies inside."""

PLANTED_XY = {
    "interior": (120, 120),
    "overlap_x_middle": (243, 120),        # seen whole by tiles at x 0 and 230 (13 px inside each)
    "left_edge_of_tile": (230, 400),       # cut in half by the left edge of the tile at x 230
    "right_edge_of_tile": (256, 600),      # cut in half by the right edge of the tile at x 0
    "four_tile_corner": (473, 473),        # middle of the overlap of four tiles
    "corner_overlap_off_centre": (700, 240),
    "right_edge_of_tile_2": (716, 560),
    "slide_top_border": (600, 8),
    "last_column_overlap": (900, 400),     # in the 102 px overlap of the edge-aligned last column
    "last_column_inner": (860, 600),
    "right_margin": (1080, 500),           # the authors' grid ended at x 690 + 256 = 946
    "bottom_margin": (600, 880),           # ... and at y 690 + 256 = 946 > 900: their last row was y 460
    "bottom_right_corner": (1060, 860),
}
SPOT_ROOT_CROPS = {"a.svs": (100, 0, 400, 300), "b.svs": (400, 350, 760, 650), "c.svs": (500, 700, 1100, 900)}
"""Slides of the ``spot_root`` fixture: crops x0, y0, x1, y1 of the slide, each holding two whole spots."""
DECOY_XY = (1000, 100)
"""A grey spot on white glass: found only when every tile is processed (``all_tiles``)."""


class GreySpotDetector(AnchorDetector):
    """Hand-set anchor detector: RetinaNet's loss and post-processing (:class:`ccmct.models.retinanet.AnchorDetector`)
    over hand-set head outputs on the stride-16 level (anchors of ``config``).

    Layers: un-normalise; a 1x1 conv + |.| + 1x1 conv + ReLU colour detector (1 on pure grey, 0 elsewhere);
    48 px windows at stride 16 (count, min / max of the grey pixels' x and y); a cell fires on its first
    anchor when the centre of the grey box it sees lies in the cell. Score = 0.5 + 0.4 x visible fraction of
    the spot (a spot cut by the tile edge scores lower). Box deltas encode the grey box w.r.t. each anchor.
    """

    def __init__(self, config: DetectorConfig):
        super().__init__(config)
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(config.std).view(1, 3, 1, 1))
        self.register_buffer("anchors", config.anchors())
        self.k = config.n_anchors_per_cell
        self.offset = nn.Conv2d(3, 3, 1)
        self.match = nn.Conv2d(3, 1, 1)
        with torch.no_grad():
            self.offset.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.offset.bias.fill_(-GREY / 255)
            self.match.weight.fill_(-50.0)   # one grey level off in one channel: 1 - 50/255 = 0.80 < 0.99
            self.match.bias.fill_(1.0)

    def param_groups(self) -> list[list[nn.Parameter]]:
        return [[], list(self.parameters())]

    def head_outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rgb = images * self.std + self.mean
        mask = (F.relu(self.match(self.offset(rgb).abs())) > 0.99).float()           # [B, 1, T, T]
        b, _, t, _ = mask.shape
        cols = torch.arange(t, dtype=torch.float32, device=images.device)
        xs, ys = cols.view(1, 1, 1, t), cols.view(1, 1, t, 1)
        pool = dict(kernel_size=48, stride=16, padding=16)
        count = F.avg_pool2d(mask, count_include_pad=True, **pool) * 48 * 48
        far = 1e4 * (1 - mask)
        x_max = F.max_pool2d(mask * xs - far, **pool)
        x_min = -F.max_pool2d(-mask * xs - far, **pool)
        y_max = F.max_pool2d(mask * ys - far, **pool)
        y_min = -F.max_pool2d(-mask * ys - far, **pool)
        box = torch.cat([x_min, y_min, x_max + 1, y_max + 1], 1).permute(0, 2, 3, 1)  # [B, G, G, 4]
        g = box.shape[1]
        cell = torch.arange(g, device=images.device, dtype=torch.float32)
        in_col = torch.floor((box[..., 0] + box[..., 2]) / 2 / 16) == cell.view(1, 1, g)
        in_row = torch.floor((box[..., 1] + box[..., 3]) / 2 / 16) == cell.view(1, g, 1)
        fire = (count[:, 0] > 0) & in_col & in_row                                      # [B, G, G]
        score = 0.5 + 0.4 * torch.clamp(count[:, 0] / SPOT_PX**2, max=1.0)
        logits = torch.full((b, g, g, self.k), -20.0, device=images.device)
        logits[..., 0] = torch.where(fire, torch.logit(score), torch.full_like(score, -20.0))
        safe_box = torch.where(fire[..., None], box, torch.tensor([0.0, 0.0, 16.0, 16.0]))
        deltas = encode(safe_box[..., None, :].expand(b, g, g, self.k, 4), self.anchors.view(g, g, self.k, 4))
        return logits.reshape(b, -1, 1), deltas.reshape(b, -1, 4)


def spot_box(centre_xy: tuple[int, int]) -> tuple[int, int, int, int]:
    """Level-0 xyxy box (pixel edges) of a planted spot centred at ``centre_xy``."""
    x, y = centre_xy
    half = SPOT_PX // 2
    return x - half, y - half, x + half, y + half


def render_slide(*, seed: int = 0) -> np.ndarray:
    """White glass, pink 'tissue' everywhere but :data:`WHITE_AREA`, grey spots and the decoy."""
    rng = np.random.default_rng(seed)
    width, height = SLIDE_WH
    image = np.empty((height, width, 3), np.uint8)
    image[...] = np.array([225, 150, 195], np.uint8)
    image += rng.integers(0, 20, size=image.shape, dtype=np.uint8)
    x0, y0, x1, y1 = WHITE_AREA
    image[y0:y1, x0:x1] = 255
    for centre in [*PLANTED_XY.values(), DECOY_XY]:
        bx0, by0, bx1, by1 = spot_box(centre)
        image[by0:by1, bx0:bx1] = GREY
    return image
