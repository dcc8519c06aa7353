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
        for a, b in zip(model(x), loaded(x)):
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
    with pytest.raises(ModelError, match="do not load"):
        load_model_dir(tmp_path)
