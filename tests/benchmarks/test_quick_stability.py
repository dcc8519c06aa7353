"""Helpers of benchmarks/quick_stability.py: the geometric-mean stage-2 score and the spread over runs."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("quick_stability")


def test_geometric_mean_looks_up_each_stage2_box_in_stage1(bench):
    stage1 = {"a.svs": np.array([[0, 0, 50, 50, 1, 0.36], [100, 100, 150, 150, 1, 0.81], [9, 9, 59, 59, 1, 0.5]]),
              "b.svs": np.zeros((0, 6))}
    # stage 2: NMS survivors in another order, score = P(mitotic figure)
    stage2 = {"a.svs": np.array([[100, 100, 150, 150, 1, 0.25], [0, 0, 50, 50, 1, 1.0]]), "b.svs": np.zeros((0, 6))}
    out = bench.stage2_scores(stage1, stage2, written="replace", wanted="geometric_mean")
    np.testing.assert_allclose(out["a.svs"][:, 5], [np.sqrt(0.25 * 0.81), np.sqrt(1.0 * 0.36)])
    np.testing.assert_array_equal(out["a.svs"][:, :5], stage2["a.svs"][:, :5])
    assert out["b.svs"].shape == (0, 6)
    assert stage2["a.svs"][0, 5] == 0.25  # the input is not modified
    # a file written with the geometric mean gives back P(mitotic figure), and is not combined twice
    back = bench.stage2_scores(stage1, out, written="geometric_mean", wanted="replace")
    np.testing.assert_allclose(back["a.svs"][:, 5], stage2["a.svs"][:, 5])
    assert bench.stage2_scores(stage1, out, written="geometric_mean", wanted="geometric_mean") is out


def test_geometric_mean_refuses_boxes_of_another_run(bench):
    stage1 = {"a.svs": np.array([[0, 0, 50, 50, 1, 0.36]])}
    stage2 = {"a.svs": np.array([[1, 0, 51, 50, 1, 0.9]])}
    with pytest.raises(ValueError, match="a.svs: a stage-2 box .* not a first-stage box"):
        bench.stage2_scores(stage1, stage2, written="replace", wanted="geometric_mean")


def test_over_runs_mean_and_sample_sd_per_cell(bench):
    rows = [{"variant": "MEL", "stage": 2, "combine": "replace", "test_f1_at_chosen": f, "oracle_test_f1": f + 0.01}
            for f in (0.6, 0.7, 0.8)]
    rows.append({"variant": "MEL", "stage": 2, "combine": "geometric_mean", "undefined": "no detections"})
    (cell,) = bench.over_runs(rows)
    assert cell["runs"] == 3 and cell["combine"] == "replace"
    assert cell["test_f1_mean"] == pytest.approx(0.7)
    assert cell["test_f1_sd"] == pytest.approx(0.1)  # ddof 1, as the demo's table4_sd
    assert cell["oracle_mean"] == pytest.approx(0.71)
