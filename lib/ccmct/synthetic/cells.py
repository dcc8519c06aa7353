"""Stamps of ordinary cells: neoplastic mast cells, eosinophils, lymphocytes, fibroblasts, necrotic ghosts.

A :class:`Stamp` holds a cell in stain-concentration space (premultiplied hematoxylin and eosin OD plus the
coverage ``alpha``), drawn at the slide's resolution from sizes in µm (morphology.md §3, §5). The renderer
blends stamps into strips: ``C = C * (1 - alpha) + stamp``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ccmct.synthetic.shapes import (
    bandpass_noise,
    dots,
    ellipse_signed,
    grid,
    optical_blur,
    outline_signed,
    soft,
)


@dataclass(frozen=True)
class Stamp:
    """One drawn cell.

    Attributes:
        alpha: (S, S) float32 coverage in [0, 1].
        c_h: (S, S) float32 hematoxylin OD, premultiplied by ``alpha``.
        c_e: (S, S) float32 eosin OD, premultiplied by ``alpha``.
        kind: cell kind (``tumor``, ``eosinophil``, ``mitosis``, ``lookalike``, ...).
        subtype: phase or imposter type (``metaphase``, ``apoptotic``, ...), or ``""``.
    """

    alpha: np.ndarray
    c_h: np.ndarray
    c_e: np.ndarray
    kind: str
    subtype: str = ""

    @property
    def size_px(self) -> int:
        return self.alpha.shape[0]


def stamp_size(um: float, px_per_um: float) -> int:
    """Even stamp side (px) for a field of ``um`` µm."""
    return int(np.ceil(um * px_per_um / 2.0)) * 2


def finish(alpha: np.ndarray, c_h: np.ndarray, c_e: np.ndarray, kind: str, subtype: str = "",
           *, px_per_um: float) -> Stamp:
    """Blur (optical PSF) and premultiply a cell into a :class:`Stamp`."""
    sigma = 0.17 * px_per_um
    a = optical_blur(alpha, sigma)
    return Stamp(a, optical_blur(c_h * alpha, sigma), optical_blur(c_e * alpha, sigma), kind, subtype)


def cytoplasm(rng: np.random.Generator, yy, xx, *, radius_um: float, px_per_um: float,
              h: float, e: float, granules: float = 0.0, roughness: float = 0.06,
              aspect: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A cell body: (alpha, C_H, C_E) with a slightly darker membrane line and optional fine granules."""
    ppu = px_per_um
    signed = outline_signed(yy, xx, radius_px=radius_um * ppu, rng=rng, roughness=roughness,
                            orders=(2, 7), aspect=aspect, angle=rng.uniform(0, np.pi))
    alpha = soft(signed)
    membrane = soft(0.45 * ppu - np.abs(signed - 0.3 * ppu))
    texture = bandpass_noise(rng, yy.shape[0], 0.25 * ppu, 1.5 * ppu)
    c_h = np.full(yy.shape, h, np.float32) + 0.03 * texture + 0.06 * membrane
    c_e = np.full(yy.shape, e, np.float32) * (1 + 0.12 * texture) + 0.14 * membrane
    if granules > 0:
        n = int(granules * (radius_um * ppu) ** 2 / (0.6 * ppu) ** 2 * 0.25)
        g = dots(rng, yy, xx, alpha, n, (0.2 * ppu, 0.45 * ppu))
        c_h += 0.22 * g
        c_e += 0.06 * g
    return alpha, c_h, c_e


