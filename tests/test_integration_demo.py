"""``ccmct demo`` end to end on the tiny synthetic set with smoke presets: every step runs, the report and
summary are written, a rerun reuses every step, a second training seed adds only its own steps and the
multi-seed summary (per-seed tables, mean and sd, the paper's effects with paired intervals), and a result
file whose metadata lists a failed slide is reported and then redone. (The quick-preset demo and its effects
are measured by hand: docs/benchmarks.md.)"""

from __future__ import annotations

import json

import pytest

from ccmct.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # end to end: longer than the default timeout


def test_demo_runs_and_reruns(tiny_root, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--preset", "smoke", "--data-root", str(tiny_root), "--json"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["table4"]) == {"stage1", "stage2"}
    for stage in ("stage1", "stage2"):
        assert set(summary["table4"][stage]) == {"MEL", "ODAEL"}
        assert set(summary["table4"][stage]["ODAEL"]) == {"MEL", "HEAEL", "ODAEL"}
    assert {"train stage 1 (MEL)", "train stage 1 (ODAEL)", "train stage 2 (MEL)", "train stage 2 (ODAEL)",
            "infer ODAEL test", "stage 2 ODAEL test", "evaluate + report"} <= set(summary["timings_s"])
    # each detector is re-scored by the classifier of its own label set, started from that detector's backbone
    from ccmct.data.results import read_metadata
    from ccmct.models.classifier import load_classifier_config

    for variant in ("MEL", "ODAEL"):
        meta = read_metadata(out / "results" / f"2ndstage_RetinaNet-{variant}-test.npz")
        assert meta["classifier_variant"] == variant
        assert meta["combine"] == summary["second_stage_score"] == "replace"  # smoke: the paper's P(MF)
        start = load_classifier_config(out / "models" / f"CellClassifier-{variant}").training["start"]
        assert start == f"backbone of first-stage model RetinaNet-{variant}"
    report = (out / "report.md").read_text()
    for section in ("Table 1", "Table 4", "F1 vs threshold", "Example detections", "hotspot", "viewer/index.html",
                    "**Stage 2** (score: the classifier's P(mitotic figure), as the paper"):
        assert section in report
    # the viewer site of the test slides (ODAEL detector, both stages) opens in headless Chromium
    from viewer.chromium import site_opens  # tests/viewer/chromium.py

    assert summary["viewer"] == "viewer/index.html"
    assert site_opens(out / "viewer")["label"] == "stage 1: RetinaNet"
    for figure in ("threshold_curves.png", "examples.png"):
        assert (out / "figures" / figure).stat().st_size > 0
    # a slide that fits inside one 10-HPF window (the tiny ones) gets the reason instead of a flat map
    hotspot = out / "figures" / "hotspot.png"
    assert (hotspot.exists() and hotspot.stat().st_size > 0) != ("hotspot map not drawn" in report)
    capsys.readouterr()
    # a rerun reuses every step: the model files are not rewritten
    weights = out / "models" / "RetinaNet-ODAEL" / "weights.pt"
    before = weights.stat().st_mtime_ns
    assert main(["demo", "--out", str(out), "--preset", "smoke", "--data-root", str(tiny_root), "--json"]) == 0
    assert weights.stat().st_mtime_ns == before
    assert json.loads(capsys.readouterr().out)["table4"] == summary["table4"]

    # a second training seed on the same data: seed 0 (the single-seed folder) is reused, seed 1 trains apart
    assert main(["demo", "--out", str(out), "--preset", "smoke", "--data-root", str(tiny_root), "--json",
                 "--seeds", "0", "1"]) == 0
    assert weights.stat().st_mtime_ns == before
    multi = json.loads(capsys.readouterr().out)
    assert (out / "seeds" / "seed-1" / "models" / "RetinaNet-ODAEL" / "weights.pt").exists()
    assert "seed 1: train stage 1 (ODAEL)" in multi["timings_s"]
    assert multi["seeds"] == [0, 1] and set(multi["per_seed"]) == {"0", "1"}
    assert multi["per_seed"]["0"] == summary["table4"] == multi["table4"]
    seed1 = multi["per_seed"]["1"]
    for stage in ("stage1", "stage2"):
        for train in ("MEL", "ODAEL"):
            for test in ("MEL", "HEAEL", "ODAEL"):
                pair = [multi["per_seed"][s][stage][train][test] for s in ("0", "1")]
                if None in pair:
                    continue
                assert multi["table4_mean"][stage][train][test] == pytest.approx(sum(pair) / 2)
                assert multi["table4_sd"][stage][train][test] == pytest.approx(abs(pair[0] - pair[1]) / 2 ** 0.5)
                lo, hi = multi["table4_ci"]["1"][stage][train][test]
                assert lo <= seed1[stage][train][test] <= hi
                assert multi["table4_n_slides"][stage][train][test] == 1  # the tiny set has one test slide
    names = {e["effect"] for e in multi["effects"]}
    assert names == {"second stage vs first stage (MEL-trained)", "second stage vs first stage (ODAEL-trained)",
                     "ODAEL-trained vs MEL-trained (stage 1)", "ODAEL-trained vs MEL-trained (stage 2)"}
    for e in multi["effects"]:
        assert e["n_seeds"] == 2 and e["n_slides"] == 1
        assert e["verdict"] == ("holds" if e["delta_f1_ci"][0] is not None and e["delta_f1_ci"][0] > 0
                                else "not shown")
        if e["delta_f1"] is not None:
            assert e["delta_f1"] == pytest.approx(e["f1_a"] - e["f1_b"])
    assert multi["failed_slides"] == {}
    report = (out / "report.md").read_text()
    assert "2 seeds, 1 slide)" in report and "Effects of the paper" in report and "Every seed" in report

    # a slide that failed in inference: reported (summary and report), never silently dropped ...
    from ccmct.data.results import read_results, write_results
    from ccmct.demo import DemoPlan
    from ccmct.demo.report import write_report

    stage1 = out / "seeds" / "seed-1" / "results" / "RetinaNet-ODAEL-test.npz"
    complete, meta = read_results(stage1), read_metadata(stage1)
    slide = next(iter(complete))
    write_results(stage1, {}, metadata={**meta, "failed": {slide: "cannot read tile (0, 0)"}})
    plan = DemoPlan(out_dir=out, preset="smoke", data_root=tiny_root, seeds=(0, 1))
    reported = write_report(plan, timings_s={})
    assert reported["failed_slides"]["1"]["RetinaNet-ODAEL-test.npz"] == {slide: "failed: cannot read tile (0, 0)"}
    assert reported["table4_n_slides"]["stage1"]["ODAEL"]["ODAEL"] == 0  # seed 1 has no test slide left
    assert f"`{slide}`: failed: cannot read tile (0, 0)" in (out / "report.md").read_text()
    # ... and the step is unfinished: the next run redoes it (and the re-scoring that depends on it)
    assert main(["demo", "--out", str(out), "--preset", "smoke", "--data-root", str(tiny_root), "--json",
                 "--seeds", "0", "1"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["failed_slides"] == {}
    assert set(read_results(stage1)) == set(complete) and not read_metadata(stage1)["failed"]
    assert read_metadata(out / "seeds" / "seed-1" / "results" / "2ndstage_RetinaNet-ODAEL-test.npz")["stage1"] \
        == read_metadata(stage1)
    assert again["per_seed"] == multi["per_seed"]
