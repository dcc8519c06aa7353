"""Fast mode: candidates from a light network at reduced resolution, confirmed by the cell classifier.

Per slide (docs/fast_mode.md; every coordinate level-0 px unless a name says *reduced* px):

1. **Plan**: the slide at ``downsample`` (from the candidate model's config) is cut into ``screen_tile_px``
   reduced-px tiles overlapping by ``2 * margin_px`` (:class:`ccmct.geometry.tiles.TileGrid` in the reduced
   frame; the reduced size is rounded up to a multiple of the map stride so every tile's map cells lie on one
   slide-wide grid); only tiles touching tissue are read (the thumbnail tissue mask, as in paper mode).
2. **Read**: the pyramid level of that downsample (:func:`ccmct.data.levels.level_plan`); a slide without it
   is read from a finer level (level 0 at worst) and reduced, with a logged note.
3. **Screen**: the candidate model's likelihood map; its local maxima above the model's (low, recall-tuned)
   threshold (:meth:`ccmct.models.candidate.CandidateNet.peaks`). Each reduced pixel is *owned* by exactly one
   tile (the overlap is split in its middle), and a tile keeps only the peaks it owns, so a figure on a tile
   edge is found once and never lost: each tile sees ``margin_px`` of context beyond what it owns.
4. **Map**: map cell ``(j, i)`` of a tile at reduced origin ``(ox, oy)`` -> level-0 centre
   ``downsample * (ox + (j + 0.5) * map_stride, ...)``; a 50 px box per candidate.
5. **Confirm**: distance NMS at 25 px, then the existing cell classifier scores a 128 px level-0 patch per
   candidate in batches (:func:`ccmct.inference.second_stage.rescore_slide`); score = P(mitotic figure).

The output rows are the detector's ``[x1, y1, x2, y2, class 0, score]`` sorted by decreasing score, so
evaluation, thresholds, viewer and reports read them unchanged. Resume per slide, torchrun sharding and the
one result file come from :func:`ccmct.inference.runner.infer_slides`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ccmct.config.dataset import DETECTION_RADIUS_L0
from ccmct.data.levels import LevelPlan, level_plan, read_reduced
from ccmct.data.slides import open_slide, tissue_mask
from ccmct.errors import ModelError
from ccmct.geometry.tiles import TileGrid, tiles_touching_mask
from ccmct.inference.detector import SlideDetections
from ccmct.inference.second_stage import rescore_slide
from ccmct.inference.tiling import THUMBNAIL_PX
from ccmct.models.candidate import CandidateConfig, cells_to_input_px
from ccmct.precision import autocast

__all__ = ["FastDetector", "FastOptions", "Screening", "check_classifier", "ownership", "run_fast_inference"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FastOptions:
    """How the fast mode processes a slide (the candidate model's config gives downsample and threshold).

    Attributes:
        screen_tile_px: side of a screening tile, reduced px (a multiple of the map stride).
        margin_px: context each tile sees beyond the part it owns, reduced px (>= the net's reach).
        screen_batch: screening tiles per forward pass.
        threshold: candidate likelihood threshold; ``None`` = the model's recall-tuned one.
        batch_size: classifier patches per forward pass.
        workers: classifier patch reader processes.
        thumbnail_px: longer side of the tissue-mask thumbnail, px.
        all_tiles: screen every tile, glass included.
        radius_l0: distance-NMS radius, level-0 px (paper: 25).
        mixed_precision: autocast per :mod:`ccmct.precision`.
    """

    screen_tile_px: int = 512
    margin_px: int = 32
    screen_batch: int = 4
    threshold: float | None = None
    batch_size: int = 64
    workers: int = 0
    thumbnail_px: int = THUMBNAIL_PX
    all_tiles: bool = False
    radius_l0: float = DETECTION_RADIUS_L0
    mixed_precision: bool = True


@dataclass(frozen=True, eq=False)
class Screening:
    """Candidates of one slide before confirmation.

    Attributes:
        centres_l0: float64 (N, 2) [x, y] level-0 px.
        scores: float64 (N,) candidate likelihood.
        tiles_total, tiles_processed: screening tiles in the grid / read.
        plan: the level read and the reduction applied.
        seconds: {"reading", "screening"} wall time.
    """

    centres_l0: np.ndarray
    scores: np.ndarray
    tiles_total: int
    tiles_processed: int
    plan: LevelPlan
    seconds: dict = field(default_factory=dict)


def ownership(origins: np.ndarray, tile_px: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Per tile along one axis, the half-open interval ``[lo, hi)`` of positions it owns.

    Neighbouring tiles split their overlap in the middle (``floor((o_i + tile + o_{i+1}) / 2)``); the first
    tile owns from 0 (and below), the last up to ``length`` (and beyond).

    Example:
        >>> [a.tolist() for a in ownership(np.array([0, 448, 600]), 512, 1112)]
        [[-9223372036854775808, 480, 780], [480, 780, 9223372036854775807]]
    """
    origins = np.asarray(origins, dtype=np.int64)
    bounds = (origins[:-1] + tile_px + origins[1:]) // 2
    lo = np.concatenate([[np.iinfo(np.int64).min], bounds])
    hi = np.concatenate([bounds, [np.iinfo(np.int64).max]])
    return lo, hi


def check_classifier(config, directory: str | os.PathLike[str], candidate: CandidateConfig) -> None:
    """Refuse a classifier the fast mode cannot confirm candidates with (one line each).

    Raises:
        ModelError: its patch size differs from the one the candidate model expects (``patch_px``, the
            paper's 128 px), or its normalisation is not one of [0, 1] RGB (e.g. 0-255 values, a zero std).
    """
    path = Path(directory) / "config.json"
    if int(config.patch_size_px) != int(candidate.patch_px):
        raise ModelError(path, f"the classifier takes {config.patch_size_px} px patches; the fast mode confirms "
                               f"candidates on {candidate.patch_px} px level-0 patches (the candidate model's "
                               "patch_px): train the classifier with that patch size")
    mean, std = np.asarray(config.mean, float), np.asarray(config.std, float)
    if mean.shape != (3,) or std.shape != (3,) or not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)):
        raise ModelError(path, f"normalisation mean {list(config.mean)} / std {list(config.std)} is not three "
                               "finite numbers per RGB channel")
    if np.any(mean < 0) or np.any(mean > 1) or np.any(std <= 0) or np.any(std > 1):
        raise ModelError(path, f"normalisation mean {list(config.mean)} / std {list(config.std)} does not match "
                               "the [0, 1] RGB input ccmct feeds (mean in [0, 1], std in (0, 1]; 0-255 values?)")


