"""Slide bootstrap of F1 and the paired comparison, on hand-made per-slide counts and on a real evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ccmct.evaluation.bootstrap import (
    SlideCounts,
    SlideMismatch,
    bootstrap_f1,
    paired_bootstrap,
    resample_weights,
)
from ccmct.evaluation.f1 import f1_scores


def _counts(rows, names=None):
    rows = np.asarray(rows)
    names = names or [f"s{i}.svs" for i in range(len(rows))]
    return SlideCounts(tuple(names), rows[:, 0], rows[:, 1], rows[:, 2])


A = _counts([[30, 5, 10], [8, 12, 2], [50, 20, 15], [0, 3, 4], [12, 1, 9], [25, 10, 5]])


def test_point_estimate_is_micro_f1_and_lies_in_the_interval():
    out = bootstrap_f1(A, n_resamples=4000, seed=1)
    tp, fp, fn = 125, 51, 45
    assert out["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert out["precision"] == pytest.approx(tp / (tp + fp)) and out["recall"] == pytest.approx(tp / (tp + fn))
    for name in ("f1", "precision", "recall"):
        lo, hi = out[f"{name}_ci"]
        assert lo < out[name] < hi
    assert out["n_slides"] == 6 and out["n_resamples"] == 4000 and out["method"] == "slide bootstrap, percentile"
    wider = bootstrap_f1(A, n_resamples=4000, seed=1, level=0.99)["f1_ci"]
    assert wider[0] <= out["f1_ci"][0] and wider[1] >= out["f1_ci"][1]


def test_same_seed_same_interval_other_seed_other_resamples():
    first, again = bootstrap_f1(A, seed=5), bootstrap_f1(A, seed=5)
    assert first == again
    assert bootstrap_f1(A, seed=6)["f1_ci"] != first["f1_ci"]


def test_resample_weights_draw_n_slides_with_replacement():
    w = resample_weights(7, n_resamples=3000, seed=0)
    assert w.shape == (3000, 7) and (w.sum(axis=1) == 7).all()
    assert w.mean(axis=0) == pytest.approx(np.ones(7), abs=0.1)  # each slide drawn once on average
    assert (w == 0).any(axis=1).mean() > 0.9  # most resamples leave some slide out (1 - 7!/7^7 ~ 0.99)


def test_uniform_slides_give_a_degenerate_interval():
    same = _counts([[10, 2, 3]] * 5)
    out = bootstrap_f1(same, n_resamples=500)
    assert out["f1_ci"] == [pytest.approx(out["f1"])] * 2


def test_undefined_resamples_are_left_out_and_json_is_strict():
    # one slide has counts, the other is empty: resamples of only the empty slide have F1 = 0/0
    out = bootstrap_f1(_counts([[5, 1, 1], [0, 0, 0]]), n_resamples=1000, seed=0)
    assert 0 < out["n_undefined"]["f1"] < 1000
    assert out["f1_ci"] == [pytest.approx(10 / 12)] * 2
    json.dumps(out, allow_nan=False)
    none = bootstrap_f1(_counts([[0, 0, 0]]), n_resamples=10)
    assert none["f1"] is None and none["f1_ci"] == [None, None] and none["n_undefined"]["f1"] == 10
    json.dumps(none, allow_nan=False)


def test_identical_files_give_exactly_zero():
    out = paired_bootstrap(A, A, n_resamples=1000, seed=3)
    assert out["delta_f1"] == 0.0 and out["delta_f1_ci"] == [0.0, 0.0]
    assert out["a_wins"] == 0.0 and out["b_wins"] == 0.0 and out["n_seeds"] == 1
    shuffled = SlideCounts(A.slides[::-1], A.tp[::-1], A.fp[::-1], A.fn[::-1])
    assert paired_bootstrap(A, shuffled, seed=3)["delta_f1_ci"] == [0.0, 0.0]  # aligned by slide name


def test_a_strictly_better_file_gives_a_positive_difference():
    better = SlideCounts(A.slides, A.tp + 3, np.maximum(A.fp - 1, 0), np.maximum(A.fn - 3, 0))
    out = paired_bootstrap(better, A, n_resamples=2000, seed=0)
    assert out["delta_f1"] > 0 and out["delta_f1_ci"][0] > 0 and out["a_wins"] == 1.0
    reverse = paired_bootstrap(A, better, n_resamples=2000, seed=0)
    assert reverse["delta_f1"] == pytest.approx(-out["delta_f1"])
    assert reverse["delta_f1_ci"] == pytest.approx([-out["delta_f1_ci"][1], -out["delta_f1_ci"][0]])
    assert reverse["b_wins"] == 1.0


def test_seeds_are_averaged_on_the_same_resamples():
    rng = np.random.default_rng(0)
    seeds_a = [_counts(np.column_stack([A.tp + rng.integers(0, 4, 6), A.fp, A.fn])) for _ in range(3)]
    seeds_b = [_counts(np.column_stack([A.tp, A.fp + rng.integers(0, 4, 6), A.fn])) for _ in range(3)]
    out = paired_bootstrap(seeds_a, seeds_b, n_resamples=800, seed=2)
    expected = np.mean([s.scores()[0] - t.scores()[0] for s, t in zip(seeds_a, seeds_b)])
    assert out["n_seeds"] == 3 and out["delta_f1"] == pytest.approx(expected)
    # the statistic on each resample is the seed mean of the per-seed differences: check one resample
    w = resample_weights(6, n_resamples=800, seed=2)
    lo, hi = out["delta_f1_ci"]
    deltas = []
    for row in w:
        f = [(2 * (row @ c.tp)) / (2 * (row @ c.tp) + row @ c.fp + row @ c.fn) for c in seeds_a]
        g = [(2 * (row @ c.tp)) / (2 * (row @ c.tp) + row @ c.fp + row @ c.fn) for c in seeds_b]
        deltas.append(np.mean(f) - np.mean(g))
    assert [lo, hi] == pytest.approx(list(np.percentile(deltas, [2.5, 97.5])))
    with pytest.raises(ValueError, match="same"):
        paired_bootstrap(seeds_a, seeds_b[:2])


def test_mismatched_slides_and_bad_arguments_are_refused():
    other = _counts([[1, 1, 1]] * 6, names=[f"t{i}.svs" for i in range(6)])
    with pytest.raises(SlideMismatch, match="missing"):
        paired_bootstrap(A, other)
    with pytest.raises(ValueError, match="level"):
        bootstrap_f1(A, level=1.5)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_f1(A, n_resamples=0)
    with pytest.raises(ValueError, match="entries"):
        SlideCounts(("a",), np.array([1, 2]), np.array([1]), np.array([1]))


def test_from_per_slide_of_a_real_evaluation(small_case):
    db, gt, results = small_case
    result = f1_scores(db, results, threshold=0.6, matching="strict")
    from_obj = SlideCounts.from_result(result)
    from_json = SlideCounts.from_per_slide(json.loads(json.dumps(result.as_dict()))["per_slide"])
    assert from_obj.slides == from_json.slides
    for name in ("tp", "fp", "fn"):
        assert np.array_equal(getattr(from_obj, name), getattr(from_json, name))
    assert from_obj.slides == tuple(results)
    assert (int(from_obj.tp.sum()), int(from_obj.fp.sum()), int(from_obj.fn.sum())) == (
        result.counts.tp, result.counts.fp, result.counts.fn)
    out = bootstrap_f1(from_obj, n_resamples=500)
    assert out["f1"] == pytest.approx(result.f1)


def test_format_interval_says_undefined_instead_of_failing():
    from ccmct.evaluation.bootstrap import format_interval

    nothing_found = bootstrap_f1(SlideCounts(("a", "b"), np.array([0, 0]), np.array([0, 0]), np.array([0, 0])))
    assert nothing_found["f1_ci"] == [None, None]
    assert format_interval(nothing_found["f1_ci"]).startswith("undefined")
    assert format_interval([0.25, 0.5], digits=2) == "[0.25, 0.50]"
