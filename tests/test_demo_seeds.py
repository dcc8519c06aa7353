"""The multi-seed part of the demo summary on hand-made per-slide counts: mean and sd over seeds, intervals,
the paper's effects with paired intervals and verdicts, failed slides kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ccmct.demo.seeds import SeedEvaluation, seed_summary
from ccmct.evaluation.bootstrap import SlideCounts

SLIDES = ("a.svs", "b.svs", "c.svs", "d.svs")


def _counts(tp, fp, fn) -> SlideCounts:
    return SlideCounts(SLIDES, np.array(tp), np.array(fp), np.array(fn))


def _evaluation(cells: dict, missing=None) -> SeedEvaluation:
    """cells: (stage, train) -> SlideCounts, all tested on ODAEL."""
    rows, counts = [], {}
    for (stage, train), c in cells.items():
        f1 = c.scores()[0]
        rows.append({"stage": stage, "train": train, "test": "ODAEL", "threshold": 0.5, "train_f1": 0.9,
                     "tp": int(c.tp.sum()), "fp": int(c.fp.sum()), "fn": int(c.fn.sum()), "f1": f1,
                     "strict_f1": f1})
        counts[(stage, train, "ODAEL")] = c
    return SeedEvaluation(pd.DataFrame(rows), counts, missing or {})


def _seed(shift: int, missing=None) -> SeedEvaluation:
    """Stage 2 better than stage 1 on every slide; ODAEL-trained equal to MEL-trained in stage 1 and better
    on some slides only (by ``shift``) in stage 2."""
    weak = _counts([10, 20, 5, 8], [10, 12, 6, 9], [10, 9, 7, 8])
    strong = _counts([16, 26, 9, 13], [4, 5, 2, 3], [4, 3, 3, 3])
    odael2 = _counts([16 + shift, 26, 9, 13], [4, 5, 2 + shift, 3], [4 - shift, 3, 3, 3])
    return _evaluation({(1, "MEL"): weak, (1, "ODAEL"): weak, (2, "MEL"): strong, (2, "ODAEL"): odael2},
                       missing)


def test_seed_summary_mean_sd_effects():
    evaluations = {0: _seed(0), 1: _seed(2, missing={"RetinaNet-MEL-test.npz": {"x.svs": "failed: unreadable"}})}
    summary = seed_summary(evaluations)
    assert summary["seeds"] == [0, 1] and set(summary["per_seed"]) == {"0", "1"}
    f1s = [summary["per_seed"][s]["stage2"]["ODAEL"]["ODAEL"] for s in ("0", "1")]
    assert f1s[0] != f1s[1]
    assert summary["table4_mean"]["stage2"]["ODAEL"]["ODAEL"] == pytest.approx(np.mean(f1s))
    assert summary["table4_sd"]["stage2"]["ODAEL"]["ODAEL"] == pytest.approx(np.std(f1s, ddof=1))
    assert summary["table4_sd"]["stage1"]["MEL"]["ODAEL"] == 0.0  # the same counts in both seeds
    assert summary["table4_n_slides"]["stage1"]["MEL"]["ODAEL"] == 4
    for seed in ("0", "1"):
        lo, hi = summary["table4_ci"][seed]["stage2"]["MEL"]["ODAEL"]
        assert lo <= summary["per_seed"][seed]["stage2"]["MEL"]["ODAEL"] <= hi
    assert summary["per_seed_thresholds"]["1"]["stage2"]["ODAEL"] == 0.5
    effects = {e["effect"]: e for e in summary["effects"]}
    two_stage = effects["second stage vs first stage (MEL-trained)"]
    assert two_stage["verdict"] == "holds" and two_stage["delta_f1_ci"][0] > 0 and two_stage["a_wins"] == 1.0
    assert two_stage["n_seeds"] == 2 and two_stage["n_slides"] == 4
    assert two_stage["delta_f1"] == pytest.approx(two_stage["f1_a"] - two_stage["f1_b"])
    same = effects["ODAEL-trained vs MEL-trained (stage 1)"]
    assert same["delta_f1"] == 0.0 and same["delta_f1_ci"] == [0.0, 0.0] and same["verdict"] == "not shown"
    assert effects["ODAEL-trained vs MEL-trained (stage 2)"]["delta_f1"] > 0
    assert summary["failed_slides"] == {"1": {"RetinaNet-MEL-test.npz": {"x.svs": "failed: unreadable"}}}


def test_one_seed_has_no_sd_and_effects_still_paired():
    summary = seed_summary({0: _seed(0)})
    assert summary["table4_sd"]["stage2"]["ODAEL"]["ODAEL"] is None
    assert summary["table4_mean"] == summary["per_seed"]["0"]
    assert {e["n_seeds"] for e in summary["effects"]} == {1}
    assert summary["failed_slides"] == {}


def test_effect_uses_the_slides_every_seed_holds():
    """A slide missing from one seed's results (a failed slide) drops out of the paired comparison."""
    full = _seed(0)
    three = SlideCounts(SLIDES[:3], np.array([16, 26, 9]), np.array([4, 5, 2]), np.array([4, 3, 3]))
    partial = _seed(0)
    partial.counts[(2, "MEL", "ODAEL")] = three
    effects = {e["effect"]: e for e in seed_summary({0: full, 1: partial})["effects"]}
    assert effects["second stage vs first stage (MEL-trained)"]["n_slides"] == 3


def test_a_cell_without_any_slide_has_no_interval_and_no_effect():
    """Every test slide of one result file failed: the cell keeps 0 slides, no interval, and the effects that
    need it are left out instead of being computed on nothing."""
    empty = SlideCounts((), np.zeros(0), np.zeros(0), np.zeros(0))
    broken = _seed(0)
    broken.counts[(1, "ODAEL", "ODAEL")] = empty
    summary = seed_summary({0: _seed(0), 1: broken})
    assert summary["table4_ci"]["1"]["stage1"]["ODAEL"]["ODAEL"] == [None, None]
    assert summary["table4_n_slides"]["stage1"]["ODAEL"]["ODAEL"] == 0
    names = {e["effect"] for e in summary["effects"]}
    assert "ODAEL-trained vs MEL-trained (stage 1)" not in names
    assert "second stage vs first stage (MEL-trained)" in names
