"""Second stage: re-score first-stage detections with the cell classifier (paper: F1 0.63 -> 0.82).

Per slide (the authors' `2nd_stage/Inference-CellClassifier.py`; docs/second_stage.md, with quirk #14 fixed):

1. distance NMS at radius 25 px over all first-stage boxes, no score threshold
   (:func:`ccmct.geometry.distance_nms`);
2. a 128 px level-0 patch centred on each kept box centre (``round((x1 + x2) / 2)``, ...; white outside the
   slide) is classified in batches, with DataLoader reader processes that each keep their own slide handle;
3. the new score is the classifier's probability of *mitotic figure*, looked up by class id in the model's
   ``config.json`` (not a hard-coded index), or with ``combine="geometric_mean"`` the geometric mean
   ``sqrt(p_MF * score_stage1)``, which keeps a detection only when both stages agree.

Boxes and class columns are unchanged; only the score column is replaced. The output has the same format as
the input (:mod:`ccmct.data.results`) and is named ``2ndstage_<input name>`` by default. It is re-written
after every slide with the pending slides in its metadata, so an interrupted run resumes.

A slide is checked before its scores are trusted: box centres must lie inside the slide, and every patch must
be read (OpenSlide raising on corrupt tile data, in this process or a reader process). A slide that fails is
*left out* of the output — never scored from blank patches — and named with its reason in the metadata's
``failed``; the other slides are finished, then :func:`classify_results` raises :class:`SlideError` naming the
first failure (exit 2 in the CLI). A rerun retries the failed slides and keeps the finished ones. A slide whose
µm/px is missing or far from the models' ~0.25 is re-scored with a warning
(:func:`ccmct.data.slide_checks.check_mpp`).

Example:
    >>> classify_results("models/cls-ODAEL", "results/RetinaNet-ODAEL-test.npz",
    ...                  "data/WSI")                                                # doctest: +SKIP
    PosixPath('results/2ndstage_RetinaNet-ODAEL-test.npz')
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ccmct.config import DETECTION_RADIUS_L0, MITOTIC_FIGURE
from ccmct.data.results import is_authors_format, read_metadata, read_results, write_results
from ccmct.data.slide_checks import check_mpp
from ccmct.data.slides import open_slide
from ccmct.errors import SlideError
from ccmct.geometry import box_centers, distance_nms
from ccmct.models.classifier import ClassifierConfig, load_classifier_dir, predict_probabilities
from ccmct.models.io import model_fingerprint
from ccmct.sampling.cells import CellPatchDataset

log = logging.getLogger(__name__)

Combine = Literal["replace", "geometric_mean"]
COMBINE_MODES: tuple[str, ...] = ("replace", "geometric_mean")
OUTPUT_PREFIX = "2ndstage_"


def second_stage_path(results_path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Where the re-scored results go: ``out`` if a file name, ``out/2ndstage_<name>`` if a folder, else next
    to the input.

    Example:
        >>> second_stage_path("res/RetinaNet-ODAEL-test.npz").as_posix()
        'res/2ndstage_RetinaNet-ODAEL-test.npz'
    """
    results_path = Path(results_path)
    if out is None:
        return results_path.with_name(OUTPUT_PREFIX + results_path.name)
    out = Path(out)
    return out / (OUTPUT_PREFIX + results_path.name) if out.is_dir() else out


def combine_scores(p_mitosis: np.ndarray, stage1_scores: np.ndarray, mode: Combine = "replace") -> np.ndarray:
    """The second-stage score.

    Args:
        p_mitosis: (N,) classifier probability of mitotic figure.
        stage1_scores: (N,) first-stage detection scores.
        mode: ``replace`` (the paper: p_MF) or ``geometric_mean`` (sqrt(p_MF * stage-1 score)).

    Returns:
        (N,) float64 scores in [0, 1].

    Example:
        >>> combine_scores(np.array([0.81]), np.array([0.25]), "geometric_mean").tolist()
        [0.45]
    """
    p = np.asarray(p_mitosis, dtype=np.float64)
    if mode == "replace":
        return p
    if mode == "geometric_mean":
        return np.sqrt(p * np.clip(np.asarray(stage1_scores, dtype=np.float64), 0.0, 1.0))
    raise ValueError(f"unknown combine mode {mode!r}; expected one of {COMBINE_MODES}")


