"""Cell patches for the second stage: which annotations, the 128 px geometry, slide edges, the splits.

Every annotation of class mitotic figure, look-alike, granulocyte or tumour cell (not ambiguous/other)
becomes one square patch centred on the annotation's point (paper §"Second stage"; the authors' `2nd_stage` notebooks; docs/second_stage.md).
The classes keep one order everywhere in the second stage (Table 3's order): MF, LA, Gr, TC.

Geometry (level-0 px): a patch of ``size_px`` (default 128) for a centre (x, y) starts at
``(round(x) - size_px // 2, round(y) - size_px // 2)``, so the centre pixel sits at row/column
``size_px // 2`` (64) of the patch. This is the authors' "top-left = centre - 64".

Slide edges: a patch that reaches outside the slide is not shifted or dropped; the slide reader
(:meth:`ccmct.data.slides.Slide.read_region`) returns white (255, 255, 255) outside the slide, as on glass,
so the cell stays centred and the patch is padded with white.

Validation split (fixes the authors' random patch split, which puts cells of one slide in both sets):
:func:`assign_subsets` holds out whole *training slides* when there are enough of them, else the lower half
of every training slide (the detector's own upper/lower-half rule); test slides are never used in training.

Example:
    >>> cells = cell_table("data", "ODAEL")                            # doctest: +SKIP
    >>> cells.groupby(["split", "label"]).size()                       # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ccmct.config import CELL_CLASS_NAMES, GRANULOCYTE, LOOKALIKE, MITOTIC_FIGURE, TUMOR_CELL, DataRoot
from ccmct.data.sliderunner import SlideRunnerDB
from ccmct.data.slides import Slide, cached_slide, open_slide
from ccmct.errors import FileProblem
from ccmct.atomicio import atomic_path
from ccmct.config.units import CELL_PATCH_UM, PAPER_MPP, px

log = logging.getLogger(__name__)

PATCH_SIZE_PX = round(px(CELL_PATCH_UM, PAPER_MPP))
"""Side of a cell patch, level-0 px at the paper's µm/px (128 x 128 = 32 µm; :mod:`ccmct.config.units`)."""


@dataclass(frozen=True)
class CellClass:
    """One class of the cell classifier.

    Attributes:
        class_id: ``agreedClass`` in the SlideRunner databases (from :mod:`ccmct.config`).
        short: abbreviation used in Table 3 (MF, LA, Gr, TC).
        folder: folder name of the authors' exported data set.
    """

    class_id: int
    short: str
    folder: str

    @property
    def name(self) -> str:
        return CELL_CLASS_NAMES[self.class_id]


CELL_CLASSES: tuple[CellClass, ...] = (
    CellClass(MITOTIC_FIGURE, "MF", "Mitosis"),
    CellClass(LOOKALIKE, "LA", "Mitosislike"),
    CellClass(GRANULOCYTE, "Gr", "Granulocytes"),
    CellClass(TUMOR_CELL, "TC", "Tumorcells"),
)
"""Classifier output order = Table 3's order (MF, LA, Gr, TC). Index ``label`` in :func:`cell_table`."""

CELL_CLASS_IDS: tuple[int, ...] = tuple(c.class_id for c in CELL_CLASSES)

MIN_SLIDES_FOR_HOLDOUT = 4
"""With at least this many training slides, validation = whole held-out slides, else lower halves."""

HOLDOUT_FRACTION = 0.2
"""Share of training slides held out for validation (at least one)."""


