"""Ablation subsets of a data root (paper §"Ablation study"; docs/ablation.md).

- :mod:`ccmct.data.subsets_hpf`: 5 / 10 / 50-HPF crops around the expert's high-mitotic-count rectangle.
- :mod:`ccmct.data.subsets_wsi`: databases keeping 3 / 6 / 12 of the training slides.

Every subset is itself a data root with a ``subset.json`` manifest; :func:`read_manifest` and
:func:`find_subsets` read them back (used by the ablation runner and the evaluation notebook).

Example:
    >>> create_hpf_subsets("data", "ablation", hpf=(5, 10, 50))     # doctest: +SKIP
    >>> create_wsi_subsets("data", "ablation", wsi=(3, 6, 12))      # doctest: +SKIP
    >>> sorted(find_subsets("ablation"))                              # doctest: +SKIP
    ['10HPF', '12WSI', '3WSI', '50HPF', '5HPF', '6WSI']
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ccmct.data.subsets_hpf import (
    ANCHORS,
    MANIFEST_FILE,
    CropWindow,
    create_hpf_subset,
    create_hpf_subsets,
    high_mc_rectangles,
    hpf_crop_size_px,
    place_crop,
)
from ccmct.data.subsets_wsi import choose_kept_slides, create_wsi_subset, create_wsi_subsets, removal_order
from ccmct.errors import FileProblem


def read_manifest(subset_root: str | os.PathLike[str]) -> dict:
    """The ``subset.json`` of a subset root.

    Raises:
        FileProblem: missing or not a subset manifest.
    """
    path = Path(subset_root) / MANIFEST_FILE
    if not path.exists():
        raise FileProblem(path, "no subset manifest here (create the subset with `ccmct ablation hpf|wsi`)")
    try:
        manifest = json.loads(path.read_text())
        if manifest["kind"] not in ("hpf", "wsi"):
            raise ValueError(f"unknown kind {manifest['kind']!r}")
    except (ValueError, KeyError, TypeError) as err:
        raise FileProblem(path, f"not a subset manifest ({err})") from err
    return manifest


def find_subsets(subsets_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Subset name (``"5HPF"``, ``"3WSI"``, ...) -> subset root, for every folder with a manifest."""
    base = Path(subsets_dir)
    if not base.is_dir():
        raise FileProblem(base, "is not a folder of ablation subsets")
    found = {}
    for child in sorted(base.iterdir()):
        if (child / MANIFEST_FILE).exists():
            found[read_manifest(child)["name"]] = child
    return found


__all__ = ["ANCHORS", "MANIFEST_FILE", "CropWindow", "choose_kept_slides", "create_hpf_subset", "create_hpf_subsets",
           "create_wsi_subset", "create_wsi_subsets", "find_subsets", "high_mc_rectangles", "hpf_crop_size_px",
           "place_crop", "read_manifest", "removal_order"]
