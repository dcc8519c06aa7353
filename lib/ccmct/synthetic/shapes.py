"""Drawing primitives on small square stamps: soft masks, irregular outlines, rods, band-pass noise.

A stamp is a square grid of ``size_px`` pixels centred on the cell; coordinates are stamp pixels relative
to the centre (x to the right, y down). All masks are soft (0–1) with a one-pixel edge, so that shapes
render anti-aliased before the optical blur.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def grid(size_px: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) float32 coordinate arrays of a stamp, relative to its centre, shape (size_px, size_px)."""
    c = (size_px - 1) / 2.0
    yy, xx = np.mgrid[0:size_px, 0:size_px].astype(np.float32)
    return yy - c, xx - c


def soft(signed_px: np.ndarray, edge_px: float = 1.0) -> np.ndarray:
    """Soft mask from a signed distance (positive inside), ``edge_px`` wide transition."""
    return np.clip(0.5 + signed_px / np.float32(edge_px), 0.0, 1.0).astype(np.float32)


def outline_signed(yy: np.ndarray, xx: np.ndarray, *, radius_px: float, rng: np.random.Generator,
                   roughness: float = 0.05, orders: tuple[int, int] = (2, 6), aspect: float = 1.0,
                   angle: float = 0.0, center: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Signed distance (px, positive inside) of a round outline wobbling with low Fourier orders.

    Args:
        yy, xx: stamp coordinates (px).
        radius_px: mean radius along the long axis.
        rng: random generator (phases and amplitudes).
        roughness: relative amplitude of the wobble.
        orders: (lowest, highest) angular frequency of the wobble.
        aspect: short / long axis ratio (1 = round).
        angle: orientation of the long axis, radians.
        center: (y, x) offset of the centre, px.
    """
    y, x = yy - center[0], xx - center[1]
    ca, sa = np.cos(angle), np.sin(angle)
    u, v = x * ca + y * sa, (-x * sa + y * ca) / max(aspect, 1e-3)
    rho = np.hypot(u, v)
    theta = np.arctan2(v, u)
    wobble = np.zeros_like(rho)
    for k in range(orders[0], orders[1] + 1):
        wobble += rng.normal(0.0, roughness / np.sqrt(k)) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return (radius_px * (1.0 + wobble) - rho) * np.float32(aspect ** 0.5)


def disk_signed(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, radius_px: float) -> np.ndarray:
    """Signed distance (px, positive inside) of a disk."""
    return (radius_px - np.hypot(yy - cy, xx - cx)).astype(np.float32)


def ellipse_signed(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, a_px: float, b_px: float,
                   angle: float) -> np.ndarray:
    """Approximate signed distance (px) of an ellipse with semi-axes a (along ``angle``) and b."""
    ca, sa = np.cos(angle), np.sin(angle)
    x, y = xx - cx, yy - cy
    u, v = x * ca + y * sa, -x * sa + y * ca
    r = np.sqrt((u / a_px) ** 2 + (v / b_px) ** 2)
    return ((1.0 - r) * min(a_px, b_px)).astype(np.float32)


def rods(yy: np.ndarray, xx: np.ndarray, centers_yx: np.ndarray, angles: np.ndarray, lengths_px: np.ndarray,
         half_widths_px: np.ndarray) -> np.ndarray:
    """Soft union (max) of line segments ("rods"): chromosomes, spikes, fibres.

    Args:
        yy, xx: stamp coordinates (px).
        centers_yx: (n, 2) rod centres (y, x) px.
        angles: (n,) directions, radians.
        lengths_px: (n,) full lengths.
        half_widths_px: (n,) half thicknesses.

    Returns:
        (S, S) float32 coverage in [0, 1].
    """
    out = np.zeros(yy.shape, np.float32)
    if len(centers_yx) == 0:
        return out
    c = (yy.shape[0] - 1) / 2.0
    side = yy.shape[0]
    for (cy, cx), ang, length, hw in zip(centers_yx, angles, lengths_px, half_widths_px):
        ext = length / 2 + hw + 2
        y0, y1 = max(int(cy + c - ext), 0), min(int(cy + c + ext) + 2, side)
        x0, x1 = max(int(cx + c - ext), 0), min(int(cx + c + ext) + 2, side)
        if y0 >= y1 or x0 >= x1:
            continue
        dy, dx = np.sin(ang), np.cos(ang)
        py, px = yy[y0:y1, x0:x1] - cy, xx[y0:y1, x0:x1] - cx
        t = np.clip(px * dx + py * dy, -length / 2, length / 2)
        d = np.hypot(px - t * dx, py - t * dy)
        np.maximum(out[y0:y1, x0:x1], np.clip(hw + 0.5 - d, 0.0, 1.0), out=out[y0:y1, x0:x1])
    return out


def gaussian_spectrum_noise(rng: np.random.Generator, shape: tuple[int, int], sigmas_px: tuple[float, ...],
                            weights: tuple[float, ...]) -> np.ndarray:
    """Periodic noise: white noise filtered by a sum of Gaussians (weights may be negative), via FFT.

    Equivalent to ``sum(w * gaussian_filter(white, s, mode="wrap"))`` but O(n log n) whatever the sigmas.
    """
    white = rng.standard_normal(shape).astype(np.float32)
    fy = np.fft.fftfreq(shape[0]).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(shape[1]).astype(np.float32)[None, :]
    k2 = fy ** 2 + fx ** 2
    transfer = sum(w * np.exp(-2 * np.pi ** 2 * s ** 2 * k2) for s, w in zip(sigmas_px, weights))
    return np.fft.irfft2(np.fft.rfft2(white) * transfer, s=shape).astype(np.float32)


_BANK_PX = 512
_BANK: dict[tuple[float, float], np.ndarray] = {}


def _noise_bank(fine_px: float, coarse_px: float) -> np.ndarray:
    """A fixed periodic field of band-pass noise (unit std) per (fine, coarse) pair, made once per process.

    Its content depends only on the pair, so crops chosen by a seeded generator are reproducible.
    """
    key = (round(float(fine_px), 3), round(float(coarse_px), 3))
    if key not in _BANK:
        seed = int(key[0] * 1000) * 100_003 + int(key[1] * 1000)
        field = gaussian_spectrum_noise(np.random.default_rng(seed), (_BANK_PX, _BANK_PX), key, (1.0, -1.0))
        _BANK[key] = field / max(float(field.std()), 1e-9)
    return _BANK[key]


def bandpass_noise(rng: np.random.Generator, size_px: int, fine_px: float, coarse_px: float) -> np.ndarray:
    """Zero-mean, unit-std noise with blobs between ``fine_px`` and ``coarse_px`` (difference of Gaussians):
    a random crop (random quarter turn) of a periodic noise bank, so drawing it costs almost nothing."""
    bank = _noise_bank(fine_px, coarse_px)
    y0, x0 = rng.integers(0, _BANK_PX, 2)
    rows = np.arange(y0, y0 + size_px) % _BANK_PX
    cols = np.arange(x0, x0 + size_px) % _BANK_PX
    crop = np.rot90(bank[np.ix_(rows, cols)], int(rng.integers(0, 4)))
    return np.ascontiguousarray(crop - crop.mean(), dtype=np.float32)


def dots(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, mask: np.ndarray, n: int,
         radius_px: tuple[float, float]) -> np.ndarray:
    """Soft union of ``n`` small round dots (granules, beads) whose centres fall inside ``mask`` > 0.5."""
    out = np.zeros(yy.shape, np.float32)
    inside = np.argwhere(mask > 0.5)
    if len(inside) == 0 or n <= 0:
        return out
    picks = inside[rng.integers(0, len(inside), size=n)]
    c = (yy.shape[0] - 1) / 2.0
    for (iy, ix), r in zip(picks, rng.uniform(radius_px[0], radius_px[1], size=n)):
        y0, y1 = max(int(iy - r - 2), 0), min(int(iy + r + 3), yy.shape[0])
        x0, x1 = max(int(ix - r - 2), 0), min(int(ix + r + 3), yy.shape[1])
        d = np.hypot(yy[y0:y1, x0:x1] - (iy - c), xx[y0:y1, x0:x1] - (ix - c))
        np.maximum(out[y0:y1, x0:x1], np.clip(r + 0.5 - d, 0.0, 1.0), out=out[y0:y1, x0:x1])
    return out


def optical_blur(image: np.ndarray, sigma_px: float = 0.7) -> np.ndarray:
    """The microscope's point-spread function (Gaussian, σ ≈ 0.17 µm ≈ 0.7 px at 0.25 µm/px)."""
    return ndimage.gaussian_filter(image, sigma_px).astype(np.float32)
