"""Stamps of mitotic figures (several phases) and of their look-alikes (imposters).

Mitotic chromatin is a union of short rods (~0.7 µm thick, 1–3 µm long) laid along the phase's skeleton
(plate, ring, two sets, clump), so its edge is ragged by construction; some figures get fine "hairs".
Imposters have the same chromatin density (C_H 1.5–2.3) but smooth, round, sharply edged masks (smoothed
blobs, crescents, beads) or a membrane, and no phase geometry (morphology.md §1, §2, §5).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ccmct.synthetic.cells import Stamp, cytoplasm, finish, interphase_nucleus, stamp_size
from ccmct.synthetic.shapes import bandpass_noise, disk_signed, grid, rods, soft

MITOSIS_PHASES = ("prophase", "metaphase_side", "metaphase_end", "anaphase", "telophase", "atypical")
PHASE_WEIGHTS = (0.25, 0.30, 0.15, 0.10, 0.10, 0.10)
LOOKALIKE_TYPES = ("apoptotic", "pyknotic", "karyorrhexis", "dark_elongated")
LOOKALIKE_WEIGHTS = (0.35, 0.25, 0.15, 0.25)
SMOOTH_MITOSIS_SHARE = 0.11
"""Share of mitoses drawn with a smooth border (Lashen 2021: 89 % kept a ragged border on WSIs)."""
BORDERLINE_LOOKALIKE_SHARE = 0.2
"""Share of look-alikes given a partly serrated border (morphology.md §5: 10-20 %)."""
STAMP_UM = 26.0
"""Side of a mitosis / look-alike stamp in µm (telophase cells reach ~20 µm)."""


def _rods_along(rng, n: int, points_yx: np.ndarray, angles: np.ndarray, ppu: float,
                length_um=(0.8, 2.6), half_um=(0.28, 0.42)):
    """Rod parameters (centres, angles, lengths, half widths) around given skeleton points, px."""
    jitter = rng.normal(0, 0.25 * ppu, (n, 2))
    return (points_yx + jitter, angles + rng.normal(0, 0.35, n),
            rng.uniform(*length_um, n) * ppu, rng.uniform(*half_um, n) * ppu)


def _chromatin_skeleton(rng, phase: str, ppu: float) -> tuple[np.ndarray, np.ndarray]:
    """Rod centres (n, 2) px and angles (n,) along the chromatin skeleton of one phase."""
    if phase == "prophase":
        n = int(rng.integers(35, 60))
        r = rng.uniform(2.8, 4.2) * ppu * np.sqrt(rng.random(n))
        t = rng.uniform(0, 2 * np.pi, n)
        return np.c_[r * np.sin(t), r * np.cos(t)], rng.uniform(0, np.pi, n)
    axis = rng.uniform(0, np.pi)
    along = np.array([np.sin(axis), np.cos(axis)])
    across = np.array([np.cos(axis), -np.sin(axis)])
    if phase == "metaphase_side":
        n = int(rng.integers(30, 50))
        half_len = rng.uniform(3.5, 5.5) * ppu
        s = rng.uniform(-1, 1, n) * half_len
        bow = rng.uniform(-0.12, 0.12) * (s / half_len) ** 2 * half_len
        w = rng.normal(0, rng.uniform(0.3, 0.6) * ppu, n) + bow
        pts = s[:, None] * along + w[:, None] * across
        return pts, np.full(n, axis + np.pi / 2)
    if phase == "metaphase_end":
        n = int(rng.integers(30, 48))
        t = rng.uniform(0, 2 * np.pi, n)
        r = rng.uniform(2.2, 3.6) * ppu + rng.normal(0, 0.35 * ppu, n)
        return np.c_[r * np.sin(t), r * np.cos(t)], t + rng.normal(0, 0.3, n)
    if phase in ("anaphase", "telophase"):
        gap = (rng.uniform(1.2, 3.5) if phase == "anaphase" else rng.uniform(3.5, 6.0)) * ppu
        n = int(rng.integers(18, 30))
        pts, angs = [], []
        for sgn in (-1, 1):
            if phase == "anaphase":
                half_len = rng.uniform(3.0, 4.8) * ppu
                s = rng.uniform(-1, 1, n) * half_len
                w = sgn * gap + sgn * rng.uniform(0.0, 0.25) * (s / half_len) ** 2 * half_len
                w = w + rng.normal(0, 0.35 * ppu, n)
            else:
                r = rng.uniform(1.5, 2.6) * ppu * np.sqrt(rng.random(n))
                t = rng.uniform(0, 2 * np.pi, n)
                s, w = r * np.cos(t), sgn * gap + r * np.sin(t)
            pts.append(s[:, None] * along + np.asarray(w)[:, None] * across)
            angs.append(np.full(n, axis + np.pi / 2) if phase == "anaphase" else rng.uniform(0, np.pi, n))
        return np.vstack(pts), np.concatenate(angs)
    # atypical: tri/multipolar spokes or lagging chromosomes off a plate
    arms = int(rng.integers(3, 5))
    pts, angs = [], []
    for k in range(arms):
        ang = axis + 2 * np.pi * k / arms + rng.normal(0, 0.2)
        n = int(rng.integers(9, 15))
        s = rng.uniform(0.5, rng.uniform(3.0, 5.0), n) * ppu
        pts.append(np.c_[s * np.sin(ang), s * np.cos(ang)] + rng.normal(0, 0.4 * ppu, (n, 2)))
        angs.append(np.full(n, ang + np.pi / 2))
    return np.vstack(pts), np.concatenate(angs)


def _mitotic_cell_body(rng, yy, xx, pts: np.ndarray, phase: str, ppu: float) -> np.ndarray:
    """Rounded cell around the chromatin; anaphase/telophase cells are two overlapping disks (furrow)."""
    radius = rng.uniform(5.8, 7.5) * ppu
    if phase in ("anaphase", "telophase"):
        half = len(pts) // 2
        poles = [pts[:half].mean(0), pts[half:].mean(0)]
        radius *= 0.8 if phase == "telophase" else 0.9
    else:
        poles = [pts.mean(0)]
    signed = np.full(yy.shape, -1e3, np.float32)
    for cy, cx in poles:
        np.maximum(signed, disk_signed(yy, xx, cy, cx, radius), out=signed)
    signed += 0.25 * ppu * bandpass_noise(rng, yy.shape[0], 1.5 * ppu, 4.0 * ppu)
    return soft(signed)


def mitosis(rng: np.random.Generator, px_per_um: float, phase: str | None = None) -> Stamp:
    """A mitotic figure: ragged dark chromatin (C_H 1.5–2.3, no membrane) in a rounded cell whose
    cytoplasm is either a pale clear zone or slightly eosinophilic; ~40 % show fine hairy projections."""
    ppu = px_per_um
    phase = phase or str(rng.choice(MITOSIS_PHASES, p=PHASE_WEIGHTS))
    size = stamp_size(STAMP_UM, ppu)
    yy, xx = grid(size)
    pts, angs = _chromatin_skeleton(rng, phase, ppu)
    centers, angles, lengths, halves = _rods_along(rng, len(pts), pts, angs, ppu)
    if rng.random() < 0.45:  # hairs: thin spikes beyond the edge
        k = int(rng.integers(6, 16))
        idx = rng.integers(0, len(pts), k)
        direction = np.arctan2(pts[idx, 0], pts[idx, 1]) + rng.normal(0, 0.5, k)
        reach = rng.uniform(0.5, 1.4, k) * ppu
        hair_c = pts[idx] + np.c_[np.sin(direction), np.cos(direction)] * reach[:, None]
        centers = np.vstack([centers, hair_c])
        angles = np.concatenate([angles, direction])
        lengths = np.concatenate([lengths, 2 * reach])
        halves = np.concatenate([halves, rng.uniform(0.12, 0.22, k) * ppu])
    chrom = rods(yy, xx, centers, angles, lengths, halves)
    chrom = np.clip(ndimage.uniform_filter(chrom, 2) * 1.4, 0, 1) if phase == "prophase" else chrom
    if rng.random() < SMOOTH_MITOSIS_SHARE:  # the ~11 % of figures without a ragged border on WSIs
        chrom = soft((ndimage.gaussian_filter(chrom, 0.45 * ppu) - 0.4) * 2.0 * ppu, 1.0)
    alpha = _mitotic_cell_body(rng, yy, xx, pts, phase, ppu)
    clear = rng.random() < 0.6
    c_h = np.full(yy.shape, rng.uniform(0.08, 0.14) if clear else rng.uniform(0.12, 0.2), np.float32)
    c_e = np.empty(yy.shape, np.float32)
    c_e[:] = rng.uniform(0.17, 0.28) if clear else rng.uniform(0.42, 0.6)
    c_e *= 1 + 0.1 * bandpass_noise(rng, size, 0.3 * ppu, 1.5 * ppu)
    dens = rng.uniform(1.5, 2.3) * (1 + 0.08 * bandpass_noise(rng, size, 0.25 * ppu, 1.0 * ppu))
    c_h = c_h * (1 - chrom) + dens * chrom
    c_e = c_e * (1 - chrom) + 0.15 * chrom
    return finish(np.maximum(alpha, chrom), c_h, c_e, "mitosis", phase, px_per_um=ppu)


def _smooth_blobs(yy, xx, rng, centers_yx, radii_px, ppu) -> np.ndarray:
    """Smooth-edged union of disks: the signed field is Gaussian-smoothed, so edges are round."""
    field = np.full(yy.shape, -1e3, np.float32)
    for (cy, cx), r in zip(centers_yx, radii_px):
        np.maximum(field, disk_signed(yy, xx, cy, cx, r), out=field)
    field = ndimage.gaussian_filter(np.clip(field, -6 * ppu, 6 * ppu), 0.5 * ppu)
    return soft(field, 0.9)


def _borderline_spikes(rng, yy, xx, mask, ppu) -> np.ndarray:
    """A few short spikes on part of an imposter's edge (the 10–20 % borderline cases)."""
    edge = np.argwhere((mask > 0.3) & (mask < 0.7))
    if len(edge) == 0:
        return mask
    c = (yy.shape[0] - 1) / 2
    k = int(rng.integers(3, 9))
    start = edge[rng.integers(0, len(edge))]
    near = edge[np.argsort(np.hypot(*(edge - start).T))[: max(k * 4, 1)]][:: 4][:k]
    direction = np.arctan2(near[:, 0] - c, near[:, 1] - c)
    length = rng.uniform(0.5, 1.2, len(near)) * ppu
    spk = rods(yy, xx, near - c + np.c_[np.sin(direction), np.cos(direction)] * length[:, None] / 2,
               direction, length, np.full(len(near), 0.3 * ppu))
    return np.maximum(mask, spk)


