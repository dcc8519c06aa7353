import math

import numpy as np
import pytest
import torch

from ccmct.models.box_coder import encode
from ccmct.models.detector import TileDetector, targets_from_padded
from ccmct.models.retinanet import DetectorConfig, RetinaNet, detection_loss, postprocess, preprocess

SMALL = DetectorConfig(fpn_channels=32, head_convs=1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RetinaNet(SMALL).eval()


def test_output_shapes_and_prior(model):
    with torch.no_grad():
        cls_logits, box_deltas = model.head_outputs(torch.randn(2, 3, 256, 256))
    assert cls_logits.shape == (2, 768, 1) and box_deltas.shape == (2, 768, 4)
    # prior-probability bias init: every anchor starts near p = 0.01
    assert torch.sigmoid(cls_logits).mean().item() == pytest.approx(0.01, abs=0.005)


def test_other_tile_size(model):
    with torch.no_grad():
        cls_logits, _ = model.head_outputs(torch.zeros(1, 3, 512, 384))
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
    boxes, scores, labels = out[0]
    assert len(out) == 2 and out[1][0].shape == (0, 4)
    assert labels.tolist() == [0, 0] and labels.dtype == torch.int64
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


def test_detector_interface_owns_loss_and_post_processing(model):
    """``model(images, targets)`` in training = :func:`detection_loss` of its head outputs; ``model(images)`` in
    eval = :func:`postprocess` at its thresholds; eval with targets gives both from one pass."""
    torch.manual_seed(2)
    images = torch.randn(2, 3, 256, 256)
    boxes = torch.tensor([[[100.0, 90.0, 150.0, 140.0], [0.0, 0.0, 0.0, 0.0]],
                          [[10.0, 20.0, 60.0, 70.0], [200.0, 200.0, 250.0, 250.0]]])
    labels = torch.tensor([[1, 0], [1, 1]])
    targets = targets_from_padded(boxes, labels)
    assert [len(t["boxes"]) for t in targets] == [1, 2] and targets[1]["labels"].tolist() == [0, 0]
    assert isinstance(model, TileDetector) and type(model).loss_names == ("focal", "box")
    with torch.no_grad():
        model.train()
        losses = model(images, targets)
        expected = detection_loss(*model.head_outputs(images), SMALL.anchors(), boxes, labels)
        assert list(losses) == ["focal", "box"]
        assert all(torch.equal(losses[k], expected[k]) for k in losses)
        model.eval()
        model.score_threshold = 0.005  # random init scores ~0.01: some detections to compare
        try:
            detections = model(images)
            val_losses, val_detections = model(images, targets)
            raw = postprocess(*model.head_outputs(images), SMALL.anchors(), score_threshold=0.005,
                              iou_threshold=SMALL.nms_iou)
        finally:
            model.score_threshold = SMALL.score_threshold
    assert sum(len(d["scores"]) for d in detections) > 0
    for found, again, (b, s, c) in zip(detections, val_detections, raw):
        assert torch.equal(found["boxes"], b) and torch.equal(found["scores"], s) and torch.equal(found["labels"], c)
        assert torch.equal(again["boxes"], b)
    assert set(val_losses) == {"focal", "box"}
    with pytest.raises(ValueError, match="needs targets"):
        model.train()(images)
    model.eval()
