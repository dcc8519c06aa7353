"""2nd_stage/CellClassification-{MEL,HEAEL,ODAEL}.ipynb: committed clean, identical but for the parameters, and
one of them executes on the tiny root with the smoke preset (the other two run the same cells)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest


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
    assert set(params) == {"data_root", "variant", "preset", "out_dir", "detector_dir"}
    assert params["variant"] == variant and params["preset"] == "paper"
    assert params["detector_dir"] == f"models/RetinaNet-{variant}"  # the same label set's first stage


def test_notebooks_differ_only_in_the_parameters_cell():
    def body(nb):
        cells = [c for c in nb["cells"]]
        first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
        return [(c["cell_type"], "".join(c["source"])) for i, c in enumerate(cells) if i != first_code]

    reference = body(_load("ODAEL"))
    for variant in ("MEL", "HEAEL"):
        assert body(_load(variant)) == reference
        assert _parameters(_load(variant)) == {**_parameters(_load("ODAEL")), "variant": variant,
                                               "out_dir": f"models/CellClassifier-{variant}",
                                               "detector_dir": f"models/RetinaNet-{variant}"}