def lookalike(rng: np.random.Generator, px_per_um: float, kind: str | None = None) -> Stamp:
    """A mitotic-figure look-alike: apoptotic cell, pyknotic nucleus, karyorrhexis, or a dark tangentially
    cut nucleus. Same chromatin density as a mitosis; smooth round edges or a membrane."""
    ppu = px_per_um
    kind = kind or str(rng.choice(LOOKALIKE_TYPES, p=LOOKALIKE_WEIGHTS))
    size = stamp_size(STAMP_UM, ppu)
    yy, xx = grid(size)
    dens = rng.uniform(1.5, 2.3)
    if kind == "dark_elongated":
        alpha, c_h, c_e = cytoplasm(rng, yy, xx, radius_um=rng.uniform(6.0, 7.5), px_per_um=ppu,
                                    h=rng.uniform(0.12, 0.2), e=rng.uniform(0.3, 0.45))
        n_alpha, n_h = interphase_nucleus(rng, yy, xx, a_um=rng.uniform(3.8, 5.8), b_um=rng.uniform(1.1, 2.1),
                                          px_per_um=ppu, base_h=dens * 0.9, texture=0.12, nucleoli=0)
        n_alpha = _maybe_spikes(rng, yy, xx, n_alpha, ppu)
        c_h = c_h * (1 - n_alpha) + n_h * n_alpha
        c_e = c_e * (1 - n_alpha) + 0.15 * n_alpha
        return finish(alpha, c_h, c_e, "lookalike", kind, px_per_um=ppu)
    if kind == "pyknotic":
        cell_r, e = rng.uniform(4.5, 6.5), rng.uniform(0.4, 0.7)
        r = rng.uniform(2.0, 3.4) * ppu
        nuc = _smooth_blobs(yy, xx, rng, [rng.normal(0, 0.5 * ppu, 2)], [r], ppu)
    elif kind == "karyorrhexis":
        cell_r, e = rng.uniform(4.5, 6.5), rng.uniform(0.6, 0.9)
        n = int(rng.integers(4, 10))
        spread = rng.uniform(2.0, 3.5) * ppu
        t, rr = rng.uniform(0, 2 * np.pi, n), spread * np.sqrt(rng.random(n))
        nuc = _smooth_blobs(yy, xx, rng, np.c_[rr * np.sin(t), rr * np.cos(t)],
                            rng.uniform(0.6, 1.6, n) * ppu, ppu)
    else:  # apoptotic: shrunken eosinophilic cell with one to four smooth round or crescent fragments
        cell_r, e = rng.uniform(4.0, 6.5), rng.uniform(0.8, 1.2)
        n = int(rng.choice([1, 1, 2, 3, 4]))
        t, rr = rng.uniform(0, 2 * np.pi, n), (0 if n == 1 else rng.uniform(1.2, 2.5)) * ppu
        radii = rng.uniform(2.4, 3.6, n) * ppu / np.sqrt(n) ** 0.8
        nuc = _smooth_blobs(yy, xx, rng, np.c_[rr * np.sin(t), rr * np.cos(t)], radii, ppu)
        if n == 1 and rng.random() < 0.4:  # crescent: cut a disk out of the fragment
            off = rng.uniform(0.9, 1.6) * ppu
            a = rng.uniform(0, 2 * np.pi)
            nuc = nuc * (1 - soft(disk_signed(yy, xx, off * np.sin(a), off * np.cos(a), radii[0] * 0.9)))
            nuc = ndimage.gaussian_filter(nuc, 0.4 * ppu)
    nuc = _maybe_spikes(rng, yy, xx, nuc, ppu)
    alpha, c_h, c_e = cytoplasm(rng, yy, xx, radius_um=cell_r, px_per_um=ppu, h=0.15, e=e, roughness=0.03)
    halo_r = cell_r + rng.uniform(0.3, 1.1)
    halo = soft(disk_signed(yy, xx, 0, 0, halo_r * ppu)) * rng.uniform(0.5, 0.95) if rng.random() < 0.7 else 0
    c_h = c_h * alpha + 0.04 * (1 - alpha)
    c_e = c_e * alpha + 0.08 * (1 - alpha)
    alpha = np.maximum(alpha, halo)
    chrom_h = dens * (1 + 0.05 * bandpass_noise(rng, size, 0.5 * ppu, 1.5 * ppu))
    c_h = c_h * (1 - nuc) + chrom_h * nuc
    c_e = c_e * (1 - nuc) + 0.25 * nuc
    return finish(alpha, c_h, c_e, "lookalike", kind, px_per_um=ppu)


