"""Setup.ipynb runs end to end with papermill: against a local mirror of the databases, and in synthetic mode."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from ccmct.config.dataset import DATABASE_FILES
from ccmct.data.manifest import read_checksums

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "data"))
from http_server import FaultyServer, build_mirror  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # end to end: longer than the default timeout


def _outputs_text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def _run(tmp_path: Path, **parameters):
    out = tmp_path / "Setup.out.ipynb"
    papermill.execute_notebook(str(REPO / "Setup.ipynb"), str(out), parameters=parameters, kernel_name="python3",
                               cwd=str(tmp_path), progress_bar=False)
    return nbformat.read(out, as_version=4)


def test_committed_notebook_is_clean():
    notebook = nbformat.read(REPO / "Setup.ipynb", as_version=4)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_downloads_databases_from_a_mirror_and_shows_table1(tmp_path, tumorzone_db):
    from ccmct.data.stats import table1

    mirror = build_mirror(tmp_path / "mirror", tumorzone_db=tumorzone_db)
    server = FaultyServer(mirror).start()
    try:
        data_root = tmp_path / "data"
        notebook = _run(tmp_path, data_root=str(data_root), base_url=server.url, only="databases", workers=2)
    finally:
        server.stop()
    for name in DATABASE_FILES.values():
        assert (data_root / "databases" / name).read_bytes() == (mirror / "databases" / name).read_bytes()
    assert len(read_checksums(data_root)) == 4
    text = _outputs_text(notebook)
    assert "complete: 4 (downloaded 4)" in text
    table = table1(data_root, mpp=0.2533)
    assert len(table) == 32  # every slide of the tumor-zone database
    for filename in table["filename"].head(5):
        assert filename in text
    assert "tumor_area_mm2" in text and "mitotic_figure_ODAEL" in text
