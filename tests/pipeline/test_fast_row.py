"""The fast row of a study (``--fast``, docs/fast_mode.md): its comparison arithmetic on hand-made per-slide
counts, the reproduce plan with it, and end to end on the tiny root with smoke presets (one label set):
reproduce writes ``table4.fast`` and ``fast.*``, a rerun skips every step, the demo's report of the same folder
shows the same row without running a step, and ``benchmarks/fast_mode.py --study`` reuses the folder."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from ccmct.cli import main
from ccmct.evaluation.bootstrap import SlideCounts
from ccmct.pipeline import Study
from ccmct.pipeline.fast import FAST, fast_comparison, wall_times

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "fast_mode.py"


def _counts(tp, fp, fn, slides=("a", "b", "c")) -> SlideCounts:
    return SlideCounts(tuple(slides), np.array(tp), np.array(fp), np.array(fn))


def _f1(tp, fp, fn) -> float:
    return 2 * sum(tp) / (2 * sum(tp) + sum(fp) + sum(fn))


def test_fast_comparison_pairs_slides_and_seeds_and_times_both_paths(tmp_path):
    study = Study(out_dir=tmp_path / "study", data_root=tmp_path / "data", variants=("MEL", "ODAEL"), seeds=(0, 1))
    fast = {0: ([5, 3, 4], [1, 0, 2], [1, 2, 0]), 1: ([4, 4, 4], [2, 1, 0], [2, 1, 0])}
    stage2 = {0: ([6, 3, 4], [0, 0, 1], [0, 2, 0]), 1: ([5, 4, 3], [1, 1, 1], [1, 1, 1])}
    counts = {seed: {(FAST, "ODAEL", "ODAEL"): _counts(*fast[seed]), (2, "ODAEL", "ODAEL"): _counts(*stage2[seed]),
                     (2, "MEL", "ODAEL"): _counts(*stage2[seed])} for seed in (0, 1)}  # MEL: no fast row
    timings = {"infer ODAEL test": 30.0, "stage 2 ODAEL test": 10.0, "fast inference ODAEL test": 8.0,
               "seed 1: infer ODAEL test": 34.0, "seed 1: stage 2 ODAEL test": 6.0,
               "seed 1: fast inference ODAEL test": 12.0, "infer MEL test": 5.0}
    out = fast_comparison(study, counts, timings)
    assert out["variant"] == "ODAEL" and out["test"] == "ODAEL" and set(out["per_variant"]) == {"ODAEL"}
    expected = np.mean([_f1(*fast[s]) - _f1(*stage2[s]) for s in (0, 1)])
    assert out["delta_f1"] == pytest.approx(expected)
    assert out["f1_fast"] == pytest.approx(np.mean([_f1(*fast[s]) for s in (0, 1)]))
    lo, hi = out["delta_f1_ci"]
    assert lo <= out["delta_f1"] <= hi and out["n_seeds"] == 2 and out["n_slides"] == 3
    assert out["wall_ratio"] == pytest.approx((30 + 10 + 34 + 6) / (8 + 12))
    assert (out["paper_s"], out["fast_s"], out["timed_seeds"]) == (80.0, 20.0, [0, 1])
    assert out["candidate_recall"] is None  # no fast result files in this folder: nothing to measure
    # a seed whose timings lack a step is left out of the speed-up (never counted half)
    partial = {k: v for k, v in timings.items() if k != "seed 1: stage 2 ODAEL test"}
    assert wall_times(partial, "ODAEL", [0, 1], 0) == {"paper_s": 40.0, "fast_s": 8.0, "wall_ratio": 5.0,
                                                        "seeds": [0]}
    assert wall_times({}, "ODAEL", [0], 0)["wall_ratio"] is None
    # a slide missing from one result file drops out of the pair
    counts[1][(FAST, "ODAEL", "ODAEL")] = _counts(fast[1][0][:2], fast[1][1][:2], fast[1][2][:2], slides=("a", "b"))
    assert fast_comparison(study, counts, timings)["n_slides"] == 2


def test_dry_run_plans_the_fast_row_with_estimates(real_format_root, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["reproduce", "--data-root", str(real_format_root), "--preset", "smoke", "--variants", "ODAEL",
                 "--out", str(out), "--fast", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "fast mode on" in text and "per candidate-model training batch" in text
    assert re.search(r"\[todo\] train candidate \(ODAEL\)\s+8 candidate batches\s+est\. \d", text)  # smoke: 2 x 32/8
    for split in ("train", "test"):
        assert re.search(rf"\[todo\] fast inference ODAEL {split}\s+[1-9]\d* screen tiles, \d+ cells\s+est\. \d", text)
    assert "fast row: paired difference to stage 2" in text
    assert not out.exists()
    assert main(["reproduce", "--data-root", str(real_format_root), "--preset", "smoke", "--variants", "ODAEL",
                 "--out", str(out), "--dry-run"]) == 0
    assert "candidate" not in capsys.readouterr().out  # opt-in


@pytest.fixture(scope="module")
def fast_study(tiny_root, tmp_path_factory) -> tuple[Path, list[str]]:
    """``ccmct reproduce --fast`` on the tiny root, smoke presets, ODAEL only (shared by the tests below)."""
    out = tmp_path_factory.mktemp("fast_study") / "study"
    args = ["reproduce", "--data-root", str(tiny_root), "--preset", "smoke", "--variants", "ODAEL", "--fast",
            "--out", str(out)]
    assert main(args) == 0
    return out, args


def _plan_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"\s+\[(done|todo)\]", line)]


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_reproduce_writes_the_fast_row_and_a_rerun_skips_it(fast_study, capsys):
    out, args = fast_study
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["table4"]) == {"stage1", "stage2", "fast"}
    cells = summary["table4"]["fast"]["ODAEL"]
    assert set(cells) == {"MEL", "HEAEL", "ODAEL"} and all(c["paper"] is None for c in cells.values())
    assert 0.2 <= cells["ODAEL"]["threshold"] <= 1  # chosen on the training slides, stage 2's floor
    fast = summary["fast"]
    assert fast["variant"] == "ODAEL" and fast["test"] == "ODAEL" and fast["n_seeds"] == 1
    assert len(fast["delta_f1_ci"]) == 2 and fast["n_slides"] == 1
    assert fast["wall_ratio"] > 0 and fast["paper_s"] > 0 and fast["fast_s"] > 0
    assert fast["mitoses"] > 0 and 0 <= fast["candidate_recall"] <= 1
    timings = json.loads((out / "timings.json").read_text())
    assert {"train candidate (ODAEL)", "fast inference ODAEL train", "fast inference ODAEL test"} <= set(timings)
    assert fast["wall_ratio"] == pytest.approx(
        (timings["infer ODAEL test"] + timings["stage 2 ODAEL test"]) / timings["fast inference ODAEL test"])
    from ccmct.data.results import read_metadata

    meta = read_metadata(out / "results" / "Fast-ODAEL-test.npz")
    assert meta["mode"] == "fast" and meta["classifier"].endswith("CellClassifier-ODAEL")
    report = (out / "report.md").read_text()
    assert "fast: trained on" in report and "Fast mode vs the paper's two-stage pipeline" in report
    # a rerun plans every step as done (the fast ones included) and runs none
    before = (out / "timings.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    lines = _plan_lines(capsys.readouterr().out)
    assert any("fast inference ODAEL test" in line for line in lines)
    assert lines and all("[done]" in line for line in lines)
    assert (out / "timings.json").stat().st_mtime_ns == before


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_demo_report_of_the_same_folder_has_the_fast_row(fast_study, tiny_root, tmp_path):
    from ccmct.demo import DemoPlan, run_demo

    study = tmp_path / "study"
    shutil.copytree(fast_study[0], study)
    reproduced = json.loads((study / "summary.json").read_text())
    before = (study / "timings.json").read_text()
    # the demo shares the study layout: every step is found done, only the report and the viewer are written
    summary = run_demo(DemoPlan(out_dir=study, preset="smoke", data_root=tiny_root, variants=("ODAEL",), fast=True),
                       progress=False)
    assert (study / "timings.json").read_text() == before
    assert summary["table4"]["fast"]["ODAEL"] == {t: c["f1"] for t, c in reproduced["table4"]["fast"]["ODAEL"].items()}
    assert summary["table4"]["stage2"]["ODAEL"]["ODAEL"] == reproduced["table4"]["stage2"]["ODAEL"]["ODAEL"]["f1"]
    assert summary["thresholds"]["fast"]["ODAEL"] == reproduced["table4"]["fast"]["ODAEL"]["ODAEL"]["threshold"]
    assert "fast" in summary["table4_mean"] and "fast" in summary["table4_ci"]["0"]
    for key in ("delta_f1", "delta_f1_ci", "candidate_recall", "wall_ratio"):
        assert summary["fast"][key] == reproduced["fast"][key]
    assert {e["effect"] for e in summary["effects"]} == {"second stage vs first stage (ODAEL-trained)"}
    report = (study / "report.md").read_text()
    assert "**Fast mode**" in report and "Fast mode vs the paper's two-stage pipeline" in report
    assert "fast inference ODAEL test" in report  # the timings section


def _benchmark():
    spec = importlib.util.spec_from_file_location("fast_mode_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_benchmark_reuses_a_finished_study(fast_study, tmp_path, capsys):
    study = fast_study[0]
    bench = _benchmark()
    models = {p: p.stat().st_mtime_ns for p in (study / "models").rglob("weights.pt")}
    out = tmp_path / "bench"
    assert bench.main(["--study", str(study), "--variant", "ODAEL", "--out", str(out), "--bootstrap", "200"]) == 0
    document = json.loads((out / "fast_mode.json").read_text())
    for key in ("f1_fast", "f1_paper", "delta_f1", "delta_f1_ci", "candidate_recall", "flops_ratio", "wall_ratio"):
        assert key in document
    assert document["flops_ratio"] > 0 and document["wall_ratio"] > 0 and len(document["delta_f1_ci"]) == 2
    assert {"reading_s", "screening_s", "classifying_s"} <= set(document["fast"])
    assert {"detector_incl_reading_s", "classifying_s"} <= set(document["paper"])
    assert document["study"]["seeds"] == [0] and document["study"]["study_wall"]["wall_ratio"] > 0
    assert document["training_seconds"]["candidate"] is not None
    summary = json.loads((study / "summary.json").read_text())
    assert document["delta_f1"] == pytest.approx(summary["fast"]["delta_f1"])  # the study report's numbers
    assert document["candidate_recall"] == pytest.approx(summary["fast"]["candidate_recall"])
    assert not (out / "models").exists() and not (out / "results-train").exists()  # nothing trained or re-run
    assert {p: p.stat().st_mtime_ns for p in (study / "models").rglob("weights.pt")} == models
    # a folder without the fast mode's models: one line, exit 2
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "summary.json").write_text(json.dumps({"data_root": summary["data_root"], "seeds": [0]}))
    capsys.readouterr()
    assert bench.main(["--study", str(bare), "--out", str(tmp_path / "b2")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no complete detector model of ODAEL" in err
