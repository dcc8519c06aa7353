"""``ccmct train`` with the smoke preset on the tiny root: a loadable model that learned something."""

import json

import pytest
import torch

from ccmct.cli import main
from ccmct.models.io import load_model_dir
from ccmct.models.retinanet import DetectorConfig, preprocess

pytestmark = pytest.mark.timeout(1800)  # trains: longer than the default timeout on a loaded CPU


@pytest.fixture(scope="module")
def trained(tiny_root, tmp_path_factory, capsys_module=None):
    out = tmp_path_factory.mktemp("train") / "model"
    rc = main(["train", "--data-root", str(tiny_root), "--variant", "ODAEL", "--preset", "smoke",
               "--out", str(out), "--json", "--seed", "3"])
    return rc, out


def test_exit_code_and_files(trained):
    rc, out = trained
    assert rc == 0
    assert {p.name for p in out.iterdir()} == {"weights.pt", "config.json", "training.json"}


def test_model_directory_rebuilds_the_model(trained):
    _, out = trained
    model, config = load_model_dir(out)
    assert isinstance(config, DetectorConfig)
    assert (config.variant, config.preset, config.fpn_channels) == ("ODAEL", "smoke", 32)
    with torch.no_grad():
        images = preprocess(torch.zeros(1, 256, 256, 3, dtype=torch.uint8), config)
        logits, deltas = model.head_outputs(images)
        (detections,) = model(images)  # eval mode: the detector's own post-processing
    assert logits.shape == (1, 768, 1) and torch.isfinite(deltas).all()
    assert detections["boxes"].shape[1] == 4 and len(detections["scores"]) == len(detections["labels"])


def test_loss_went_down_and_parts_are_recorded(trained):
    _, out = trained
    summary = json.loads((out / "training.json").read_text())
    history = summary["history"]
    assert summary["finished"] and summary["seed"] == 3 and len(history) == 3
    assert [row["epoch"] for row in history] == [0, 1, 2]
    assert [row["frozen"] for row in history] == [False, False, True]
    for row in history:
        assert {"train_loss", "valid_loss", "focal_loss", "box_loss", "patch_f1"} <= set(row)
        assert row["valid_loss"] == pytest.approx(row["focal_loss"] + row["box_loss"], rel=1e-4)
    initial = summary["initial"]
    assert initial["valid_loss"] == pytest.approx(initial["focal_loss"] + initial["box_loss"], rel=1e-4)
    assert history[-1]["valid_loss"] < initial["valid_loss"]


def test_finished_run_is_not_trained_again(trained, tiny_root, capsys):
    _, out = trained
    before = (out / "weights.pt").stat().st_mtime_ns
    rc = main(["train", "--data-root", str(tiny_root), "--variant", "ODAEL", "--preset", "smoke",
               "--out", str(out), "--json", "--seed", "3"])
    assert rc == 0 and (out / "weights.pt").stat().st_mtime_ns == before
    assert json.loads(capsys.readouterr().out)["epochs"] == 3


def test_bad_data_root_is_one_line_error(tmp_path, capsys):
    rc = main(["train", "--data-root", str(tmp_path / "nope"), "--variant", "ODAEL", "--preset", "smoke",
               "--out", str(tmp_path / "m")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ccmct train: error:") and len(err.splitlines()) == 1
