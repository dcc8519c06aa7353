"""Cell-classifier training: presets, Table 3, and one ``smoke`` run on the tiny root through the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from ccmct.cli import main as ccmct_main
from ccmct.config import MITOTIC_FIGURE
from ccmct.models.classifier import load_classifier_dir
from ccmct.sampling.cells import CELL_CLASSES, assign_subsets, cell_table
from ccmct.training import classifier as classifier_module
from ccmct.training.classifier_checkpoint import CHECKPOINT_FILE, CheckpointMismatch
from ccmct.training.classifier import (
    CLASSIFIER_PRESETS,
    classifier_preset,
    default_start_weights,
    estimate_normalisation,
    load_run_tables,
)
from ccmct.training.classifier_report import confusion_table, plot_confusion, plot_history

pytestmark = pytest.mark.timeout(1800)  # trains: longer than the default timeout on a loaded CPU


def test_paper_preset_is_the_authors_recipe():
    paper = classifier_preset("paper")
    assert (paper.frozen_epochs, paper.epochs, paper.max_lr, paper.pct_start) == (1, 10, 1e-2, 0.05)
    assert paper.pretrained and paper.items_per_epoch is None and paper.batch_size == 16
    assert set(CLASSIFIER_PRESETS) == {"smoke", "quick", "paper"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        paper.epochs = 3
    with pytest.raises(ValueError, match="expected one of"):
        classifier_preset("fast")


def test_cpu_presets_start_from_the_detector_backbone_paper_from_imagenet(tmp_path):
    detector = tmp_path / "RetinaNet-ODAEL"
    assert default_start_weights("quick", detector) is None          # not trained (yet): random init
    detector.mkdir()
    (detector / "config.json").write_text("{}")
    (detector / "weights.pt").write_bytes(b"")
    assert default_start_weights("quick", detector) == detector
    assert default_start_weights("smoke", str(detector)) == detector
    assert default_start_weights("paper", detector) is None          # ImageNet, as the authors
    assert default_start_weights("quick", None) is None
    assert classifier_preset("paper").jitter_px == 0 < classifier_preset("quick").jitter_px


def test_confusion_table_is_table3_layout():
    table = confusion_table(np.array([0, 0, 1, 2, 3, 3]), np.array([0, 1, 1, 2, 3, 0]))
    assert list(table.index) == ["MF", "LA", "Gr", "TC"] == list(table.columns)
    assert table.index.name == "true" and table.columns.name == "predicted"
    assert table.loc["MF", "LA"] == 1 and table.loc["TC", "MF"] == 1 and table.to_numpy().sum() == 6
    assert np.trace(table.to_numpy()) == 4
    figure = plot_confusion(table)
    assert len(figure.axes[0].texts) == 16


def test_normalisation_is_estimated_from_training_patches(tiny_root):
    cells = cell_table(tiny_root, "ODAEL")
    mean, std = estimate_normalisation(cells, tiny_root, n_items=8, seed=0)
    again, _ = estimate_normalisation(cells, tiny_root, n_items=8, seed=0)
    assert mean == again and len(mean) == 3
    assert all(0 < m < 1 for m in mean) and all(0 < s < 0.5 for s in std)


@pytest.fixture(scope="module")
def smoke_run(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cls") / "cls-ODAEL"
    code = ccmct_main(["train-classifier", "--data-root", str(tiny_root), "--variant", "ODAEL", "--preset",
                       "smoke", "--out", str(out), "--json"])
    assert code == 0
    return out


def test_smoke_run_lowers_the_loss(smoke_run):
    history = load_run_tables(smoke_run)["history"]
    assert list(history["phase"]) == ["start", "frozen", "unfrozen"]
    # the untrained network's validation loss vs after training (held-out lower halves)
    assert history["valid_loss"].iloc[-1] < 0.8 * history["valid_loss"].iloc[0]
    losses = load_run_tables(smoke_run)["batch_losses"]
    assert len(losses) == 2 * 64 // 16 and np.isfinite(losses["loss"]).all()


def test_smoke_run_writes_a_model_dir_and_table3(smoke_run, tiny_root):
    model, config = load_classifier_dir(smoke_run)
    assert config.class_ids == tuple(c.class_id for c in CELL_CLASSES) and config.index_of(MITOTIC_FIGURE) == 0
    assert config.patch_size_px == 128 and config.preset == "smoke" and config.variant == "ODAEL"
    assert config.training["validation"]["rule"] == "lower_half"
    tables = load_run_tables(smoke_run)
    cells, _ = assign_subsets(cell_table(tiny_root, "ODAEL"), tiny_root)
    test_counts = cells[cells["subset"] == "test"].groupby("label").size()
    confusion = tables["confusion"]
    assert list(confusion.index) == ["MF", "LA", "Gr", "TC"] == list(confusion.columns)
    assert confusion.sum(axis=1).tolist() == [int(test_counts.get(i, 0)) for i in range(4)]
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(np.trace(confusion.to_numpy()) / confusion.to_numpy().sum())
    assert tables["counts"].loc["test"].tolist() == confusion.sum(axis=1).tolist()
    assert (smoke_run / "confusion.png").stat().st_size > 0
    figure = plot_history(tables["history"], tables["batch_losses"])
    assert len(figure.axes) == 2


def test_interrupted_run_resumes_from_its_checkpoint(tiny_root, tmp_path, monkeypatch):
    out = tmp_path / "cls"

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash after the last epoch")

    monkeypatch.setattr(classifier_module, "_test", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        classifier_module.train_classifier(tiny_root, "ODAEL", "smoke", out, progress=False)
    monkeypatch.undo()
    assert (out / CHECKPOINT_FILE).is_file() and not (out / "config.json").exists()
    payload = torch.load(out / CHECKPOINT_FILE, weights_only=True)
    meta = json.loads(payload["meta"])
    assert (meta["phase"], meta["epochs_done"], len(meta["rows"]), len(meta["steps"])) == ("unfrozen", 1, 3, 8)
    # pretend the crash came right after the frozen epoch: the unfrozen phase must run again, the rest not
    meta.update(phase="frozen", epochs_done=1, rows=meta["rows"][:2], steps=meta["steps"][:4])
    torch.save({**payload, "meta": json.dumps(meta)}, out / CHECKPOINT_FILE)
    run = classifier_module.train_classifier(tiny_root, "ODAEL", "smoke", out, progress=False)
    assert list(run.history["phase"]) == ["start", "frozen", "unfrozen"]
    assert run.history["valid_loss"].iloc[:2].tolist() == [r["valid_loss"] for r in meta["rows"]]
    assert len(run.batch_losses) == 8
    assert run.batch_losses["loss"].iloc[:4].tolist() == [s["loss"] for s in meta["steps"]]
    assert not (out / CHECKPOINT_FILE).exists() and (out / "config.json").is_file()
    # a checkpoint of another run (here: another seed) is refused, not mixed in
    torch.save(payload, out / CHECKPOINT_FILE)
    with pytest.raises(CheckpointMismatch, match="different run"):
        classifier_module.train_classifier(tiny_root, "ODAEL", "smoke", out, seed=1, progress=False)


def test_missing_database_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "root" / "databases").mkdir(parents=True)
    code = ccmct_main(["train-classifier", "--data-root", str(tmp_path / "root"), "--variant", "ODAEL",
                       "--preset", "smoke", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "MITOS_WSI_CCMCT_ODAEL.sqlite" in capsys.readouterr().err
    assert not (tmp_path / "out" / "config.json").exists()