class FastDetector:
    """Candidate screening + classifier confirmation; the runner's detector contract (``settings``, ``detect``).

    Args:
        candidate: the candidate network (``forward`` -> logits map, ``peaks``), in eval mode.
        candidate_config: its :class:`ccmct.models.candidate.CandidateConfig`.
        classifier, classifier_config: from :func:`ccmct.models.classifier.load_classifier_dir`.
        device: where both models run.
        options: see :class:`FastOptions`.

    ``timings[slide]`` holds the last run's {"reading", "screening", "classifying"} seconds and counts.
    """

    def __init__(self, candidate: nn.Module, candidate_config: CandidateConfig, classifier: nn.Module,
                 classifier_config, *, device: str | torch.device = "cpu", options: FastOptions = FastOptions()):
        self.device = torch.device(device)
        self.candidate = candidate.to(self.device).eval()
        self.config = candidate_config
        self.classifier = classifier.to(self.device).eval()
        self.classifier_config = classifier_config
        self.options = options
        s = candidate_config.map_stride
        if options.screen_tile_px % s or options.margin_px % s or options.screen_tile_px <= 2 * options.margin_px:
            raise ValueError(f"screen_tile_px ({options.screen_tile_px}) and margin_px ({options.margin_px}) must be "
                             f"multiples of the map stride {s}, with the tile larger than two margins")
        self.threshold = candidate_config.threshold if options.threshold is None else float(options.threshold)
        self.timings: dict[str, dict] = {}

    def settings(self) -> dict:
        """The settings that change results (for resume checks and result metadata)."""
        o = self.options
        return {"mode": "fast", "downsample": self.config.downsample, "threshold": self.threshold,
                "screen_tile_px": o.screen_tile_px, "margin_px": o.margin_px, "all_tiles": o.all_tiles,
                "thumbnail_px": o.thumbnail_px, "radius_l0": o.radius_l0, "gt_box_px": self.config.gt_box_px,
                "patch_px": self.classifier_config.patch_size_px}

    def grid(self, size_wh_l0: tuple[int, int]) -> TileGrid:
        """The screening grid in the reduced frame (size rounded up to a multiple of the map stride)."""
        d, s = self.config.downsample, self.config.map_stride
        reduced = tuple(int(math.ceil(v / d / s)) * s for v in size_wh_l0)
        tile = self.options.screen_tile_px
        return TileGrid.covering(reduced, tile_px=tile, stride_px=tile - 2 * self.options.margin_px)

    def screen(self, path: str | os.PathLike[str], *, progress: bool = False, desc: str | None = None) -> Screening:
        """Candidates of one slide (steps 1-4 of the module docstring).

        Raises:
            SlideError: the slide is missing or cannot be read.
        """
        path = Path(path)
        times = {"reading": 0.0, "screening": 0.0}
        d, s = self.config.downsample, self.config.map_stride
        with open_slide(path) as slide:
            plan = level_plan(slide.level_downsamples, d)
            if plan.note:
                log.warning("%s: %s", path.name, plan.note)
            grid = self.grid(slide.dimensions)
            if self.options.all_tiles:
                selected = np.ones(len(grid), bool)
            else:
                selected = tiles_touching_mask(grid, tissue_mask(slide.thumbnail(self.options.thumbnail_px)))
            ids = np.flatnonzero(selected)
            origins = grid.origins_l0()[ids]  # reduced px, despite the name: the grid lives in the reduced frame
            x_lo, x_hi = ownership(grid.xs_l0, grid.tile_px, grid.size_wh[0])
            y_lo, y_hi = ownership(grid.ys_l0, grid.tile_px, grid.size_wh[1])
            centres, scores = [np.zeros((0, 2))], [np.zeros(0)]
            tile = grid.tile_px
            batch = max(1, self.options.screen_batch)
            with tqdm(total=len(ids), desc=desc or path.name, unit="tile", disable=not progress, leave=False) as bar:
                for start in range(0, len(ids), batch):
                    chunk = slice(start, start + batch)
                    started = time.perf_counter()
                    images = np.stack([read_reduced(slide, plan, int(ox) * d, int(oy) * d, (tile, tile))
                                       for ox, oy in origins[chunk]])
                    times["reading"] += time.perf_counter() - started
                    started = time.perf_counter()
                    peaks = self._peaks(images)
                    for (cells, likelihood), tile_id, (ox, oy) in zip(peaks, ids[chunk], origins[chunk]):
                        pos = cells_to_input_px(cells, s) + (ox, oy)          # reduced px, slide frame
                        col, row = tile_id % grid.n_cols, tile_id // grid.n_cols
                        own = ((pos[:, 0] >= x_lo[col]) & (pos[:, 0] < x_hi[col])
                               & (pos[:, 1] >= y_lo[row]) & (pos[:, 1] < y_hi[row]))
                        inside = (pos[:, 0] < slide.dimensions[0] / d) & (pos[:, 1] < slide.dimensions[1] / d)
                        keep = own & inside
                        centres.append(pos[keep] * d)
                        scores.append(likelihood[keep])
                    times["screening"] += time.perf_counter() - started
                    bar.update(len(origins[chunk]))
        return Screening(np.concatenate(centres), np.concatenate(scores), len(grid), len(ids), plan, times)

    @torch.inference_mode()
    def _peaks(self, images_uint8: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        from ccmct.models.candidate import normalise

        batch = torch.from_numpy(images_uint8).permute(0, 3, 1, 2).to(self.device)
        with autocast(self.device, enabled=self.options.mixed_precision):
            logits = self.candidate(normalise(batch, self.config))
        return self.candidate.peaks(logits.float(), threshold=self.threshold)

    def detect(self, path: str | os.PathLike[str], *, progress: bool = False,
               desc: str | None = None) -> SlideDetections:
        """Confirmed candidates of one slide: (N, 6) rows by decreasing P(mitotic figure).

        Raises:
            SlideError: the slide is missing or cannot be read.
        """
        start = time.perf_counter()
        screening = self.screen(path, progress=progress, desc=desc)
        half = self.config.gt_box_px / 2
        boxes = np.zeros((len(screening.scores), 6), np.float64)
        boxes[:, :2] = screening.centres_l0 - half
        boxes[:, 2:4] = screening.centres_l0 + half
        boxes[:, 5] = screening.scores
        started = time.perf_counter()
        rows = rescore_slide(self.classifier, self.classifier_config, path, boxes, radius_l0=self.options.radius_l0,
                             batch_size=self.options.batch_size, num_workers=self.options.workers,
                             device=self.device)
        classifying = time.perf_counter() - started
        rows = rows[np.argsort(-rows[:, 5], kind="stable")]
        self.timings[Path(path).name] = {**screening.seconds, "classifying": classifying,
                                         "candidates": int(len(boxes)), "classified": int(len(rows)),
                                         "tiles": screening.tiles_processed, "level": screening.plan.level,
                                         "level_factor": screening.plan.factor}
        return SlideDetections(rows, screening.tiles_total, screening.tiles_processed, time.perf_counter() - start)


def load_fast_models(candidate_dir: str | os.PathLike[str], classifier_dir: str | os.PathLike[str], *,
                     device: str | torch.device = "cpu"):
    """Load and check both model directories: ``(candidate, candidate_config, classifier, classifier_config)``.

    Raises:
        ModelError: a directory of another kind (e.g. a RetinaNet given as the candidate model, or a candidate
            model given as the classifier), or a classifier that does not fit (:func:`check_classifier`).
    """
    from ccmct.models.io import load_model_dir

    candidate, config = load_model_dir(candidate_dir, map_location=device, kind="candidate")
    classifier, cls_config = load_model_dir(classifier_dir, map_location=device, kind="cell_classifier")
    check_classifier(cls_config, classifier_dir, config)
    return candidate, config, classifier, cls_config


def run_fast_inference(candidate_dir: str | os.PathLike[str], classifier_dir: str | os.PathLike[str],
                       slides: Mapping[str, str | os.PathLike[str]], out: str | os.PathLike[str], *,
                       options: FastOptions = FastOptions(), device: str | None = None, progress: bool = True):
    """Fast-mode inference over slides into one result file; resumable per slide, sharded under torchrun.

    Args:
        candidate_dir: candidate model directory (``ccmct train --model candidate``).
        classifier_dir: cell classifier directory (``ccmct train-classifier``).
        slides: slide file name -> path, in output order.
        out: result file (``.p.bz2`` = the authors' format, else the primary npz).
        options: see :class:`FastOptions`.
        device: ``cpu`` / ``cuda`` (default: this rank's GPU when there is one).
        progress: tqdm bars.

    Returns:
        ``(InferenceReport, FastDetector)``: the report (complete on rank 0) and the detector, whose
        ``timings`` hold this process's per-slide time breakdown.

    Raises:
        ModelError: see :func:`load_fast_models`.
    """
    from ccmct.inference.distributed import DistContext, resolve_device, shutdown, start
    from ccmct.inference.runner import infer_slides, model_fingerprint

    context = DistContext.from_env()
    torch_device = resolve_device(device, context)
    candidate, config, classifier, cls_config = load_fast_models(candidate_dir, classifier_dir, device=torch_device)
    context = start(torch_device, context)
    if not context.is_main:
        logging.getLogger("ccmct").setLevel(logging.WARNING)
    try:
        detector = FastDetector(candidate, config, classifier, cls_config, device=torch_device, options=options)
        fingerprint = {"candidate": model_fingerprint(candidate_dir), "classifier": model_fingerprint(classifier_dir)}
        report = infer_slides(detector, slides, out, fingerprint=fingerprint, context=context, progress=progress,
                              metadata={"mode": "fast", "model_dir": str(candidate_dir),
                                        "classifier": str(classifier_dir), "stage": 2})
        return report, detector
    finally:
        shutdown(context)
