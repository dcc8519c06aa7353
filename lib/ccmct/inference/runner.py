"""Inference over a list of slides: resumable per slide, failures isolated, sharded under torchrun.

Files (``OUT`` = the result file, :mod:`ccmct.data.results`):

- ``OUT.parts/<slide>.npz``: one primary-format result file per finished slide, written atomically; its
  metadata holds a fingerprint of the model and of the settings that change results. A rerun with the same
  fingerprint skips these slides (and says so); a different model or setting recomputes them.
- ``OUT``: every finished slide, written by rank 0 once all slides are done (``.p.bz2`` = the authors'
  pickle dict, anything else the primary npz format).

A slide that is missing or unreadable is reported and skipped; the others finish and the report lists it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ccmct.data.results import read_metadata, read_results, write_results
from ccmct.errors import CcmctError, ResultsError
from ccmct.inference.detector import InferenceOptions, WholeSlideDetector
from ccmct.inference.distributed import DistContext, gather_to_main, resolve_device, shard_by_size, shutdown, start
from ccmct.models.io import model_fingerprint  # noqa: F401 - part of this module's API (result metadata)

__all__ = ["InferenceReport", "infer_slides", "model_fingerprint", "run_inference", "work_dir_for"]

log = logging.getLogger(__name__)


@dataclass
class InferenceReport:
    """What a run did (complete on rank 0; other ranks see only their own slides).

    Attributes:
        out: the result file (``None`` on ranks other than 0).
        computed: slides detected in this run.
        resumed: slides taken from an earlier run's part files.
        failed: slide -> reason, for slides that are missing or unreadable.
        rank_of: slide -> rank that computed or resumed it (torchrun; 0 in a single process).
        n_detections: slide -> number of detections.
        tiles_total, tiles_processed: tiles in the grids / run through the detector (this run).
        seconds: detection time (this run, summed over ranks).
    """

    out: Path | None
    computed: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    rank_of: dict[str, int] = field(default_factory=dict)
    n_detections: dict[str, int] = field(default_factory=dict)
    tiles_total: int = 0
    tiles_processed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"out": str(self.out) if self.out else None, "computed": self.computed, "resumed": self.resumed,
                "failed": self.failed, "rank_of": self.rank_of,
                "n_detections": self.n_detections, "tiles_total": self.tiles_total,
                "tiles_processed": self.tiles_processed, "seconds": round(self.seconds, 3)}


def work_dir_for(out: str | os.PathLike[str]) -> Path:
    """The folder of per-slide part files next to a result file: ``<out>.parts``."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def _part_path(work: Path, slide: str) -> Path:
    return work / f"{slide}.npz"


def _load_part(work: Path, slide: str, fingerprint: dict) -> np.ndarray | None:
    """Detections of a slide finished by an earlier run with the same fingerprint, else None."""
    path = _part_path(work, slide)
    if not path.is_file():
        return None
    try:
        if read_metadata(path).get("fingerprint") != fingerprint:
            log.info("%s: earlier result in %s was made with another model or settings; recomputing", slide, path)
            return None
        return read_results(path)[slide]
    except (ResultsError, KeyError, ValueError) as err:
        log.warning("%s: damaged part file %s (%s); recomputing this slide", slide, path,
                    getattr(err, "problem", err))
        return None


def _run_shard(detector: WholeSlideDetector, slides: Mapping[str, Path], names: list[str], work: Path,
               fingerprint: dict, *, progress: bool, rank: int, rank_label: str) -> dict:
    """Detect (or resume) this rank's slides; returns a picklable summary with the detections."""
    summary = {"boxes": {}, "computed": [], "resumed": [], "failed": {}, "tiles": [0, 0], "seconds": 0.0,
               "rank": rank}
    for name in names:
        boxes = _load_part(work, name, fingerprint)
        if boxes is not None:
            log.info("%s%s: done in an earlier run (%s), skipped", rank_label, name, _part_path(work, name))
            summary["boxes"][name] = boxes
            summary["resumed"].append(name)
            continue
        try:
            result = detector.detect(slides[name], progress=progress, desc=f"{rank_label}{name}")
        except CcmctError as err:
            log.error("%s%s: skipped: %s", rank_label, name, err)
            summary["failed"][name] = str(err)
            continue
        write_results(_part_path(work, name), {name: result.boxes},
                      metadata={"fingerprint": fingerprint, "tiles_total": result.tiles_total,
                                "tiles_processed": result.tiles_processed, "seconds": result.seconds})
        log.info("%s%s: %d detections, %d of %d tiles, %.1f s", rank_label, name, len(result.boxes),
                 result.tiles_processed, result.tiles_total, result.seconds)
        summary["boxes"][name] = result.boxes
        summary["computed"].append(name)
        summary["tiles"][0] += result.tiles_total
        summary["tiles"][1] += result.tiles_processed
        summary["seconds"] += result.seconds
    return summary


