"""Whole-slide detection with a tile detector (stage 1 of the paper, the authors' `Inference-RetinaNet.py` and `lib/nms_WSI.py`; docs/inference.md).

Pipeline for one slide (every coordinate level-0 px unless a name says tile px):

1. tile grid: ``tile_px`` tiles (from the model's config) at the authors' stride ``int(0.9 * tile_px)``,
   right / bottom margins covered (:class:`ccmct.geometry.tiles.TileGrid`);
2. tissue tiles only (thumbnail tissue mask; ``all_tiles`` processes every tile, as the authors did);
3. a DataLoader with reader processes streams uint8 batches; each batch is normalised on the model's device
   and run under ``torch.autocast`` (float16 on a GPU, bfloat16 on a bf16-capable CPU);
4. per tile: the detector's own post-processing (``model(images)`` in eval mode, :mod:`ccmct.models.detector`:
   score > the config's threshold, per-tile NMS at the config's IoU; RetinaNet does not clip boxes to the tile);
5. boxes shifted to level 0; a detection that a neighbouring processed tile sees clearly more centrally is
   dropped (:func:`ccmct.geometry.tiles.keep_most_central`);
6. slide-level greedy distance NMS with the 25 px radius (:func:`ccmct.geometry.nms.distance_nms`).

Output rows are ``[x1, y1, x2, y2, class, score]`` (class = the detection's class index into the config's
``class_ids``, 0 = mitotic figure, as in the authors' files), sorted by decreasing score. Any registered tile
detector works (:func:`ccmct.models.registry.detector_kinds`); nothing here knows anchors or strides.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ccmct.config.dataset import DETECTION_RADIUS_L0
from ccmct.errors import SlideError
from ccmct.geometry.nms import box_centers, distance_nms
from ccmct.geometry.tiles import keep_most_central, paper_stride_px
from ccmct.inference.tiling import THUMBNAIL_PX, SlideTiles, TileDataset, plan_tiles, tile_loader
from ccmct.models.detector import prepare_tiles
from ccmct.precision import autocast
from ccmct.data.slide_checks import check_mpp
from ccmct.data.slides import open_slide

__all__ = ["InferenceOptions", "SlideDetections", "WholeSlideDetector"]


@dataclass(frozen=True)
class InferenceOptions:
    """How a slide is processed (the model's config gives tile size, normalisation, thresholds).

    Attributes:
        batch_size: tiles per forward pass.
        workers: reader processes of the DataLoader (0 = read in the main process).
        all_tiles: process every tile, background included (the authors' behaviour), not tissue tiles only.
        stride_px: step between tiles, px; ``None`` = the authors' ``int(0.9 * tile_px)`` (230 for 256).
        edge_tolerance_px: see :func:`ccmct.geometry.tiles.keep_most_central`; ``None`` = half the overlap.
        thumbnail_px: longer side of the thumbnail of the tissue mask, px.
        mixed_precision: ``torch.autocast``: float16 on a GPU, bfloat16 on a CPU with native bf16
            (:mod:`ccmct.precision`; ``CCMCT_CPU_BF16=0`` turns the CPU path off).
        radius_l0: slide-level distance-NMS radius, level-0 px (paper: 25).
    """

    batch_size: int = 16
    workers: int = 2
    all_tiles: bool = False
    stride_px: int | None = None
    edge_tolerance_px: float | None = None
    thumbnail_px: int = THUMBNAIL_PX
    mixed_precision: bool = True
    radius_l0: float = DETECTION_RADIUS_L0


@dataclass(frozen=True, eq=False)
class SlideDetections:
    """Detections of one slide.

    Attributes:
        boxes: float64 (N, 6) [x1, y1, x2, y2, class, score], level-0 px, by decreasing score.
        tiles_total: tiles in the grid.
        tiles_processed: tiles run through the detector.
        seconds: wall time.
    """

    boxes: np.ndarray
    tiles_total: int
    tiles_processed: int
    seconds: float


class WholeSlideDetector:
    """Runs a tile detector over whole slides.

    Args:
        model: a tile detector (:mod:`ccmct.models.detector`): in eval mode ``model(Tensor[B, 3, T, T]
            normalised)`` -> one ``{"boxes": [n, 4] xyxy tile px, "scores": [n], "labels": [n]}`` per tile
            (:class:`ccmct.models.retinanet.RetinaNet`, :class:`ccmct.models.fcos.TinyFCOS`, ...). Its
            ``score_threshold`` / ``nms_iou`` are set to the config's.
        config: its config (tile size, mean/std, score threshold, per-tile NMS IoU, ``mpp``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        options: see :class:`InferenceOptions`.

    Example:
        >>> from ccmct.models.io import load_model_dir                  # doctest: +SKIP
        >>> model, config = load_model_dir("models/ODAEL")              # doctest: +SKIP
        >>> WholeSlideDetector(model, config).detect("WSI/a.svs").boxes.shape  # doctest: +SKIP
        (412, 6)
    """

    def __init__(self, model: nn.Module, config, *, device: str | torch.device = "cpu",
                 options: InferenceOptions = InferenceOptions()):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.model.score_threshold, self.model.nms_iou = float(config.score_threshold), float(config.nms_iou)
        self.config = config
        self.options = options
        self.stride_px = options.stride_px or paper_stride_px(config.tile_px)
        overlap_px = config.tile_px - self.stride_px
        self.edge_tolerance_px = (options.edge_tolerance_px if options.edge_tolerance_px is not None
                                  else overlap_px / 2)

    def settings(self) -> dict:
        """The settings that change results (for resume checks and result metadata)."""
        return {"tile_px": self.config.tile_px, "stride_px": self.stride_px, "all_tiles": self.options.all_tiles,
                "edge_tolerance_px": self.edge_tolerance_px, "thumbnail_px": self.options.thumbnail_px,
                "radius_l0": self.options.radius_l0, "score_threshold": self.config.score_threshold,
                "nms_iou": self.config.nms_iou}

    def plan(self, path: str | os.PathLike[str]) -> SlideTiles:
        """The tile grid of a slide and the tiles to process; warns (:func:`ccmct.data.slide_checks.check_mpp`)
        when the slide's µm/px is far from the one the model was trained at (``config.mpp``). Raises SlideError."""
        with open_slide(path) as slide:
            check_mpp(slide, expected_mpp=self.config.mpp)
        return plan_tiles(path, tile_px=self.config.tile_px, stride_px=self.stride_px,
                          all_tiles=self.options.all_tiles, thumbnail_px=self.options.thumbnail_px)

    def detect(self, path: str | os.PathLike[str], *, progress: bool = False,
               desc: str | None = None) -> SlideDetections:
        """Detections of one slide (see the module docstring).

        Raises:
            SlideError: the slide is missing, cannot be opened, or a tile cannot be read.
        """
        return self.detect_tiles(self.plan(path), progress=progress, desc=desc)

    def detect_tiles(self, tiles: SlideTiles, *, progress: bool = False,
                     desc: str | None = None) -> SlideDetections:
        """Detections on the selected tiles of a planned slide (see :meth:`plan`)."""
        start = time.perf_counter()
        ids = tiles.tile_ids
        origins = tiles.grid.origins_l0()[ids]
        boxes_l0, scores, labels, from_tile = self._run_tiles(tiles.path, origins, ids, progress=progress,
                                                              desc=desc or tiles.path.name)
        keep = keep_most_central(box_centers(boxes_l0), from_tile, tiles.grid, tiles.selected,
                                 tolerance_px=self.edge_tolerance_px)
        boxes_l0, scores, labels = boxes_l0[keep], scores[keep], labels[keep]
        kept = distance_nms(boxes_l0, scores, radius_l0=self.options.radius_l0)
        rows = np.zeros((len(kept), 6), np.float64)
        rows[:, :4] = boxes_l0[kept]
        rows[:, 4] = labels[kept]
        rows[:, 5] = scores[kept]
        return SlideDetections(rows, tiles.n_total, len(ids), time.perf_counter() - start)

    def _run_tiles(self, path: Path, origins: np.ndarray, ids: np.ndarray, *, progress: bool,
                   desc: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Level-0 boxes (N, 4), scores (N,), class indices (N,) and source tile ids (N,) of every per-tile
        detection."""
        boxes, scores, labels, sources = [np.zeros((0, 4))], [np.zeros(0)], [np.zeros(0)], [np.zeros(0, np.int64)]
        if len(origins) == 0:
            return boxes[0], scores[0], labels[0], sources[0]
        loader = tile_loader(TileDataset(path, origins, self.config.tile_px), batch_size=self.options.batch_size,
                             workers=min(self.options.workers, max(len(origins) // self.options.batch_size, 1)),
                             pin_memory=self.device.type == "cuda")
        with tqdm(total=len(origins), desc=desc, unit="tile", disable=not progress, leave=False) as bar:
            for batch, index, errors in loader:
                if errors:
                    raise SlideError(path, errors[0])
                tile_boxes, tile_scores, in_batch, tile_labels = self.detect_batch(batch, with_labels=True)
                source = index.numpy()[in_batch]
                boxes.append(tile_boxes + np.tile(origins[source], 2))
                scores.append(tile_scores)
                labels.append(tile_labels)
                sources.append(ids[source])
                bar.update(len(index))
        return np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels), np.concatenate(sources)

    @torch.inference_mode()
    def detect_batch(self, tiles_uint8: torch.Tensor, *, with_labels: bool = False) -> tuple[np.ndarray, ...]:
        """Per-tile detections of a batch.

        Args:
            tiles_uint8: uint8 Tensor[B, T, T, 3] RGB (any device).
            with_labels: also return the class indices.

        Returns:
            ``(boxes float64 (n, 4) xyxy tile px, scores float64 (n,), batch index int64 (n,))``, plus
            ``labels float64 (n,)`` (class index) when ``with_labels``.
        """
        images = prepare_tiles(tiles_uint8.to(self.device, non_blocking=True), self.config.mean, self.config.std)
        with autocast(self.device, enabled=self.options.mixed_precision):
            per_tile = self.model(images)
        counts = torch.tensor([len(d["scores"]) for d in per_tile])
        in_batch = torch.repeat_interleave(torch.arange(len(per_tile)), counts).numpy()
        boxes = torch.cat([d["boxes"].float() for d in per_tile]).double().cpu().numpy().reshape(-1, 4)
        scores = torch.cat([d["scores"].float() for d in per_tile]).double().cpu().numpy()
        if not with_labels:
            return boxes, scores, in_batch
        labels = torch.cat([d["labels"] for d in per_tile]).double().cpu().numpy()
        return boxes, scores, in_batch, labels
