"""Many slides: one result file, resume per slide, failures isolated."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from ccmct.data.results import read_metadata, read_results
from ccmct.inference.detector import InferenceOptions, WholeSlideDetector
from ccmct.inference.runner import infer_slides, model_fingerprint, run_inference, work_dir_for


@pytest.fixture()
def detector(spot_detector_model, spot_config):
    return WholeSlideDetector(spot_detector_model, spot_config, options=InferenceOptions(workers=0))


def _slides(root):
    return {name: root / "WSI" / name for name in ("a.svs", "b.svs", "c.svs")}


def test_results_equal_per_slide_detection_and_rerun_resumes(detector, spot_root, tmp_path, caplog):
    out = tmp_path / "res.npz"
    report = infer_slides(detector, _slides(spot_root), out, fingerprint="hand-set", progress=False)
    assert report.computed == ["a.svs", "b.svs", "c.svs"] and report.failed == {} and report.resumed == []
    results = read_results(out)
    assert list(results) == ["a.svs", "b.svs", "c.svs"]
    for name, path in _slides(spot_root).items():
        np.testing.assert_array_equal(results[name], detector.detect(path).boxes)
    assert [len(b) for b in results.values()] == [2, 2, 2]
    assert sorted(p.name for p in work_dir_for(out).iterdir()) == ["a.svs.npz", "b.svs.npz", "c.svs.npz"]
    assert read_metadata(out)["settings"]["stride_px"] == 230

    with caplog.at_level(logging.INFO, logger="ccmct"):
        again = infer_slides(detector, _slides(spot_root), out, fingerprint="hand-set", progress=False)
    assert again.computed == [] and again.resumed == ["a.svs", "b.svs", "c.svs"]
    assert "a.svs: done in an earlier run" in caplog.text
    for name, boxes in read_results(out).items():
        np.testing.assert_array_equal(boxes, results[name])


def test_other_model_or_settings_recompute(detector, spot_detector_model, spot_config, spot_root, tmp_path):
    out = tmp_path / "res.npz"
    slides = {"a.svs": spot_root / "WSI" / "a.svs"}
    infer_slides(detector, slides, out, fingerprint="model-1", progress=False)
    assert infer_slides(detector, slides, out, fingerprint="model-2", progress=False).computed == ["a.svs"]
    every = WholeSlideDetector(spot_detector_model, spot_config, options=InferenceOptions(workers=0, all_tiles=True))
    assert infer_slides(every, slides, out, fingerprint="model-2", progress=False).computed == ["a.svs"]


def test_missing_and_corrupt_slides_are_reported_and_the_others_finish(detector, spot_root, openslide_fixtures,
                                                                     tmp_path):
    slides = {"a.svs": spot_root / "WSI" / "a.svs", "gone.svs": tmp_path / "gone.svs",
              "unreadable.svs": openslide_fixtures / "unreadable.svs", "b.svs": spot_root / "WSI" / "b.svs"}
    out = tmp_path / "res.npz"
    report = infer_slides(detector, slides, out, fingerprint="x", progress=False)
    assert set(report.failed) == {"gone.svs", "unreadable.svs"}
    assert "does not exist" in report.failed["gone.svs"]
    assert "Bogus marker" in report.failed["unreadable.svs"]
    assert list(read_results(out)) == ["a.svs", "b.svs"]
    assert set(read_metadata(out)["failed"]) == {"gone.svs", "unreadable.svs"}
    rerun = infer_slides(detector, slides, out, fingerprint="x", progress=False)
    assert rerun.resumed == ["a.svs", "b.svs"] and set(rerun.failed) == {"gone.svs", "unreadable.svs"}


def test_authors_format_output(detector, spot_root, tmp_path):
    slides = {"b.svs": spot_root / "WSI" / "b.svs"}
    out = tmp_path / "RetinaNet-x-test-inference_results_boxes.p.bz2"
    infer_slides(detector, slides, out, fingerprint="x", progress=False)
    np.testing.assert_array_equal(read_results(out)["b.svs"], detector.detect(slides["b.svs"]).boxes)


def test_run_inference_loads_the_model_directory(tiny_model_dir, spot_root, tmp_path):
    out = tmp_path / "res.npz"
    report = run_inference(tiny_model_dir, {"a.svs": spot_root / "WSI" / "a.svs"}, out,
                           options=InferenceOptions(workers=0), device="cpu", progress=False)
    assert report.computed == ["a.svs"] and report.n_detections["a.svs"] > 0
    assert read_metadata(out)["model"] == model_fingerprint(tiny_model_dir)


def test_model_directory_problems_are_model_errors(tiny_model_dir, spot_root, tmp_path):
    from ccmct.errors import ModelError

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "weights.pt").unlink()
    with pytest.raises(ModelError, match="weights.pt"):
        run_inference(broken, {"a.svs": spot_root / "WSI" / "a.svs"}, tmp_path / "r.npz", device="cpu")
