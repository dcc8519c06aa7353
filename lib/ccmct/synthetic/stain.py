"""H&E colour: Beer–Lambert rendering of stain concentrations with per-slide stain variation.

A pixel's colour is ``I_c = I0_c * exp(-(C_H * h_c + C_E * e_c))`` with unit optical-density (OD) vectors
``h`` and ``e`` (Macenko reference vectors, morphology.md §4). Each slide rotates the vectors by a few
degrees, scales and shifts the concentrations (inside Tellez' "HED-strong" range) and picks its own glass
brightness ``I0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HEMATOXYLIN_OD = np.array([0.5626, 0.7201, 0.4062])
"""Unit OD vector (R, G, B) of hematoxylin (Macenko reference, HEnorm / torchstain)."""
EOSIN_OD = np.array([0.2159, 0.8012, 0.5581])
"""Unit OD vector (R, G, B) of eosin (Macenko reference)."""


@dataclass(frozen=True)
class Stain:
    """One slide's staining and scanner colour.

    Attributes:
        h_od: unit OD vector of hematoxylin, (3,).
        e_od: unit OD vector of eosin, (3,).
        h_scale: multiplier of hematoxylin concentration.
        e_scale: multiplier of eosin concentration.
        h_bias: added to hematoxylin concentration where there is tissue.
        e_bias: added to eosin concentration where there is tissue.
        i0: glass brightness per channel (R, G, B), grey levels.
    """

    h_od: tuple[float, float, float]
    e_od: tuple[float, float, float]
    h_scale: float
    e_scale: float
    h_bias: float
    e_bias: float
    i0: tuple[float, float, float]


REFERENCE_STAIN = Stain(tuple(HEMATOXYLIN_OD), tuple(EOSIN_OD), 1.0, 1.0, 0.0, 0.0, (240.0, 240.0, 240.0))
"""The unperturbed stain (used for the gallery and stamp statistics)."""


def _rotate_unit(vector: np.ndarray, rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """Rotate a unit vector by up to ``max_deg`` degrees about a random axis, keep it positive, renormalise."""
    axis = rng.normal(size=3)
    axis -= axis.dot(vector) * vector
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(0.0, max_deg))
    out = np.cos(angle) * vector + np.sin(angle) * axis
    out = np.clip(out, 0.02, None)
    return out / np.linalg.norm(out)


def random_stain(rng: np.random.Generator, *, strength: float = 1.0) -> Stain:
    """Draw one slide's stain (morphology.md §4, per-slide recipe).

    Args:
        rng: random generator.
        strength: 0 = reference stain, 1 = the full recipe (vectors ±5°, scales 0.8–1.2, I0 230–250).
    """
    s = float(strength)
    i0 = 240.0 + s * rng.uniform(-10.0, 10.0) + s * rng.uniform(-3.0, 3.0, size=3)
    return Stain(
        h_od=tuple(_rotate_unit(HEMATOXYLIN_OD, rng, 5.0 * s)),
        e_od=tuple(_rotate_unit(EOSIN_OD, rng, 5.0 * s)),
        h_scale=1.0 + s * rng.uniform(-0.2, 0.2),
        e_scale=1.0 + s * rng.uniform(-0.2, 0.2),
        h_bias=s * rng.uniform(-0.03, 0.03),
        e_bias=s * rng.uniform(-0.05, 0.05),
        i0=tuple(np.clip(i0, 225.0, 252.0)),
    )


def od_to_rgb(c_h: np.ndarray, c_e: np.ndarray, stain: Stain, *, tissue: np.ndarray | None = None) -> np.ndarray:
    """Beer–Lambert: stain concentrations -> RGB.

    Args:
        c_h: hematoxylin OD concentration, (H, W) float32 (0 = none, ~2 = mitotic chromatin).
        c_e: eosin OD concentration, (H, W) float32.
        stain: the slide's :class:`Stain`.
        tissue: optional (H, W) float32 weight in [0, 1] where the stain bias applies (not on glass).

    Returns:
        (H, W, 3) float32 intensities (0–255, not yet rounded).
    """
    ch = c_h * np.float32(stain.h_scale)
    ce = c_e * np.float32(stain.e_scale)
    if tissue is not None:
        ch += np.float32(stain.h_bias) * tissue
        ce += np.float32(stain.e_bias) * tissue
    np.maximum(ch, 0, out=ch)
    np.maximum(ce, 0, out=ce)
    out = np.empty(c_h.shape + (3,), np.float32)
    for c in range(3):
        od = ch * np.float32(stain.h_od[c])
        od += ce * np.float32(stain.e_od[c])
        np.exp(-od, out=od)
        od *= np.float32(stain.i0[c])
        out[..., c] = od
    return out
