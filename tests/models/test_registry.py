"""ccmct.models.registry: one explicit table of model kinds; io reads it; no import circle with the models."""

import json
import subprocess
import sys

import pytest
import torch

from ccmct.errors import CcmctError, ModelError
from ccmct.models.candidate import CandidateConfig
from ccmct.models.classifier import ClassifierConfig
from ccmct.models.io import CONFIG_FILE, KIND_NAMES, load_model_dir, save_model_dir
from ccmct.models.fcos import FCOSConfig
from ccmct.models.registry import MODEL_KINDS, UnknownModelKind, detector_kinds, kind_of_config, model_kind
from ccmct.models.retinanet import DetectorConfig


def test_table_lists_every_kind_with_a_resolvable_config_and_builder():
    assert set(MODEL_KINDS) == {"retinanet", "fcos", "cell_classifier", "candidate"}
    assert {name: kind.config_class() for name, kind in MODEL_KINDS.items()} == {
        "retinanet": DetectorConfig, "fcos": FCOSConfig, "cell_classifier": ClassifierConfig,
        "candidate": CandidateConfig}
    assert KIND_NAMES == {name: kind.description for name, kind in MODEL_KINDS.items()}
    assert detector_kinds() == ("retinanet", "fcos")
    with pytest.raises(UnknownModelKind, match="unknown model kind 'yolo'.*candidate") as info:
        model_kind("yolo")
    assert isinstance(info.value, CcmctError)


@pytest.mark.parametrize("config", [CandidateConfig(channels=(4, 8), map_stride=2),
                                    DetectorConfig(fpn_channels=16, head_convs=1), FCOSConfig(tile_px=64)],
                         ids=["candidate", "retinanet", "fcos"])
def test_each_kind_round_trips_through_its_registry_row(config, tmp_path):
    kind = kind_of_config(config)
    model = model_kind(kind).build(config)
    save_model_dir(tmp_path / "m", model, config)
    assert json.loads((tmp_path / "m" / CONFIG_FILE).read_text())["kind"] == kind
    loaded, loaded_config = load_model_dir(tmp_path / "m", kind=kind)
    assert loaded_config == config and type(loaded) is type(model)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_config_json_with_an_unregistered_kind_is_refused(tmp_path):
    config = CandidateConfig(channels=(4, 8), map_stride=2)
    save_model_dir(tmp_path / "m", model_kind("candidate").build(config), config)
    document = json.loads((tmp_path / "m" / CONFIG_FILE).read_text())
    document["kind"] = "yolo"
    (tmp_path / "m" / CONFIG_FILE).write_text(json.dumps(document))
    with pytest.raises(ModelError, match="unknown model kind 'yolo'"):
        load_model_dir(tmp_path / "m")
    with pytest.raises(TypeError, match="no model kind for config type dict"):
        kind_of_config({})


def test_io_imports_no_model_module_and_classifier_imports_io_at_top():
    code = ("import sys, ccmct.models.io as io; "
            "print(sorted(m for m in sys.modules if m in ('ccmct.models.classifier', 'ccmct.models.retinanet', "
            "'ccmct.models.candidate')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    import ccmct.models.classifier as classifier

    assert classifier.load_model_dir is load_model_dir  # a plain top-level import: no circle to dodge
