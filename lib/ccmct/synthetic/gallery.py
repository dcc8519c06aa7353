"""A gallery of example cells per class, read from a data root (synthetic or real) through the project's
readers — what Setup.ipynb shows so that a user can see what mitoses and their look-alikes look like."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ccmct.config.dataset import AMBIGUOUS, CELL_CLASS_NAMES, GRANULOCYTE, LOOKALIKE, MITOTIC_FIGURE, TUMOR_CELL
from ccmct.config.paths import DataRoot
from ccmct.data.sliderunner import SlideRunnerDB
from ccmct.data.slides import open_slide
from ccmct.errors import CcmctError

GALLERY_CLASSES = (MITOTIC_FIGURE, LOOKALIKE, GRANULOCYTE, TUMOR_CELL, AMBIGUOUS)


def gallery_patches(data_root: str | os.PathLike[str], *, variant: str = "ODAEL", per_class: int = 8,
                    patch_px: int = 128, seed: int = 0,
                    classes: tuple[int, ...] = GALLERY_CLASSES) -> dict[int, list[np.ndarray]]:
    """Random example patches centred on annotated cells.

    Args:
        data_root: a data root with ``WSI/`` and ``databases/``.
        variant: label set whose ``agreedClass`` picks the examples.
        per_class: patches per class (fewer if the root has fewer cells).
        patch_px: patch side, level-0 px.
        seed: which examples.
        classes: class ids to show, in row order.

    Returns:
        class id -> list of (patch_px, patch_px, 3) uint8 RGB patches.
    """
    root = DataRoot(data_root)
    rng = np.random.default_rng(seed)
    with SlideRunnerDB.open(root.database(variant)) as db:
        slides = db.slides().set_index("uid")["filename"].to_dict()
        spots = db.spots(classes=classes)
    present = spots[[root.slide_path(slides[int(s)]).exists() for s in spots["slide"]]]
    if present.empty:
        raise CcmctError(f"{root.wsi_dir}: none of the slides of {root.database(variant).name} is present")
    picks = {c: present[present["agreed_class"] == c] for c in classes}
    picks = {c: df.iloc[rng.permutation(len(df))[:per_class]] for c, df in picks.items()}
    out: dict[int, list[np.ndarray]] = {c: [] for c in classes}
    half = patch_px // 2
    for c, df in picks.items():
        for slide_uid, group in df.groupby("slide"):
            with open_slide(root.slide_path(slides[int(slide_uid)])) as slide:
                for x, y in group[["x", "y"]].to_numpy():
                    out[c].append(slide.read_l0(x_l0=int(x) - half, y_l0=int(y) - half, size_wh=(patch_px, patch_px)))
    return out


def draw_gallery(data_root: str | os.PathLike[str], *, variant: str = "ODAEL", per_class: int = 8,
                 patch_px: int = 128, seed: int = 0, out: str | os.PathLike[str] | None = None,
                 class_names: dict[int, str] | None = None):
    """Draw :func:`gallery_patches` as a matplotlib figure, one row per class; save it to ``out`` if given.

    Returns:
        The matplotlib ``Figure``.

    Example:
        >>> from ccmct.synthetic.gallery import draw_gallery
        >>> fig = draw_gallery("data/tiny", per_class=6, out="gallery.png")   # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    patches = gallery_patches(data_root, variant=variant, per_class=per_class, patch_px=patch_px, seed=seed)
    names = class_names or dict(CELL_CLASS_NAMES)
    rows = [c for c in patches if patches[c]]
    fig, axes = plt.subplots(len(rows), per_class, figsize=(1.6 * per_class, 1.75 * len(rows)), squeeze=False)
    for r, c in enumerate(rows):
        for k in range(per_class):
            ax = axes[r][k]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if k < len(patches[c]):
                ax.imshow(patches[c][k])
        axes[r][0].set_ylabel(f"{names.get(c, c)}\n(class {c})", fontsize=8)
    fig.suptitle(f"{Path(data_root).name}: {variant} examples, {patch_px} px patches", fontsize=9)
    fig.tight_layout()
    if out is not None:
        fig.savefig(out, dpi=110)
    return fig
