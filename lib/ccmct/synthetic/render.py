"""Render a synthetic slide strip by strip (level-0 rows), so that no whole level is ever held in memory.

Per strip: coarse background maps (cytoplasm, stroma, necrosis) are upsampled bilinearly, collagen fibres
and granular texture come from periodic tiles, the tissue edge is sharpened at full resolution, cell
stamps are blended in stain space in a fixed order, and a per-slide lookup table applies Beer–Lambert
(stain concentrations -> RGB) with dithering noise. Rendering rows [y0, y0 + h) gives exactly the pixels
of those rows of the whole slide, whatever the strip height.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ccmct.synthetic.layout import KINDS, CellLayout
from ccmct.synthetic.library import StampLibrary
from ccmct.synthetic.shapes import gaussian_spectrum_noise
from ccmct.synthetic.stain import Stain, od_to_rgb
from ccmct.synthetic.tissue import TissueMap, smooth_noise

TEXTURE_PX = 1024
H_LEVELS, H_MAX = 384, 3.2
E_LEVELS, E_MAX = 256, 2.2


def _anisotropic_noise(rng: np.random.Generator, t: int, angle: float, s_along: float, s_across: float) -> np.ndarray:
    """Periodic noise elongated along ``angle`` (band-pass across it), unit std."""
    white = rng.standard_normal((t, t)).astype(np.float32)
    fy = np.fft.fftfreq(t).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(t).astype(np.float32)[None, :]
    f_along = fx * np.cos(angle) + fy * np.sin(angle)
    f_across = -fx * np.sin(angle) + fy * np.cos(angle)
    transfer = np.exp(-2 * np.pi ** 2 * (s_along ** 2 * f_along ** 2 + s_across ** 2 * f_across ** 2))
    transfer -= np.exp(-2 * np.pi ** 2 * (s_along ** 2 * f_along ** 2 + (4 * s_across) ** 2 * f_across ** 2))
    tex = np.fft.irfft2(np.fft.rfft2(white) * transfer, s=(t, t))
    return (tex / max(float(tex.std()), 1e-9)).astype(np.float32)


def collagen_tile(rng: np.random.Generator, px_per_um: float) -> np.ndarray:
    """Periodic texture of wavy collagen bundles in about [-1.6, 1]: fibres ~1–3 µm across and tens of µm
    long, bundles of varying contrast, and thin pale clefts between bundles (negative values)."""
    t, ppu = TEXTURE_PX, px_per_um
    angle = rng.uniform(0, np.pi)
    fibres = np.tanh(1.6 * _anisotropic_noise(rng, t, angle, 9.0 * ppu, 0.5 * ppu))
    clefts = _anisotropic_noise(rng, t, angle, 30.0 * ppu, 3.0 * ppu)
    envelope = 0.6 + 0.4 * np.tanh(2.0 * _anisotropic_noise(rng, t, angle, 20.0 * ppu, 5.0 * ppu))
    out = fibres * envelope
    out = np.where(np.abs(clefts) < 0.12, -1.6, out).astype(np.float32)
    warp = gaussian_spectrum_noise(rng, (t, t), (30.0 * ppu,), (1.0,))
    warp *= 9.0 * ppu / max(float(warp.std()), 1e-6)
    yy, xx = np.mgrid[0:t, 0:t].astype(np.float32)
    coords = [yy + warp * np.cos(angle), xx - warp * np.sin(angle)]
    out = ndimage.map_coordinates(out, coords, order=1, mode="wrap")
    return ndimage.gaussian_filter(out, 0.3 * ppu, mode="wrap").astype(np.float32)


def stain_lut(stain: Stain) -> np.ndarray:
    """(H_LEVELS * E_LEVELS, 3) uint8: RGB for quantised (C_H, C_E) under ``stain``."""
    h = (np.arange(H_LEVELS, dtype=np.float32) + 0.5) * (H_MAX / H_LEVELS)
    e = (np.arange(E_LEVELS, dtype=np.float32) + 0.5) * (E_MAX / E_LEVELS)
    hh, ee = np.meshgrid(h, e, indexing="ij")
    rgb = od_to_rgb(hh, ee, stain)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8).reshape(-1, 3)


class SlideRenderer:
    """Callable ``(y0_l0, height) -> (height, width, 3) uint8`` for :func:`ccmct.data.svs_writer.write_svs`.

    Args:
        tmap: coarse layout of the slide.
        layout: its cells.
        library: stamps.
        stain: the slide's stain.
        seed: seeds the texture tiles.
    """

    def __init__(self, tmap: TissueMap, layout: CellLayout, library: StampLibrary, stain: Stain, seed: int):
        rng = np.random.default_rng(seed)
        self.tmap, self.layout, self.stain = tmap, layout, stain
        self.width, self.height = tmap.size_wh
        ppu = library.px_per_um
        self.collagen = collagen_tile(rng, ppu)
        grain = gaussian_spectrum_noise(rng, (TEXTURE_PX, TEXTURE_PX), (0.5 * ppu,), (1.0,))
        self.grain = np.clip(grain / grain.std(), -2.5, 2.5).astype(np.float32)
        self.dither = rng.random((2, TEXTURE_PX, TEXTURE_PX), dtype=np.float32)
        self.noise = (rng.standard_normal((2, TEXTURE_PX, TEXTURE_PX)) * 0.006).astype(np.float32)
        self.coarse = self._coarse_maps(rng)
        self.lut = stain_lut(stain)
        self.reach = library.max_size_px // 2 + 1
        self.stamps = {k: [np.stack([s.alpha, s.c_h, s.c_e]) for s in library.stamps[name]]
                       for k, name in enumerate(KINDS)}
        self.defocus_px = rng.uniform(1.8, 3.0) * ppu / 4.0
        self.in_blur = np.zeros(len(layout.kind), bool)
        for x1, y1, x2, y2 in tmap.blur_boxes_l0:
            self.in_blur |= (layout.x_l0 >= x1) & (layout.x_l0 < x2) & (layout.y_l0 >= y1) & (layout.y_l0 < y2)
        self._blurred: dict[tuple[int, int], np.ndarray] = {}
        if tmap.blur_boxes_l0:
            self.blurred_tiles = {name: ndimage.gaussian_filter(tile, self.defocus_px, mode="wrap")
                                  for name, tile in (("grain", self.grain), ("fibres", self.collagen))}

    def _coarse_maps(self, rng) -> np.ndarray:
        """(4, gh, gw) float32: C_H and C_E per unit tissue, collagen weight, smooth tissue field."""
        t = self.tmap
        stroma = ndimage.gaussian_filter(t.stroma.astype(np.float32), 0.7)
        necro = ndimage.gaussian_filter(t.necrosis.astype(np.float32), 0.7)
        tumor = np.clip(1.0 - stroma - necro, 0, 1)
        oedema = np.clip(smooth_noise(rng, stroma.shape, 3.0) - 0.8, 0, 1) * stroma
        c_h = 0.03 * stroma + 0.15 * tumor + 0.2 * necro
        c_e = rng.uniform(0.38, 0.55) * stroma * (1 - 0.75 * oedema) + 0.32 * tumor + 0.75 * necro
        collagen = stroma * (1 - 0.4 * oedema) + 0.2 * tumor
        tissue = ndimage.gaussian_filter(t.tissue, 0.6)
        return np.stack([c_h, c_e, collagen, tissue]).astype(np.float32)

    def _coarse_rows(self, y0: int, h: int) -> np.ndarray:
        """Coarse maps interpolated (bilinear, pixel centres) to level-0 rows [y0, y0 + h): (4, h, gw + 2),
        padded by one edge column on each side for :meth:`_columns`."""
        f = self.tmap.factor_px
        gh = self.coarse.shape[1]
        v = (np.arange(y0, y0 + h) + 0.5) / f - 0.5
        r0 = np.clip(np.floor(v).astype(int), 0, gh - 1)
        r1 = np.clip(r0 + 1, 0, gh - 1)
        wv = np.clip(v - np.floor(v), 0, 1).astype(np.float32)[None, :, None]
        rows = self.coarse[:, r0] * (1 - wv) + self.coarse[:, r1] * wv
        return np.pad(rows, ((0, 0), (0, 0), (1, 3)), mode="edge")

    def _columns(self, rows: np.ndarray, x0: int, width: int) -> np.ndarray:
        """Bilinear interpolation along x of padded coarse rows for level-0 columns [x0, x0 + width), where
        (4, h, width). The weights repeat every coarse cell."""
        f = self.tmap.factor_px
        c0 = x0 // f
        offset = x0 - c0 * f
        n = -(-(width + offset) // f)
        j = np.arange(f, dtype=np.float32)
        u = (j + 0.5) / f - 0.5                      # offset from the cell's own centre, in cells
        half = int((u < 0).sum())                    # columns left of the cell centre (a prefix)
        w = np.where(u < 0, u + 1.0, u).astype(np.float32)   # weight of the right-hand neighbour
        cells = rows[:, :, c0:c0 + n + 3, None]      # padded index p = coarse index + 1
        out = np.empty(rows.shape[:2] + (n, f), np.float32)
        out[..., :half] = cells[:, :, 0:n] * (1.0 - w[:half]) + cells[:, :, 1:n + 1] * w[:half]
        out[..., half:] = cells[:, :, 1:n + 1] * (1.0 - w[half:]) + cells[:, :, 2:n + 2] * w[half:]
        return out.reshape(rows.shape[0], rows.shape[1], n * f)[:, :, offset:offset + width]

    def _blend_cells(self, conc: np.ndarray, y0: int, x0: int, cells: np.ndarray) -> None:
        """Blend ``cells`` (indices, already in drawing order) into ``conc`` (2, h, w) at level-0 (x0, y0)."""
        lay = self.layout
        h, w = conc.shape[1:]
        for k, j, o, cy, cx, blurred in zip(lay.kind[cells].tolist(), lay.stamp[cells].tolist(),
                                            lay.orient[cells].tolist(), lay.y_l0[cells].tolist(),
                                            lay.x_l0[cells].tolist(), self.in_blur[cells].tolist()):
            st = self._defocused(k, j) if blurred else self.stamps[k][j]
            s = st.shape[1]
            top, left = cy - s // 2, cx - s // 2
            a0, a1 = max(y0, top), min(y0 + h, top + s)
            b0, b1 = max(x0, left), min(x0 + w, left + s)
            if a0 >= a1 or b0 >= b1:
                continue
            st = np.rot90(st, o & 3, axes=(1, 2))
            if o & 4:
                st = st[:, :, ::-1]
            st = st[:, a0 - top:a1 - top, b0 - left:b1 - left]
            region = conc[:, a0 - y0:a1 - y0, b0 - x0:b1 - x0]
            region *= 1.0 - st[0]
            region += st[1:]

    def _defocused(self, kind: int, index: int) -> np.ndarray:
        """A stamp as seen out of focus (Gaussian defocus), made on first use."""
        key = (kind, index)
        if key not in self._blurred:
            sigma = (0, self.defocus_px, self.defocus_px)
            self._blurred[key] = ndimage.gaussian_filter(self.stamps[kind][index], sigma)
        return self._blurred[key]

    def _strip_cells(self, y0: int, h: int) -> np.ndarray:
        """Indices of the cells overlapping rows [y0, y0 + h), in drawing order (kind, then index)."""
        lay = self.layout
        lo = np.searchsorted(lay.y_l0, y0 - self.reach, side="left")
        hi = np.searchsorted(lay.y_l0, y0 + h + self.reach, side="right")
        idx = np.arange(lo, hi)
        return idx[np.lexsort((idx, lay.kind[idx]))]

    def __call__(self, y0: int, h: int) -> np.ndarray:
        rows = self._coarse_rows(y0, h)
        texture_rows = np.arange(y0, y0 + h) % TEXTURE_PX
        textures = {name: tile[..., texture_rows, :] for name, tile in
                    (("grain", self.grain), ("fibres", self.collagen), ("noise", self.noise),
                     ("dither", self.dither))}
        if self.tmap.blur_boxes_l0:
            textures.update({f"{name}_blurred": tile[texture_rows] for name, tile in self.blurred_tiles.items()})
        cells = self._strip_cells(y0, h)
        cell_x = self.layout.x_l0[cells]
        out = np.empty((h, self.width, 3), np.uint8)
        for x0 in range(0, self.width, TEXTURE_PX):   # blocks aligned to the texture period and coarse cells
            w = min(TEXTURE_PX, self.width - x0)
            near = cells[(cell_x > x0 - self.reach) & (cell_x < x0 + w + self.reach)]
            out[:, x0:x0 + w] = self._render_block(rows, textures, y0, x0, w, near)
        return out

    def _render_block(self, rows, textures, y0: int, x0: int, w: int, cells: np.ndarray) -> np.ndarray:
        """One block of a strip: background, cells, stain bias, noise, Beer–Lambert."""
        bg_h, bg_e, collagen_w, tissue = self._columns(rows, x0, w)
        grain, fibres = textures["grain"][:, :w], textures["fibres"][:, :w]
        for x1, y1, x2, y2 in self.tmap.blur_boxes_l0:   # out-of-focus stripe: blurred textures
            ry = slice(max(y1 - y0, 0), max(min(y2 - y0, grain.shape[0]), 0))
            rx = slice(max(x1 - x0, 0), max(min(x2 - x0, w), 0))
            if ry.start < ry.stop and rx.start < rx.stop:
                grain, fibres = grain.copy(), fibres.copy()
                grain[ry, rx] = textures["grain_blurred"][ry, rx]
                fibres[ry, rx] = textures["fibres_blurred"][ry, rx]
        tissue = np.clip((tissue - 0.5) * 5.0 + 0.5 + 0.12 * grain, 0.0, 1.0)
        conc = np.empty((2,) + tissue.shape, np.float32)
        conc[0] = bg_h * tissue * (1.0 + 0.25 * grain)
        conc[1] = bg_e * tissue * (1.0 + collagen_w * 0.55 * fibres) * (1.0 + 0.08 * grain)
        self._blend_cells(conc, y0, x0, cells)
        conc[0] += self.stain.h_bias * tissue
        conc[1] += self.stain.e_bias * tissue
        conc += textures["noise"][:, :, :w]
        return self._to_rgb(conc, textures["dither"][:, :, :w])

    def _to_rgb(self, conc: np.ndarray, dither: np.ndarray) -> np.ndarray:
        """Quantise (C_H, C_E) with dithering and look up RGB (Beer–Lambert via :func:`stain_lut`)."""
        conc[0] *= H_LEVELS / H_MAX
        conc[1] *= E_LEVELS / E_MAX
        conc += dither
        np.clip(conc[0], 0, H_LEVELS - 1, out=conc[0])
        np.clip(conc[1], 0, E_LEVELS - 1, out=conc[1])
        index = conc.astype(np.int32)
        index[0] *= E_LEVELS
        index[0] += index[1]
        return self.lut[index[0]]
