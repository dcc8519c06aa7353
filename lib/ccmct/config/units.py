"""Physical sizes (µm) and the one conversion to level-0 pixels (docs/design.md, "Units"; TIAToolbox style).

Every size the models depend on is a physical size: the paper's cells are ~12.5 µm across, and a detection
matches a ground-truth point within 25 px at the scanner's 0.25 µm/px (paper, §"Technical validation"). Pixel
sizes are derived here, once, with :func:`px`, so a slide or a synthetic root at another µm/px gets the same
*physical* sizes. Model configs record the µm/px they were trained at (``mpp``); a config written before
ccmct recorded it is read as :data:`LEGACY_MPP` (the paper's 0.25) with a note (docs/contracts.md).

Example:
    >>> px(DETECTION_RADIUS_UM, PAPER_MPP), px(DETECTION_RADIUS_UM, 0.5)
    (25.0, 12.5)
"""

from __future__ import annotations

import math

__all__ = ["CELL_PATCH_UM", "DETECTION_RADIUS_UM", "GT_BOX_UM", "LEGACY_MPP", "PAPER_MPP", "TILE_UM", "px", "um"]

PAPER_MPP = 0.25
"""µm/px the paper states (ScanScope CS2, 40x). The HPF maths of the authors implies 0.2533 in the files."""

LEGACY_MPP = PAPER_MPP
"""µm/px assumed for a model config that records none (written before configs carried ``mpp``)."""

DETECTION_RADIUS_UM = 6.25
"""Match / distance-NMS radius, µm (the paper's 25 px at 0.25 µm/px)."""

GT_BOX_UM = 2 * DETECTION_RADIUS_UM
"""Side of the square box made from a point annotation, µm (50 px at 0.25 µm/px: about one cell)."""

CELL_PATCH_UM = 32.0
"""Side of the second stage's cell patch, µm (the authors' 128 px at 0.25 µm/px)."""

TILE_UM = 64.0
"""Side of the detector's input tile, µm (the authors' 256 px at 0.25 µm/px)."""


def _check_mpp(mpp: float) -> float:
    mpp = float(mpp)
    if not math.isfinite(mpp) or mpp <= 0:
        raise ValueError(f"µm/px must be a positive number, got {mpp!r}")
    return mpp


def px(size_um: float, mpp: float = PAPER_MPP) -> float:
    """``size_um`` µm in level-0 px at ``mpp`` µm/px (a float; round where an integer is needed)."""
    return float(size_um) / _check_mpp(mpp)


def um(size_px: float, mpp: float = PAPER_MPP) -> float:
    """``size_px`` level-0 px in µm at ``mpp`` µm/px."""
    return float(size_px) * _check_mpp(mpp)
