"""Figures for Evaluation.ipynb: F1 vs threshold, per-slide F1, paper vs strict, mitotic counts, MC heatmap."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ccmct.evaluation.mitotic_count import MitoticCount, count_correlation
from ccmct.evaluation.threshold import ThresholdSearch


def _axes(ax, figsize=(5, 3.5)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_threshold_curves(curves: Mapping[str, ThresholdSearch], *, ax=None):
    """Micro F1 (solid), precision and recall (dotted) against the threshold; best threshold marked."""
    ax = _axes(ax)
    for label, search in curves.items():
        (line,) = ax.plot(search.thresholds, search.f1, label=f"{label} F1 (best {search.best_f1:.3f} "
                                                               f"@ {search.best_threshold:.2f})")
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = search.tp / (search.tp + search.fp)
            recall = search.tp / (search.tp + search.fn)
        ax.plot(search.thresholds, precision, ":", color=line.get_color(), alpha=0.7)
        ax.plot(search.thresholds, recall, "--", color=line.get_color(), alpha=0.7)
        ax.axvline(search.best_threshold, color=line.get_color(), lw=0.8)
    ax.set(xlabel="detection threshold (score >)", ylabel="F1 / precision (:) / recall (--)", ylim=(0, 1))
    ax.legend(fontsize=7)
    return ax


def plot_per_slide_f1(per_slide: pd.DataFrame, *, ax=None):
    """Bars of per-slide F1 (paper and, if present, strict), slides ordered by number of GT mitoses.

    ``per_slide`` needs columns f1 and n_gt (and optionally strict_f1), indexed by slide.
    """
    ax = _axes(ax, (7, 3.5))
    table = per_slide.sort_values("n_gt")
    x = np.arange(len(table))
    width = 0.4 if "strict_f1" in table else 0.8
    ax.bar(x - (width / 2 if "strict_f1" in table else 0), table["f1"], width, label="paper matching")
    if "strict_f1" in table:
        ax.bar(x + width / 2, table["strict_f1"], width, label="strict one-to-one")
    ax.set_xticks(x, [f"{name[:8]} ({n})" for name, n in zip(table.index, table["n_gt"])], rotation=60,
                  fontsize=7)
    ax.set(ylabel="F1", ylim=(0, 1), xlabel="slide (GT mitotic figures)")
    ax.legend(fontsize=7)
    return ax


def plot_paper_vs_strict(long: pd.DataFrame, *, ax=None):
    """Scatter of strict vs paper F1, one point per (stage, train, test) row of ``table4_long``."""
    ax = _axes(ax, (4, 4))
    for stage, group in long.groupby("stage"):
        ax.scatter(group["f1"], group["strict_f1"], label=f"stage {stage}")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="F1, paper matching", ylabel="F1, strict matching", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=7)
    return ax


def plot_count_correlation(table: pd.DataFrame, *, ax=None):
    """Predicted vs true mitotic count per slide (log-log when counts span decades), with Pearson r."""
    ax = _axes(ax, (4, 4))
    ax.scatter(table["true_count"], table["predicted_count"])
    top = max(1, float(table[["true_count", "predicted_count"]].to_numpy().max()))
    ax.plot([0, top], [0, top], "k:", lw=0.8)
    ax.set(xlabel="true mitotic count (10 HPF)", ylabel="predicted mitotic count (10 HPF)",
           title=f"Pearson r = {count_correlation(table):.3f}")
    return ax


def plot_mc_heatmap(result: MitoticCount, *, ax=None, title: str = ""):
    """The sliding-window count map of one slide (figures per window) with the best window outlined."""
    from matplotlib.patches import Rectangle

    ax = _axes(ax)
    rows, cols = result.density.shape
    image = ax.imshow(result.density, cmap="magma", origin="upper",
                      extent=(0, cols * result.step_l0, rows * result.step_l0, 0))
    ax.add_patch(Rectangle((result.x_l0, result.y_l0), result.width_l0, result.height_l0, fill=False,
                           edgecolor="cyan", lw=1.5))
    ax.figure.colorbar(image, ax=ax, label="mitotic figures per window (top-left at pixel)")
    ax.set(xlabel="x (level-0 px)", ylabel="y (level-0 px)", title=title or f"MC = {result.count}")
    return ax
