"""The reproduce report: Table 1 / 3 / 4 beside the paper's values, from a study folder's files (result files
made from the tiny root's ground truth, a classifier's confusion table)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ccmct.config.paths import DataRoot
from ccmct.data.results import write_results
from ccmct.evaluation import load_ground_truth
from ccmct.pipeline import Study
from ccmct.pipeline.report import write_study_report


def _boxes(gt: dict, keep: float, score: float) -> dict:
    """Detections at the ground truth's first ``keep`` share of mitoses (24 px boxes), one score."""
    out = {}
    for name, xy in gt.items():
        xy = xy[: int(round(len(xy) * keep))]
        out[name] = np.column_stack([xy - 12, xy + 12, np.zeros(len(xy)), np.full(len(xy), score)])
    return out


def test_report_puts_each_number_beside_the_papers(tiny_root, tmp_path):
    study = Study(out_dir=tmp_path / "study", data_root=tiny_root, preset="smoke", variants=("ODAEL",))
    root = DataRoot(tiny_root)
    gt = load_ground_truth(root.database("ODAEL"))
    for split in ("train", "test"):
        part = {k: v for k, v in gt.items() if k in root.slides(split)}
        write_results(study.result_path("ODAEL", split, 1), _boxes(part, 0.5, 0.9))  # recall 0.5, no FP
        write_results(study.result_path("ODAEL", split, 2), _boxes(part, 1.0, 0.9))  # every mitosis, no FP
    classifier = study.classifier_dir("ODAEL")
    classifier.mkdir(parents=True)
    pd.DataFrame([[9, 1, 0, 0], [2, 8, 0, 0], [0, 0, 10, 0], [0, 0, 0, 10]],
                 index=["MF", "LA", "Gr", "TC"], columns=["MF", "LA", "Gr", "TC"]).to_csv(classifier / "confusion.csv")
    (classifier / "metrics.json").write_text(json.dumps({"test_accuracy": 0.925}))

    summary = write_study_report(study, timings_s={"train stage 1 (ODAEL)": 1.5})
    t4 = summary["table4"]
    assert t4["stage2"]["ODAEL"]["ODAEL"]["f1"] == 1.0 and t4["stage2"]["ODAEL"]["ODAEL"]["paper"] == 0.820
    stage1 = t4["stage1"]["ODAEL"]["ODAEL"]
    assert stage1["paper"] == 0.628 and abs(stage1["f1"] - 2 / 3) < 0.05  # recall 0.5, precision 1
    assert set(t4["stage1"]["ODAEL"]) == {"MEL", "HEAEL", "ODAEL"}  # tested on every label set present
    n_mf = sum(len(v) for v in gt.values())
    assert summary["table1"]["counts"]["ODAEL"]["mitotic_figure"] == {"ours": n_mf, "paper": 44880}
    assert summary["table3"]["ours"]["ODAEL"] == {"confusion": [[9, 1, 0, 0], [2, 8, 0, 0], [0, 0, 10, 0],
                                                                [0, 0, 0, 10]], "accuracy": 0.925}
    report = (study.out_dir / "report.md").read_text()
    assert "1.000 / 0.820" in report and "accuracy 0.9250" in report and "| ODAEL mitotic_figure | " in report
    assert "train stage 1 (ODAEL): 1.5" in report


def test_ablation_part_draws_fig5_and_sets_each_run_beside_the_paper(tmp_path):
    from ccmct.evaluation.ablation_runs import write_run_summary
    from ccmct.pipeline.report import ablation_part

    study = Study(out_dir=tmp_path / "study", data_root=tmp_path / "data", preset="smoke", ablation=True)
    runs = study.layout.ablation_runs_dir
    for name, kind, n, mf, f1 in (("5HPF", "hpf", 21, 400, 0.5), ("3WSI", "wsi", 3, 4000, None),
                                  ("complete", "complete", 21, 22000, 0.75)):
        counts = {"tp": 10, "fp": 5, "fn": 5, "f1": f1}
        write_run_summary(runs / name, training_set={"name": name, "kind": kind, "n": n, "n_train_slides": n,
                                                     "train_mitoses": mf, "train_area_mm2": 24.9},
                          variant="ODAEL", preset="smoke", trainval={s: {"f1": 0.5, "threshold": 0.5} for s in
                                                                     ("stage1", "stage2")},
                          test={"stage1": counts, "stage2": counts}, test_root=tmp_path)
    part = ablation_part(study)
    assert part["runs"]["5HPF"] == {"f1_stage2": 0.5, "train_mitoses": 400}
    assert part["runs"]["3WSI"]["f1_stage2"] is None  # undefined F1 stays undefined
    assert part["vs_paper"]["complete"]["paper F1 (dual stage)"] == 0.82
    assert part["vs_paper"]["5HPF"]["paper train MF"] == 378
    assert (study.out_dir / part["figure5"]).stat().st_size > 0


def test_an_ablation_run_is_redone_when_its_second_stage_score_or_detector_schedule_is_not_the_presets(tmp_path):
    import dataclasses

    from ccmct.config.presets import detector_preset
    from ccmct.evaluation.ablation_runs import write_run_summary
    from ccmct.pipeline.ablation import run_done
    from ccmct.training.run import schedule_of

    counts = {"tp": 10, "fp": 5, "fn": 5, "f1": 0.5}
    common = dict(training_set={"name": "5HPF", "kind": "hpf", "n": 5, "n_train_slides": 21, "train_mitoses": 400,
                                "train_area_mm2": 1.0},
                  variant="ODAEL", trainval={s: {"f1": 0.5, "threshold": 0.5} for s in ("stage1", "stage2")},
                  test={"stage1": counts, "stage2": counts}, test_root=tmp_path)
    quick = schedule_of("quick")
    write_run_summary(tmp_path / "quick-old", preset="quick", detector_schedule=quick,
                      **common)  # scored P(MF) alone (the default)
    write_run_summary(tmp_path / "quick-new", preset="quick", stage2_combine="geometric_mean",
                      detector_schedule=quick, **common)
    # a detector trained with another schedule (here: weight averaging on): the run is redone
    averaged = schedule_of(dataclasses.replace(detector_preset("quick"), weight_average=0.97))
    write_run_summary(tmp_path / "quick-averaged", preset="quick", stage2_combine="geometric_mean",
                      detector_schedule=averaged, **common)
    # recorded before the preset had the field: the same schedule as the preset that leaves it off
    before_field = {k: v for k, v in quick.items() if k != "weight_average"}
    write_run_summary(tmp_path / "quick-before-field", preset="quick", stage2_combine="geometric_mean",
                      detector_schedule=before_field, **common)
    write_run_summary(tmp_path / "quick-unrecorded", preset="quick", stage2_combine="geometric_mean", **common)
    write_run_summary(tmp_path / "smoke", preset="smoke", detector_schedule=schedule_of("smoke"), **common)
    assert not run_done(tmp_path / "quick-old", "quick")
    assert run_done(tmp_path / "quick-new", "quick")
    assert not run_done(tmp_path / "quick-averaged", "quick")
    assert run_done(tmp_path / "quick-before-field", "quick")
    assert not run_done(tmp_path / "quick-unrecorded", "quick")
    assert run_done(tmp_path / "smoke", "smoke") and not run_done(tmp_path / "smoke", "quick")
