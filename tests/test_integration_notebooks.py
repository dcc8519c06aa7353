"""Every notebook executed top to bottom with papermill, in pipeline order, on the ``tiny`` synthetic set
with ``smoke`` presets, sharing one data root and one model/result folder (``ccmct notebooks``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccmct.cli import main
from ccmct.config.paths import DataRoot
from ccmct.data.results import read_results, result_filename
from ccmct.evaluation.ablation import read_summary
from ccmct.pipeline import Layout
from ccmct.types import VARIANTS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # end to end: longer than the default timeout

PIPELINE_ORDER = [
    "Setup.ipynb",
    "RetinaNet-CCMCT-MEL.ipynb", "RetinaNet-CCMCT-HEAEL.ipynb", "RetinaNet-CCMCT-ODAEL.ipynb",
    "2nd_stage/CellClassification-MEL.ipynb", "2nd_stage/CellClassification-HEAEL.ipynb",
    "2nd_stage/CellClassification-ODAEL.ipynb",
    "Evaluation.ipynb",
]


def _text(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    parts = []
    for cell in cells:
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            parts.append("".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def pipeline(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("notebooks")
    code = main(["notebooks", "--data-root", str(tiny_root), "--synthetic", "tiny", "--preset", "smoke",
                 "--out", str(out), "--hpf", "0.5", "--wsi", "1", "--ablation-subsets", "0.5HPF",
                 "--no-complete"])
    assert code == 0
    return out


def test_every_notebook_ran_in_order(pipeline):
    executed = pipeline / "notebooks"
    for name in PIPELINE_ORDER + ["AblationStudy_Evaluation.ipynb"]:
        path = executed / name
        assert path.exists(), name
        cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        assert all(c["execution_count"] is not None for c in cells), f"{name}: not every cell ran"
    mtimes = [(executed / name).stat().st_mtime for name in PIPELINE_ORDER]
    assert mtimes == sorted(mtimes)
    assert (pipeline / "ablation_runs" / "0.5HPF" / "Ablation-Train.ipynb").exists()


def test_models_and_results_are_shared(pipeline, tiny_root):
    root = DataRoot(tiny_root)
    for variant in VARIANTS:
        assert (pipeline / "models" / f"RetinaNet-{variant}" / "config.json").exists()
        assert (pipeline / "models" / f"CellClassifier-{variant}" / "config.json").exists()
        for split, slides in (("train", root.split()), ("test", root.split())):
            names = {n for n, s in slides.items() if s == split}
            for stage in (1, 2):
                results = read_results(pipeline / "results" / result_filename(variant, split, stage=stage))
                assert set(results) == names


def test_evaluation_notebook_shows_table4(pipeline):
    text = _text(pipeline / "notebooks" / "Evaluation.ipynb")
    for variant in VARIANTS:
        assert variant in text
    assert "strict" in text


def test_ablation_run_summary_and_figure(pipeline, tiny_root):
    summary = read_summary(pipeline / "ablation_runs" / "0.5HPF")
    assert summary["preset"] == "smoke" and summary["kind"] == "hpf"
    strict = summary["test"]["stage2"]["strict"]
    from ccmct.config.dataset import MITOTIC_FIGURE
    from ccmct.data.sliderunner import SlideRunnerDB

    root = DataRoot(tiny_root)
    with SlideRunnerDB.open(root.database("ODAEL")) as db:
        uids = {db.find_slide(n) for n in root.test_slides()}
        n_test = int(db.spots(classes=[MITOTIC_FIGURE])["slide"].isin(uids).sum())
    assert strict["tp"] + strict["fn"] == n_test  # scored on the full test slides
    assert Layout(pipeline).figure5.stat().st_size > 0  # the study layout: figures/figure5.png
    evaluation = pipeline / "notebooks" / "AblationStudy_Evaluation.ipynb"
    outputs = [o for c in json.loads(evaluation.read_text())["cells"] for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 1  # Fig. 5, both panels
    assert "paper reference line: False" in _text(evaluation)  # synthetic test slides: no published values


def test_ablation_rerun_is_skipped(pipeline, tiny_root):
    executed = pipeline / "ablation_runs" / "0.5HPF" / "Ablation-Train.ipynb"
    before = executed.stat().st_mtime_ns
    assert main(["ablation", "run", "--subsets-dir", str(pipeline / "ablation"), "--data-root", str(tiny_root),
                 "--preset", "smoke", "--subsets", "0.5HPF", "--out", str(pipeline / "ablation_runs"),
                 "--json"]) == 0
    assert executed.stat().st_mtime_ns == before
