"""Slide access: the only module that imports OpenSlide.

Every read is a level-0 location (x, y) in level-0 pixels plus an explicit ``level``; images come back as
(H, W, 3) uint8 RGB arrays. Backend failures become :class:`ccmct.errors.SlideError` naming the file and
OpenSlide's reason, and a handle that raised is closed and never reused.

Example:
    >>> with open_slide("WSI/be10fa37ad6e88e1f406.svs") as slide:   # doctest: +SKIP
    ...     patch = slide.read_l0(x_l0=1000, y_l0=2000, size_wh=(256, 256))
    ...     patch.shape
    (256, 256, 3)
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ccmct.errors import SlideError

# openslide-bin ships the native library; openslide-python finds it on import.
import openslide  # noqa: E402

MAX_PLAUSIBLE_MPP = 100.0
"""µm/px above which a recorded resolution is taken as a placeholder, not a scan: generic TIFFs carry the
72-dpi default (25400 / 72 = 352.8 µm/px); whole-slide scanners record 0.1 - 20 µm/px."""


class Slide:
    """A whole-slide image opened with OpenSlide.

    Args:
        path: slide file.
        mpp: µm per level-0 pixel, overriding the slide's own metadata (for files without it).
    """

    def __init__(self, path: str | os.PathLike[str], *, mpp: float | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise SlideError(self.path, "slide file does not exist")
        try:
            self._osr = openslide.OpenSlide(str(self.path))
        except openslide.OpenSlideError as err:  # includes OpenSlideUnsupportedFormatError
            raise SlideError(self.path, f"OpenSlide cannot open it ({err})") from err
        self._mpp_override = mpp
        self._poisoned: str | None = None

    # ------------------------------------------------------------------ metadata
    @property
    def dimensions(self) -> tuple[int, int]:
        """(width, height) of level 0, px."""
        return tuple(self._osr.dimensions)

    @property
    def level_count(self) -> int:
        return self._osr.level_count

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        return tuple(tuple(d) for d in self._osr.level_dimensions)

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        return tuple(self._osr.level_downsamples)

    @property
    def vendor(self) -> str | None:
        return self._osr.properties.get(openslide.PROPERTY_NAME_VENDOR)

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._osr.properties)

    @property
    def mpp(self) -> float:
        """µm per level-0 pixel (x): the override if given, else the slide's ``openslide.mpp-x``.

        Raises:
            SlideError: neither exists, or the recorded value is a placeholder (above
                :data:`MAX_PLAUSIBLE_MPP`); pass ``mpp=`` / ``--mpp``.
        """
        if self._mpp_override is not None:
            return float(self._mpp_override)
        value = self._osr.properties.get(openslide.PROPERTY_NAME_MPP_X)
        if value is None:
            raise SlideError(self.path, "the slide records no microns per pixel (openslide.mpp-x); "
                                        "pass an explicit mpp (--mpp)")
        try:
            mpp = float(value)
        except ValueError:
            mpp = float("nan")
        if not 0 < mpp <= MAX_PLAUSIBLE_MPP:
            raise SlideError(self.path, f"the slide's openslide.mpp-x {value!r} is not a microscope's "
                                        f"resolution (expected 0 < mpp <= {MAX_PLAUSIBLE_MPP:g} µm/px; a generic "
                                        "TIFF's default 72 dpi reads as 352.8); pass an explicit mpp (--mpp)")
        return mpp

    # ------------------------------------------------------------------ pixels
    def read_region(self, x_l0: int, y_l0: int, size_wh: tuple[int, int], *, level: int = 0) -> np.ndarray:
        """RGB pixels of a region.

        Args:
            x_l0, y_l0: top-left corner in level-0 px (may lie outside the slide: outside is white).
            size_wh: (width, height) of the output, in pixels of ``level``.
            level: pyramid level to read from.

        Returns:
            (height, width, 3) uint8 RGB. Areas outside the slide are white (255), as on a glass slide.

        Raises:
            SlideError: the slide's data is corrupt (the handle is then closed for good).
        """
        if self._poisoned is not None:
            raise SlideError(self.path, f"an earlier read failed ({self._poisoned}); the handle is closed")
        try:
            rgba = self._osr.read_region((int(x_l0), int(y_l0)), int(level), (int(size_wh[0]), int(size_wh[1])))
        except openslide.OpenSlideError as err:
            self._poison(str(err))
            raise SlideError(self.path, f"OpenSlide cannot read it ({err})") from err
        return _rgba_to_rgb_white(np.asarray(rgba))

    def read_l0(self, x_l0: int, y_l0: int, size_wh: tuple[int, int]) -> np.ndarray:
        """Level-0 patch, (H, W, 3) uint8 RGB (see :meth:`read_region`)."""
        return self.read_region(x_l0, y_l0, size_wh, level=0)

    def thumbnail(self, max_size: int = 1024) -> np.ndarray:
        """RGB thumbnail whose longer side is at most ``max_size`` px, (H, W, 3) uint8."""
        if self._poisoned is not None:
            raise SlideError(self.path, f"an earlier read failed ({self._poisoned}); the handle is closed")
        try:
            image = self._osr.get_thumbnail((max_size, max_size))
        except openslide.OpenSlideError as err:
            self._poison(str(err))
            raise SlideError(self.path, f"OpenSlide cannot read it ({err})") from err
        return np.asarray(image.convert("RGB"))

    def deep_zoom(self, *, tile_size: int = 254, overlap: int = 1, limit_bounds: bool = False):
        """A :class:`DeepZoom` (openslide's ``DeepZoomGenerator``) over this slide, for ``ccmct view``.

        Deep Zoom level ``L`` has the slide's level-0 size divided by ``2 ** (max_level - L)``; tile
        (col, row) of a level covers ``tile_size`` px plus ``overlap`` px on inner edges.
        Not safe to share between threads: give each thread its own handle (:func:`open_slide`).
        """
        if self._poisoned is not None:
            raise SlideError(self.path, f"an earlier read failed ({self._poisoned}); the handle is closed")
        from openslide.deepzoom import DeepZoomGenerator

        return DeepZoom(self, DeepZoomGenerator(self._osr, tile_size=tile_size, overlap=overlap,
                                                limit_bounds=limit_bounds))

    def _poison(self, reason: str) -> None:
        self._poisoned = reason
        _cached_slide.cache_clear()
        try:
            self._osr.close()
        except Exception:  # noqa: BLE001 - the handle is already broken; closing is best effort
            pass

    def close(self) -> None:
        if self._poisoned is None:
            self._osr.close()
            self._poisoned = "closed"

    def __enter__(self) -> "Slide":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"closed: {self._poisoned}" if self._poisoned is not None else f"dimensions={self.dimensions}"
        return f"Slide({str(self.path)!r}, {state})"


class DeepZoom:
    """openslide's ``DeepZoomGenerator`` of a :class:`Slide` whose tile reads raise :class:`SlideError`.

    Attributes mirror the generator's: ``level_count``, ``level_tiles`` ((cols, rows) per level),
    ``level_dimensions`` ((width, height) px per level), ``tile_count``; ``get_dzi(format)`` is the
    ``.dzi`` XML; ``get_tile(level, (col, row))`` an RGB PIL image.
    """

    def __init__(self, slide: "Slide", generator):
        self.slide = slide
        self.generator = generator
        self.level_count = generator.level_count
        self.level_tiles = generator.level_tiles
        self.level_dimensions = generator.level_dimensions
        self.tile_count = generator.tile_count

    def get_dzi(self, image_format: str) -> str:
        return self.generator.get_dzi(image_format)

    def get_tile(self, level: int, address: tuple[int, int]):
        try:
            return self.generator.get_tile(level, address)
        except openslide.OpenSlideError as err:
            self.slide._poison(str(err))
            raise SlideError(self.slide.path, f"OpenSlide cannot read it ({err})") from err


def _rgba_to_rgb_white(rgba: np.ndarray) -> np.ndarray:
    """OpenSlide returns premultiplied RGBA with transparent black outside the slide; make that white."""
    rgb = rgba[..., :3]
    alpha = rgba[..., 3]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgb)
    out = rgb.copy()
    out[alpha == 0] = 255
    return out


def open_slide(path: str | os.PathLike[str], *, mpp: float | None = None) -> Slide:
    """Open a slide (the one entry point). See :class:`Slide`."""
    return Slide(path, mpp=mpp)


@lru_cache(maxsize=16)
def _cached_slide(path: str, pid: int, mpp: float | None) -> Slide:
    return Slide(path, mpp=mpp)


def cached_slide(path: str | os.PathLike[str], *, mpp: float | None = None) -> Slide:
    """A per-process, reused handle (for DataLoader workers: each process gets its own).

    Args:
        path: slide file.
        mpp: µm per level-0 pixel overriding the slide's metadata (part of the cache key).

    A handle that raised is dropped from the cache, so the next call reopens (and fails clearly again).
    Do not close the returned handle; it is shared within the process.
    """
    key = (str(Path(path).resolve()), os.getpid(), None if mpp is None else float(mpp))
    slide = _cached_slide(*key)
    if slide._poisoned is not None:
        _cached_slide.cache_clear()
        slide = _cached_slide(*key)
    return slide


def tissue_mask(thumbnail_rgb: np.ndarray, *, min_saturation: float | None = None) -> np.ndarray:
    """Boolean tissue mask of an RGB thumbnail: Otsu threshold on HSV saturation.

    Args:
        thumbnail_rgb: (H, W, 3) uint8.
        min_saturation: fixed threshold in [0, 1] instead of Otsu's (e.g. for a slide that is all tissue).

    Returns:
        (H, W) bool, True where tissue.
    """
    rgb = thumbnail_rgb.astype(np.float32) / 255.0
    cmax = rgb.max(axis=2)
    cmin = rgb.min(axis=2)
    saturation = np.where(cmax > 0, (cmax - cmin) / np.maximum(cmax, 1e-6), 0.0)
    if min_saturation is None:
        min_saturation = max(_otsu(saturation), 0.05)
    return saturation > min_saturation


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of values in [0, 1] (Otsu 1979)."""
    hist, edges = np.histogram(values.ravel(), bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(centers[int(np.argmax(between))])