def interphase_nucleus(rng: np.random.Generator, yy, xx, *, a_um: float, b_um: float, px_per_um: float,
                       base_h: float, texture: float = 0.28, center=(0.0, 0.0), nucleoli: int = 1,
                       angle: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Interphase nucleus: (alpha, C_H) with speckled chromatin, membrane line and nucleoli."""
    ppu = px_per_um
    angle = rng.uniform(0, np.pi) if angle is None else angle
    signed = ellipse_signed(yy, xx, center[0], center[1], a_um * ppu, b_um * ppu, angle)
    signed = signed + 0.35 * ppu * bandpass_noise(rng, yy.shape[0], 1.2 * ppu, 3.0 * ppu)
    alpha = soft(signed)
    speckle = bandpass_noise(rng, yy.shape[0], 0.3 * ppu, 1.2 * ppu)
    c_h = base_h * (1.0 + texture * speckle) + 0.32 * soft(0.35 * ppu - np.abs(signed - 0.25 * ppu))
    for _ in range(nucleoli):
        r = rng.uniform(0.45, 0.8) * ppu
        oy, ox = rng.uniform(-0.4, 0.4, 2) * min(a_um, b_um) * ppu
        c_h += 0.5 * soft(r - np.hypot(yy - center[0] - oy, xx - center[1] - ox))
    return alpha, np.clip(c_h, 0.05, None).astype(np.float32)


def tumor_cell(rng: np.random.Generator, px_per_um: float, *, size_cv: float = 0.12) -> Stamp:
    """Neoplastic mast cell: round/polygonal cell (12–15 µm), amphophilic granular cytoplasm, round nucleus
    (5–7 µm, size CV ``size_cv``) with coarse speckled chromatin and nucleoli; 4 % are binucleated."""
    ppu = px_per_um
    size = stamp_size(17.0, ppu)
    yy, xx = grid(size)
    scale = float(np.clip(rng.normal(1.0, size_cv), 0.7, 1.5))
    alpha, c_h, c_e = cytoplasm(rng, yy, xx, radius_um=rng.uniform(6.2, 7.6) * min(scale, 1.1), px_per_um=ppu,
                                h=rng.uniform(0.16, 0.26), e=rng.uniform(0.26, 0.4),
                                granules=rng.uniform(0.2, 1.2), aspect=rng.uniform(0.8, 1.0))
    nuclei = 2 if rng.random() < 0.04 else 1
    for k in range(nuclei):
        a = rng.uniform(2.6, 3.4) * scale / (1.25 if nuclei == 2 else 1.0)
        offset = rng.uniform(-0.9, 0.9, 2) * ppu if nuclei == 1 else np.array([(k - 0.5) * 2.1 * a * ppu, 0.0])
        n_alpha, n_h = interphase_nucleus(rng, yy, xx, a_um=a, b_um=a * rng.uniform(0.8, 1.0), px_per_um=ppu,
                                          base_h=rng.uniform(0.62, 0.95), center=tuple(offset),
                                          nucleoli=int(rng.integers(0, 3)), texture=0.28)
        c_h = c_h * (1 - n_alpha) + n_h * n_alpha
        c_e = c_e * (1 - n_alpha) + 0.1 * n_alpha
    return finish(alpha, c_h, c_e, "tumor", "binucleated" if nuclei == 2 else "", px_per_um=ppu)


def eosinophil(rng: np.random.Generator, px_per_um: float) -> Stamp:
    """Eosinophilic granulocyte: bright orange-red coarse granules, bilobed dense nucleus (11–14 µm cell)."""
    ppu = px_per_um
    size = stamp_size(17.0, ppu)
    yy, xx = grid(size)
    alpha, c_h, c_e = cytoplasm(rng, yy, xx, radius_um=rng.uniform(5.6, 7.0), px_per_um=ppu,
                                h=0.06, e=rng.uniform(0.42, 0.58), roughness=0.04)
    n = int((rng.uniform(5.6, 7.0) * ppu) ** 2 / (0.9 * ppu) ** 2 * 1.8)
    granules = dots(rng, yy, xx, alpha, n, (0.3 * ppu, 0.7 * ppu))
    c_e = c_e + rng.uniform(0.3, 0.55) * granules
    c_h = c_h + 0.05 * granules
    angle = rng.uniform(0, np.pi)
    sep = rng.uniform(1.4, 2.3) * ppu
    lobes = np.zeros_like(alpha)
    for sgn in (-1, 1):
        cy, cx = sgn * sep * np.sin(angle), sgn * sep * np.cos(angle)
        r = rng.uniform(1.5, 2.1) * ppu
        lobes = np.maximum(lobes, soft(ellipse_signed(yy, xx, cy, cx, r, r * rng.uniform(0.7, 0.95),
                                                      angle + rng.normal(0, 0.4))))
    strand = soft(ellipse_signed(yy, xx, 0, 0, sep, 0.35 * ppu, angle))
    lobes = np.maximum(lobes, strand)
    n_h = rng.uniform(1.0, 1.3) * (1 + 0.12 * bandpass_noise(rng, size, 0.4 * ppu, 1.5 * ppu))
    c_h = c_h * (1 - lobes) + n_h * lobes
    c_e = c_e * (1 - lobes) + 0.15 * lobes
    return finish(alpha, c_h, c_e, "eosinophil", px_per_um=ppu)


def lymphocyte(rng: np.random.Generator, px_per_um: float) -> Stamp:
    """Small lymphocyte: round dark nucleus (~6.5 µm) with coarse chromatin blocks, scant cytoplasm."""
    ppu = px_per_um
    size = stamp_size(12.0, ppu)
    yy, xx = grid(size)
    alpha, c_h, c_e = cytoplasm(rng, yy, xx, radius_um=rng.uniform(3.8, 4.6), px_per_um=ppu, h=0.2, e=0.25,
                                roughness=0.03)
    n_alpha, n_h = interphase_nucleus(rng, yy, xx, a_um=rng.uniform(2.9, 3.4), b_um=rng.uniform(2.7, 3.2),
                                      px_per_um=ppu, base_h=rng.uniform(1.0, 1.3), texture=0.3, nucleoli=0)
    c_h = c_h * (1 - n_alpha) + n_h * n_alpha
    return finish(alpha, c_h, c_e, "lymphocyte", px_per_um=ppu)


def fibroblast(rng: np.random.Generator, px_per_um: float, angle: float | None = None) -> Stamp:
    """Stromal fibroblast: spindle nucleus (10–16 x 2–3 µm) without visible cytoplasm."""
    ppu = px_per_um
    size = stamp_size(18.0, ppu)
    yy, xx = grid(size)
    angle = rng.uniform(0, np.pi) if angle is None else angle
    n_alpha, n_h = interphase_nucleus(rng, yy, xx, a_um=rng.uniform(5.0, 8.0), b_um=rng.uniform(1.0, 1.5),
                                      px_per_um=ppu, base_h=rng.uniform(0.7, 1.0), nucleoli=0, angle=angle)
    return finish(n_alpha * 0.95, n_h, np.full_like(n_h, 0.1), "fibroblast", px_per_um=ppu)


def ghost_cell(rng: np.random.Generator, px_per_um: float) -> Stamp:
    """Necrotic cell: hypereosinophilic smudged body, faded or fragmented nucleus."""
    ppu = px_per_um
    size = stamp_size(16.0, ppu)
    yy, xx = grid(size)
    alpha, c_h, c_e = cytoplasm(rng, yy, xx, radius_um=rng.uniform(4.5, 6.5), px_per_um=ppu,
                                h=0.1, e=rng.uniform(0.75, 1.05), roughness=0.12)
    if rng.random() < 0.7:
        beads = dots(rng, yy, xx, soft(2.5 * ppu - np.hypot(yy, xx)), int(rng.integers(1, 6)),
                     (0.2 * ppu, 0.7 * ppu))
        c_h = c_h + rng.uniform(0.9, 1.6) * beads
    else:
        faded = soft(ellipse_signed(yy, xx, 0, 0, 2.8 * ppu, 2.4 * ppu, rng.uniform(0, np.pi)))
        c_h = c_h + 0.25 * faded
    return finish(alpha * rng.uniform(0.7, 1.0), c_h, c_e, "ghost", px_per_um=ppu)


def erythrocyte(rng: np.random.Generator, px_per_um: float) -> Stamp:
    """Red blood cell: smooth bright eosinophilic disc (~7 µm) with a paler biconcave centre, no nucleus."""
    ppu = px_per_um
    size = stamp_size(10.0, ppu)
    yy, xx = grid(size)
    r = rng.uniform(3.2, 3.8) * ppu
    signed = ellipse_signed(yy, xx, 0, 0, r, r * rng.uniform(0.8, 1.0), rng.uniform(0, np.pi))
    alpha = soft(signed)
    centre = soft(0.45 * r - np.hypot(yy, xx), 0.5 * r)
    c_e = rng.uniform(0.8, 1.05) * (1 - 0.35 * centre)
    return finish(alpha, np.full_like(alpha, 0.03), c_e.astype(np.float32), "erythrocyte", px_per_um=ppu)
