"""Figures for Evaluation.ipynb and the demo report: F1 vs threshold, per-slide F1, paper vs strict, F1 with
bootstrap intervals, mitotic counts, MC heatmap.

A figure that could carry no information is refused (:class:`FigureRefused`, its message says why; the
caller prints that instead of the figure): a hotspot map of a slide that fits inside one 10-HPF window
(every window position holds the whole slide, the map is one flat colour), and a count correlation whose
Pearson r is undefined (all predicted counts zero, fewer than two slides, or no spread).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ccmct.errors import CcmctError
from ccmct.evaluation.mitotic_count import MitoticCount, count_correlation
from ccmct.evaluation.threshold import ThresholdSearch


class FigureRefused(CcmctError, ValueError):
    """A figure that would carry no information; ``str(err)`` is the reason to print in its place."""


def hotspot_refusal(result: MitoticCount, *, slide_size_l0: tuple[float, float] | None = None) -> str | None:
    """Why the MC heatmap of ``result`` would carry no information, or None when it can be drawn.

    Refused when the slide (``slide_size_l0`` = (width, height) level-0 px; default: the extent the count
    was computed over) fits inside one n-HPF window: then there is a single window position.
    """
    w, h = result.width_l0, result.height_l0
    if slide_size_l0 is not None:
        sw, sh = (float(v) for v in slide_size_l0)
        fits = sw <= w and sh <= h
    else:
        fits = result.density.size <= 1
    if not fits:
        return None
    slide = f"the slide ({sw:.0f} x {sh:.0f} px)" if slide_size_l0 is not None else "the counted extent"
    return (f"hotspot map not drawn: {slide} fits inside one 10-HPF window "
            f"({w} x {h} px), so every window position holds the whole slide and the map would be one flat "
            f"colour; the mitotic count ({result.count}) is simply the slide's total")


def count_correlation_refusal(table: pd.DataFrame) -> str | None:
    """Why a predicted-vs-true mitotic-count scatter would carry no Pearson r, or None when it can be drawn."""
    if len(table) < 2:
        return f"count correlation not drawn: {len(table)} slide(s), a correlation needs at least 2"
    if (table["predicted_count"] == 0).all():
        return (f"count correlation not drawn: the predicted mitotic count is 0 on all {len(table)} slides "
                f"(no detection above the threshold), so Pearson r is undefined")
    if table["predicted_count"].nunique() == 1 or table["true_count"].nunique() == 1:
        which = "predicted" if table["predicted_count"].nunique() == 1 else "true"
        return (f"count correlation not drawn: every {which} mitotic count is "
                f"{int(table[f'{which}_count'].iloc[0])} on the {len(table)} slides, so Pearson r is undefined")
    return None


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
    """Predicted vs true mitotic count per slide, with Pearson r.

    Raises:
        FigureRefused: r is undefined (see :func:`count_correlation_refusal`); nothing is drawn.
    """
    reason = count_correlation_refusal(table)
    if reason:
        raise FigureRefused(reason)
    ax = _axes(ax, (4, 4))
    ax.scatter(table["true_count"], table["predicted_count"])
    top = max(1, float(table[["true_count", "predicted_count"]].to_numpy().max()))
    ax.plot([0, top], [0, top], "k:", lw=0.8)
    ax.set(xlabel="true mitotic count (10 HPF)", ylabel="predicted mitotic count (10 HPF)",
           title=f"Pearson r = {count_correlation(table):.3f}")
    return ax


def plot_mc_heatmap(result: MitoticCount, *, ax=None, title: str = "",
                    slide_size_l0: tuple[float, float] | None = None):
    """The sliding-window count map of one slide (figures per window) with the best window outlined.

    Args:
        result: :func:`ccmct.evaluation.mitotic_count.mitotic_count` of the slide (pass it
            ``extent_l0=`` the slide's dimensions so that the map covers the slide).
        slide_size_l0: (width, height) of the slide, level-0 px, for the refusal check (default: the
            extent of ``result``).

    Raises:
        FigureRefused: the slide fits inside one window (see :func:`hotspot_refusal`); nothing is drawn.
    """
    from matplotlib.patches import Rectangle

    reason = hotspot_refusal(result, slide_size_l0=slide_size_l0)
    if reason:
        raise FigureRefused(reason)
    ax = _axes(ax)
    rows, cols = result.density.shape
    image = ax.imshow(result.density, cmap="magma", origin="upper",
                      extent=(0, cols * result.step_l0, rows * result.step_l0, 0))
    ax.add_patch(Rectangle((result.x_l0, result.y_l0), result.width_l0, result.height_l0, fill=False,
                           edgecolor="cyan", lw=1.5))
    ax.figure.colorbar(image, ax=ax, label="mitotic figures per window (top-left at pixel)")
    ax.set(xlabel="x (level-0 px)", ylabel="y (level-0 px)", title=title or f"MC = {result.count}")
    return ax


def plot_f1_intervals(table: pd.DataFrame, *, value: str = "f1", label: str | None = None,
                      group: str | None = None, ax=None, title: str = ""):
    """Point estimates with their bootstrap intervals as error bars, one per row of ``table``.

    Args:
        table: columns ``value``, ``value + "_lo"``, ``value + "_hi"`` (e.g. from
            :func:`ccmct.evaluation.tables.table4_intervals`); rows without an interval get no bar.
        label: column naming each row on the x axis (default: the index).
        group: optional column; rows of one group share a colour and a legend entry.
        title: axes title (default: says the interval is a slide bootstrap).
    """
    ax = _axes(ax, (max(4.0, 0.45 * len(table) + 2), 3.5))
    x = np.arange(len(table))
    point = table[value].astype(float).to_numpy()
    lo = table[f"{value}_lo"].astype(float).to_numpy()
    hi = table[f"{value}_hi"].astype(float).to_numpy()
    err = np.vstack([point - lo, hi - point])
    err = np.where(np.isfinite(err), np.maximum(err, 0), 0)
    groups = table[group].astype(str).to_numpy() if group else np.full(len(table), "")
    for name in dict.fromkeys(groups):
        sel = groups == name
        ax.errorbar(x[sel], point[sel], yerr=err[:, sel], fmt="o", capsize=3, label=name or None)
    names = table[label] if label else table.index
    ax.set_xticks(x, [str(n) for n in names], rotation=60, ha="right", fontsize=7)
    ax.set(ylabel=value.replace("_", " "), ylim=(0, 1),
           title=title or "point estimate and slide-bootstrap interval")
    ax.grid(axis="y", alpha=0.3)
    if group:
        ax.legend(fontsize=7)
    return ax
