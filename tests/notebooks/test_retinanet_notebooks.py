"""The three RetinaNet-CCMCT notebooks: identical but for the parameters cell, and they run (smoke, tiny)."""

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = [REPO / f"RetinaNet-CCMCT-{v}.ipynb" for v in ("MEL", "HEAEL", "ODAEL")]


def _cells(path):
    return json.loads(path.read_text())["cells"]


def test_committed_without_outputs_and_identical_but_parameters():
    reference = _cells(NOTEBOOKS[0])
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3"
        cells = nb["cells"]
        params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(params) == 1 and cells.index(params[0]) == 1
        for cell in cells:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None
        assert [c for c in cells if c is not params[0]] == [c for c in reference if c is not reference[1]]
        variant = path.stem.split("-")[-1]
        assert f'variant = "{variant}"' in "".join(params[0]["source"])