def _maybe_spikes(rng, yy, xx, mask, ppu):
    return _borderline_spikes(rng, yy, xx, mask, ppu) if rng.random() < BORDERLINE_LOOKALIKE_SHARE else mask


def ambiguous_cell(rng: np.random.Generator, px_per_um: float) -> Stamp:
    """An ambiguous cell: a large hyperchromatic nucleus with coarse clumps under an intact membrane
    (early prophase or an atypical interphase nucleus): neither clearly mitotic nor clearly not."""
    ppu = px_per_um
    size = stamp_size(STAMP_UM, ppu)
    yy, xx = grid(size)
    alpha, c_h, c_e = cytoplasm(rng, yy, xx, radius_um=rng.uniform(6.0, 7.5), px_per_um=ppu,
                                h=0.15, e=rng.uniform(0.25, 0.4))
    a = rng.uniform(3.2, 4.2)
    n_alpha, n_h = interphase_nucleus(rng, yy, xx, a_um=a, b_um=a * rng.uniform(0.8, 1.0), px_per_um=ppu,
                                      base_h=rng.uniform(1.0, 1.35), texture=0.5, nucleoli=0)
    clumps = rods(yy, xx, rng.normal(0, 1.3 * ppu, (14, 2)), rng.uniform(0, np.pi, 14),
                  rng.uniform(0.6, 1.6, 14) * ppu, np.full(14, 0.3 * ppu)) * n_alpha
    n_h = n_h + 0.5 * clumps
    c_h = c_h * (1 - n_alpha) + n_h * n_alpha
    c_e = c_e * (1 - n_alpha) + 0.12 * n_alpha
    return finish(alpha, c_h, c_e, "ambiguous", "early_prophase", px_per_um=ppu)
