"""``ccmct demo`` end to end on the tiny synthetic set with smoke presets: every step runs, the report and
summary are written, and a rerun reuses every step. (The quick-preset demo and its effects are measured by
hand: docs/benchmarks.md.)"""

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
        start = load_classifier_config(out / "models" / f"CellClassifier-{variant}").training["start"]
        assert start == f"backbone of first-stage model RetinaNet-{variant}"
    report = (out / "report.md").read_text()
    for section in ("Table 1", "Table 4", "F1 vs threshold", "Example detections", "hotspot", "viewer/index.html"):
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
