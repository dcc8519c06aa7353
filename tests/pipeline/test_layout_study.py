"""The study layout, ``DataRoot.slides`` and the Study's seed folders."""

from __future__ import annotations

import json

import pytest

from ccmct.config.dataset import REAL_TEST_SLIDES
from ccmct.config.paths import DataRoot
from ccmct.pipeline import Layout, Study
from ccmct.pipeline.done import model_ready, result_ready, unfinished_slides


def test_slides_of_a_split_follow_split_json_and_the_paper(tiny_root, tmp_path):
    root = DataRoot(tiny_root)
    split = json.loads((tiny_root / "split.json").read_text())
    for part in ("train", "test"):
        slides = root.slides(part)
        assert list(slides) == sorted(split[part])
        assert all(path == tiny_root / "WSI" / name for name, path in slides.items())
    paper = DataRoot(tmp_path)  # no split.json: the paper's 21 / 11 slides, whether or not they are there
    assert len(paper.slides("train")) == 21 and set(paper.slides("test")) == REAL_TEST_SLIDES
    with pytest.raises(ValueError, match="'train' or 'test'"):
        root.slides("valid")


def test_layout_names_and_seed_folders(tmp_path):
    layout = Layout(tmp_path)
    assert layout.detector_dir("MEL") == tmp_path / "models" / "RetinaNet-MEL"
    assert layout.classifier_dir("ODAEL") == tmp_path / "models" / "CellClassifier-ODAEL"
    assert layout.result_path("HEAEL", "test", 2) == tmp_path / "results" / "2ndstage_RetinaNet-HEAEL-test.npz"
    assert layout.figure5 == tmp_path / "figures" / "figure5.png"
    study = Study(out_dir=tmp_path, seeds=(3, 5), seed=3)
    assert study.seed_dir(3) == tmp_path and study.seed_dir(5) == tmp_path / "seeds" / "seed-5"
    assert study.for_seed(5).detector_dir("MEL") == tmp_path / "seeds" / "seed-5" / "models" / "RetinaNet-MEL"
    assert study.for_seed(5).root.path == tmp_path / "data"  # the data root is shared by every seed
    with pytest.raises(ValueError, match="repeat"):
        Study(out_dir=tmp_path, seeds=(1, 1))


def test_done_checks(tmp_path):
    from ccmct.data.results import write_results
    import numpy as np

    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.pt").write_bytes(b"x")
    assert not model_ready(model)  # config.json is written last: without it the directory is unfinished
    (model / "config.json").write_text("{}")
    assert model_ready(model)
    boxes = {"a.svs": np.zeros((0, 6), dtype=np.float32)}
    done, failed = tmp_path / "done.npz", tmp_path / "failed.npz"
    write_results(done, boxes)
    write_results(failed, boxes, metadata={"failed": {"b.svs": "unreadable"}})
    assert result_ready(done) and not result_ready(failed) and not result_ready(tmp_path / "missing.npz")
    assert unfinished_slides(failed) == {"b.svs": "failed: unreadable"}


def test_second_stage_score_follows_the_classifier_preset_and_makes_other_files_stale(tmp_path):
    import numpy as np

    from ccmct.data.results import write_results
    from ccmct.pipeline.done import rescored_ready

    assert Study(out_dir=tmp_path, preset="paper").second_stage_combine == "replace"  # the paper's rule
    assert Study(out_dir=tmp_path, preset="smoke").second_stage_combine == "replace"
    assert Study(out_dir=tmp_path, preset="quick").second_stage_combine == "geometric_mean"
    boxes = {"a.svs": np.array([[0, 0, 50, 50, 1, 0.5]])}
    source = write_results(tmp_path / "RetinaNet-ODAEL-test.npz", boxes, metadata={"stage": 1})
    stage1 = {"stage": 1}
    replaced = write_results(tmp_path / "r.npz", boxes, metadata={"stage": 2, "stage1": stage1, "combine": "replace"})
    combined = write_results(tmp_path / "g.npz", boxes,
                             metadata={"stage": 2, "stage1": stage1, "combine": "geometric_mean"})
    older = write_results(tmp_path / "o.npz", boxes, metadata={"stage": 2, "stage1": stage1})  # before the key
    assert rescored_ready(replaced, source) and rescored_ready(older, source)
    assert not rescored_ready(replaced, source, "geometric_mean")  # re-scored again, not silently reused
    assert rescored_ready(combined, source, "geometric_mean") and not rescored_ready(combined, source)
    assert not rescored_ready(older, source, "geometric_mean")


