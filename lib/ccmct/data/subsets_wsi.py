"""WSI ablation subsets: label databases keeping only 3 / 6 / 12 of the training slides.

the authors' `AblationStudy/create_WSIsubsets.py`; docs/ablation.md. The test slides are always kept; the slides themselves are not copied: the subset's
``WSI`` entry is a symbolic link to the source root's ``WSI`` folder (absolute path), so a subset costs only
its databases (the label databases and, when present, the tumor-zone database, restricted to the kept
slides). Every command of the pipeline runs on a subset root unchanged (its ``split.json`` lists the
kept training slides and the test slides).

Which training slides are kept:

- **Real data** (the root's training slides are the paper's 21): exactly the authors' subsets,
  :data:`ccmct.config.dataset.WSI_SUBSETS` (12, 6, 3 kept; nested).
- **Any other root** (synthetic data): the training slides are put in a fixed removal order — a permutation
  of their sorted names drawn with ``numpy.random.default_rng(seed)`` (seed 0 by default), then stably
  re-ordered so that slides without any mitotic figure are removed first — and the subset of size n keeps
  the last n slides of that order. Smaller subsets are therefore nested in larger ones, as in the paper, and
  no subset of a root that has mitoses is left without one. A size larger than the number of training
  slides keeps them all and is reported as ``capped``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from ccmct.config.dataset import MITOTIC_FIGURE, REAL_SLIDES, WSI_SUBSETS
from ccmct.config.paths import DataRoot, write_split
from ccmct.data.sliderunner import SlideRunnerDB, copy_database
from ccmct.errors import DatabaseError, FileProblem
from ccmct.atomicio import atomic_write_json

MANIFEST_FILE = "subset.json"
_REAL_TRAIN = frozenset(s.filename for s in REAL_SLIDES if s.split == "train")


def mitoses_per_slide(db_path: str | os.PathLike[str]) -> dict[str, int]:
    """Slide file name -> number of annotations with agreed class 'mitotic figure' (0 for none)."""
    with SlideRunnerDB.open(db_path) as db:
        slides = db.slides()
        spots = db.spots(classes=[MITOTIC_FIGURE])
    per_uid = spots.groupby("slide").size()
    return {str(name): int(per_uid.get(uid, 0)) for uid, name in slides[["uid", "filename"]].to_numpy()}


def removal_order(train_slides: Iterable[str], mitoses: dict[str, int], *, seed: int = 0) -> list[str]:
    """Training slides in the order they are removed (first removed first); see the module docstring."""
    names = sorted(train_slides)
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    return sorted(order, key=lambda name: mitoses.get(name, 0) > 0)


def choose_kept_slides(train_slides: Iterable[str], n: int, mitoses: dict[str, int], *,
                       seed: int = 0) -> tuple[list[str], str]:
    """The training slides a subset of ``n`` WSIs keeps, and the rule used (``"paper"`` or ``"seeded"``).

    Raises:
        ValueError: ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"a WSI subset needs at least 1 training slide, got {n}")
    train = sorted(train_slides)
    if set(train) == _REAL_TRAIN and n in WSI_SUBSETS:
        return sorted(WSI_SUBSETS[n]), "paper"
    order = removal_order(train, mitoses, seed=seed)
    return sorted(order[max(len(order) - n, 0):]), "seeded"


def _link_wsi(source: DataRoot, target: DataRoot) -> None:
    link = target.wsi_dir
    wanted = source.wsi_dir.resolve()
    if link.is_symlink() and Path(os.readlink(link)) == wanted:
        return
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise FileProblem(link, "exists and is not a link to the source WSI folder; remove it or choose another --out")
    tmp = link.with_name(link.name + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(wanted, target_is_directory=True)
    os.replace(tmp, link)


def create_wsi_subset(data_root: str | os.PathLike[str], out_root: str | os.PathLike[str], n_wsi: int, *,
                      variants: Iterable[str] = ("ODAEL",), seed: int = 0) -> dict:
    """Create one WSI subset data root (``WSI`` link, databases, ``split.json``, ``subset.json``).

    Args:
        data_root: source data root.
        out_root: subset root to write (e.g. ``OUT/3WSI``).
        n_wsi: number of training slides to keep.
        variants: label databases to copy (those present; at least one must be).
        seed: removal-order seed for non-paper roots.

    Returns:
        The manifest also written to ``<out_root>/subset.json``.
    """
    root, out = DataRoot(data_root), DataRoot(out_root)
    dbs = {v: root.database(v) for v in variants if root.database(v).exists()}
    if not dbs:
        raise DatabaseError(root.database(next(iter(variants), "ODAEL")), "no label database to copy")
    primary = "ODAEL" if "ODAEL" in dbs else next(iter(dbs))
    mitoses = mitoses_per_slide(dbs[primary])
    split = root.split()
    train = [n for n, s in split.items() if s == "train" and n in mitoses]
    test = sorted(n for n, s in split.items() if s == "test" and n in mitoses)
    kept, rule = choose_kept_slides(train, n_wsi, mitoses, seed=seed)
    missing = sorted(set(kept) - set(mitoses))
    if missing:
        raise DatabaseError(dbs[primary], f"slides of the {n_wsi}-WSI subset missing: {', '.join(missing)}")
    out.databases_dir.mkdir(parents=True, exist_ok=True)
    _link_wsi(root, out)
    for variant, path in dbs.items():
        copy_database(path, out.database(variant), keep_slides=kept + test)
    if root.database("Tumorzone").exists():  # for the tumor area of the kept slides (ccmct stats)
        copy_database(root.database("Tumorzone"), out.database("Tumorzone"), keep_slides=kept + test)
    write_split(out.split_file, kept, test)
    manifest = {
        "kind": "wsi", "n": n_wsi, "name": f"{n_wsi}WSI", "rule": rule, "seed": seed,
        "capped": n_wsi > len(train), "source_root": str(root.path.resolve()), "variant": primary,
        "n_train_slides": len(kept), "train_slides": kept, "test_slides": test,
        "train_mitoses": sum(mitoses[n] for n in kept),
    }
    atomic_write_json(out.path / MANIFEST_FILE, manifest)
    return manifest


def create_wsi_subsets(data_root: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                       wsi: Iterable[int] = (3, 6, 12), **kwargs) -> dict[str, dict]:
    """Create ``<out_dir>/<n>WSI/`` for every n in ``wsi`` (keyword arguments as :func:`create_wsi_subset`)."""
    return {f"{n}WSI": create_wsi_subset(data_root, Path(out_dir) / f"{n}WSI", int(n), **kwargs) for n in wsi}


__all__ = ["MANIFEST_FILE", "choose_kept_slides", "create_wsi_subset", "create_wsi_subsets", "mitoses_per_slide",
           "removal_order"]
