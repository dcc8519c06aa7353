"""Second-stage re-scoring on the tiny root, with stage-1 results fabricated from its ground truth."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ccmct.cli import main as ccmct_main
from ccmct.config import GRANULOCYTE, LOOKALIKE, MITOTIC_FIGURE, TUMOR_CELL, DataRoot
from ccmct.data.results import read_metadata, read_results, write_results
from ccmct.errors import SlideError
from ccmct.geometry import box_centers, distance_nms
from ccmct.inference.second_stage import classify_results, combine_scores, second_stage_path
from ccmct.models.classifier import ClassifierConfig, build_classifier, predict_probabilities, save_classifier_dir
from ccmct.sampling.cells import CellPatchDataset, cell_table

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stage1(tiny_root, tmp_path_factory):
    """Per slide: a 50 px box on some MFs and look-alikes, a near-duplicate 8 px away with a lower score (NMS
    must drop it), and boxes on a few tumour cells (false positives). One slide gets no detections."""
    rng = np.random.default_rng(0)
    cells = cell_table(tiny_root, "ODAEL")
    results = {}
    for i, (name, rows) in enumerate(sorted(cells.groupby("slide"))):
        if i == 0:
            results[name] = np.zeros((0, 6))
            continue
        picked = pd.concat([rows[rows["class_id"] == MITOTIC_FIGURE].head(12), rows[rows["class_id"] == LOOKALIKE].head(8),
                            rows[rows["class_id"] == TUMOR_CELL].head(4)])
        xy = picked[["x_l0", "y_l0"]].to_numpy()
        scores = rng.uniform(0.5, 1.0, len(xy))
        boxes = np.column_stack([xy - 25, xy + 25, np.zeros(len(xy)), scores])
        dupes = boxes.copy()
        dupes[:, :4] += 8
        dupes[:, 5] -= 0.2
        results[name] = np.concatenate([boxes, dupes])[rng.permutation(2 * len(boxes))]
    path = tmp_path_factory.mktemp("stage1") / "RetinaNet-ODAEL-test.npz"
    write_results(path, results, metadata={"model": "fabricated"})
    return path


def _save_model(directory: Path, class_ids: tuple[int, ...]) -> Path:
    torch.manual_seed(0)
    config = ClassifierConfig(class_ids=class_ids, class_names=tuple(map(str, class_ids)),
                              class_short=tuple(map(str, class_ids)), patch_size_px=128, mean=(0.7, 0.55, 0.7),
                              std=(0.15, 0.2, 0.15), preset="smoke", variant="ODAEL")
    return save_classifier_dir(directory, build_classifier(4).eval(), config)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    # MF deliberately NOT at index 0: the score must be found by class id, not position
    return _save_model(tmp_path_factory.mktemp("cls"), (GRANULOCYTE, LOOKALIKE, MITOTIC_FIGURE, TUMOR_CELL))


@pytest.fixture(scope="module")
def rescored(stage1, model_dir, tiny_root):
    out = classify_results(model_dir, stage1, DataRoot(tiny_root).wsi_dir, num_workers=0, progress=False)
    return out, read_results(out)


def _expected_p_mf(model_dir, slide_path, boxes):
    from ccmct.models.classifier import load_classifier_dir

    model, config = load_classifier_dir(model_dir)
    ds = CellPatchDataset([slide_path] * len(boxes), box_centers(boxes), mean=config.mean, std=config.std)
    return predict_probabilities(model, ds)[:, 2]


def test_keeps_every_nms_survivor_and_replaces_its_score_with_p_mitosis(stage1, model_dir, rescored, tiny_root):
    out, second = rescored
    assert out == stage1.with_name("2ndstage_RetinaNet-ODAEL-test.npz")
    first = read_results(stage1)
    assert list(second) == list(first)
    for name, boxes in first.items():
        if len(boxes) == 0:
            assert second[name].shape == (0, 6)
            continue
        kept = np.sort(distance_nms(boxes[:, :4], boxes[:, 5], radius_l0=25))
        assert len(kept) <= len(boxes) // 2  # at least the near-duplicates are gone
        assert np.array_equal(second[name][:, :5], boxes[kept, :5])
        scores = second[name][:, 5]
        assert ((scores >= 0) & (scores <= 1)).all() and not np.allclose(scores, boxes[kept, 5])
        expected = _expected_p_mf(model_dir, DataRoot(tiny_root).slide_path(name), boxes[kept])
        assert np.allclose(scores, expected, atol=1e-5)
    metadata = read_metadata(out)
    assert metadata["stage"] == 2 and metadata["pending"] == [] and metadata["stage1"] == {"model": "fabricated"}


def test_geometric_mean_combination(stage1, model_dir, rescored, tiny_root, tmp_path):
    _, replaced = rescored
    out = classify_results(model_dir, stage1, DataRoot(tiny_root).wsi_dir, tmp_path, combine="geometric_mean",
                           num_workers=1, batch_size=7, progress=False)
    assert out == tmp_path / "2ndstage_RetinaNet-ODAEL-test.npz"
    first = read_results(stage1)
    for name, boxes in read_results(out).items():
        if len(boxes):
            kept = np.sort(distance_nms(first[name][:, :4], first[name][:, 5]))
            expected = np.sqrt(replaced[name][:, 5] * first[name][kept, 5])
            assert np.allclose(boxes[:, 5], expected, atol=1e-5)
    assert combine_scores(np.array([0.5]), np.array([0.9]), "replace").tolist() == [0.5]
    with pytest.raises(ValueError, match="unknown combine mode"):
        combine_scores(np.array([0.5]), np.array([0.9]), "mean")


def test_interrupted_run_resumes_with_finished_slides(stage1, model_dir, rescored, tiny_root, tmp_path):
    out_path, complete = rescored
    names = list(complete)
    done_name = next(n for n in names if len(complete[n]))
    sentinel = complete[done_name].copy()
    sentinel[:, 5] = 0.123  # a value the classifier would not produce: proves the slide is not redone
    out = tmp_path / "partial.npz"
    metadata = dict(read_metadata(out_path))
    write_results(out, {done_name: sentinel}, metadata={**metadata, "pending": [n for n in names if n != done_name]})
    classify_results(model_dir, stage1, DataRoot(tiny_root).wsi_dir, out, num_workers=0, progress=False)
    resumed = read_results(out)
    assert list(resumed) == names
    assert np.array_equal(resumed[done_name], sentinel)
    for name in names:
        if name != done_name:
            assert np.allclose(resumed[name], complete[name])


def test_missing_slide_is_named(stage1, model_dir, tmp_path):
    with pytest.raises(SlideError, match="slide named in the results is missing"):
        classify_results(model_dir, stage1, tmp_path, progress=False)


def test_cli_and_authors_shim(stage1, model_dir, tiny_root, tmp_path, capsys):
    out = tmp_path / "cli.npz"
    code = ccmct_main(["classify", "--model", str(model_dir), "--results", str(stage1), "--data-root",
                       str(tiny_root), "--out", str(out), "--workers", "0", "--json"])
    assert code == 0
    assert '"total"' in capsys.readouterr().out
    assert sum(len(b) for b in read_results(out).values()) == sum(
        len(b) for b in read_results(second_stage_path(stage1)).values())
    assert ccmct_main(["classify", "--model", str(tmp_path / "none"), "--results", str(stage1),
                       "--data-root", str(tiny_root)]) == 2
    copy = tmp_path / "authors" / "RetinaNet-ODAEL-test.p.bz2"
    write_results(copy, read_results(stage1))
    argv = sys.argv
    try:
        sys.argv = ["Inference-CellClassifier.py", str(copy), str(model_dir), str(DataRoot(tiny_root).wsi_dir)]
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(str(REPO / "2nd_stage" / "Inference-CellClassifier.py"), run_name="__main__")
    finally:
        sys.argv = argv
    assert exit_info.value.code == 0
    shim_out = read_results(copy.with_name("2ndstage_RetinaNet-ODAEL-test.p.bz2"))
    for name, boxes in read_results(second_stage_path(stage1)).items():
        assert np.allclose(shim_out[name], boxes, atol=1e-6)