def test_results_are_stale_once_the_model_that_made_them_is_trained_again(tmp_path):
    """A first-stage file is done only for the detector now in its folder, a second-stage file only for the
    classifier now in its folder (model fingerprints in the result metadata)."""
    import numpy as np

    from ccmct.data.results import write_results
    from ccmct.models.io import model_fingerprint
    from ccmct.pipeline.done import made_by, rescored_ready

    detector, classifier = tmp_path / "detector", tmp_path / "classifier"
    for model in (detector, classifier):
        model.mkdir()
        (model / "weights.pt").write_bytes(b"trained once")
        (model / "config.json").write_text("{}")
    boxes = {"a.svs": np.array([[0, 0, 50, 50, 1, 0.5]])}
    stage1 = write_results(tmp_path / "s1.npz", boxes, metadata={"stage": 1, "model": model_fingerprint(detector)})
    stage2 = write_results(tmp_path / "s2.npz", boxes, metadata={
        "stage": 2, "stage1": {"stage": 1, "model": model_fingerprint(detector)}, "combine": "replace",
        "classifier_fingerprint": model_fingerprint(classifier)})
    assert made_by(stage1, detector) and rescored_ready(stage2, stage1, "replace", classifier)
    (classifier / "weights.pt").write_bytes(b"trained again")
    assert not rescored_ready(stage2, stage1, "replace", classifier)
    (detector / "weights.pt").write_bytes(b"trained again")
    assert not made_by(stage1, detector)
    assert not made_by(tmp_path / "missing.npz", detector)
    unfingerprinted = write_results(tmp_path / "old.npz", boxes, metadata={"stage": 1})  # written before the key
    assert not made_by(unfingerprinted, detector)


@pytest.mark.timeout(1800)  # trains two smoke detectors and a classifier: longer than the default on a loaded CPU
def test_pipeline_retrains_a_detector_made_by_an_older_preset_and_what_follows_from_it(tiny_root, tmp_path):
    """The study's done-checks: a detector made by another schedule than the preset's (here: with a weight
    average the smoke preset does not have) is trained again, and the classifier started from its backbone and the results it made become stale."""
    import dataclasses

    from ccmct.config.presets import detector_preset
    from ccmct.pipeline.steps import infer_step, train_classifier_step, train_detector_step
    from ccmct.training.classifier import default_start_weights, trained_as as classifier_trained_as
    from ccmct.training.run import train_detector, trained_as

    study = Study(out_dir=tmp_path, preset="smoke", data_root=tiny_root)
    detector_dir = study.for_seed(0).detector_dir("ODAEL")
    old = dataclasses.replace(detector_preset("smoke"), weight_average=0.9)  # another schedule than smoke's
    train_detector(tiny_root, "ODAEL", old, detector_dir, seed=0, num_workers=0, progress=False)
    step = train_detector_step(study, "ODAEL", 0, progress=False)
    assert model_ready(detector_dir) and trained_as(detector_dir, tiny_root, "ODAEL", old, seed=0)
    assert not step.done()  # the files are there, but made by another schedule
    infer = infer_step(study, "ODAEL", "test", 0, progress=False)
    infer.action()
    assert infer.done()
    classifier = train_classifier_step(study, "ODAEL", 0, progress=False)
    classifier.action()
    assert classifier.done()
    start = default_start_weights("smoke", detector_dir)
    assert classifier_trained_as(study.for_seed(0).classifier_dir("ODAEL"), "ODAEL", "smoke", seed=0,
                                 weights_path=start)["start_fingerprint"]
    assert not classifier_trained_as(study.for_seed(0).classifier_dir("ODAEL"), "ODAEL", "smoke", seed=1,
                                     weights_path=start)  # another seed is another model
    from ccmct.config.presets import classifier_preset

    smoke = classifier_preset("smoke")  # the second-stage score is applied when re-scoring: the model is the same
    rescoring = dataclasses.replace(smoke, combine="geometric_mean" if smoke.combine == "replace" else "replace")
    assert classifier_trained_as(study.for_seed(0).classifier_dir("ODAEL"), "ODAEL", rescoring, seed=0,
                                 weights_path=start)
    assert not classifier_trained_as(study.for_seed(0).classifier_dir("ODAEL"), "ODAEL",
                                     dataclasses.replace(smoke, epochs=smoke.epochs + 1), seed=0, weights_path=start)
    step.action()  # trained again with the study's preset
    assert step.done()
    assert not infer.done() and not classifier.done()  # both came from the replaced detector
