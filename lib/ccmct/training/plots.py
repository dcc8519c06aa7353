"""Figures of the training notebooks: sampled patches, anchors, loss curves, validation predictions.

All boxes are drawn in patch px (xyxy). Each function draws into matplotlib axes and returns the figure.
Predictions come from the detector's own post-processing (:mod:`ccmct.models.detector`); the anchor figure
asks a RetinaNet config for its anchors (:meth:`ccmct.models.retinanet.DetectorConfig.positive_anchors`).
"""

from __future__ import annotations

import numpy as np
import torch

from ccmct.models.detector import prepare_tiles
from ccmct.sampling.patches import CASE_NAMES
from ccmct.training.data import PatchDataset

__all__ = ["plot_anchors", "plot_history", "show_cases", "show_predictions"]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _draw_boxes(ax, boxes, color, *, lw=1.5, ls="-"):
    from matplotlib.patches import Rectangle

    for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=color, lw=lw, ls=ls))


def show_cases(dataset: PatchDataset, *, per_case: int = 3):
    """``per_case`` unaugmented patches of each sampler case, GT boxes in green, chosen cell marked."""
    plt = _plt()
    fig, axes = plt.subplots(3, per_case, figsize=(3 * per_case, 9), squeeze=False)
    specs = dataset.specs
    for case, row in enumerate(axes):
        for ax, i in zip(row, np.flatnonzero(specs.case == case)[:per_case]):
            image, boxes = dataset.read(int(i))
            ax.imshow(image)
            _draw_boxes(ax, boxes, "lime")
            if case < 2:
                cx, cy = specs.cell_xy_l0[i] - (specs.x_l0[i], specs.y_l0[i])
                ax.plot(cx, cy, "+", color="yellow" if case else "red", ms=14, mew=2)
            ax.set_title(f"{CASE_NAMES[case][:24]}\nslide {specs.slide_index[i]}, ({specs.x_l0[i]}, {specs.y_l0[i]})",
                         fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    return fig


def plot_anchors(config, image: np.ndarray, gt_boxes: np.ndarray):
    """The anchor grid of an anchor-based detector's config (the RetinaNet's
    :class:`ccmct.models.retinanet.DetectorConfig`) on a patch: all centres, the anchors of one cell, and the
    positives of each GT box."""
    plt = _plt()
    anchors = config.anchors()
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(image)
    centres = ((anchors[:, :2] + anchors[:, 2:]) / 2).numpy()
    ax.plot(centres[:, 0], centres[:, 1], ".", color="white", ms=2)
    k = config.n_anchors_per_cell
    cell = (8 * (config.tile_px // config.stride_px) + 8) * k
    _draw_boxes(ax, anchors[cell:cell + k], "cyan", lw=1)
    if len(gt_boxes):
        _draw_boxes(ax, config.positive_anchors(torch.as_tensor(gt_boxes, dtype=torch.float32)), "orange",
                    lw=1, ls="--")
        _draw_boxes(ax, gt_boxes, "lime", lw=2)
    ax.set_title(f"anchors {config.anchor_sizes_px} px every {config.stride_px} px (cyan: one cell); "
                 "GT green, positive anchors orange", fontsize=8)
    ax.axis("off")
    return fig


def plot_history(summary: dict):
    """Training / validation loss, the validation loss parts and the validation patch F1 per pseudo-epoch."""
    plt = _plt()
    history = summary["history"]
    epochs = [row["epoch"] + 1 for row in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    initial = summary.get("initial") or {}
    parts = [k for k in history[0] if k.endswith("_loss") and k not in ("train_loss", "valid_loss")] if history else []
    styles = [("train_loss", "-"), ("valid_loss", "-")] + [(k, ("--", ":", "-.")[i % 3]) for i, k in enumerate(parts)]
    for key, style in styles:
        values = [row.get(key) for row in history]
        start = [initial[key]] if key in initial else []
        ax1.plot(([0] if start else []) + epochs, start + values, style, marker="o", ms=3, label=key)
    ax1.set_xlabel("pseudo-epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(epochs, [row.get("patch_f1") for row in history], marker="o", ms=3)
    ax2.set_xlabel("pseudo-epoch")
    ax2.set_ylabel("validation patch F1")
    ax2.set_ylim(0, 1)
    fig.tight_layout()
    return fig


@torch.no_grad()
def show_predictions(model, config, dataset: PatchDataset, *, n: int = 6, score_threshold: float = 0.5):
    """Validation patches with GT (green) and a tile detector's detections above ``score_threshold`` (red,
    with score); ``config`` is the detector's config (mean / std)."""
    plt = _plt()
    idx = list(range(min(n, len(dataset))))
    images, gts = zip(*(dataset.read(i) for i in idx))
    device = next(model.parameters()).device
    own_threshold, model.score_threshold = model.score_threshold, score_threshold
    try:
        found = model.eval()(prepare_tiles(np.stack(images), config.mean, config.std).to(device))
    finally:
        model.score_threshold = own_threshold
    detections = [(d["boxes"], d["scores"]) for d in found]
    cols = min(3, len(idx))
    fig, axes = plt.subplots(-(-len(idx) // cols), cols, figsize=(4 * cols, 4 * -(-len(idx) // cols)),
                             squeeze=False)
    for ax, image, gt, (boxes, scores) in zip(axes.ravel(), images, gts, detections):
        ax.imshow(image)
        _draw_boxes(ax, gt, "lime", lw=2)
        _draw_boxes(ax, boxes.cpu(), "red", lw=1.2)
        for (x1, y1, _, _), s in zip(boxes.cpu().numpy(), scores.cpu().numpy()):
            ax.text(x1, y1, f"{s:.2f}", color="red", fontsize=7)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    return fig
