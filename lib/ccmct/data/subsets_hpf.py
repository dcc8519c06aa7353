"""HPF ablation subsets: per slide one n-HPF crop around the expert's high-mitotic-count rectangle.

Paper §"Ablation study" and the authors' `AblationStudy/create_HPFsubsets.py`; docs/ablation.md. For each slide of a data root:

1. **Reference rectangle**: the senior pathologist's rectangle in ``databases/HighMCAreas.sqlite``. The
   authors keep the type-2 (rectangle) annotation wider than 6000 px; the published file has one such box per
   slide (~7000 x 5250 px) plus one degenerate 7 x 0 px box. We take the **widest non-degenerate
   rectangle** of the slide, which selects exactly the same box on the real file and also works on
   synthetic slides whose boxes are much smaller than 6000 px (:func:`high_mc_rectangles`).
2. **Crop size** from the slide's own MPP: area A = n x 0.237 mm² at aspect 4:3,
   ``W_um = sqrt(A * 4/3) * 1000``, ``H_um = sqrt(A * 3/4) * 1000``, ``W_px = int(W_um / mpp)``
   (:func:`hpf_crop_size_px`; 4962 x 3721 / 7017 x 5263 / 15692 x 11769 px at 0.2533 µm/px, as in Table 5).
3. **Placement**: centred on the rectangle (the paper's wording, default ``anchor="centre"``) or with its
   top-left corner on the rectangle's top-left corner (what the authors' ``create_HPFsubsets.py`` did,
   ``anchor="top-left"``). A crop that would leave the slide is shifted inside; one larger than the slide is
   cut to the slide. Both are reported (:func:`place_crop`).
4. **Annotations**: an annotation is kept iff its first vertex (the point every consumer reads) lies in
   ``x0 <= x <= x0 + W`` and ``y0 <= y <= y0 + H`` (inclusive, like the authors), and all its vertices are
   shifted by ``(-x0, -y0)``. Classes, persons, labels and annotation types are kept as they are.

The output is itself a data root (``<out>/<n>HPF/``: ``WSI/<stem>.tiff``, ``databases/<variant db>``,
``split.json``, ``subset.json``), so every command of the pipeline runs on it unchanged. Crops are tiled
pyramidal TIFFs (Aperio flavour, OpenSlide vendor ``aperio``) written strip by strip from the source slide,
never holding the whole crop in memory.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Literal

import numpy as np

from ccmct.config.dataset import HPF_AREA_MM2, HPF_ASPECT, MITOTIC_FIGURE
from ccmct.config.paths import DataRoot, write_split
from ccmct.data.sliderunner import AnnotationType, SlideRunnerDB
from ccmct.data.slides import open_slide
from ccmct.errors import CcmctError, DatabaseError, FileProblem
from ccmct.atomicio import atomic_write_json

Anchor = Literal["centre", "top-left"]
ANCHORS: tuple[Anchor, ...] = ("centre", "top-left")
MANIFEST_FILE = "subset.json"
"""Per-subset manifest (kind, size, per-slide geometry and counts) written into every subset root."""


@dataclass(frozen=True)
class CropWindow:
    """Where a crop lies on its source slide.

    Attributes:
        x_l0, y_l0: top-left corner on the source slide, level-0 px.
        width_px, height_px: crop size, level-0 px.
        shifted: the placement was moved to stay inside the slide.
        truncated: the crop was cut because the slide is smaller than the crop.
    """

    x_l0: int
    y_l0: int
    width_px: int
    height_px: int
    shifted: bool = False
    truncated: bool = False

    def contains(self, xy_l0: np.ndarray) -> np.ndarray:
        """Bool mask of points (n, 2) inside the window, bounds inclusive (authors' rule, §2.4)."""
        xy = np.asarray(xy_l0, dtype=float).reshape(-1, 2)
        x, y = xy[:, 0], xy[:, 1]
        return ((x >= self.x_l0) & (x <= self.x_l0 + self.width_px)
                & (y >= self.y_l0) & (y <= self.y_l0 + self.height_px))


def hpf_crop_size_px(n_hpf: float, mpp: float, *, hpf_area_mm2: float = HPF_AREA_MM2) -> tuple[int, int]:
    """(width, height) in level-0 px of an n-HPF field at aspect 4:3.

    Args:
        n_hpf: number of high-power fields (> 0).
        mpp: µm per level-0 pixel (> 0).
        hpf_area_mm2: area of one HPF, mm² (Meuten: 0.237).

    Example:
        >>> hpf_crop_size_px(10, 0.2533)
        (7017, 5263)
    """
    if n_hpf <= 0 or mpp <= 0:
        raise ValueError(f"hpf_crop_size_px: n_hpf and mpp must be > 0, got {n_hpf}, {mpp}")
    aw, ah = HPF_ASPECT
    area_mm2 = n_hpf * hpf_area_mm2
    width_um = math.sqrt(area_mm2 * aw / ah) * 1000.0
    height_um = math.sqrt(area_mm2 * ah / aw) * 1000.0
    return int(width_um / mpp), int(height_um / mpp)


def place_crop(rect_xyxy: tuple[float, float, float, float], size_wh: tuple[int, int],
               slide_wh: tuple[int, int], *, anchor: Anchor = "centre") -> CropWindow:
    """Place a crop of ``size_wh`` on a slide relative to the reference rectangle (all level-0 px).

    ``centre``: the crop's centre is the rectangle's centre (rounded down to whole px). ``top-left``: the
    crop's top-left corner is the rectangle's top-left corner. Then the crop is shifted inside the slide,
    and cut to the slide where it is larger than the slide.
    """
    if anchor not in ANCHORS:
        raise ValueError(f"place_crop: anchor must be one of {ANCHORS}, got {anchor!r}")
    x1, y1, x2, y2 = rect_xyxy
    w, h = int(size_wh[0]), int(size_wh[1])
    if anchor == "centre":
        x0, y0 = math.floor((x1 + x2) / 2 - w / 2), math.floor((y1 + y2) / 2 - h / 2)
    else:
        x0, y0 = int(x1), int(y1)
    sw, sh = int(slide_wh[0]), int(slide_wh[1])
    truncated = w > sw or h > sh
    w, h = min(w, sw), min(h, sh)
    nx, ny = min(max(x0, 0), sw - w), min(max(y0, 0), sh - h)
    return CropWindow(nx, ny, w, h, shifted=(nx, ny) != (x0, y0), truncated=truncated)


def high_mc_rectangles(db_path: str | os.PathLike[str]) -> dict[str, tuple[int, int, int, int]]:
    """Slide file name -> the expert's reference rectangle (x1, y1, x2, y2), level-0 px.

    Rule: per slide the widest rectangle annotation (type 2) with positive width and height. On the
    published ``HighMCAreas.sqlite`` this is exactly the one box with width > 6000 px that the authors keep.
    """
    with SlideRunnerDB.open(db_path) as db:
        names = dict(zip(db.slides()["uid"].astype(int), db.slides()["filename"]))
        annos = db.annotations()
        coords = db.coordinates()
    rects = annos[annos["type"] == int(AnnotationType.RECTANGLE)]
    best: dict[str, tuple[int, tuple[int, int, int, int]]] = {}
    groups = coords.groupby("anno_id")
    for anno_id, slide in rects[["uid", "slide"]].to_numpy():
        if anno_id not in groups.groups:
            continue
        xy = groups.get_group(anno_id)[["x", "y"]].to_numpy(int)
        box = (int(xy[:, 0].min()), int(xy[:, 1].min()), int(xy[:, 0].max()), int(xy[:, 1].max()))
        width, height = box[2] - box[0], box[3] - box[1]
        name = names.get(int(slide))
        if name is None or width <= 0 or height <= 0:
            continue
        if name not in best or width > best[name][0]:
            best[name] = (width, box)
    return {name: box for name, (_, box) in best.items()}


def crop_slide(slide_path: str | os.PathLike[str], out_path: str | os.PathLike[str], window: CropWindow, *,
               compression: str = "jpeg", tile: int = 256, mpp: float | None = None) -> Path:
    """Write the window of a slide as a tiled pyramidal TIFF that OpenSlide reads (vendor aperio).

    Level 0 is read from the source strip by strip (``tile`` rows at a time); the crop keeps the source MPP.
    """
    from ccmct.data.svs_writer import write_svs

    with open_slide(slide_path, mpp=mpp) as slide:
        def render(y0: int, height: int) -> np.ndarray:
            return slide.read_l0(window.x_l0, window.y_l0 + y0, (window.width_px, height))

        return write_svs(out_path, render, size_wh=(window.width_px, window.height_px), mpp=slide.mpp,
                         tile=tile, compression=compression)


def crop_database(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                  windows: dict[str, CropWindow], renamed: dict[str, str]) -> dict[str, dict[int, int]]:
    """Write a database holding only the annotations inside each slide's window, shifted into it.

    Args:
        src: source SlideRunner database.
        dst: new database (same schema; classes, persons and slide uids kept).
        windows: source slide file name -> its crop window; slides not named here are left out.
        renamed: source slide file name -> file name of the crop.

    Returns:
        crop file name -> {agreed class: number of annotations kept}.
    """
    counts: dict[str, dict[int, int]] = {}
    with SlideRunnerDB.open(src) as source, SlideRunnerDB.create(dst, overwrite=True) as target:
        for uid, name in source.classes()[["uid", "name"]].to_numpy():
            target.add_class(str(name), uid=int(uid))
        for uid, name in source.persons()[["uid", "name"]].to_numpy():
            target.add_person(str(name), uid=int(uid))
        for uid, name in source.slides()[["uid", "filename"]].to_numpy():
            window = windows.get(str(name))
            if window is None:
                continue
            new = target.add_slide(renamed[str(name)], window.width_px, window.height_px, uid=int(uid))
            counts[renamed[str(name)]] = _copy_window(source, target, int(uid), new, window)
    return counts


def _copy_window(source: SlideRunnerDB, target: SlideRunnerDB, slide: int, new_slide: int,
                 window: CropWindow) -> dict[int, int]:
    annotations = source.slide_annotations(slide)
    if not annotations:
        return {}
    firsts = np.array([a.vertices_l0[0] for a in annotations])
    inside = window.contains(firsts)
    shift = np.array([window.x_l0, window.y_l0], dtype=float)
    counts: dict[int, int] = {}
    for anno, keep in zip(annotations, inside):
        if not keep:
            continue
        target.add_annotation(new_slide, anno.type, anno.vertices_l0 - shift, anno.agreed_class,
                              [(label.person, label.class_id) for label in anno.labels])
        counts[anno.agreed_class] = counts.get(anno.agreed_class, 0) + 1
    return counts


def crop_name(filename: str) -> str:
    """File name of a slide's crop: ``<stem>.tiff`` (the authors' result keys)."""
    return Path(filename).stem + ".tiff"


def _plan_windows(root: DataRoot, slides: list[str], rects: dict[str, tuple[int, int, int, int]],
                  n_hpf: float, anchor: Anchor, mpp: float | None) -> dict[str, tuple[CropWindow, float]]:
    plans = {}
    for name in slides:
        if name not in rects:
            raise FileProblem(root.high_mc_areas, f"no reference rectangle (type-2 annotation) for slide {name!r}")
        with open_slide(root.slide_path(name), mpp=mpp) as slide:
            slide_mpp, slide_wh = slide.mpp, slide.dimensions
        size = hpf_crop_size_px(n_hpf, slide_mpp)
        plans[name] = (place_crop(rects[name], size, slide_wh, anchor=anchor), slide_mpp)
    return plans


CROP_LOG = ".crops.json"
"""Per subset root: crop file name -> how it was made (source, window, compression); the resume record."""


def _crop_record(source: Path, window: CropWindow, compression: str) -> dict:
    return {"source": str(source.resolve()), "window": asdict(window), "compression": compression}


def _crop_is_complete(path: Path, record: dict, log: dict) -> bool:
    """A crop is kept on a rerun only if it was made from the same source, window and compression."""
    if log.get(path.name) != record or not path.exists():
        return False
    try:
        with open_slide(path) as crop:
            return crop.dimensions == (record["window"]["width_px"], record["window"]["height_px"])
    except CcmctError:
        return False


def _write_crops(root: DataRoot, out: DataRoot, plans: dict, names: dict, *, compression: str,
                 mpp: float | None, progress: bool, label: str) -> None:
    log_path = out.path / CROP_LOG
    try:
        log = json.loads(log_path.read_text()) if log_path.exists() else {}
    except ValueError:  # a damaged record only costs a rewrite of the crops
        log = {}
    slides = sorted(plans)
    if progress:
        from tqdm.auto import tqdm

        slides = tqdm(slides, desc=label, unit="slide")
    for name in slides:
        target = out.slide_path(names[name])
        record = _crop_record(root.slide_path(name), plans[name][0], compression)
        if _crop_is_complete(target, record, log):
            continue
        crop_slide(root.slide_path(name), target, plans[name][0], compression=compression, mpp=mpp)
        log[target.name] = record
        _write_json(log_path, log)


def create_hpf_subset(data_root: str | os.PathLike[str], out_root: str | os.PathLike[str], n_hpf: float, *,
                      anchor: Anchor = "centre", variants: Iterable[str] = ("ODAEL",), compression: str = "jpeg",
                      mpp: float | None = None, progress: bool = False) -> dict:
    """Create one HPF subset data root (see the module docstring); resumes over complete crops.

    Args:
        data_root: source data root (WSI/, databases/ incl. HighMCAreas.sqlite, optional split.json).
        out_root: the subset root to write (e.g. ``OUT/10HPF``).
        n_hpf: number of HPFs per slide.
        anchor: ``"centre"`` (paper) or ``"top-left"`` (authors' code).
        variants: label databases to crop (those present in the source; at least one must be).
        compression: ``"jpeg"`` (q90, like the authors' vips pyramids) or ``"zlib"`` (exact pixels).
        mpp: µm/px overriding the slides' metadata (files without MPP).
        progress: show a progress bar.

    Returns:
        The manifest also written to ``<out_root>/subset.json``.
    """
    root, out = DataRoot(data_root), DataRoot(out_root)
    dbs = {v: root.database(v) for v in variants if root.database(v).exists()}
    if not dbs:
        raise DatabaseError(root.database(next(iter(variants), "ODAEL")), "no label database to crop")
    split = root.split()
    with SlideRunnerDB.open(next(iter(dbs.values()))) as db:
        in_db = set(db.slides()["filename"])
    slides = sorted(name for name in split if name in in_db)
    rects = high_mc_rectangles(root.high_mc_areas)
    plans = _plan_windows(root, slides, rects, n_hpf, anchor, mpp)
    out.wsi_dir.mkdir(parents=True, exist_ok=True)
    names = {name: crop_name(name) for name in slides}
    _write_crops(root, out, plans, names, compression=compression, mpp=mpp, progress=progress,
                 label=f"{n_hpf:g} HPF crops")
    windows = {name: plan[0] for name, plan in plans.items()}
    counts = {v: crop_database(path, out.database(v), windows, names) for v, path in dbs.items()}
    write_split(out.split_file, [names[n] for n in slides if split[n] == "train"],
                [names[n] for n in slides if split[n] == "test"])
    manifest = _manifest(root, n_hpf, anchor, plans, rects, names, split, counts)
    _write_json(out.path / MANIFEST_FILE, manifest)
    return manifest


def _manifest(root: DataRoot, n_hpf: float, anchor: str, plans: dict, rects: dict, names: dict, split: dict,
              counts: dict) -> dict:
    primary = "ODAEL" if "ODAEL" in counts else next(iter(counts))
    slides = {}
    for name, (window, mpp) in plans.items():
        slides[names[name]] = {
            "source": name, "split": split[name], "mpp": mpp, "reference_xyxy": list(rects[name]),
            "window": asdict(window), "area_mm2": window.width_px * window.height_px * mpp**2 / 1e6,
            "counts": {v: {str(k): n for k, n in sorted(c.get(names[name], {}).items())} for v, c in counts.items()},
        }
    train = [s for s in slides.values() if s["split"] == "train"]
    return {
        "kind": "hpf", "n": n_hpf, "name": f"{n_hpf:g}HPF", "anchor": anchor, "source_root": str(root.path.resolve()),
        "variant": primary, "n_train_slides": len(train),
        "train_mitoses": sum(int(s["counts"][primary].get(str(MITOTIC_FIGURE), 0)) for s in train),
        "train_area_mm2": sum(s["area_mm2"] for s in train),
        "adjusted": sorted(n for n, s in slides.items() if s["window"]["shifted"] or s["window"]["truncated"]),
        "slides": slides,
    }


def _write_json(path: Path, document: dict) -> None:
    atomic_write_json(path, document)


def create_hpf_subsets(data_root: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                       hpf: Iterable[float] = (5, 10, 50), **kwargs) -> dict[str, dict]:
    """Create ``<out_dir>/<n>HPF/`` for every n in ``hpf``; keyword arguments as :func:`create_hpf_subset`.

    Returns:
        subset name (``"10HPF"``) -> its manifest.
    """
    out = {}
    for n in hpf:
        name = f"{n:g}HPF"
        out[name] = create_hpf_subset(data_root, Path(out_dir) / name, n, **kwargs)
    return out


__all__ = ["ANCHORS", "MANIFEST_FILE", "CropWindow", "crop_database", "crop_name", "crop_slide",
           "create_hpf_subset", "create_hpf_subsets", "high_mc_rectangles", "hpf_crop_size_px", "place_crop"]
