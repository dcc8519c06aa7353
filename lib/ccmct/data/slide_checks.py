"""Slide content checks shared by the commands that run a model on slides (docs/reliability.md, "Content").

The models (detector and cell classifier) were trained on 40x scans at ~0.25 µm per level-0 pixel
(:data:`ccmct.config.dataset.PAPER_MPP`; the real files record 0.2533): their box size, anchors, 25 px radius
and 128 px cell patches are level-0 pixel sizes. A slide scanned at another resolution shows cells at another
size in pixels, and the detections silently degrade. :func:`check_mpp` warns with the figure; a slide that
records no resolution at all is warned about too (the models then simply assume ~0.25 µm/px).
"""

from __future__ import annotations

import warnings

from ccmct.config.dataset import PAPER_MPP
from ccmct.errors import SlideError

__all__ = ["MPP_REL_TOLERANCE", "check_mpp", "root_mpp"]

MPP_REL_TOLERANCE = 0.2
"""Relative deviation from the models' µm/px beyond which a slide is flagged (0.2533 vs 0.25 is 1.3 %; a
20x scan at ~0.5 µm/px is 100 % off)."""


def check_mpp(slide, *, expected_mpp: float = PAPER_MPP, rel_tolerance: float = MPP_REL_TOLERANCE) -> str | None:
    """Warn when ``slide``'s µm/px is missing or far from the models' (returns the warning text, or None).

    Args:
        slide: an open :class:`ccmct.data.slides.Slide`.
        expected_mpp: µm per level-0 pixel the model assumes.
        rel_tolerance: accepted relative deviation.
    """
    try:
        mpp = slide.mpp
    except SlideError as err:
        message = (f"{slide.path}: no usable µm/px ({err.problem.split(';')[0]}); the models assume "
                   f"~{expected_mpp:g} µm/px (a 40x scan), results are only valid if the slide is one")
    else:
        if abs(mpp / expected_mpp - 1) <= rel_tolerance:
            return None
        message = (f"{slide.path}: {mpp:.4g} µm/px, {mpp / expected_mpp:.2f}x the ~{expected_mpp:g} µm/px the "
                   "models were trained at (40x scans); cells appear at another size in pixels, so detections "
                   "and scores are unreliable")
    warnings.warn(message, stacklevel=2)
    return message


def root_mpp(paths, *, most: int = 3) -> float:
    """µm per level-0 px a model trained on these slides is trained at (recorded in its config as ``mpp``).

    The median over the first ``most`` slides that exist and record a resolution; the paper's
    :data:`ccmct.config.units.PAPER_MPP` when none does (a data root holding only databases, or slides
    without a recorded µm/px).

    Args:
        paths: slide files (e.g. ``DataRoot.slides("train").values()``).
        most: how many slides to open at most.
    """
    import statistics

    from ccmct.data.slides import open_slide

    found: list[float] = []
    for path in paths:
        if len(found) >= most:
            break
        try:
            with open_slide(path) as slide:
                found.append(float(slide.mpp))
        except SlideError:
            continue
    return float(statistics.median(found)) if found else float(PAPER_MPP)
