"""Reading a slide at a reduced resolution: the pyramid level of the wanted downsample, or a finer level
(level 0 at worst) reduced by an integer factor with PIL's box filter (a note says so).

Frames: a region is given by its top-left corner in level-0 px and its size in *reduced* px (1 reduced px =
``downsample`` level-0 px). Used by the fast mode's candidate model for training and inference alike, so
both see the same pixels (docs/fast_mode.md).

Example:
    >>> with open_slide("WSI/a.svs") as slide:                          # doctest: +SKIP
    ...     plan = level_plan(slide.level_downsamples, 4)
    ...     read_reduced(slide, plan, 0, 0, (512, 512)).shape
    (512, 512, 3)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ccmct.data.slides import Slide

__all__ = ["LEVEL_TOLERANCE", "LevelPlan", "level_plan", "read_reduced"]

LEVEL_TOLERANCE = 0.02
"""A pyramid level counts as the wanted downsample when its downsample is within 2 % of it (scanners
round level sizes, so OpenSlide reports e.g. 4.0003)."""


@dataclass(frozen=True)
class LevelPlan:
    """How a slide is read at ``downsample``.

    Attributes:
        downsample: wanted level-0 px per reduced px.
        level: pyramid level read.
        factor: extra integer reduction of that level (1 = the level is the wanted one).
        note: why the fallback was taken ("" when the slide has the level).
    """

    downsample: int
    level: int
    factor: int
    note: str = ""


def level_plan(level_downsamples: tuple[float, ...], downsample: int) -> LevelPlan:
    """The level to read for a wanted integer ``downsample``.

    The level whose downsample is within :data:`LEVEL_TOLERANCE` of the wanted one; else the coarsest
    level whose downsample divides the wanted one (within the tolerance), reduced by the quotient — level
    0 (downsample 1) always qualifies, so every slide can be read.
    """
    downsample = int(downsample)
    if downsample < 1:
        raise ValueError(f"downsample must be a positive integer, got {downsample}")
    for level, ds in enumerate(level_downsamples):
        if abs(ds - downsample) <= LEVEL_TOLERANCE * downsample:
            return LevelPlan(downsample, level, 1)
    best = 0
    for level, ds in enumerate(level_downsamples):
        quotient = downsample / ds
        if ds <= downsample and abs(quotient - round(quotient)) <= LEVEL_TOLERANCE * quotient:
            best = level if ds > level_downsamples[best] else best
    factor = int(round(downsample / level_downsamples[best]))
    listed = ", ".join(f"{ds:g}" for ds in level_downsamples)
    note = (f"no pyramid level at downsample {downsample} (levels: {listed}); reading level {best} and "
            f"reducing it {factor}x (slower)")
    return LevelPlan(downsample, best, factor, note)


def read_reduced(slide: Slide, plan: LevelPlan, x_l0: int, y_l0: int, size_wh: tuple[int, int]) -> np.ndarray:
    """RGB pixels of a region at the plan's resolution.

    Args:
        slide: an open slide.
        plan: from :func:`level_plan` for this slide.
        x_l0, y_l0: top-left corner, level-0 px (outside the slide reads white).
        size_wh: (width, height) of the output, reduced px.

    Returns:
        (height, width, 3) uint8 RGB.

    Raises:
        SlideError: the slide cannot be read.
    """
    w, h = int(size_wh[0]), int(size_wh[1])
    if plan.factor == 1:
        return slide.read_region(x_l0, y_l0, (w, h), level=plan.level)
    image = slide.read_region(x_l0, y_l0, (w * plan.factor, h * plan.factor), level=plan.level)
    return np.asarray(Image.fromarray(image).reduce(plan.factor))
