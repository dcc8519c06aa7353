"""The cell classifier network, its config and model directory (random init; no download)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ccmct.config import GRANULOCYTE, LOOKALIKE, MITOTIC_FIGURE, TUMOR_CELL
from ccmct.errors import ModelError
from ccmct.models.classifier import (
    ClassifierConfig,
    build_classifier,
    classifier_splitter,
    load_classifier_config,
    detector_backbone_state,
    detector_normalisation,
    load_classifier_dir,
    predict_probabilities,
    resnet18_arch,
    save_classifier_dir,
)


def _config(**overrides) -> ClassifierConfig:
    values = dict(class_ids=(MITOTIC_FIGURE, LOOKALIKE, GRANULOCYTE, TUMOR_CELL),
                  class_names=("Mitotic figure", "Mitotic figure look-alike", "Granulocyte", "Tumor cell"),
                  class_short=("MF", "LA", "Gr", "TC"), patch_size_px=128, mean=(0.7, 0.5, 0.6),
                  std=(0.15, 0.2, 0.1), preset="smoke", variant="ODAEL", training={"seed": 0})
    values.update(overrides)
    return ClassifierConfig(**values)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_classifier(4).eval()


def test_network_maps_patches_to_class_logits(model):
    assert model(torch.rand(3, 3, 128, 128)).shape == (3, 4)
    assert len(classifier_splitter(model)) == 3  # stem+layer1 / layer2-4 / head, as fastai's resnet split


def test_local_weights_file_initialises_the_body(tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(1)
    reference = resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    net = build_classifier(4, arch=resnet18_arch(weights_path=tmp_path / "r18.pth"), pretrained=True)
    assert torch.equal(net[0][0].weight, reference.conv1.weight)          # body = resnet children[:-2]
    assert torch.equal(net[0][7][1].conv2.weight, reference.layer4[1].conv2.weight)
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="bad.pth"):
        build_classifier(4, arch=resnet18_arch(weights_path=tmp_path / "bad.pth"), pretrained=True)


def test_detector_model_dir_initialises_the_body_from_its_backbone(model, tmp_path):
    from ccmct.models.io import save_model_dir
    from ccmct.models.retinanet import DetectorConfig, RetinaNet

    torch.manual_seed(2)
    config = DetectorConfig(backbone="resnet18", fpn_channels=16, head_convs=1)
    detector = RetinaNet(config).eval()
    save_model_dir(tmp_path / "det", detector, config)
    state = detector_backbone_state(tmp_path / "det")
    assert not any(k.startswith(("fc.", "body.")) for k in state) and "layer4.1.conv2.weight" in state
    net = build_classifier(4, arch=resnet18_arch(weights_path=tmp_path / "det"), pretrained=True)
    assert torch.equal(net[0][0].weight, detector.body.conv1.weight)
    assert torch.equal(net[0][7][1].conv2.weight, detector.body.layer4[1].conv2.weight)
    assert detector_normalisation(tmp_path / "det") == (tuple(config.mean), tuple(config.std))
    # a classifier directory or a detector on another backbone is refused, naming the folder
    save_classifier_dir(tmp_path / "cls", model, _config())
    with pytest.raises(ModelError, match="cls.*not a first-stage"):
        detector_backbone_state(tmp_path / "cls")
    with pytest.raises(ModelError, match="cls.*expected 'retinanet'"):
        detector_normalisation(tmp_path / "cls")
    other = DetectorConfig(backbone="resnet34", fpn_channels=16, head_convs=1)
    save_model_dir(tmp_path / "r34", RetinaNet(other), other)
    with pytest.raises(ModelError, match="r34.*resnet34"):
        build_classifier(4, arch=resnet18_arch(weights_path=tmp_path / "r34"), pretrained=True)


def test_model_dir_round_trip(model, tmp_path):
    config = _config()
    save_classifier_dir(tmp_path, model, config)
    document = json.loads((tmp_path / "config.json").read_text())
    assert document["kind"] == "cell_classifier" and document["format_version"] == 1
    assert document["config"]["class_ids"] == [2, 7, 1, 3] and document["config"]["patch_size_px"] == 128
    assert isinstance(torch.load(tmp_path / "weights.pt", weights_only=True), dict)
    loaded, loaded_config = load_classifier_dir(tmp_path)
    assert loaded_config == config
    x = torch.rand(2, 3, 128, 128)
    assert torch.allclose(loaded(x), model(x))
    assert not list(tmp_path.glob("*.tmp"))


def test_config_finds_mitotic_figure_by_class_id():
    config = _config(class_ids=(GRANULOCYTE, MITOTIC_FIGURE, LOOKALIKE, TUMOR_CELL))
    assert config.index_of(MITOTIC_FIGURE) == 1
    with pytest.raises(ModelError, match="no output for class id 4"):
        config.index_of(4)


def test_bad_model_dirs_name_the_file(model, tmp_path):
    with pytest.raises(ModelError, match="config.json"):
        load_classifier_dir(tmp_path / "nothing")
    save_classifier_dir(tmp_path, model, _config())
    document = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**document, "kind": "retinanet"}))
    with pytest.raises(ModelError, match="expected a cell classifier"):
        load_classifier_dir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**document, "format_version": 99}))
    with pytest.raises(ModelError, match="format version 99"):
        load_classifier_dir(tmp_path)
    three = _config(class_ids=(2, 7, 1), class_names=("a", "b", "c"), class_short=("MF", "LA", "Gr"))
    (tmp_path / "config.json").write_text(json.dumps({**document, "config": three.to_dict()}))
    with pytest.raises(ModelError, match="weights.pt"):
        load_classifier_dir(tmp_path)  # 4-class weights, 3-class config


class _Tensors(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], torch.tensor(-1)


def test_predict_probabilities_in_dataset_order(model):
    images = torch.rand(7, 3, 128, 128)
    probs = predict_probabilities(model, _Tensors(images), batch_size=3, mixed_precision=False)
    assert probs.shape == (7, 4) and probs.dtype == np.float32
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    with torch.no_grad():
        expected = torch.softmax(model(images), 1).numpy()
    assert np.allclose(probs, expected, atol=1e-5)
    # reduced precision where the device has it (bf16 on a bf16 CPU): float32 out, close to the exact values
    reduced = predict_probabilities(model, _Tensors(images), batch_size=3)
    assert reduced.dtype == np.float32 and np.allclose(reduced.sum(1), 1, atol=1e-5)
    assert np.abs(reduced - expected).max() < 0.03
    assert predict_probabilities(model, _Tensors(images[:0])).shape == (0, 4)
