"""benchmarks/fast_mode.py's large-slide part on a synthetic root with cells (the `tiny` root's test slide)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("fast_mode")


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """Random-init models of the three kinds (the code path, not the accuracy). The candidate model's map is
    ~0.01 everywhere at init, so its threshold of 0.5 finds no candidates: the fast mode's confirming step on
    real candidates is tested in tests/inference/test_fast.py; here it is the bookkeeping that is checked."""
    from ccmct.models.candidate import CandidateConfig, CandidateNet
    from ccmct.models.classifier import ClassifierConfig, build_classifier, save_classifier_dir
    from ccmct.models.io import save_model_dir
    from ccmct.models.retinanet import DetectorConfig, RetinaNet

    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    det = DetectorConfig(fpn_channels=16, head_convs=1, prior_prob=0.5, variant="ODAEL", preset="smoke")
    cand = CandidateConfig(channels=(4, 8), threshold=0.5, variant="ODAEL", preset="smoke")
    cls = ClassifierConfig(class_ids=(2, 7, 1, 3), class_names=("MF", "LA", "Gr", "TC"),
                           class_short=("MF", "LA", "Gr", "TC"), patch_size_px=128, mean=(0.5, 0.5, 0.5),
                           std=(0.25, 0.25, 0.25), preset="smoke", variant="ODAEL")
    return {"detector": save_model_dir(folder / "det", RetinaNet(det).eval(), det),
            "candidate": save_model_dir(folder / "cand", CandidateNet(cand).eval(), cand),
            "classifier": save_classifier_dir(folder / "cls", build_classifier(4).eval(), cls)}


def test_large_slide_with_cells_measures_fast_in_full_and_extrapolates_the_paper_pipeline(bench, model_dirs,
                                                                                          tiny_root):
    from ccmct.config.paths import DataRoot
    from ccmct.evaluation import load_ground_truth

    root = DataRoot(tiny_root)
    per = {"detector_per_tile": 4.0, "classifier_per_patch": 1.0, "candidate_per_screen_tile": 2.0}
    out = bench.large_slide_with_cells(model_dirs, root, 0.5, 3, 0, per)

    (name,) = [n for n, s in root.split().items() if s == "test"]
    assert out["slide"] == name
    assert out["gt_mitoses_odael"] == len(load_ground_truth(root.database("ODAEL"), slides=[name])[name]) > 0
    fast, paper = out["fast"], out["paper_estimate"]
    assert fast["classified"] == fast["candidates"] == 0 and fast["screen_tiles"] > 0
    assert fast["candidate_recall"] == {"recall": 0.0, "found": 0, "total": out["gt_mitoses_odael"], "candidates": 0}
    assert fast["f1_odael"] is None  # the paper's rule: a slide with an empty result list counts nothing
    assert fast["threshold"] == 0.5
    assert paper["sampled_tiles"] == 3 < paper["tissue_tiles"]
    scale = paper["tissue_tiles"] / paper["sampled_tiles"]
    assert paper["detections"] == pytest.approx(paper["sampled_detections"] * scale)
    assert paper["detector_s"] == pytest.approx(paper["detector_s_per_tile"] * paper["tissue_tiles"])
    assert paper["classifying_s"] == pytest.approx(fast["classifier_s_per_patch"] * paper["detections"])
    assert out["flops"]["paper_total_estimate"] == pytest.approx(4.0 * paper["tissue_tiles"] + paper["detections"])
    assert out["flops"]["fast_total"] == pytest.approx(2.0 * fast["screen_tiles"] + fast["classified"])
    assert out["wall_ratio_estimate"] == pytest.approx(paper["total_s"] / fast["total_s"])
