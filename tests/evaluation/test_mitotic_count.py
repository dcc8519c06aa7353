"""Mitotic count: window size from mpp, best window, correlation."""

from __future__ import annotations

import numpy as np

from ccmct.evaluation import count_correlation, hpf_window_l0, mitotic_count, mitotic_count_table


def test_window_size_matches_the_authors_hpf_crops():
    # the authors' `AblationStudy/create_HPFsubsets.py`; docs/ablation.md: 10 HPF = 7017 x 5263 px and 5 HPF = 4962 x 3721 px at 0.2533 µm/px
    assert hpf_window_l0(0.2533, n_hpf=10) == (7017, 5263)
    assert hpf_window_l0(0.2533, n_hpf=5) == (4962, 3721)


def test_best_window_finds_the_cluster_and_counts_it():
    rng = np.random.default_rng(0)
    width, height = hpf_window_l0(0.25)
    background = rng.uniform(0, 60000, (300, 2))  # ~0.2 per window area
    cluster = rng.uniform(0, 1, (40, 2)) * [width * 0.5, height * 0.5] + [30000, 20000]
    result = mitotic_count(np.concatenate([background, cluster]), mpp=0.25)
    assert result.count >= 40
    assert result.x_l0 <= 30000 and result.x_l0 + width >= 30000 + width * 0.5
    assert result.y_l0 <= 20000 and result.y_l0 + height >= 20000 + height * 0.5
    # brute force over the same grid positions
    pts = np.concatenate([background, cluster])
    r, c = np.unravel_index(np.argmax(result.density), result.density.shape)
    x0, y0 = c * result.step_l0, r * result.step_l0
    inside = ((pts[:, 0] >= x0) & (pts[:, 0] < x0 + result.step_l0 * 8)
              & (pts[:, 1] >= y0) & (pts[:, 1] < y0 + result.step_l0 * 6))
    assert inside.sum() == result.count == result.density.max()
    assert mitotic_count(np.zeros((0, 2)), mpp=0.25).count == 0


def test_table_and_correlation():
    rng = np.random.default_rng(1)
    gt, results = {}, {}
    for i, n in enumerate((5, 20, 60, 120)):
        xy = rng.uniform(0, 4000, (n, 2))
        gt[f"s{i}"] = xy
        results[f"s{i}"] = np.column_stack([xy - 10, xy + 10, np.zeros(n), np.full(n, 0.9)])
    table = mitotic_count_table(gt, results, threshold=0.5, mpp=0.25)
    assert list(table.index) == list(gt)
    assert (table["true_count"] >= table["predicted_count"] * 0).all()
    assert count_correlation(table) > 0.95
    assert np.isnan(count_correlation(table.iloc[:1]))


def test_slide_sizes_are_read_from_the_slide_files(tiny_root):
    from ccmct.config.paths import DataRoot
    from ccmct.data.slides import open_slide
    from ccmct.evaluation.mitotic_count import slide_sizes_l0

    root = DataRoot(tiny_root)
    name = sorted(root.test_slides())[0]
    sizes = slide_sizes_l0(root, [name, "missing.svs"])
    with open_slide(root.slide_path(name)) as slide:
        assert sizes[name] == tuple(slide.dimensions)
    assert sizes["missing.svs"] is None