def infer_slides(detector: WholeSlideDetector, slides: Mapping[str, str | os.PathLike[str]],
                 out: str | os.PathLike[str], *, fingerprint: Mapping, context: DistContext = DistContext(),
                 progress: bool = True, metadata: Mapping | None = None) -> InferenceReport:
    """Detect on every slide (this rank's share under torchrun) and write one result file on rank 0.

    Args:
        detector: the whole-slide detector.
        slides: slide file name -> path, in output order.
        out: result file (``.p.bz2`` = the authors' format, else the primary npz format).
        fingerprint: JSON-serialisable identity of the model (e.g. :func:`model_fingerprint`); together with
            :meth:`WholeSlideDetector.settings` it decides whether an earlier part file can be reused.
        context: the torchrun position (:func:`ccmct.inference.distributed.start`).
        progress: a tqdm bar per slide.
        metadata: extra JSON-serialisable information stored in the primary-format result file.

    Returns:
        The report (complete on rank 0).
    """
    out, slides = Path(out), {name: Path(path) for name, path in slides.items()}
    work = work_dir_for(out)
    work.mkdir(parents=True, exist_ok=True)
    key = json.loads(json.dumps({"model": fingerprint, "settings": detector.settings()}))
    names = list(slides)
    sizes = [slides[n].stat().st_size if slides[n].is_file() else 0 for n in names]
    mine = shard_by_size(names, sizes, context.world_size)[context.rank]
    label = f"[rank {context.rank}] " if context.world_size > 1 else ""
    summary = _run_shard(detector, slides, mine, work, key, progress=progress, rank=context.rank,
                         rank_label=label)
    gathered = gather_to_main(summary, context)
    if gathered is None:
        return InferenceReport(None, summary["computed"], summary["resumed"], summary["failed"])
    return _merge_and_write(gathered, names, out, key, metadata)


def _merge_and_write(gathered: list[dict], names: list[str], out: Path, key: dict,
                     metadata: Mapping | None) -> InferenceReport:
    report = InferenceReport(out)
    boxes: dict[str, np.ndarray] = {}
    for part in gathered:
        boxes.update(part["boxes"])
        report.rank_of.update({name: part["rank"] for name in part["boxes"]})
        report.computed += part["computed"]
        report.resumed += part["resumed"]
        report.failed.update(part["failed"])
        report.tiles_total += part["tiles"][0]
        report.tiles_processed += part["tiles"][1]
        report.seconds += part["seconds"]
    ordered = {name: boxes[name] for name in names if name in boxes}
    report.n_detections = {name: len(b) for name, b in ordered.items()}
    info = {**key, **dict(metadata or {}), "failed": report.failed}
    write_results(out, ordered, metadata=info)
    return report


def run_inference(model_dir: str | os.PathLike[str], slides: Mapping[str, str | os.PathLike[str]],
                  out: str | os.PathLike[str], *, options: InferenceOptions = InferenceOptions(),
                  device: str | None = None, progress: bool = True) -> InferenceReport:
    """Load a model directory and run :func:`infer_slides`, inside a torchrun job when launched by one.

    Raises:
        ModelError: the model directory is missing a file or comes from another format version.
    """
    from ccmct.models.io import load_model_dir
    from ccmct.models.registry import detector_kinds

    context = DistContext.from_env()
    torch_device = resolve_device(device, context)
    model, config = load_model_dir(model_dir, map_location=torch_device, kind=detector_kinds())
    context = start(torch_device, context)
    if not context.is_main:  # rank 0 logs; other ranks only warn (their failures reach rank 0 too)
        logging.getLogger("ccmct").setLevel(logging.WARNING)
    try:
        detector = WholeSlideDetector(model, config, device=torch_device, options=options)
        return infer_slides(detector, slides, out, fingerprint=model_fingerprint(model_dir), context=context,
                            progress=progress, metadata={"model_dir": str(model_dir)})
    finally:
        shutdown(context)
