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