def rescore_slide(model: torch.nn.Module, config: ClassifierConfig, slide_path: str | os.PathLike[str],
                  boxes: np.ndarray, *, combine: Combine = "replace", radius_l0: float = DETECTION_RADIUS_L0,
                  batch_size: int = 64, num_workers: int = 0, device: str | torch.device | None = None,
                  progress: bool = False) -> np.ndarray:
    """Distance NMS, then classify and re-score one slide's detections.

    Args:
        model, config: from :func:`ccmct.models.classifier.load_classifier_dir`.
        slide_path: the slide file.
        boxes: (N, 6) [x1, y1, x2, y2, class, score] level-0 px.
        combine: see :func:`combine_scores`.
        radius_l0: NMS radius, level-0 px.
        batch_size: patches per forward pass.
        num_workers: reader processes.
        device: where the model runs.
        progress: tqdm bar.

    Returns:
        (M, 6) the NMS survivors in their input order, score column replaced.

    Raises:
        SlideError: the slide cannot be opened, box centres lie outside it, or a patch cannot be read (also
            when a reader process hit the error).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 6)
    if len(boxes) == 0:
        return boxes.copy()
    kept = np.sort(distance_nms(boxes[:, :4], boxes[:, 5], radius_l0=radius_l0))
    survivors = boxes[kept].copy()
    _check_centres_inside(slide_path, box_centers(survivors))
    dataset = CellPatchDataset([slide_path] * len(survivors), box_centers(survivors), size_px=config.patch_size_px,
                               mean=config.mean, std=config.std)
    try:
        probs = predict_probabilities(model, dataset, batch_size=batch_size,
                                      num_workers=min(num_workers, len(kept)), device=device, progress=progress,
                                      desc=Path(slide_path).name)
    except SlideError as err:
        raise SlideError(slide_path, f"cannot be read where the boxes lie ({err.problem})") from None
    except RuntimeError as err:  # torch re-raises a reader process's SlideError as a RuntimeError
        reason = _worker_slide_error(err)
        if reason is None:
            raise
        raise SlideError(slide_path, f"cannot be read where the boxes lie ({reason})") from None
    survivors[:, 5] = combine_scores(probs[:, config.index_of(MITOTIC_FIGURE)], survivors[:, 5], combine)
    return survivors


def classify_results(model_dir: str | os.PathLike[str], results_path: str | os.PathLike[str],
                     slide_dir: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None, *,
                     combine: Combine = "replace", radius_l0: float = DETECTION_RADIUS_L0, batch_size: int = 64,
                     num_workers: int = 2, device: str | None = None, progress: bool = True) -> Path:
    """Re-score a whole result file with a cell classifier and write the second-stage result file.

    Args:
        model_dir: classifier model directory (``ccmct train-classifier``).
        results_path: first-stage results (``.npz`` or the authors' ``.p.bz2``).
        slide_dir: folder with the slide files named in the results (``<data root>/WSI``).
        out_path: output file or folder (see :func:`second_stage_path`).
        combine: ``replace`` or ``geometric_mean`` (see :func:`combine_scores`).
        radius_l0: NMS radius, level-0 px.
        batch_size: patches per forward pass.
        num_workers: reader processes per slide.
        device: ``cpu`` / ``cuda`` (default: cuda if available).
        progress: tqdm bars.

    Returns:
        The path written.

    Raises:
        ResultsError: unreadable results.  ModelError: bad model directory.
        SlideError: a slide of the results is not in ``slide_dir``.
    """
    from tqdm.auto import tqdm

    if combine not in COMBINE_MODES:
        raise ValueError(f"unknown combine mode {combine!r}; expected one of {COMBINE_MODES}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, config = load_classifier_dir(model_dir, device=device)
    results = read_results(results_path)
    out = second_stage_path(results_path, out_path)
    slide_dir = Path(slide_dir)
    _check_slides(results, slide_dir)
    metadata = {"stage": 2, "source": str(results_path), "classifier": str(model_dir),
                "classifier_fingerprint": model_fingerprint(model_dir), "classifier_variant": config.variant,
                "combine": combine, "nms_radius_l0": radius_l0,
                "stage1": read_metadata(results_path)}
    done = _resumable(out, metadata)
    failed: dict[str, str] = {}
    for name in tqdm(list(results), disable=not progress, desc="second stage", unit="slide"):
        if name in done:
            continue
        try:
            with open_slide(slide_dir / name) as slide:
                check_mpp(slide, expected_mpp=config.mpp)
            done[name] = rescore_slide(model, config, slide_dir / name, results[name], combine=combine,
                                       radius_l0=radius_l0, batch_size=batch_size, num_workers=num_workers,
                                       device=device)
        except SlideError as err:
            failed[name] = err.problem
            log.debug("second stage: %s left out: %s", name, err)
        pending = [n for n in results if n not in done and n not in failed]
        ordered = {n: done[n] for n in results if n in done}
        write_results(out, ordered, metadata={**metadata, "pending": pending, "failed": failed})
    if not results:
        write_results(out, {}, metadata={**metadata, "pending": [], "failed": {}})
    if failed:
        first = next(iter(failed))
        raise SlideError(slide_dir / first, f"{failed[first]}; {len(failed)} of {len(results)} slide(s) failed and "
                                            f"were left out of {out} (listed in its metadata 'failed'); the others "
                                            "are re-scored")
    return out


def _check_centres_inside(slide_path: str | os.PathLike[str], centres_l0: np.ndarray) -> None:
    """Scores of patches beyond the slide would come from blank (white) pixels: refuse them."""
    with open_slide(slide_path) as slide:
        width, height = slide.dimensions
    outside = ((centres_l0 < 0) | (centres_l0 >= (width, height))).any(axis=1)
    if outside.any():
        x, y = centres_l0[outside][0]
        raise SlideError(slide_path, f"{int(outside.sum())} of {len(centres_l0)} box centres lie outside the slide "
                                     f"({width} x {height} px; e.g. ({x:.0f}, {y:.0f})): these results do not "
                                     "belong to this slide")


def _worker_slide_error(err: RuntimeError) -> str | None:
    """The original message of a :class:`SlideError` raised in a DataLoader worker, or None for another error."""
    text = str(err)
    if "SlideError" not in text:
        return None
    lines = [line for line in text.splitlines() if "SlideError" in line and ":" in line]
    last = lines[-1] if lines else text.splitlines()[0]
    return last.split("SlideError:", 1)[-1].strip()


def _check_slides(results: dict, slide_dir: Path) -> None:
    missing = [name for name in results if not (slide_dir / name).exists()]
    if missing:
        raise SlideError(slide_dir / missing[0], f"slide named in the results is missing ({len(missing)} of "
                                                 f"{len(results)} missing; is the slide folder right?)")


def _resumable(out: Path, metadata: dict) -> dict[str, np.ndarray]:
    """Slides already re-scored by an interrupted run with the same inputs (primary format only)."""
    if not out.exists() or is_authors_format(out):
        return {}
    try:
        previous = read_metadata(out)
    except Exception:  # noqa: BLE001 - an unreadable partial file is simply recomputed
        return {}
    same = all(previous.get(k) == metadata[k] for k in ("source", "classifier", "classifier_fingerprint", "combine",
                                                      "nms_radius_l0"))
    if not same or not (previous.get("pending") or previous.get("failed")):
        return {}
    done = read_results(out)  # the failed slides are not in it: they are tried again
    log.info("resuming %s: %d slide(s) already re-scored", out, len(done))
    return done
