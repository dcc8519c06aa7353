"""Named unit and frame types, defined once (see docs/design.md).

Coordinates are level-0 pixels (``_l0``) unless a name says otherwise; sizes are (width, height);
images are (H, W, 3) uint8 RGB arrays.
"""

from __future__ import annotations

from typing import Literal

Variant = Literal["MEL", "HEAEL", "ODAEL"]
"""The three label sets of the data set (paper, Table 2)."""

Preset = Literal["smoke", "quick", "paper"]
"""Training presets: seconds (CI), minutes (CPU demo), the paper's schedule."""

Split = Literal["train", "test"]

Matching = Literal["paper", "strict"]
"""F1 matching: the authors' many-to-many KD-tree rule, or one-to-one (Hungarian)."""

XY = tuple[int, int]
"""(x, y) in level-0 pixels."""

SizeWH = tuple[int, int]
"""(width, height) in pixels."""

BoxXYXY = tuple[float, float, float, float]
"""(x1, y1, x2, y2) in level-0 pixels, x1 < x2, y1 < y2."""

VARIANTS: tuple[Variant, ...] = ("MEL", "HEAEL", "ODAEL")
PRESETS: tuple[Preset, ...] = ("smoke", "quick", "paper")
