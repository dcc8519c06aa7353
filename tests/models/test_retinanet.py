import math

import numpy as np
import pytest
import torch

from ccmct.models.box_coder import encode
from ccmct.models.retinanet import DetectorConfig, RetinaNet, postprocess, preprocess

SMALL = DetectorConfig(fpn_channels=32, head_convs=1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RetinaNet(SMALL).eval()


def test_output_shapes_and_prior(model):
    with torch.no_grad():
        cls_logits, box_deltas = model(torch.randn(2, 3, 256, 256))
    assert cls_logits.shape == (2, 768, 1) and box_deltas.shape == (2, 768, 4)
    # prior-probability bias init: every anchor starts near p = 0.01
    assert torch.sigmoid(cls_logits).mean().item() == pytest.approx(0.01, abs=0.005)


def test_other_tile_size(model):
    with torch.no_grad():
        cls_logits, _ = model(torch.zeros(1, 3, 512, 384))
    assert cls_logits.shape == (1, 32 * 24 * 3, 1)
    assert SMALL.anchors(512).shape[0] == 32 * 32 * 3


def test_preprocess():
    tiles = np.zeros((2, 256, 256, 3), np.uint8)
    tiles[..., 0] = 255
    x = preprocess(tiles, SMALL)
    assert x.shape == (2, 3, 256, 256) and x.dtype == torch.float32
    assert x[0, 0, 0, 0].item() == pytest.approx((1 - SMALL.mean[0]) / SMALL.std[0])
    with pytest.raises(ValueError, match="uint8"):
        preprocess(tiles.astype(np.float32), SMALL)


def test_postprocess_hand_made():
    anchors = SMALL.anchors()
    logits = torch.full((2, 768, 1), -10.0)
    deltas = torch.zeros(2, 768, 4)
    # image 0: two overlapping anchors (same cell, sizes 50 and 60) and one far away; image 1: nothing
    cell = (5 * 16 + 7) * 3
    logits[0, cell + 1, 0], logits[0, cell + 2, 0], logits[0, 10 * 3 + 1, 0] = 3.0, 2.0, 1.0
    target = torch.tensor([[100.0, 70.0, 150.0, 120.0]])
    deltas[0, cell + 1] = encode(target, anchors[cell + 1 : cell + 2])[0]
    out = postprocess(logits, deltas, anchors, score_threshold=0.3, iou_threshold=0.4)
    boxes, scores = out[0]
    assert len(out) == 2 and out[1][0].shape == (0, 4)
    assert scores.tolist() == pytest.approx([1 / (1 + math.exp(-3)), 1 / (1 + math.exp(-1))])
    assert torch.allclose(boxes[0], target[0], atol=1e-4)


def test_config_round_trip_and_validation():
    cfg = DetectorConfig(variant="MEL", preset="smoke")
    assert DetectorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown detector config keys"):
        DetectorConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="backbone"):
        DetectorConfig(backbone="vgg")


def test_local_backbone_weights(tmp_path):
    import torchvision

    from ccmct.errors import ModelError
    from ccmct.models.retinanet import build_backbone

    torch.manual_seed(1)
    resnet = torchvision.models.resnet18(weights=None)
    torch.save(resnet.state_dict(), tmp_path / "r18.pth")
    body = build_backbone("resnet18", tmp_path / "r18.pth")
    assert torch.equal(body.conv1.weight, resnet.conv1.weight)
    torch.save({"conv1.weight": resnet.conv1.weight}, tmp_path / "partial.pth")
    with pytest.raises(ModelError, match="partial.pth.*missing"):
        build_backbone("resnet18", tmp_path / "partial.pth")
    with pytest.raises(ModelError, match="does not exist"):
        build_backbone("resnet18", tmp_path / "nope.pth")
