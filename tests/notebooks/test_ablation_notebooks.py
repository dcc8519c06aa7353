"""The ablation notebooks are committed clean; their execution (one smoke run through ``ccmct ablation
run`` and Fig. 5) is part of the pipeline test, tests/test_integration_notebooks.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EVAL_NOTEBOOK = REPO / "AblationStudy_Evaluation.ipynb"
TRAIN_NOTEBOOK = REPO / "AblationStudy" / "Ablation-Train.ipynb"


@pytest.mark.parametrize("notebook", [EVAL_NOTEBOOK, TRAIN_NOTEBOOK], ids=lambda p: p.name)
def test_notebooks_are_committed_clean(notebook):
    nb = json.loads(notebook.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)


def _write_run(runs_dir: Path, name: str, kind: str, n_slides: int, mf: int, area, recall: float, rng) -> None:
    """A run summary with per-slide test counts (11 test slides) whose stage-2 recall is about ``recall``."""
    from ccmct.evaluation.ablation_runs import write_run_summary
    from ccmct.evaluation.bootstrap import SlideCounts

    test = {}
    for stage, r in (("stage1", recall - 0.1), ("stage2", recall)):
        gt = rng.integers(20, 200, 11)
        tp = rng.binomial(gt, r)
        fp = rng.integers(5, 60, 11)
        per_slide = {f"t{i}.svs": {"tp": int(a), "fp": int(b), "fn": int(c)}
                     for i, (a, b, c) in enumerate(zip(tp, fp, gt - tp))}
        f1 = SlideCounts.from_per_slide(per_slide).scores()[0]
        test[stage] = {"tp": int(tp.sum()), "fp": int(fp.sum()), "fn": int((gt - tp).sum()), "f1": f1,
                       "per_slide": per_slide}
    training_set = {"name": name, "kind": kind, "n": n_slides, "n_train_slides": n_slides, "train_mitoses": mf,
                    "train_area_mm2": area, "train_slides": [f"s{i}.svs" for i in range(n_slides)]}
    write_run_summary(runs_dir / name, training_set=training_set, variant="ODAEL", preset="smoke",
                      trainval={"stage1": {"f1": 0.5, "threshold": 0.6}, "stage2": {"f1": 0.7, "threshold": 0.4}},
                      test=test, test_root=runs_dir)


def test_evaluation_notebook_draws_intervals(tmp_path):
    """AblationStudy_Evaluation.ipynb on fabricated run summaries: Fig. 5 and the slide-bootstrap intervals."""
    import numpy as np
    import papermill

    from ccmct.evaluation.ablation import run_intervals

    runs_dir, rng = tmp_path / "runs", np.random.default_rng(0)
    for name, kind, n, mf, area, recall in (("5HPF", "hpf", 4, 12, 4.7, 0.4), ("1WSI", "wsi", 1, 40, None, 0.5),
                                            ("complete", "complete", 4, 200, 60.0, 0.8)):
        _write_run(runs_dir, name, kind, n, mf, area, recall, rng)
    intervals = run_intervals(runs_dir, n_resamples=500, seed=0)
    assert intervals["name"].tolist() == ["5HPF", "1WSI", "complete"]
    for s in (1, 2):
        assert ((intervals[f"f1_stage{s}_lo"] < intervals[f"f1_stage{s}"])
                & (intervals[f"f1_stage{s}"] < intervals[f"f1_stage{s}_hi"])).all()
    assert intervals.loc[2, "f1_stage2_lo"] > intervals.loc[0, "f1_stage2_hi"]  # recall 0.8 vs 0.4: apart
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(EVAL_NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                               cwd=str(tmp_path), parameters={"runs_dir": str(runs_dir), "reference": False,
                                                              "n_resamples": 500})
    cells = json.loads(out.read_text())["cells"]
    outputs = [o for c in cells for o in c.get("outputs", [])]
    text = "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                     for o in outputs)
    assert "f1_stage2_lo" in text and "no per-slide counts" not in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # Fig. 5 and the error bars
