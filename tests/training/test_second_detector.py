"""The detector seam: a second, real detector (the tiny FCOS of :mod:`ccmct.models.fcos`, registry kind ``fcos``)
trains through ``ccmct train`` (the same Learner and schedule as the RetinaNet) on the tiny synthetic root and runs
through ``ccmct infer`` (the sliding-window whole-slide detector), writing a result file ``ccmct evaluate`` reads.
Nothing in training or inference knows which detector it has."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from ccmct.cli import main
from ccmct.config.paths import DataRoot
from ccmct.data.results import check_within_slides, read_metadata, read_results
from ccmct.data.slides import open_slide
from ccmct.errors import ModelError
from ccmct.models.fcos import FCOSConfig, TinyFCOS
from ccmct.models.io import load_model_dir
from ccmct.models.registry import detector_kinds

pytestmark = pytest.mark.timeout(1800)  # trains: longer than the default timeout on a loaded CPU

PARTS = ("classification_loss", "bbox_regression_loss", "bbox_ctrness_loss")


@pytest.fixture(scope="module")
def fcos_dir(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("fcos") / "FCOS-ODAEL"
    rc = main(["train", "--model", "fcos", "--data-root", str(tiny_root), "--variant", "ODAEL", "--preset", "smoke",
               "--out", str(out), "--workers", "0", "--seed", "1", "--json"])
    assert rc == 0
    return out


def test_trained_through_the_learner_with_its_own_loss_parts(fcos_dir):
    assert json.loads((fcos_dir / "config.json").read_text())["kind"] == "fcos"
    summary = json.loads((fcos_dir / "training.json").read_text())
    assert summary["finished"] and summary["epochs"] == 3 and summary["config"]["variant"] == "ODAEL"
    for row in [summary["initial"], *summary["history"]]:
        assert set(PARTS) <= set(row) and "patch_f1" in row and 0.0 <= (row["patch_f1"] or 0.0) <= 1.0
        assert row["valid_loss"] == pytest.approx(sum(row[p] for p in PARTS), rel=1e-4)
    assert all(np.isfinite(row["train_loss"]) for row in summary["history"])
    assert summary["history"][-1]["valid_loss"] < summary["initial"]["valid_loss"]  # it learned something

    model, config = load_model_dir(fcos_dir, kind=detector_kinds())
    assert isinstance(model, TinyFCOS) and isinstance(config, FCOSConfig) and not model.training
    fresh = TinyFCOS(config)
    assert any(not torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))


def test_sliding_window_inference_writes_a_valid_result_file(fcos_dir, tiny_root, tmp_path, capsys):
    # The few-step model scores below the default 0.3; a copy with a low threshold gives detections to check.
    low = tmp_path / "FCOS-low"
    shutil.copytree(fcos_dir, low)
    document = json.loads((low / "config.json").read_text())
    document["config"]["score_threshold"] = 0.01
    (low / "config.json").write_text(json.dumps(document))
    out = tmp_path / "FCOS-ODAEL-test.npz"
    rc = main(["infer", "--model", str(low), "--data-root", str(tiny_root), "--split", "test", "--out", str(out),
               "--workers", "0", "--batch-size", "8", "--no-progress", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["failed"] == {}
    slides = DataRoot(tiny_root).slides("test")
    results = read_results(out)
    assert set(results) == set(slides)
    assert sum(len(b) for b in results.values()) > 0
    sizes = {}
    for name, path in slides.items():
        with open_slide(path) as slide:
            sizes[name] = slide.dimensions
    check_within_slides(out, results, sizes)  # finite, x1 <= x2, score in [0, 1], centres on the slide
    for boxes in results.values():
        assert (boxes[:, 4] == 0).all() and (boxes[:, 5] > 0.01).all()
        assert (np.diff(boxes[:, 5]) <= 0).all()  # by decreasing score
    assert read_metadata(out)["settings"]["score_threshold"] == 0.01

    db = DataRoot(tiny_root).database("ODAEL")
    assert main(["evaluate", "--db", str(db), "--results", str(out), "--threshold", "0.02", "--json"]) == 0
    assert "f1" in json.dumps(json.loads(capsys.readouterr().out)).lower()


def test_detector_commands_refuse_other_kinds_and_weights(fcos_dir, tiny_root, tmp_path):
    document = json.loads((fcos_dir / "config.json").read_text())
    other = tmp_path / "not-a-detector"
    shutil.copytree(fcos_dir, other)
    (other / "config.json").write_text(json.dumps({**document, "kind": "candidate"}))
    with pytest.raises(ModelError, match="needs a RetinaNet detector .* or a tiny FCOS detector"):
        load_model_dir(other, kind=detector_kinds())
    rc = main(["train", "--model", "fcos", "--pretrained", "--data-root", str(tiny_root), "--variant", "ODAEL",
               "--preset", "smoke", "--out", str(tmp_path / "m")])
    assert rc != 0 and not (tmp_path / "m" / "weights.pt").exists()
