"""The ablation notebooks execute: the training notebook on a subset of the tiny synthetic root (smoke
preset, through ``ccmct ablation run``), and the evaluation notebook on the runs it leaves."""

from __future__ import annotations

import json
from pathlib import Path

import papermill
import pytest

from ccmct.cli import main
from ccmct.config.paths import DataRoot
from ccmct.data.results import read_results
from ccmct.evaluation.ablation import load_runs, read_summary

REPO = Path(__file__).resolve().parents[2]
EVAL_NOTEBOOK = REPO / "AblationStudy_Evaluation.ipynb"
TRAIN_NOTEBOOK = REPO / "AblationStudy" / "Ablation-Train.ipynb"


def _outputs(path: Path) -> list[dict]:
    return [o for cell in json.loads(path.read_text())["cells"] for o in cell.get("outputs", [])]


@pytest.mark.parametrize("notebook", [EVAL_NOTEBOOK, TRAIN_NOTEBOOK], ids=lambda p: p.name)
def test_notebooks_are_committed_clean(notebook):
    nb = json.loads(notebook.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)


@pytest.fixture(scope="module")
def ablation_runs(tiny_root, tmp_path_factory):
    """HPF and WSI subsets of the tiny root, and one smoke run (on the HPF crops) through the CLI."""
    base = tmp_path_factory.mktemp("ablation")
    subsets, runs = base / "subsets", base / "runs"
    assert main(["ablation", "hpf", "--data-root", str(tiny_root), "--hpf", "0.5", "--out", str(subsets)]) == 0
    assert main(["ablation", "wsi", "--data-root", str(tiny_root), "--wsi", "1", "--out", str(subsets)]) == 0
    assert main(["ablation", "run", "--subsets-dir", str(subsets), "--data-root", str(tiny_root), "--preset", "smoke",
                 "--subsets", "0.5HPF", "--out", str(runs)]) == 0
    return subsets, runs


@pytest.mark.slow
def test_training_notebook_runs_on_a_subset(tiny_root, ablation_runs):
    subsets, runs = ablation_runs
    assert sorted(p.name for p in runs.iterdir()) == ["0.5HPF"]  # only the subset asked for, no 'complete'
    run = runs / "0.5HPF"
    summary = read_summary(run)
    assert summary["preset"] == "smoke" and summary["name"] == "0.5HPF" and summary["kind"] == "hpf"
    for name in ("detector/config.json", "classifier/config.json", "Ablation-Train.ipynb",
                 "RetinaNet-ODAEL-train.npz", "2ndstage_RetinaNet-ODAEL-test.npz"):
        assert (run / name).exists(), name
    assert summary["train_slides"] == sorted(n for n, s in DataRoot(subsets / "0.5HPF").split().items() if s == "train")
    assert all(name.endswith(".tiff") for name in summary["train_slides"])
    assert read_results(run / "RetinaNet-ODAEL-train.npz").keys() == set(summary["train_slides"])
    assert read_results(run / "RetinaNet-ODAEL-test.npz").keys() == DataRoot(tiny_root).test_slides()
    for stage in ("stage1", "stage2"):
        assert 0.2 <= summary["trainval"][stage]["threshold"] < 0.99
        # scored on the complete root's full test slides: strict TP + FN = all their mitotic figures
        strict = summary["test"][stage]["strict"]
        assert strict["tp"] + strict["fn"] == _test_mitoses(tiny_root)


def _test_mitoses(root) -> int:
    from ccmct.config.dataset import MITOTIC_FIGURE
    from ccmct.data.sliderunner import SlideRunnerDB

    root = DataRoot(root)
    with SlideRunnerDB.open(root.database("ODAEL")) as db:
        spots = db.spots(classes=[MITOTIC_FIGURE])
        uids = {db.find_slide(name) for name in root.test_slides()}
    return int(spots["slide"].isin(uids).sum())


@pytest.mark.slow
def test_rerun_is_skipped(tiny_root, ablation_runs):
    subsets, runs = ablation_runs
    executed = runs / "0.5HPF" / "Ablation-Train.ipynb"
    before = executed.stat().st_mtime_ns
    assert main(["ablation", "run", "--subsets-dir", str(subsets), "--data-root", str(tiny_root), "--preset", "smoke",
                 "--subsets", "0.5HPF", "--out", str(runs), "--json"]) == 0
    assert executed.stat().st_mtime_ns == before


@pytest.mark.slow
def test_evaluation_notebook_draws_figure5(ablation_runs, tmp_path):
    _, runs = ablation_runs
    out = tmp_path / "AblationStudy_Evaluation.ipynb"
    papermill.execute_notebook(str(EVAL_NOTEBOOK), str(out), parameters={"runs_dir": str(runs)},
                               kernel_name="python3", progress_bar=False)
    outputs = _outputs(out)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1  # Fig. 5, both panels in one figure
    text = "\n".join("".join(o.get("data", {}).get("text/plain", "")) + "".join(o.get("text", ""))
                     for o in outputs)
    assert "paper reference line: False" in text  # synthetic test slides: no published reference
    assert "0.5HPF" in text and len(load_runs(runs)) == 1
