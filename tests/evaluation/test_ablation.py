"""Ablation tables and Fig. 5 from run summaries; the paper's published values; the runner's planning."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest

from ccmct.config.dataset import REAL_SLIDES, REAL_TEST_SLIDES
from ccmct.errors import FileProblem, ResultsError
from ccmct.evaluation.ablation import (
    PAPER_ABLATION,
    PAPER_COMPLETE_TRAIN_AREA_MM2,
    PAPER_HPF_CROP_TEST,
    ablation_table,
    compare_with_paper,
    figure5_points,
    is_real_test_set,
    load_runs,
    paper_runs,
    plot_figure5,
    read_summary,
)
from ccmct.evaluation.ablation_runs import write_run_summary
from ccmct.pipeline.ablation import plan_runs

matplotlib.use("Agg")


def _f1(tp, fp, fn):
    return 2 * tp / (2 * tp + fp + fn)


def test_paper_values_are_consistent_with_their_counts():
    for run in PAPER_ABLATION:
        for tp, fp, fn, f1 in (run.test_stage1, run.test_stage2):
            assert _f1(tp, fp, fn) == pytest.approx(f1, abs=6e-5), run.name
        # every run is tested on the same 11 slides: TP + FN = the 22476 ODAEL test mitoses (§2.1)
        assert run.test_stage2[0] + run.test_stage2[2] == 22476
    for stage1, stage2 in PAPER_HPF_CROP_TEST.values():
        for tp, fp, fn, f1 in (stage1, stage2):
            assert _f1(tp, fp, fn) == pytest.approx(f1, abs=6e-5)
    # training tumor area = the paper's total 4842.06 mm² minus the 11 test slides' areas (Table 1)
    test_area = sum(s.tumor_area_mm2 for s in REAL_SLIDES if s.split == "test")
    assert PAPER_COMPLETE_TRAIN_AREA_MM2 == pytest.approx(4842.06 - test_area, abs=0.05)
    fig5 = {r.name: r.test_stage2[3] for r in PAPER_ABLATION}
    assert fig5 == {"5HPF": 0.5831, "10HPF": 0.6761, "50HPF": 0.7701, "3WSI": 0.7720, "6WSI": 0.8044,
                    "12WSI": 0.8179, "complete": 0.8200}
    complete = next(r for r in PAPER_ABLATION if r.name == "complete")
    assert complete.train_mitoses == sum(s.mitoses_odael for s in REAL_SLIDES if s.split == "train") == 22404


def _summary(tmp_path, name, kind, n_slides, mf, area, f1s, *, preset="smoke"):
    def res(f1, tp):  # a consistent (tp, fp, fn) for the F1
        fn = tp // 4
        fp = round(2 * tp / f1 - 2 * tp - fn)
        return {"tp": tp, "fp": fp, "fn": fn, "f1": _f1(tp, fp, fn)}

    training_set = {"name": name, "kind": kind, "n": n_slides, "n_train_slides": n_slides, "train_mitoses": mf,
                    "train_area_mm2": area, "train_slides": [f"s{i}.svs" for i in range(n_slides)]}
    return write_run_summary(tmp_path / name, training_set=training_set, variant="ODAEL", preset=preset,
                             trainval={"stage1": {"f1": 0.5, "threshold": 0.6}, "stage2": {"f1": 0.7, "threshold": 0.4}},
                             test={"stage1": res(f1s[0], 100), "stage2": res(f1s[1], 120)}, test_root=tmp_path)


@pytest.fixture()
def runs_dir(tmp_path):
    _summary(tmp_path, "10HPF", "hpf", 4, 30, 9.48, (0.3, 0.5))
    _summary(tmp_path, "5HPF", "hpf", 4, 12, 4.74, (0.2, 0.4))
    _summary(tmp_path, "2WSI", "wsi", 2, 80, None, (0.4, 0.6))
    _summary(tmp_path, "complete", "complete", 4, 200, 60.0, (0.5, 0.7))
    return tmp_path


def test_load_runs_and_table(runs_dir):
    runs = load_runs(runs_dir)
    assert runs["name"].tolist() == ["5HPF", "10HPF", "2WSI", "complete"]
    table = ablation_table(runs)
    assert table.loc["10HPF", "train MF"] == 30
    assert table.loc["complete", "stage 2 test F1 (Fig. 5)"] == pytest.approx(0.7, abs=2e-3)
    assert table.loc["5HPF", "stage 1 trainval F1 @ thr"] == "0.5000 @ 0.60"
    tp, fp, fn = (int(v) for v in table.loc["2WSI", "stage 2 test TP/FP/FN"].split("/"))
    assert tp == 120 and _f1(tp, fp, fn) == pytest.approx(0.6, abs=2e-3)
    both = compare_with_paper(runs)
    assert list(both.index) == ["5HPF", "10HPF", "complete"]
    assert both.loc["10HPF", "paper F1 (dual stage)"] == 0.6761


def test_figure5_points_and_plot(runs_dir):
    runs = load_runs(runs_dir)
    area = figure5_points(runs, "area")
    assert area["name"].tolist() == ["5HPF", "10HPF", "complete"]
    np.testing.assert_allclose(area["x"], [4.74, 9.48, 60.0])
    wsi = figure5_points(runs, "wsi")
    assert wsi["name"].tolist() == ["2WSI", "complete"] and wsi["x"].tolist() == [2, 4]
    fig = plot_figure5(runs, reference=True)
    ax_a, ax_b = fig.axes
    ours_a, paper_a = ax_a.get_lines()
    np.testing.assert_allclose(ours_a.get_ydata(), area["f1"])
    np.testing.assert_allclose(paper_a.get_ydata(), [0.5831, 0.6761, 0.7701, 0.8200])
    np.testing.assert_allclose(paper_a.get_xdata(), [24.885, 49.77, 248.85, PAPER_COMPLETE_TRAIN_AREA_MM2])
    assert [t.get_text() for t in ax_b.texts][:2] == ["80 MF", "200 MF"]
    assert "4432 MF" in [t.get_text() for t in ax_b.texts]
    assert len(plot_figure5(runs).axes[1].get_lines()) == 1  # no reference line unless asked
    with pytest.raises(ValueError, match="panel"):
        figure5_points(runs, "x")


def test_paper_runs_plot_alone():
    paper = paper_runs()
    assert figure5_points(paper, "wsi")["x"].tolist() == [3, 6, 12, 21]
    assert figure5_points(paper, "wsi")["train_mitoses"].tolist() == [4432, 5798, 12370, 22404]


def test_summary_errors(tmp_path):
    with pytest.raises(ResultsError, match="no \\*/summary.json"):
        load_runs(tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "summary.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(ResultsError, match="summary.json: not an ablation run summary"):
        read_summary(tmp_path / "x")
    with pytest.raises(ResultsError, match="no run summary"):
        read_summary(tmp_path / "y" / "summary.json")


def test_is_real_test_set():
    assert is_real_test_set(sorted(REAL_TEST_SLIDES))
    assert not is_real_test_set(["a.svs"])


def test_plan_runs(tmp_path):
    for name, kind in (("5HPF", "hpf"), ("3WSI", "wsi")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "subset.json").write_text(json.dumps({"kind": kind, "name": name}))
    plan = plan_runs(tmp_path, full_root=tmp_path / "full")
    assert plan == {"3WSI": tmp_path / "3WSI", "5HPF": tmp_path / "5HPF", "complete": tmp_path / "full"}
    assert list(plan_runs(tmp_path, full_root="f", subsets=["5HPF"])) == ["5HPF"]
    with pytest.raises(FileProblem, match="no subset\\(s\\) 7HPF"):
        plan_runs(tmp_path, full_root="f", subsets=["7HPF"])


def test_training_set_summary_of_complete_and_subset_roots(tiny_root, tmp_path):
    from ccmct.config.dataset import MITOTIC_FIGURE
    from ccmct.config.paths import DataRoot
    from ccmct.data.sliderunner import SlideRunnerDB
    from ccmct.data.stats import table1
    from ccmct.data.subsets import create_wsi_subset
    from ccmct.evaluation.ablation_runs import training_set_summary

    root = DataRoot(tiny_root)
    train = sorted(n for n, s in root.split().items() if s == "train")
    with SlideRunnerDB.open(root.database("ODAEL")) as db:
        mitoses = db.spots(classes=[MITOTIC_FIGURE])
        per_slide = {n: int((mitoses["slide"] == db.find_slide(n)).sum()) for n in train}
    complete = training_set_summary(tiny_root)
    assert complete["kind"] == "complete" and complete["train_slides"] == train
    assert complete["train_mitoses"] == sum(per_slide.values())
    areas = table1(tiny_root).set_index("filename")["tumor_area_mm2"]
    assert complete["train_area_mm2"] == pytest.approx(areas[train].sum()) and complete["train_area_mm2"] > 0
    manifest = create_wsi_subset(tiny_root, tmp_path / "1WSI", 1)
    one = training_set_summary(tmp_path / "1WSI")
    assert (one["name"], one["kind"], one["n_train_slides"]) == ("1WSI", "wsi", 1)
    kept = manifest["train_slides"][0]
    assert one["train_mitoses"] == per_slide[kept] and one["train_area_mm2"] == pytest.approx(areas[kept])
