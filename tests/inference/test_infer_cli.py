"""``ccmct infer`` in-process and the authors' ``Inference-RetinaNet.py`` argument order."""

from __future__ import annotations

import json
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest

from ccmct.cli import main
from ccmct.data.results import read_results

REPO = Path(__file__).resolve().parents[2]


def _infer(model, root, *extra):
    return main(["infer", "--model", str(model), "--data-root", str(root), "--split", "test", "--workers", "0",
                 "--no-progress", *map(str, extra)])


def test_infer_writes_results_the_reader_reads_and_resumes(tiny_model_dir, spot_root, tmp_path, capsys):
    out = tmp_path / "res.npz"
    assert _infer(tiny_model_dir, spot_root, "--out", out, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["computed"] == ["a.svs", "b.svs"] and report["failed"] == {}
    results = read_results(out)
    assert list(results) == ["a.svs", "b.svs"]
    assert all(len(b) == report["n_detections"][n] > 0 for n, b in results.items())
    assert _infer(tiny_model_dir, spot_root, "--out", out, "--json") == 0
    assert json.loads(capsys.readouterr().out)["resumed"] == ["a.svs", "b.svs"]


def test_default_output_name_comes_from_the_model(tiny_model_dir, spot_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _infer(tiny_model_dir, spot_root) == 0
    assert list(read_results(tmp_path / "RetinaNet-ODAEL-test.npz")) == ["a.svs", "b.svs"]


def test_missing_slide_is_reported_others_finish_exit_1(tiny_model_dir, spot_root, tmp_path, caplog):
    root = tmp_path / "root"
    (root / "WSI").mkdir(parents=True)
    shutil.copy(spot_root / "WSI" / "a.svs", root / "WSI" / "a.svs")
    (root / "split.json").write_text(json.dumps({"train": [], "test": ["a.svs", "missing.svs"]}))
    out = tmp_path / "res.npz"
    assert _infer(tiny_model_dir, root, "--out", out) == 1
    assert list(read_results(out)) == ["a.svs"]
    assert "missing.svs" in caplog.text and "does not exist" in caplog.text


@pytest.mark.parametrize("problem", ["version", "missing"])
def test_bad_model_directory_is_one_line_and_exit_2(tiny_model_dir, spot_root, tmp_path, capsys, problem):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    if problem == "version":
        document = json.loads((model / "config.json").read_text())
        document["format_version"] = 999
        (model / "config.json").write_text(json.dumps(document))
    else:
        (model / "config.json").unlink()
    assert _infer(model, spot_root, "--out", tmp_path / "r.npz") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "config.json" in err
    assert ("format version 999" in err) if problem == "version" else ("missing" in err)


def test_bad_batch_size_is_a_usage_error(tiny_model_dir, spot_root):
    with pytest.raises(SystemExit) as exit_info:
        _infer(tiny_model_dir, spot_root, "--batch-size", "0")
    assert exit_info.value.code == 2


def test_authors_script_argument_order(tiny_model_dir, spot_root, tmp_path, monkeypatch):
    from ccmct.data.sliderunner import SlideRunnerDB

    root = tmp_path / "root"
    shutil.copytree(spot_root, root)
    (root / "databases").mkdir()
    with SlideRunnerDB.create(root / "databases" / "MITOS_WSI_CCMCT_ODAEL.sqlite") as db:
        for name in ("a.svs", "b.svs", "c.svs"):
            db.add_slide(name)
    script = runpy.run_path(str(REPO / "Inference-RetinaNet.py"), run_name="shim")
    monkeypatch.chdir(tmp_path)
    database = root / "databases" / "MITOS_WSI_CCMCT_ODAEL.sqlite"
    assert script["main"]([str(tiny_model_dir), str(database), "synthetic", "val"]) == 0
    val = read_results(tmp_path / "ODAEL-synthetic-val-inference_results_boxes.p.bz2")
    assert list(val) == ["c.svs"]                                  # 'val' = the training slides
    assert script["main"]([str(tiny_model_dir), str(database), "synthetic", "test", str(root / "WSI")]) == 0
    test = read_results(tmp_path / "ODAEL-synthetic-inference_results_boxes.p.bz2")
    assert list(test) == ["a.svs", "b.svs"]
    cli_out = tmp_path / "cli.npz"
    assert _infer(tiny_model_dir, root, "--out", cli_out) == 0
    for name, boxes in read_results(cli_out).items():
        np.testing.assert_allclose(test[name], boxes)
    assert script["main"]([str(tiny_model_dir), str(database), "synthetic", "train"]) == 2   # val|test only
