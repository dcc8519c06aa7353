"""Augmentations for histology patches, applied to the image and its boxes together.

Dihedral transforms (flips, 90° rotations: tissue has no up or down) and a mild stain jitter: each RGB
channel's optical density ``-log((I + 1) / 256)`` is scaled and shifted by a small random amount, which
mimics darker / lighter / bluer / pinker staining. All parameters come from the caller's generator.
Frame: boxes are xyxy in patch px of a square ``S x S`` patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["StainJitter", "augment_patch", "dihedral"]

_LEVELS = np.arange(256, dtype=np.float64)
_OD = -np.log((_LEVELS + 1) / 256)


@dataclass(frozen=True)
class StainJitter:
    """Ranges of the per-channel optical-density jitter.

    Attributes:
        scale: OD multiplied by ``1 + u``, ``u ~ U(-scale, scale)`` per channel.
        shift: OD shifted by ``u ~ U(-shift, shift)`` per channel.
    """

    scale: float = 0.08
    shift: float = 0.04

    def lut(self, rng: np.random.Generator) -> np.ndarray:
        """(3, 256) uint8 look-up table, one row per RGB channel."""
        scale = 1 + rng.uniform(-self.scale, self.scale, size=(3, 1))
        shift = rng.uniform(-self.shift, self.shift, size=(3, 1))
        od = np.clip(_OD[None, :] * scale + shift, 0, None)
        return np.clip(np.round(256 * np.exp(-od) - 1), 0, 255).astype(np.uint8)


def dihedral(image: np.ndarray, boxes: np.ndarray, *, k_rot90: int, flip_x: bool) -> tuple[np.ndarray, np.ndarray]:
    """Flip left-right (optional), then rotate by ``k_rot90`` x 90° counter-clockwise (``np.rot90``).

    Args:
        image: (S, S, C) array.
        boxes: (G, 4) xyxy in patch px.

    Returns:
        The transformed image (contiguous) and boxes (still xyxy with x1 < x2, y1 < y2).
    """
    size = image.shape[1]
    if image.shape[0] != size:
        msg = f"dihedral transforms need a square patch, got {image.shape[:2]}"
        raise ValueError(msg)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    if flip_x:
        image = image[:, ::-1]
        boxes[:, [0, 2]] = size - boxes[:, [2, 0]]
    for _ in range(k_rot90 % 4):
        image = np.rot90(image)
        # a point (x, y) goes to (y, S - x)
        boxes = np.stack([boxes[:, 1], size - boxes[:, 2], boxes[:, 3], size - boxes[:, 0]], axis=1)
    return np.ascontiguousarray(image), boxes


def augment_patch(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, *,
                  stain: StainJitter | None = StainJitter()) -> tuple[np.ndarray, np.ndarray]:
    """One random dihedral transform (of 8) and stain jitter.

    Args:
        image: (S, S, 3) uint8 RGB.
        boxes: (G, 4) xyxy patch px.
        rng: the source of randomness (seeded per patch by the caller).
        stain: jitter ranges, or None for none.
    """
    image, boxes = dihedral(image, boxes, k_rot90=int(rng.integers(4)), flip_x=bool(rng.integers(2)))
    if stain is not None:
        lut = stain.lut(rng)
        image = np.stack([lut[c][image[..., c]] for c in range(3)], axis=-1)
    return image, boxes
