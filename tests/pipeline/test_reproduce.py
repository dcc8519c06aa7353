"""``ccmct reproduce``: the dry-run plan of the paper's study on a root holding only the four real-format
databases, and the whole study end to end on the tiny synthetic root (smoke presets, smallest ablation
subsets), rerun skipping every step."""

from __future__ import annotations

import json
import re

import pytest

from ccmct.cli import main


def _plan_lines(text: str, status: str = "done|todo") -> list[str]:
    return [line for line in text.splitlines() if re.match(rf"\s+\[({status})\]", line)]


@pytest.mark.timeout(900)
def test_dry_run_prints_the_full_paper_plan_without_slides(real_format_root, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["reproduce", "--data-root", str(real_format_root), "--preset", "paper", "--out", str(out),
                 "--ablation", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "21 training + 11 test slides" in text and "variants MEL HEAEL ODAEL" in text
    assert "measured probe on" in text and "estimate" in text
    lines = _plan_lines(text, "done|todo|eval")
    names = [re.sub(r"\s{2,}.*", "", line.split("] ", 1)[1]) for line in lines]
    for variant in ("MEL", "HEAEL", "ODAEL"):
        for step in (f"train stage 1 ({variant})", f"train stage 2 ({variant})", f"infer {variant} train",
                     f"infer {variant} test", f"stage 2 {variant} test"):
            assert step in names
    assert [n for n in names if n.startswith("ablation run")] == [
        f"ablation run {n}" for n in ("5HPF", "10HPF", "50HPF", "3WSI", "6WSI", "12WSI", "complete")]
    assert any(n.startswith("Fig. 5") for n in names) and any("Table 4" in n for n in names)
    assert all("[todo]" in line for line in _plan_lines(text))
    # the paper preset's detector training: 61 pseudo-epochs of (5000 + 1000) patches in batches of 16
    assert "34125 detector batches" in text
    # inference tiles come from the paper's tumor areas when neither slides nor sizes are there
    assert re.search(r"infer ODAEL test\s+[1-9]\d* tiles\s+est\. \d", text)
    assert not out.exists()  # a dry run writes nothing


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_reproduce_smoke_study_end_to_end_and_rerun(tiny_root, tmp_path, capsys):
    out = tmp_path / "study"
    # as cheap as the whole study gets: smoke presets, one label set trained (tested on all three), the
    # smallest HPF and WSI subsets (the three label sets: the same steps three times, covered by the dry run)
    args = ["reproduce", "--data-root", str(tiny_root), "--preset", "smoke", "--variants", "ODAEL", "--ablation",
            "--hpf", "0.5", "--wsi", "1", "--out", str(out)]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert all("[todo]" in line for line in _plan_lines(first))
    summary = json.loads((out / "summary.json").read_text())
    for stage in ("stage1", "stage2"):
        assert set(summary["table4"][stage]) == {"ODAEL"}
        assert set(summary["table4"][stage]["ODAEL"]) == {"MEL", "HEAEL", "ODAEL"}
        cell = summary["table4"][stage]["ODAEL"]["ODAEL"]
        assert cell["paper"] == {"stage1": 0.628, "stage2": 0.820}[stage] and 0 < cell["threshold"] <= 1
    assert summary["table1"]["counts"]["ODAEL"]["mitotic_figure"]["paper"] == 44880
    assert summary["table1"]["counts"]["ODAEL"]["mitotic_figure"]["ours"] > 0
    assert set(summary["table3"]["ours"]) == {"ODAEL"} and len(summary["table3"]["ours"]["ODAEL"]["confusion"]) == 4
    assert summary["table3"]["paper"]["accuracy"] == pytest.approx(0.9139)
    assert set(summary["ablation"]["runs"]) == {"0.5HPF", "1WSI", "complete"}
    assert (out / summary["ablation"]["figure5"]).stat().st_size > 0
    report = (out / "report.md").read_text()
    for section in ("Table 1", "Table 3", "Table 4", "0.628", "0.820", "Fig. 5", "complete"):
        assert section in report
    timings = (out / "timings.json").read_text()
    # a rerun finds every step done and runs none (timings.json is only rewritten when a step runs)
    before = (out / "timings.json").stat().st_mtime_ns
    assert main(args) == 0
    second = capsys.readouterr().out
    steps = _plan_lines(second)
    assert steps and all("[done]" in line for line in steps)
    assert (out / "timings.json").stat().st_mtime_ns == before and (out / "timings.json").read_text() == timings


def test_bad_input_is_one_line_before_any_work(real_format_root, tmp_path, capsys):
    out = tmp_path / "study"
    # no slides: only a dry run may go on
    assert main(["reproduce", "--data-root", str(real_format_root), "--preset", "smoke", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds no slides" in err and len(err.strip().splitlines()) == 1
    assert main(["reproduce", "--data-root", str(tmp_path / "missing"), "--out", str(out), "--dry-run"]) == 2
    assert "missing" in capsys.readouterr().err
    # the study folder must not be one of the inputs
    assert main(["reproduce", "--data-root", str(real_format_root), "--out", str(real_format_root), "--dry-run"]) == 2
    assert not out.exists()
