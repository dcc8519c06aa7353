"""RetinaNet's own loss (:func:`ccmct.models.retinanet.detection_loss`): anchor matching, focal and box parts."""

import math

import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

from ccmct.models.anchors import make_anchors
from ccmct.models.box_coder import encode
from ccmct.models.retinanet import detection_loss, match_anchors

ANCHORS = make_anchors(64, 16, (50.0,))  # 4 x 4 cells, one size


def test_matching_thresholds_and_padding():
    gt = torch.tensor([[[0.0, 0.0, 50.0, 50.0], [0.0, 0.0, 1.0, 1.0]]])   # second row is padding
    state, index = match_anchors(ANCHORS, gt, torch.tensor([[1, 0]]), iou_pos=0.5, iou_neg=0.4)
    # anchor (0,0) has centre (8,8): IoU with the GT (centre 25,25) = 33^2 / (2*2500 - 33^2) = 0.279 -> bg
    # anchor (1,1) centre (24,24): IoU = 49^2/(5000-49^2) = 0.923 -> positive
    assert state[0, 5] == 1 and index[0, 5] == 0
    assert state[0, 0] == 0
    # anchor (0,1) centre (24,8): 49*33 / (5000 - 1617) = 0.478 -> ignored
    assert state[0, 1] == -1
    assert state[0, 15] == 0


def _loss(preds, gt, labels, **kwargs):
    return detection_loss(*preds, ANCHORS, gt, labels, **kwargs)


def test_focal_and_box_parts_hand_made():
    gt = torch.tensor([[[0.0, 0.0, 50.0, 50.0]]])
    labels = torch.tensor([[1]])
    logits = torch.zeros(1, 16, 1)
    deltas = torch.zeros(1, 16, 4)
    parts = _loss((logits, deltas), gt, labels)
    total = parts["focal"] + parts["box"]
    state, _ = match_anchors(ANCHORS, gt, labels, iou_pos=0.5, iou_neg=0.4)
    n_pos = int((state == 1).sum())
    # at logit 0 (p = 0.5): positive term 0.25 * 0.25 * ln2, negative term 0.75 * 0.25 * ln2
    n_neg = int((state == 0).sum())
    focal = (n_pos * 0.25 * 0.25 * math.log(2) + n_neg * 0.75 * 0.25 * math.log(2)) / n_pos
    assert parts["focal"].item() == pytest.approx(focal, rel=1e-5)
    positives = ANCHORS[state[0] == 1]
    t = encode(gt[0].expand(len(positives), 4), positives)
    box = torch.nn.functional.smooth_l1_loss(torch.zeros_like(t), t, beta=1 / 9, reduction="sum") / n_pos
    assert parts["box"].item() == pytest.approx(box.item(), rel=1e-5)
    assert total.item() == pytest.approx(focal + box.item(), rel=1e-5)


def test_perfect_prediction_has_low_loss_and_gradients_flow():
    def loss_fn(preds, gt, labels):
        return sum(_loss(preds, gt, labels).values())

    gt = torch.tensor([[[10.0, 12.0, 60.0, 62.0]], [[0.0, 0.0, 1.0, 1.0]]])
    labels = torch.tensor([[1], [0]])                               # image 2 has no cell
    state, index = match_anchors(ANCHORS, gt, labels, iou_pos=0.5, iou_neg=0.4)
    logits = torch.where(state == 1, 8.0, -8.0)[..., None].requires_grad_()
    deltas = encode(gt[0, 0].expand(16, 4), ANCHORS).expand(2, -1, -1).clone().requires_grad_()
    loss = loss_fn((logits, deltas), gt, labels)
    assert loss.item() < 1e-3
    bad = loss_fn((torch.zeros_like(logits, requires_grad=True), torch.zeros_like(deltas)), gt, labels)
    assert bad.item() > 100 * loss.item()
    loss.backward()
    assert logits.grad is not None


def test_matches_torchvision_focal_loss_when_nothing_is_ignored():
    gt = torch.tensor([[[10.0, 12.0, 60.0, 62.0]]])
    logits = torch.randn(1, 16, 1, generator=torch.Generator().manual_seed(0))
    parts = _loss((logits, torch.zeros(1, 16, 4)), gt, torch.tensor([[1]]), iou_neg=0.5)
    state, _ = match_anchors(ANCHORS, gt, torch.tensor([[1]]), iou_pos=0.5, iou_neg=0.5)
    expected = sigmoid_focal_loss(logits, (state == 1).float()[..., None], reduction="sum") / (state == 1).sum()
    assert parts["focal"].item() == pytest.approx(expected.item(), rel=1e-5)
