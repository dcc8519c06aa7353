"""The training loss of any tile detector (:class:`ccmct.training.loss.DetectorLoss`): the sum of the detector's
loss dict, with the parts kept for the per-part validation metrics."""

import pytest
import torch

from ccmct.training.loss import DetectorLoss, loss_dict, total_loss


def test_sum_in_the_detector_order_and_parts_kept_detached():
    focal = torch.tensor(1.25, requires_grad=True)
    box = torch.tensor(0.5, requires_grad=True)
    loss = DetectorLoss()
    total = loss({"focal": focal, "box": box}, torch.zeros(2, 1, 4), torch.zeros(2, 1, dtype=torch.long))
    assert total.item() == 1.75 and total.requires_grad
    assert list(loss.last_parts) == ["focal", "box"] and not loss.last_parts["box"].requires_grad
    total.backward()
    assert focal.grad.item() == 1.0 and box.grad.item() == 1.0


def test_validation_prediction_gives_its_losses_first():
    losses = {"classification": torch.tensor(2.0), "bbox_regression": torch.tensor(1.0)}
    assert loss_dict((losses, [{"boxes": torch.zeros(0, 4)}])) is losses
    assert total_loss(losses).item() == 3.0
    with pytest.raises(TypeError, match="loss dict"):
        loss_dict([{"boxes": torch.zeros(0, 4)}])  # eval-mode detections alone carry no loss
