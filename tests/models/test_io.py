import json

import pytest
import torch

from ccmct.errors import ModelError
from ccmct.models.io import load_model_dir, save_model_dir
from ccmct.models.retinanet import DetectorConfig, RetinaNet

CFG = DetectorConfig(fpn_channels=32, head_convs=1, variant="ODAEL", preset="smoke")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = RetinaNet(CFG)
    directory = save_model_dir(tmp_path_factory.mktemp("m") / "model", model, CFG)
    return model.eval(), directory


def test_round_trip_rebuilds_exact_model(saved):
    model, directory = saved
    loaded, config = load_model_dir(directory)
    assert config == CFG
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        for a, b in zip(model.head_outputs(x), loaded.head_outputs(x)):
            assert torch.equal(a, b)
    document = json.loads((directory / "config.json").read_text())
    assert document["kind"] == "retinanet" and document["config"]["gt_box_px"] == 50.0
    # the weights file is a plain state dict
    assert isinstance(torch.load(directory / "weights.pt", weights_only=True), dict)


def test_missing_file(saved, tmp_path):
    _, directory = saved
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    with pytest.raises(ModelError, match="weights.pt.*missing"):
        load_model_dir(tmp_path)


def test_other_format_version(saved, tmp_path):
    _, directory = saved
    document = json.loads((directory / "config.json").read_text())
    document["format_version"] = 99
    (tmp_path / "config.json").write_text(json.dumps(document))
    (tmp_path / "weights.pt").write_bytes((directory / "weights.pt").read_bytes())
    with pytest.raises(ModelError, match="format version 99"):
        load_model_dir(tmp_path)


def test_weights_of_another_architecture(saved, tmp_path):
    _, directory = saved
    document = json.loads((directory / "config.json").read_text())
    document["config"]["head_convs"] = 2
    (tmp_path / "config.json").write_text(json.dumps(document))
    (tmp_path / "weights.pt").write_bytes((directory / "weights.pt").read_bytes())
    with pytest.raises(ModelError, match="do not fit") as info:
        load_model_dir(tmp_path)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400 and "weights_only" not in message
    assert "missing 'cls_head.tower.2.weight'" in message and "4 key(s) missing" in message


def test_weights_with_another_shape_name_the_first_key(saved, tmp_path):
    _, directory = saved
    document = json.loads((directory / "config.json").read_text())
    document["config"]["fpn_channels"] = 8
    (tmp_path / "config.json").write_text(json.dumps(document))
    (tmp_path / "weights.pt").write_bytes((directory / "weights.pt").read_bytes())
    with pytest.raises(ModelError, match=r"has shape \(\d+, .*the architecture needs .*tensors differ"):
        load_model_dir(tmp_path)


@pytest.mark.parametrize("damage", ["empty", "junk", "pickled_object"])
def test_unloadable_weights_are_one_line_without_torch_advice(saved, tmp_path, damage):
    import pickle

    _, directory = saved
    (tmp_path / "config.json").write_bytes((directory / "config.json").read_bytes())
    weights = tmp_path / "weights.pt"
    if damage == "empty":
        weights.write_bytes(b"")
    elif damage == "junk":
        weights.write_bytes(b"\x00not a torch file" * 10)
    else:
        import collections
        torch.save({"x": collections.Counter("ab")}, weights)
    with pytest.raises(ModelError) as info:
        load_model_dir(tmp_path)
    message = str(info.value)
    assert message.startswith(str(weights)) and "\n" not in message and "weights_only" not in message
    assert ("empty file" in message) == (damage == "empty")


def test_config_with_a_missing_key_is_refused_not_defaulted(saved, tmp_path):
    _, directory = saved
    document = json.loads((directory / "config.json").read_text())
    del document["config"]["tile_px"]
    (tmp_path / "config.json").write_text(json.dumps(document))
    (tmp_path / "weights.pt").write_bytes((directory / "weights.pt").read_bytes())
    with pytest.raises(ModelError, match="config key 'tile_px' is missing; refusing to assume a default"):
        load_model_dir(tmp_path)
    document["config"]["tile_px"] = "256"
    (tmp_path / "config.json").write_text(json.dumps(document))
    with pytest.raises(ModelError, match="config key 'tile_px': expected a whole number"):
        load_model_dir(tmp_path)


def test_model_of_the_wrong_kind_is_named(saved):
    _, directory = saved
    with pytest.raises(ModelError, match="is a RetinaNet detector .*this command needs a cell classifier"):
        load_model_dir(directory, kind="cell_classifier")
