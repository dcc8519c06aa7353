"""Deep Zoom JPEG pyramids of slides (static mode of ``ccmct view``), written in parallel and resumable.

Layout per slide (``stem`` = slide file name without its suffix), as OpenSeadragon's Deep Zoom tile
source expects it (docs/viewer.md)::

    tiles/<stem>_files/<level>/<col>_<row>.jpeg   tiles from openslide's DeepZoomGenerator
    tiles/<stem>.complete.json                    written last: the pyramid (or its regions) is complete

Every tile is written to a temporary name and renamed, so an existing tile is a complete tile and a rerun
skips it. ``regions`` restrict the full-resolution levels to chosen level-0 rectangles; levels no larger
than :data:`OVERVIEW_PX` are always written whole, so the overview shows the whole slide.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ccmct.errors import CcmctError
from ccmct.atomicio import atomic_write_bytes

TILE_PX = 254
"""Deep Zoom tile side, px (openslide's default: 254 + 2 x 1 px overlap = 256)."""
OVERLAP_PX = 1
JPEG_QUALITY = 80
OVERVIEW_PX = 2048
"""Levels whose longer side is at most this many px are written whole even with ``regions``."""
TILE_FORMAT = "jpeg"


class DiskLimitError(CcmctError):
    """A static tile build whose estimated size exceeds ``--max-gb``."""


@dataclass(frozen=True)
class Region:
    """A level-0 rectangle (x, y, width, height in level-0 px)."""

    x_l0: int
    y_l0: int
    width_l0: int
    height_l0: int

    def as_list(self) -> list[int]:
        return [self.x_l0, self.y_l0, self.width_l0, self.height_l0]


def tile_dir(site: Path, stem: str) -> Path:
    """``<site>/tiles/<stem>_files`` (the Deep Zoom tile folder)."""
    return Path(site) / "tiles" / f"{stem}_files"


def marker_path(site: Path, stem: str) -> Path:
    return Path(site) / "tiles" / f"{stem}.complete.json"


def encode_tile(image, quality: int = JPEG_QUALITY) -> bytes:
    """A PIL RGB tile as JPEG bytes."""
    buffer = BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def tile_addresses(deep_zoom, regions: Sequence[Region] | None = None) -> list[tuple[int, int, int]]:
    """(level, col, row) of every tile to write: all, or those covering ``regions`` plus small levels whole."""
    out = []
    max_level = deep_zoom.level_count - 1
    for level in range(deep_zoom.level_count):
        cols, rows = deep_zoom.level_tiles[level]
        width, height = deep_zoom.level_dimensions[level]
        if regions is None or max(width, height) <= OVERVIEW_PX:
            out += [(level, c, r) for r in range(rows) for c in range(cols)]
            continue
        scale = 2.0 ** (max_level - level)  # level-0 px per px of this level
        wanted = set()
        for reg in regions:
            c0 = max(0, int(reg.x_l0 / scale) // TILE_PX)
            r0 = max(0, int(reg.y_l0 / scale) // TILE_PX)
            c1 = min(cols - 1, int(math.ceil((reg.x_l0 + reg.width_l0) / scale)) // TILE_PX)
            r1 = min(rows - 1, int(math.ceil((reg.y_l0 + reg.height_l0) / scale)) // TILE_PX)
            wanted.update((level, c, r) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1))
        out += sorted(wanted)
    return out


def estimate_bytes(slide_path: Path, regions: Sequence[Region] | None = None, *, sample: int = 12,
                   seed: int = 0) -> dict:
    """Estimated disk use of a slide's static pyramid: tile count x mean JPEG size of sampled tiles.

    Samples ``sample`` tiles of the full-resolution level (the bulk of the pyramid) at fixed random
    positions, encodes them and scales the mean size by the number of tiles to write.
    """
    from ccmct.data.slides import open_slide

    with open_slide(slide_path) as slide:
        dz = slide.deep_zoom(tile_size=TILE_PX, overlap=OVERLAP_PX)
        addresses = tile_addresses(dz, regions)
        top = [a for a in addresses if a[0] == dz.level_count - 1] or addresses
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(top), size=min(sample, len(top)), replace=False)
        sizes = [len(encode_tile(dz.get_tile(top[i][0], (top[i][1], top[i][2])))) for i in picks]
    mean = float(np.mean(sizes)) if sizes else 0.0
    return {"tiles": len(addresses), "mean_tile_bytes": mean, "bytes": int(mean * len(addresses))}


def _existing(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def _write_atomic(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data, mkdir=False)


def read_marker(site: Path, stem: str) -> dict | None:
    path = marker_path(site, stem)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def pyramid_complete(site: Path, stem: str, regions: Sequence[Region] | None) -> bool:
    """True when the marker says the whole slide, or every one of ``regions``, is written."""
    marker = read_marker(site, stem)
    if marker is None or marker.get("tile_px") != TILE_PX or marker.get("overlap_px") != OVERLAP_PX:
        return False
    if marker.get("regions") is None:
        return True
    return regions is not None and all(r.as_list() in marker["regions"] for r in regions)


def write_pyramid(slide_path: Path, site: Path, stem: str, *, regions: Sequence[Region] | None = None,
                  workers: int = 2, progress: bool = True) -> dict:
    """Write (or complete) the Deep Zoom pyramid of one slide; returns the marker document.

    Tiles that exist are skipped (they were renamed into place whole). Each worker thread opens its own
    slide handle. The marker ``tiles/<stem>.complete.json`` is written last.
    """
    from ccmct.data.slides import open_slide

    site = Path(site)
    if pyramid_complete(site, stem, regions):
        return read_marker(site, stem)
    previous = read_marker(site, stem)
    with open_slide(slide_path) as slide:
        dz = slide.deep_zoom(tile_size=TILE_PX, overlap=OVERLAP_PX)
        addresses = tile_addresses(dz, regions)
        level_count = dz.level_count
    folder = tile_dir(site, stem)
    for level in range(level_count):
        (folder / str(level)).mkdir(parents=True, exist_ok=True)
    todo = [a for a in addresses if not _existing(folder / str(a[0]) / f"{a[1]}_{a[2]}.{TILE_FORMAT}")]
    local = threading.local()
    handles = []
    lock = threading.Lock()

    def work(address: tuple[int, int, int]) -> int:
        if not hasattr(local, "dz"):
            handle = open_slide(slide_path)
            with lock:
                handles.append(handle)
            local.dz = handle.deep_zoom(tile_size=TILE_PX, overlap=OVERLAP_PX)
        level, col, row = address
        data = encode_tile(local.dz.get_tile(level, (col, row)))
        _write_atomic(folder / str(level) / f"{col}_{row}.{TILE_FORMAT}", data)
        return len(data)

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
                tqdm(total=len(todo), desc=f"tiles {stem}", unit="tile", disable=not progress) as bar:
            for _ in pool.map(work, todo):
                bar.update(1)
    finally:
        for handle in handles:
            handle.close()
    region_list = None if regions is None else [r.as_list() for r in regions]
    if region_list is not None and previous is not None and previous.get("regions") is not None:
        region_list = previous["regions"] + [r for r in region_list if r not in previous["regions"]]
    size = sum(p.stat().st_size for p in folder.rglob(f"*.{TILE_FORMAT}"))
    marker = {"slide": Path(slide_path).name, "tile_px": TILE_PX, "overlap_px": OVERLAP_PX,
              "format": TILE_FORMAT, "quality": JPEG_QUALITY, "levels": level_count,
              "tiles": len(addresses), "bytes": size, "regions": region_list}
    _write_atomic(marker_path(site, stem), json.dumps(marker, indent=1).encode())
    return marker

