"""2nd_stage/CellClassification-{MEL,HEAEL,ODAEL}.ipynb: committed clean, identical but for the parameters, and
one of them executes on the tiny root with the smoke preset (the other two run the same cells)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import papermill
import pytest

from ccmct.models.classifier import load_classifier_dir

REPO = Path(__file__).resolve().parents[2]
VARIANTS = ("MEL", "HEAEL", "ODAEL")
NOTEBOOKS = {v: REPO / "2nd_stage" / f"CellClassification-{v}.ipynb" for v in VARIANTS}


def _load(variant: str) -> dict:
    return json.loads(NOTEBOOKS[variant].read_text())


def _parameters(nb: dict) -> dict:
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert "parameters" in cell["metadata"].get("tags", [])
    tree = ast.parse("".join(cell["source"]))
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body}


@pytest.mark.parametrize("variant", VARIANTS)
def test_notebook_is_committed_clean(variant):
    nb = _load(variant)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    params = _parameters(nb)
    assert set(params) == {"data_root", "variant", "preset", "out_dir"}
    assert params["variant"] == variant and params["preset"] == "paper"


def test_notebooks_differ_only_in_the_parameters_cell():
    def body(nb):
        cells = [c for c in nb["cells"]]
        first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
        return [(c["cell_type"], "".join(c["source"])) for i, c in enumerate(cells) if i != first_code]

    reference = body(_load("ODAEL"))
    for variant in ("MEL", "HEAEL"):
        assert body(_load(variant)) == reference
        assert _parameters(_load(variant)) == {**_parameters(_load("ODAEL")), "variant": variant,
                                               "out_dir": f"models/CellClassifier-{variant}"}


@pytest.mark.slow
def test_notebook_executes_on_tiny_with_smoke(tiny_root, tmp_path):
    out_dir = tmp_path / "cls"
    executed = tmp_path / "CellClassification-ODAEL.out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS["ODAEL"]), str(executed), kernel_name="python3", progress_bar=False, cwd=str(tmp_path),
        parameters={"data_root": str(tiny_root), "variant": "ODAEL", "preset": "smoke", "out_dir": str(out_dir)})
    _, config = load_classifier_dir(out_dir)
    assert config.variant == "ODAEL" and config.preset == "smoke"
    nb = json.loads(executed.read_text())
    text = json.dumps([c.get("outputs", []) for c in nb["cells"]])
    assert "test accuracy:" in text
    images = sum('"image/png"' in json.dumps(c.get("outputs", [])) for c in nb["cells"])
    assert images >= 3  # example patches, training curves, confusion matrix
