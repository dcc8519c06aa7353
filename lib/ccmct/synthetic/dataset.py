"""Generate a whole synthetic data root: slides, the five databases and the split.

Layout of the root (docs/design.md, "Data root")::

    <out>/WSI/<20 hex>.svs
    <out>/databases/MITOS_WSI_CCMCT_{MEL,HEAEL,ODAEL,Tumorzone}.sqlite, HighMCAreas.sqlite
    <out>/split.json
    <out>/synthetic.json          the generator's report (preset, seed, mpp, counts per slide)

The same (preset, seed, mpp) gives the same pixels and annotations. Slides already written by an earlier
run with the same settings are kept (a long ``large`` run resumes).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ccmct.config.dataset import HPF_AREA_MM2, HPF_ASPECT, SYNTHETIC_REPORT_FILE
from ccmct.config.paths import DataRoot, write_split
from ccmct.data.svs_writer import write_svs
from ccmct.synthetic.annotations import (
    SlideRecord,
    simulate_labels,
    write_cell_databases,
    write_high_mc_database,
    write_tumorzone_database,
)
from ccmct.synthetic.layout import KIND, make_layout
from ccmct.synthetic.library import build_library
from ccmct.synthetic.presets import SynthPreset, get_preset
from ccmct.synthetic.render import SlideRenderer
from ccmct.synthetic.stain import random_stain
from ccmct.synthetic.tissue import make_tissue_map
from ccmct.errors import CcmctError
from ccmct.atomicio import atomic_write_json

MANIFEST = SYNTHETIC_REPORT_FILE
GENERATOR_VERSION = 3
"""Bumped whenever the same seed would give other pixels or labels (a root is only resumed by the same one).
3: the ``demo`` preset gained a wide, tissue-sparse test slide."""
TISSUE_FRACTION = (0.45, 0.68)
"""(min, max) share of a regular slide covered by tissue."""
COARSE_UM = 8.0
"""Side of a coarse layout cell, µm."""


def slide_name(preset: str, seed: int, index: int) -> str:
    """A 20-hex-character file name like the real ones, fixed by (preset, seed, index)."""
    return hashlib.sha1(f"ccmct-synthetic/{preset}/{seed}/{index}".encode()).hexdigest()[:20] + ".svs"


def mitosis_counts(rng: np.random.Generator, preset: SynthPreset) -> np.ndarray:
    """Mitoses per slide: log-evenly spread over ``preset.mitoses_range`` (jittered), in random order."""
    lo, hi = np.log(preset.mitoses_range)
    n = preset.n_slides
    levels = np.linspace(lo, hi, n) + rng.uniform(-0.5, 0.5, n) * (hi - lo) / max(n, 1)
    return rng.permutation(np.round(np.exp(np.clip(levels, lo, hi))).astype(int))


def high_mc_box(mitoses_xy: np.ndarray, size_wh: tuple[int, int], mpp: float) -> tuple[int, int, int, int]:
    """The rectangle of 10 HPF (2.37 mm², 4:3) holding the most mitoses, scaled down to at most half the
    slide's side on small slides; (x1, y1, x2, y2) level-0 px, inside the slide."""
    width, height = size_wh
    area_um2 = 10 * HPF_AREA_MM2 * 1e6
    w_px = np.sqrt(area_um2 * HPF_ASPECT[0] / HPF_ASPECT[1]) / mpp
    h_px = np.sqrt(area_um2 * HPF_ASPECT[1] / HPF_ASPECT[0]) / mpp
    scale = min(1.0, 0.5 * width / w_px, 0.5 * height / h_px)
    w_px, h_px = int(w_px * scale), int(h_px * scale)
    if len(mitoses_xy) == 0:
        x1, y1 = (width - w_px) // 2, (height - h_px) // 2
        return x1, y1, x1 + w_px, y1 + h_px
    if len(mitoses_xy) <= EXACT_SEARCH_MAX:
        x1, y1 = _densest_window_exact(mitoses_xy, (width, height), (w_px, h_px))
    else:
        x1, y1 = _densest_window_grid(mitoses_xy, (width, height), (w_px, h_px))
    return int(x1), int(y1), int(x1 + w_px), int(y1 + h_px)


