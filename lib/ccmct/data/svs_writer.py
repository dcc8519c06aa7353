"""Write Aperio-flavoured pyramidal TIFF (``.svs``) files laid out like a scanner's, page by page.

Page order and ``NewSubfileType`` as in real Aperio files (e.g. OpenSlide's ``CMU-1.svs``, and the
``small.svs`` test fixture): page 0 = level 0, tiled, subfile type 0, ImageDescription starting
``Aperio Image Library`` with ``|AppMag = 40|MPP = <mpp>``; page 1 = a small **stripped** thumbnail (type 0,
longer side at most :data:`THUMBNAIL_MAX_PX`); then the reduced levels (downsample 4, 16, ... like Aperio
scanners) as tiled top-level pages of type 0; then the ``label`` (stripped, LZW, type 1 = reduced image) and
the ``macro`` (stripped, JPEG, type 9 = reduced | macro) images, named by their descriptions. With this layout
OpenSlide (vendor ``aperio``), tifffile (series ``Baseline`` with its levels, ``Thumbnail``, ``Label``,
``Macro``) and tiffslide see the same pyramid: same level count, sizes and pixels (tests/data/
test_svs_readers.py). Tiles are JPEG (realistic) or zlib (exact pixels). Level 0 is streamed strip by strip
from a callback, so a slide larger than memory can be written; only the 4x-reduced level is held in memory.

Example:
    >>> import numpy as np
    >>> image = np.full((1024, 1536, 3), 240, np.uint8)
    >>> write_svs("example.svs", image, mpp=0.25)     # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import tifffile
from PIL import Image
from ccmct.atomicio import atomic_path

StripRenderer = Callable[[int, int], np.ndarray]
"""``render(y0_l0, height) -> (height, width, 3) uint8``: level-0 rows [y0, y0 + height) of the slide."""

LEVEL_FACTOR = 4
MIN_LEVEL_SIDE = 512
THUMBNAIL_MAX_PX = 1024
"""Longer side of the stripped thumbnail page (Aperio scanners write ~1024 px wide thumbnails)."""
LABEL_WH = (384, 448)
"""(width, height) of the label image, px (a scanner's slide-label photo is about this size)."""
MACRO_HEIGHT_PX = 400
"""Height of the macro image (the whole glass slide at low magnification), px."""

# TIFF NewSubfileType bits as Aperio writes them: levels and thumbnail 0, label 1 (reduced), macro 9.
SUBFILE_LEVEL, SUBFILE_LABEL, SUBFILE_MACRO = 0, 1, 9


def write_svs(path: str | os.PathLike[str], image_or_renderer: np.ndarray | StripRenderer, *,
              size_wh: tuple[int, int] | None = None, mpp: float = 0.25, tile: int = 256,
              compression: str = "jpeg", quality: int = 90, app_mag: int = 40) -> Path:
    """Write a pyramidal Aperio-style TIFF atomically (temporary file, then rename).

    Args:
        path: destination ``.svs`` (or ``.tiff``) file.
        image_or_renderer: the level-0 image (H, W, 3) uint8, or a :data:`StripRenderer` (then ``size_wh``).
        size_wh: (width, height) of level 0 in px; required with a renderer.
        mpp: µm per level-0 pixel written as ``MPP`` (OpenSlide's ``openslide.mpp-x``/``-y``).
        tile: tile side in px (multiple of 16).
        compression: ``"jpeg"`` (realistic, lossy) or ``"zlib"`` (exact pixels).
        quality: JPEG quality.
        app_mag: objective magnification written as ``AppMag``.

    Returns:
        The path written.
    """
    path = Path(path)
    if isinstance(image_or_renderer, np.ndarray):
        image = image_or_renderer
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"write_svs: image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        size_wh = (image.shape[1], image.shape[0])
        renderer: StripRenderer = lambda y0, h: image[y0:y0 + h]  # noqa: E731
    else:
        if size_wh is None:
            raise ValueError("write_svs: size_wh is required with a strip renderer")
        renderer = image_or_renderer
    if tile % 16:
        raise ValueError(f"write_svs: tile must be a multiple of 16, got {tile}")
    width, height = int(size_wh[0]), int(size_wh[1])
    codec = {"jpeg": ("jpeg", {"level": quality}), "zlib": ("zlib", None)}
    if compression not in codec:
        raise ValueError(f"write_svs: compression must be 'jpeg' or 'zlib', got {compression!r}")
    comp, comp_args = codec[compression]

    reduced = np.empty((height // LEVEL_FACTOR, width // LEVEL_FACTOR, 3), np.uint8)
    head = f"Aperio Image Library v12.0.15 \r\n{width}x{height} [0,0 {width}x{height}] ({tile}x{tile})"
    tail = f"JPEG/RGB Q={quality}" if compression == "jpeg" else "RGB"
    description = f"{head} {tail}|AppMag = {app_mag}|MPP = {mpp:.6f}"
    pages = dict(photometric="rgb", compression=comp, compressionargs=comp_args, metadata=None)
    with atomic_path(path) as tmp:
        with tifffile.TiffWriter(tmp, bigtiff=width * height * 3 > 2**31) as tif:
            tif.write(_level0_tiles(renderer, width, height, tile, reduced), shape=(height, width, 3),
                      dtype=np.uint8, tile=(tile, tile), description=description,
                      subfiletype=SUBFILE_LEVEL, **pages)
            thumb = _thumbnail(reduced, (width, height))
            tif.write(thumb, rowsperstrip=16, subfiletype=SUBFILE_LEVEL,
                      description=f"{head} -> {thumb.shape[1]}x{thumb.shape[0]} - {tail}", **pages)
            level = reduced
            while min(level.shape[:2]) >= MIN_LEVEL_SIDE // LEVEL_FACTOR and level.size:
                lh, lw = level.shape[:2]
                tif.write(level, tile=(tile, tile), subfiletype=SUBFILE_LEVEL,
                          description=f"{head} -> {lw}x{lh} {tail}", **pages)
                if min(lh, lw) < MIN_LEVEL_SIDE:
                    break
                level = np.asarray(Image.fromarray(level).reduce(LEVEL_FACTOR))
            label = _label(path.stem)
            tif.write(label, rowsperstrip=label.shape[0], photometric="rgb", compression="lzw", metadata=None,
                      subfiletype=SUBFILE_LABEL,
                      description=f"Aperio Image Library v12.0.15 \r\nlabel {label.shape[1]}x{label.shape[0]}")
            macro = _macro(thumb)
            tif.write(macro, rowsperstrip=16, photometric="rgb", compression="jpeg", compressionargs={"level": 80},
                      metadata=None, subfiletype=SUBFILE_MACRO,
                      description=f"Aperio Image Library v12.0.15 \r\nmacro {macro.shape[1]}x{macro.shape[0]}")
    return path


def _thumbnail(reduced: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """The thumbnail page: the 4x level shrunk to a longer side of at most :data:`THUMBNAIL_MAX_PX`."""
    if reduced.size == 0:  # a slide under 4 px: nothing to shrink
        return np.full((max(1, size_wh[1]), max(1, size_wh[0]), 3), 255, np.uint8)
    image = Image.fromarray(reduced)
    image.thumbnail((THUMBNAIL_MAX_PX, THUMBNAIL_MAX_PX), Image.Resampling.BOX)
    return np.asarray(image)


def _label(name: str) -> np.ndarray:
    """A white slide label with a barcode-like stripe pattern derived from the file name (stable per name)."""
    width, height = LABEL_WH
    label = np.full((height, width, 3), 250, np.uint8)
    bits = np.unpackbits(np.frombuffer(name.encode("utf-8")[:40].ljust(40, b"\0"), np.uint8))
    columns = np.repeat(bits, max(1, (width - 64) // len(bits)))[: width - 64]
    label[height // 4: height // 2, 32: 32 + len(columns)][:, columns == 1] = 20
    return label


def _macro(thumb: np.ndarray) -> np.ndarray:
    """The whole glass slide at low magnification: the tissue thumbnail on a grey slide beside a label area."""
    image = Image.fromarray(thumb)
    scale = MACRO_HEIGHT_PX * 0.8 / max(1, image.height)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.Resampling.BOX)
    macro = np.full((MACRO_HEIGHT_PX, image.width + MACRO_HEIGHT_PX, 3), 215, np.uint8)
    macro[:, : MACRO_HEIGHT_PX // 2] = 245  # the label end of the glass slide
    top, left = (MACRO_HEIGHT_PX - image.height) // 2, MACRO_HEIGHT_PX * 3 // 4
    macro[top: top + image.height, left: left + image.width] = np.asarray(image)
    return macro


def _level0_tiles(renderer: StripRenderer, width: int, height: int, tile: int,
                  reduced: np.ndarray) -> Iterator[np.ndarray]:
    """Yield level-0 tiles in raster order (edge tiles padded white) and fill ``reduced`` (4x smaller)."""
    for y0 in range(0, height, tile):
        h = min(tile, height - y0)
        strip = np.asarray(renderer(y0, h), dtype=np.uint8)
        if strip.shape != (h, width, 3):
            raise ValueError(f"write_svs: renderer returned {strip.shape} for rows {y0}..{y0 + h}, "
                             f"expected {(h, width, 3)}")
        _reduce_into(strip, y0, reduced)
        for x0 in range(0, width, tile):
            block = strip[:, x0:x0 + tile]
            if block.shape[:2] != (tile, tile):
                padded = np.full((tile, tile, 3), 255, np.uint8)
                padded[: block.shape[0], : block.shape[1]] = block
                block = padded
            yield np.ascontiguousarray(block)


def _reduce_into(strip: np.ndarray, y0: int, reduced: np.ndarray) -> None:
    """Average-pool a level-0 strip by LEVEL_FACTOR into the rows of ``reduced`` it covers."""
    f = LEVEL_FACTOR
    r0 = -(-y0 // f)  # first reduced row fully inside this strip (tile is a multiple of f)
    rows = strip.shape[0] // f
    rows = min(rows, reduced.shape[0] - r0)
    if rows <= 0 or reduced.shape[1] == 0:
        return
    block = Image.fromarray(np.ascontiguousarray(strip[: rows * f, : reduced.shape[1] * f]))
    reduced[r0:r0 + rows] = np.asarray(block.reduce(f))
