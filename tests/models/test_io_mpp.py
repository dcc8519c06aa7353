"""Model configs record the µm/px they were trained at; old configs read as 0.25 with a note; a slide at another
resolution is warned about by inference with both figures (docs/contracts.md, "Units")."""

import json

import pytest

from ccmct.config.paths import DataRoot
from ccmct.data.slide_checks import root_mpp
from ccmct.inference.detector import WholeSlideDetector
from ccmct.models.io import CONFIG_FILE, load_model_dir, save_model_dir
from ccmct.models.retinanet import DetectorConfig, RetinaNet
from ccmct.training.learner import detector_config, training_mpp
from ccmct.config.presets import detector_preset

SMALL = {"fpn_channels": 16, "head_convs": 1}


@pytest.fixture(scope="module")
def root_05(tmp_path_factory):
    """A tiny synthetic root scanned at 0.5 µm/px (a 20x scan)."""
    from ccmct.synthetic import generate_dataset

    out = tmp_path_factory.mktemp("root_05")
    generate_dataset(out, preset="tiny", seed=0, mpp=0.5, progress=False)
    return out


def test_mpp_is_saved_and_read_back(tmp_path):
    config = DetectorConfig(**SMALL, mpp=0.5)
    save_model_dir(tmp_path / "m", RetinaNet(config), config)
    assert json.loads((tmp_path / "m" / CONFIG_FILE).read_text())["config"]["mpp"] == 0.5
    assert load_model_dir(tmp_path / "m")[1].mpp == 0.5


def test_config_written_without_mpp_reads_as_0_25_with_a_note(tmp_path):
    config = DetectorConfig(**SMALL)
    save_model_dir(tmp_path / "m", RetinaNet(config), config)
    document = json.loads((tmp_path / "m" / CONFIG_FILE).read_text())
    del document["config"]["mpp"]
    (tmp_path / "m" / CONFIG_FILE).write_text(json.dumps(document))
    with pytest.warns(UserWarning, match=r"records no µm/px .* assuming it was trained at 0.25 µm/px"):
        _, loaded = load_model_dir(tmp_path / "m")
    assert loaded.mpp == 0.25


def test_training_records_the_roots_resolution(root_05, tiny_root):
    assert root_mpp(DataRoot(root_05).slides("train").values()) == 0.5
    assert training_mpp(root_05) == 0.5 and training_mpp(tiny_root) == 0.25
    assert detector_config(detector_preset("smoke"), "ODAEL", mpp=training_mpp(root_05)).mpp == 0.5
    assert root_mpp([root_05 / "WSI" / "absent.svs"]) == 0.25  # nothing readable: the paper's figure


def test_inference_warns_on_a_slide_at_another_resolution_and_not_at_its_own(root_05):
    slide = next(iter(DataRoot(root_05).slides("test").values()))
    paper = WholeSlideDetector(RetinaNet(DetectorConfig(**SMALL)).eval(), DetectorConfig(**SMALL))
    with pytest.warns(UserWarning, match=r"0.5 µm/px, 2.00x the ~0.25 µm/px"):
        paper.plan(slide)
    own = DetectorConfig(**SMALL, mpp=0.5)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        WholeSlideDetector(RetinaNet(own).eval(), own).plan(slide)


def test_smoke_training_on_a_0_5_root_records_it_and_its_slides_then_pass_unwarned(root_05, tmp_path):
    import warnings

    from ccmct.training.run import train_detector

    train_detector(root_05, "ODAEL", "smoke", tmp_path / "model", num_workers=0, progress=False)
    model, config = load_model_dir(tmp_path / "model", kind="retinanet")
    assert config.mpp == 0.5
    slide = next(iter(DataRoot(root_05).slides("test").values()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        WholeSlideDetector(model, config).plan(slide)