EXACT_SEARCH_MAX = 800
"""Up to this many mitoses the densest window is found exactly; above, on a grid of 1/64 window side."""


def _densest_window_exact(xy: np.ndarray, size_wh, window_wh) -> tuple[int, int]:
    """Top-left of a window holding the most points. An optimal window can be shifted right / down until
    its left / top edge meets a point (or the slide edge), so those positions are the only candidates."""
    (width, height), (w, h) = size_wh, window_wh
    xs = np.union1d(np.clip(xy[:, 0], 0, width - w), [0, width - w])
    ys = np.union1d(np.clip(xy[:, 1], 0, height - h), [0, height - h])
    inx = ((xy[None, :, 0] >= xs[:, None]) & (xy[None, :, 0] < xs[:, None] + w)).astype(np.float32)
    iny = ((xy[None, :, 1] >= ys[:, None]) & (xy[None, :, 1] < ys[:, None] + h)).astype(np.float32)
    counts = iny @ inx.T                                                        # (ny, nx)
    iy, ix = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return int(xs[ix]), int(ys[iy])


def _densest_window_grid(xy: np.ndarray, size_wh, window_wh) -> tuple[int, int]:
    """Top-left of the densest window among positions on a grid (integral image of binned points)."""
    (width, height), (w, h) = size_wh, window_wh
    step = max(min(w, h) // 64, 1)
    bx, by = -(-width // step), -(-height // step)
    hist = np.zeros((by + 1, bx + 1), np.int64)
    np.add.at(hist, (1 + xy[:, 1] // step, 1 + xy[:, 0] // step), 1)
    integral = hist.cumsum(0).cumsum(1)
    nw, nh = w // step, h // step
    sums = (integral[nh:, nw:] - integral[:-nh, nw:] - integral[nh:, :-nw] + integral[:-nh, :-nw])
    iy, ix = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(min(ix * step, width - w)), int(min(iy * step, height - h))


@functools.lru_cache(maxsize=2)
def _cached_library(entropy: tuple, px_per_um: float, n_variants: int):
    seed = np.random.SeedSequence(entropy[0] if isinstance(entropy[0], int) else list(entropy[0]),
                                  spawn_key=entropy[1])
    return build_library(np.random.default_rng(seed),
                         px_per_um, n_variants)


def _library(seed: np.random.SeedSequence, px_per_um: float, n_variants: int):
    """The stamp library of a data set (kept for the next call in this process: it is immutable)."""
    entropy = seed.entropy if isinstance(seed.entropy, int) else tuple(seed.entropy)
    return _cached_library((entropy, tuple(seed.spawn_key)), px_per_um, n_variants)


def _check_out_dir(root: DataRoot, settings: dict) -> None:
    """Refuse a folder holding another data root (a different synthetic one, or real data), or a file."""
    if root.path.exists() and not root.path.is_dir():
        raise CcmctError(f"{root.path}: is a file, not a folder; choose a folder for the data root")
    manifest = root.path / MANIFEST
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text())
        except ValueError as err:
            raise CcmctError(f"{manifest}: not a JSON file ({err}); remove it or choose another --out") from err
        if {k: old.get(k) for k in settings} != settings:
            raise CcmctError(f"{root.path}: holds a synthetic root made with {({k: old.get(k) for k in settings})}, "
                             f"not {settings}; choose an empty folder")
    elif root.wsi_dir.exists() and any(root.wsi_dir.iterdir()):
        raise CcmctError(f"{root.wsi_dir}: already holds slides that this generator did not write; "
                         "choose an empty folder")


def _progress(total_rows: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total_rows, unit="row", unit_scale=True, desc="synth", disable=not enabled,
                leave=False)


def generate_dataset(out_dir: str | os.PathLike[str], *, preset: str = "tiny", seed: int = 0, mpp: float = 0.25,
                     progress: bool = True) -> dict:
    """Write a complete synthetic data root (see module docstring).

    Args:
        out_dir: the data root to create (created if missing).
        preset: ``tiny`` (CI, seconds), ``demo`` (8 slides of 6.4k x 4.8k px and one tissue-sparse test slide
            of 17.6k x 13.2k px) or ``large`` (~40k x 30k px).
        seed: random seed; the same seed gives the same pixels and annotations.
        mpp: µm per level-0 pixel written into the slides (sizes are physical, so pixels scale with 1/mpp).
        progress: show a progress bar (stderr).

    Returns:
        The report ``{"preset", "seed", "mpp", "slides": {filename: {"split", "width", "height",
        "counts": {variant: {class_id: n}}, "high_mc_box_l0": [x1, y1, x2, y2], "mitoses_truth": n}}}``.

    Raises:
        CcmctError: unknown preset, bad ``mpp``, or ``out_dir`` holds another data root.

    Example:
        >>> from ccmct.synthetic import generate_dataset
        >>> report = generate_dataset("data/tiny", preset="tiny", seed=0)          # doctest: +SKIP
        >>> {name: info["counts"]["ODAEL"][2] for name, info in report["slides"].items()}   # doctest: +SKIP
        {'85c21da2839476b2097d.svs': 30, ...}
    """
    spec = get_preset(preset)
    if not 0.05 <= float(mpp) <= 5.0:
        raise CcmctError(f"mpp must be between 0.05 and 5 µm/px, got {mpp}")
    root = DataRoot(out_dir)
    settings = {"preset": preset, "seed": int(seed), "mpp": float(mpp), "generator": GENERATOR_VERSION}
    _check_out_dir(root, settings)
    root.wsi_dir.mkdir(parents=True, exist_ok=True)
    root.databases_dir.mkdir(parents=True, exist_ok=True)
    if not (root.path / MANIFEST).exists():  # claim the folder first, so that an interrupted run can resume
        _write_json(root.path / MANIFEST, {**settings, "complete": False})
    ppu = 1.0 / float(mpp)
    seeds = np.random.SeedSequence([int(seed), 0x5C3C]).spawn(spec.n_slides + 2)
    top = np.random.default_rng(seeds[0])
    library = _library(seeds[1], ppu, spec.stamp_variants)
    n_mitoses = mitosis_counts(top, spec)
    size_wh = (int(round(spec.width_um * ppu)), int(round(spec.height_um * ppu)))
    wide_wh = (int(round(spec.wide_size_um[0] * ppu)), int(round(spec.wide_size_um[1] * ppu)))
    # (size, mitoses, seed, tissue fraction) per slide; the wide test slides come last and draw from their own
    # seeds, so the regular slides are the same with or without them
    wide_seeds = np.random.SeedSequence([int(seed), 0x5C3C, 1]).spawn(spec.wide_test_slides)
    plan = [(size_wh, int(n_mitoses[i]), seeds[i + 2], TISSUE_FRACTION) for i in range(spec.n_slides)]
    plan += [(wide_wh, spec.wide_mitoses, s, spec.wide_tissue_fraction) for s in wide_seeds]
    splits = ["train"] * spec.n_train + ["test"] * (spec.n_test + spec.wide_test_slides)
    bar = _progress(sum(wh[1] for wh, *_ in plan), progress)
    records, report = [], {}
    try:
        for i, (wh, n_mf, slide_seed, fraction) in enumerate(plan):
            rec, info = _make_slide(root, spec, i, slide_seed, library, n_mf, wh, float(mpp), settings, bar,
                                    tissue_fraction=fraction)
            info["split"] = splits[i]
            records.append(rec)
            report[rec.filename] = info
    finally:
        bar.close()
    _write_databases(root, records, splits)
    result = {**settings, "slides": report}
    _write_json(root.path / MANIFEST, {**result, "complete": True})
    return result


def _write_databases(root: DataRoot, records: list[SlideRecord], splits: list[str]) -> None:
    """The five databases and split.json of the root."""
    write_cell_databases({v: root.database(v) for v in ("MEL", "HEAEL", "ODAEL")}, records)
    write_tumorzone_database(root.database("Tumorzone"), records)
    write_high_mc_database(root.high_mc_areas, records)
    write_split(root.split_file, [r.filename for r, s in zip(records, splits) if s == "train"],
                [r.filename for r, s in zip(records, splits) if s == "test"])


def _write_json(path: Path, document: dict) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    atomic_write_json(path, document)


def read_report(data_root: str | os.PathLike[str]) -> dict:
    """The generator's report of a synthetic root (JSON keys: class ids become strings; converted back).

    Raises:
        CcmctError: the root has no complete ``synthetic.json``.
    """
    path = Path(data_root) / MANIFEST
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CcmctError(f"{path}: cannot read the synthetic report ({err})") from err
    if not doc.get("complete"):
        raise CcmctError(f"{path}: generation did not finish; run `ccmct synth` again to resume")
    for info in doc["slides"].values():
        info["counts"] = {v: {int(k): n for k, n in c.items()} for v, c in info["counts"].items()}
    return doc


def _make_slide(root: DataRoot, spec: SynthPreset, index: int, seed: np.random.SeedSequence, library,
                n_mitoses: int, size_wh: tuple[int, int], mpp: float, settings: dict, bar, *,
                tissue_fraction: tuple[float, float] = TISSUE_FRACTION):
    """Lay out, label and render one slide (``size_wh`` level-0 px); returns its :class:`SlideRecord` and
    report entry."""
    rng = np.random.default_rng(seed)
    ppu = 1.0 / mpp
    factor = max(int(round(COARSE_UM * ppu)), 4)
    tmap = make_tissue_map(rng, size_wh, factor_px=factor, hotspot_sigma_cells=rng.uniform(4.0, 9.0),
                           blur_probability=spec.blur_probability, stripe_px=int(round(250 * ppu)),
                           tissue_fraction=tissue_fraction)
    ratio = np.exp(rng.uniform(*np.log(spec.lookalikes_per_mitosis)))
    n_look = max(int(round(n_mitoses * ratio)), spec.min_lookalikes)
    counts = {k: len(v) for k, v in library.stamps.items()}
    grade = float(np.clip(np.log(n_mitoses / np.sqrt(np.prod(spec.mitoses_range))) / 2.0, -1, 1))
    weights = {"tumor": library.grade_weights("tumor", grade + rng.uniform(-0.3, 0.3))}
    layout = make_layout(rng, tmap, px_per_um=ppu, n_mitoses=n_mitoses, n_lookalikes=n_look, stamp_counts=counts,
                         stamp_weights=weights)
    spots = simulate_labels(rng, layout)
    mf = layout.of_kind("mitosis")
    box = high_mc_box(np.c_[layout.x_l0[mf], layout.y_l0[mf]], size_wh, mpp)
    name = slide_name(settings["preset"], settings["seed"], index)
    path = root.slide_path(name)
    renderer = SlideRenderer(tmap, layout, library, random_stain(rng), seed=int(rng.integers(2**31)))
    if path.exists():
        bar.update(size_wh[1])
    else:
        def strip(y0: int, h: int) -> np.ndarray:
            bar.update(h)
            return renderer(y0, h)
        write_svs(path, strip, size_wh=size_wh, mpp=mpp, tile=spec.tile_px, quality=spec.jpeg_quality)
    record = SlideRecord(name, size_wh[0], size_wh[1], spots, tmap.polygons, box)
    info = {"width": size_wh[0], "height": size_wh[1],
            "counts": {v: s.counts() for v, s in spots.items()},
            "high_mc_box_l0": list(box), "mitoses_truth": int(len(mf)),
            "lookalikes_truth": int(len(layout.of_kind("lookalike"))),
            "cells_drawn": int(len(layout.kind)), "tumor_cells_drawn": int((layout.kind == KIND["tumor"]).sum())}
    return record, info
