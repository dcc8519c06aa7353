"""``ccmct notebooks``: a cell that hangs fails the run with a one-line error after papermill's timeout."""

from __future__ import annotations

import nbformat
import pytest

from ccmct.errors import CcmctError
from ccmct.notebooks import CELL_TIMEOUT_S, NotebookRun, _execute


def _notebook(path, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("seconds = 0")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_timeout_defaults_by_preset(tmp_path):
    assert NotebookRun(tmp_path, tmp_path, preset="smoke").cell_timeout_s == CELL_TIMEOUT_S
    assert NotebookRun(tmp_path, tmp_path, preset="paper").cell_timeout_s is None  # hours of training on purpose
    assert NotebookRun(tmp_path, tmp_path, preset="quick", cell_timeout_s=7).cell_timeout_s == 7


@pytest.mark.timeout(300)
def test_a_hanging_cell_fails_after_the_timeout(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _notebook(repo / "Hang.ipynb", "import time\nfor _ in range(600):\n    time.sleep(0.1)\nprint('done', seconds)")
    _notebook(repo / "Quick.ipynb", "print('done', seconds)")
    run = NotebookRun(tmp_path / "data", tmp_path / "out", repo=repo, cell_timeout_s=3)
    executed = _execute(run, "Quick.ipynb", {"seconds": 1})
    assert "done 1" in executed.read_text()
    with pytest.raises(CcmctError, match=r"Hang\.ipynb: a cell did not finish within 3 s"):
        _execute(run, "Hang.ipynb", {"seconds": 1})