# ---------------------------------------------------------------------------------------------- geometry
def patch_origin_l0(centres_l0: np.ndarray, size_px: int = PATCH_SIZE_PX) -> np.ndarray:
    """Top-left corners of patches centred on points.

    Args:
        centres_l0: (N, 2) or (2,) float (x, y), level-0 px.
        size_px: patch side, px.

    Returns:
        int64 array of the same shape: ``round(centre) - size_px // 2`` (halves round up).

    Example:
        >>> patch_origin_l0(np.array([100.0, 50.4])).tolist()
        [36, -14]
    """
    centres = np.asarray(centres_l0, dtype=np.float64)
    return (np.floor(centres + 0.5) - size_px // 2).astype(np.int64)


def read_cell_patch(slide: Slide, x_l0: float, y_l0: float, size_px: int = PATCH_SIZE_PX) -> np.ndarray:
    """A level-0 patch centred on (x, y); white where it reaches outside the slide.

    Args:
        slide: an open slide (:func:`ccmct.data.slides.open_slide` or ``cached_slide``).
        x_l0, y_l0: patch centre, level-0 px.
        size_px: patch side, px.

    Returns:
        (size_px, size_px, 3) uint8 RGB; pixel (size_px // 2, size_px // 2) is the centre.
    """
    x0, y0 = patch_origin_l0(np.array([x_l0, y_l0]), size_px)
    return slide.read_l0(int(x0), int(y0), (size_px, size_px))


# ---------------------------------------------------------------------------------------------- tables
def cell_table(root: DataRoot | str | os.PathLike[str], variant: str) -> pd.DataFrame:
    """Every MF / look-alike / granulocyte / tumour-cell annotation of a variant's database.

    Args:
        root: the data root (its ``split()`` decides train/test).
        variant: ``MEL``, ``HEAEL`` or ``ODAEL``.

    Returns:
        DataFrame, one row per cell, sorted by anno_id: anno_id, slide (file name), x_l0, y_l0, class_id,
        label (index into :data:`CELL_CLASSES`), split ('train' | 'test'). Slides whose file is not under
        ``<root>/WSI`` are left out with a logged warning (a partial download).

    Raises:
        FileProblem: the database is missing, or none of its slides with cells is present.
    """
    root = root if isinstance(root, DataRoot) else DataRoot(root)
    db_path = root.database(variant)
    if not db_path.exists():
        raise FileProblem(db_path, f"database of variant {variant} not found (run `ccmct setup` or `ccmct synth`)")
    with SlideRunnerDB.open(db_path) as db:
        spots = db.spots(classes=CELL_CLASS_IDS)
        names = dict(zip(db.slides()["uid"].astype(int), db.slides()["filename"]))
    table = pd.DataFrame({
        "anno_id": spots["anno_id"].astype(np.int64),
        "slide": spots["slide"].astype(int).map(names),
        "x_l0": spots["x"].astype(np.float64),
        "y_l0": spots["y"].astype(np.float64),
        "class_id": spots["agreed_class"].astype(np.int64),
    })
    table["label"] = table["class_id"].map({cid: i for i, cid in enumerate(CELL_CLASS_IDS)}).astype(np.int64)
    split = root.split()
    table["split"] = table["slide"].map(lambda name: split.get(name, "train"))
    return _present_slides_only(table, root, db_path)


def _present_slides_only(table: pd.DataFrame, root: DataRoot, db_path: Path) -> pd.DataFrame:
    present = {name: root.slide_path(name).exists() for name in table["slide"].unique()}
    missing = sorted(name for name, ok in present.items() if not ok)
    if missing:
        log.warning("%d slide(s) of %s not under %s, their cells are skipped: %s", len(missing), db_path.name,
                    root.wsi_dir, ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    table = table[table["slide"].map(present)].reset_index(drop=True)
    if table.empty:
        raise FileProblem(root.wsi_dir, f"no slide with cell annotations of {db_path.name} is present")
    return table


def assign_subsets(table: pd.DataFrame, root: DataRoot | str | os.PathLike[str], *, seed: int = 0,
                   min_slides_for_holdout: int = MIN_SLIDES_FOR_HOLDOUT,
                   holdout_fraction: float = HOLDOUT_FRACTION) -> tuple[pd.DataFrame, dict]:
    """Split training cells into 'train' and 'valid' by slide; test cells stay 'test'.

    With ``>= min_slides_for_holdout`` training slides, ``max(1, round(holdout_fraction * n))`` of them
    (drawn with ``seed`` among the slides that hold mitotic figures) become validation slides. With fewer,
    the lower half of every training slide (centre y >= height / 2) is validation, the upper half training.

    Args:
        table: from :func:`cell_table`.
        root: the data root (slide heights for the half rule).
        seed: draws the held-out slides.
        min_slides_for_holdout: see above.
        holdout_fraction: see above.

    Returns:
        (a copy of ``table`` with a column ``subset`` in {'train', 'valid', 'test'},
        a description ``{"rule": "slides" | "lower_half", "valid_slides": [...]}`` for reports).
    """
    root = root if isinstance(root, DataRoot) else DataRoot(root)
    table = table.copy()
    table["subset"] = table["split"].where(table["split"] == "test", "train")
    train_slides = sorted(table.loc[table["split"] == "train", "slide"].unique())
    if len(train_slides) >= min_slides_for_holdout:
        with_mf = sorted(table.loc[(table["split"] == "train") & (table["class_id"] == MITOTIC_FIGURE), "slide"].unique())
        pool = with_mf or train_slides
        n_valid = min(len(pool), max(1, round(holdout_fraction * len(train_slides))))
        valid = sorted(np.random.default_rng(seed).choice(pool, size=n_valid, replace=False).tolist())
        table.loc[table["slide"].isin(valid) & (table["split"] == "train"), "subset"] = "valid"
        return table, {"rule": "slides", "valid_slides": valid}
    heights = {name: _slide_height(root.slide_path(name)) for name in train_slides}
    lower = (table["split"] == "train") & (table["y_l0"] >= table["slide"].map(heights).astype(float) / 2)
    table.loc[lower, "subset"] = "valid"
    return table, {"rule": "lower_half", "valid_slides": train_slides}


def _slide_height(path: Path) -> int:
    with open_slide(path) as slide:
        return int(slide.dimensions[1])


# ---------------------------------------------------------------------------------------------- dataset
class CellPatchDataset(torch.utils.data.Dataset):
    """Cell patches read straight from the slides (one cached slide handle per worker process).

    Args:
        slide_paths: (N,) slide file per item.
        centres_l0: (N, 2) float (x, y) patch centres, level-0 px.
        labels: (N,) int class index into :data:`CELL_CLASSES`, or None (inference: label -1).
        size_px: patch side, px.
        mean, std: per-channel normalisation of [0, 1] RGB values.
        augment: random dihedral flips/rotations (cells have no orientation) and a small brightness and
            contrast jitter; uses torch's RNG, which the DataLoader seeds per worker.
        jitter_px: with ``augment``, move the patch centre by up to this many px in x and y (uniform
            integers), so that the classifier does not depend on the exact centre: a detector's box centre
            lies a few px off the annotated one. 0 keeps patches centred.

    Items:
        (float32 tensor (3, size_px, size_px) normalised, int64 label tensor).
    """

    def __init__(self, slide_paths: Sequence[str | os.PathLike[str]], centres_l0: np.ndarray,
                 labels: np.ndarray | None = None, *, size_px: int = PATCH_SIZE_PX,
                 mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.25, 0.25, 0.25),
                 augment: bool = False, jitter_px: int = 0):
        if jitter_px < 0:
            raise ValueError(f"jitter_px must be >= 0, got {jitter_px}")
        self.slide_paths = [str(p) for p in slide_paths]
        self.origins_l0 = patch_origin_l0(np.asarray(centres_l0, dtype=np.float64).reshape(-1, 2), size_px)
        if len(self.slide_paths) != len(self.origins_l0):
            raise ValueError(f"{len(self.slide_paths)} slide paths but {len(self.origins_l0)} centres")
        self.labels = (np.full(len(self.slide_paths), -1, np.int64) if labels is None
                       else np.asarray(labels, dtype=np.int64))
        self.size_px = int(size_px)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.augment = augment
        self.jitter_px = int(jitter_px)

    @classmethod
    def from_table(cls, table: pd.DataFrame, root: DataRoot | str | os.PathLike[str], **kwargs) -> "CellPatchDataset":
        """Dataset over the rows of a :func:`cell_table` (or any frame with slide, x_l0, y_l0[, label])."""
        root = root if isinstance(root, DataRoot) else DataRoot(root)
        labels = table["label"].to_numpy() if "label" in table else None
        paths = [root.slide_path(name) for name in table["slide"]]
        return cls(paths, table[["x_l0", "y_l0"]].to_numpy(), labels, **kwargs)

    def __len__(self) -> int:
        return len(self.slide_paths)

    def patch(self, index: int, *, shift_px: tuple[int, int] = (0, 0)) -> np.ndarray:
        """The raw (size_px, size_px, 3) uint8 RGB patch of item ``index``, its centre moved by ``shift_px``."""
        x0, y0 = self.origins_l0[index]
        return cached_slide(self.slide_paths[index]).read_l0(int(x0) + int(shift_px[0]), int(y0) + int(shift_px[1]),
                                                              (self.size_px, self.size_px))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        shift = (0, 0)
        if self.augment and self.jitter_px:
            shift = tuple(int(v) for v in torch.randint(-self.jitter_px, self.jitter_px + 1, (2,)))
        image = torch.from_numpy(self.patch(index, shift_px=shift)).permute(2, 0, 1).float().div_(255.0)
        if self.augment:
            image = _augment(image)
        image = (image - self.mean) / self.std
        return image, torch.tensor(self.labels[index])


def _augment(image: torch.Tensor) -> torch.Tensor:
    """Dihedral flip/rotation plus brightness (+-10 %) and contrast (+-10 %) jitter of a (3, H, W) [0, 1] image."""
    k, flip = int(torch.randint(0, 4, ())), bool(torch.randint(0, 2, ()))
    image = torch.rot90(image, k, dims=(1, 2))
    if flip:
        image = torch.flip(image, dims=(2,))
    brightness, contrast = 1 + 0.2 * (torch.rand(2) - 0.5)
    mean = image.mean()
    return ((image - mean) * contrast + mean * brightness).clamp_(0, 1)


def export_patches(table: pd.DataFrame, root: DataRoot | str | os.PathLike[str], out_dir: str | os.PathLike[str],
                   *, size_px: int = PATCH_SIZE_PX, progress: bool = True) -> dict[str, int]:
    """Write the authors' folder layout ``<out>/{train,test}/{Mitosis,Mitosislike,Granulocytes,Tumorcells}/<anno_id>.png``.

    Existing files are kept (an interrupted export resumes); each PNG is written to a temporary name first.

    Args:
        table: from :func:`cell_table`.
        root: the data root.
        out_dir: destination folder.
        size_px: patch side, px.
        progress: show a tqdm bar.

    Returns:
        Number of PNGs per ``"<split>/<folder>"`` (including ones already there).
    """
    from PIL import Image
    from tqdm.auto import tqdm

    root = root if isinstance(root, DataRoot) else DataRoot(root)
    out_dir = Path(out_dir)
    counts: dict[str, int] = {}
    for split in ("train", "test"):
        for cls in CELL_CLASSES:
            (out_dir / split / cls.folder).mkdir(parents=True, exist_ok=True)
    rows = table.sort_values(["slide", "y_l0", "x_l0"])  # raster order per slide: friendly to the tile cache
    for row in tqdm(rows.itertuples(index=False), total=len(rows), disable=not progress, desc="export patches"):
        key = f"{row.split}/{CELL_CLASSES[row.label].folder}"
        target = out_dir / key / f"{row.anno_id}.png"
        counts[key] = counts.get(key, 0) + 1
        if target.exists():
            continue
        patch = read_cell_patch(cached_slide(root.slide_path(row.slide)), row.x_l0, row.y_l0, size_px)
        with atomic_path(target) as tmp:
            Image.fromarray(patch).save(tmp, format="PNG")
    return counts
