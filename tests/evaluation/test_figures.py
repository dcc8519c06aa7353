"""Evaluation figures: uninformative figures are refused with a reason; error bars show the intervals."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from ccmct.evaluation import hpf_window_l0, mitotic_count  # noqa: E402
from ccmct.evaluation.figures import (  # noqa: E402
    FigureRefused,
    count_correlation_refusal,
    hotspot_refusal,
    plot_count_correlation,
    plot_f1_intervals,
    plot_mc_heatmap,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_hotspot_of_a_slide_smaller_than_the_window_is_refused():
    width, height = hpf_window_l0(0.25)  # 7110 x 5332 px
    rng = np.random.default_rng(0)
    slide = (6400, 4800)  # the old demo slide
    points = rng.uniform(0, 1, (30, 2)) * slide
    result = mitotic_count(points, mpp=0.25, extent_l0=slide)
    assert result.density.shape == (1, 1)  # one window position: the map is flat
    reason = hotspot_refusal(result, slide_size_l0=slide)
    assert "6400 x 4800" in reason and f"{width} x {height}" in reason and "30" in reason
    assert "counted extent" in hotspot_refusal(result)
    ax = plt.figure().add_subplot()
    with pytest.raises(FigureRefused, match="fits inside one 10-HPF window"):
        plot_mc_heatmap(result, ax=ax, slide_size_l0=slide)
    assert not ax.images  # nothing drawn


def test_hotspot_of_a_slide_several_windows_large_is_drawn():
    rng = np.random.default_rng(1)
    slide = (30000, 20000)
    points = np.concatenate([rng.uniform(0, 1, (40, 2)) * slide, rng.uniform(0, 2000, (25, 2)) + [20000, 12000]])
    result = mitotic_count(points, mpp=0.25, extent_l0=slide)
    assert hotspot_refusal(result, slide_size_l0=slide) is None
    ax = plot_mc_heatmap(result, slide_size_l0=slide)
    image = ax.images[0].get_array()
    assert image.shape == result.density.shape and image.max() > image.min()  # not one flat colour
    assert result.count >= 25


def test_count_correlation_with_all_predictions_zero_is_refused():
    table = pd.DataFrame({"true_count": [3, 10, 25], "predicted_count": [0, 0, 0]}, index=["a", "b", "c"])
    reason = count_correlation_refusal(table)
    assert "predicted mitotic count is 0 on all 3 slides" in reason
    with pytest.raises(FigureRefused, match="Pearson r is undefined"):
        plot_count_correlation(table)
    assert "at least 2" in count_correlation_refusal(table.iloc[:1])
    assert "every true mitotic count is 5" in count_correlation_refusal(
        pd.DataFrame({"true_count": [5, 5], "predicted_count": [1, 4]}))
    table["predicted_count"] = [2, 9, 20]
    assert count_correlation_refusal(table) is None
    assert "Pearson r = 0.99" in plot_count_correlation(table).get_title()


def test_error_bars_span_the_intervals():
    table = pd.DataFrame({"cell": ["MEL/MEL", "ODAEL/ODAEL", "none"], "stage": [1, 2, 2],
                          "f1": [0.6, 0.8, np.nan], "f1_lo": [0.5, 0.75, np.nan], "f1_hi": [0.66, 0.9, np.nan]})
    ax = plot_f1_intervals(table, label="cell", group="stage")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["MEL/MEL", "ODAEL/ODAEL", "none"]
    assert len(ax.containers) == 2  # one errorbar container per stage
    segments = [seg for container in ax.containers for seg in container.lines[2][0].get_segments()]
    spans = sorted((float(s[0][1]), float(s[1][1])) for s in segments if len(s) == 2 and np.isfinite(s).all())
    assert spans == [pytest.approx((0.5, 0.66)), pytest.approx((0.75, 0.9))]
