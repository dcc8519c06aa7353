"""The training loss of any tile detector: the sum of the loss dict the detector returns.

A detector owns its loss (:mod:`ccmct.models.detector`): in training mode ``model(images, targets)`` returns
``{name: scalar Tensor}`` (RetinaNet: ``focal`` + ``box``, :func:`ccmct.models.retinanet.detection_loss`), in
validation ``(losses, detections)``. :class:`DetectorLoss` is the fastai ``loss_func`` over that prediction:
it adds the parts in the detector's order and keeps them (detached) for the per-part validation metrics
(:class:`ccmct.training.metrics.LossPart`).
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["DetectorLoss", "loss_dict", "total_loss"]


def loss_dict(pred) -> dict[str, Tensor]:
    """The loss dict of a detector's output: the output itself in training, its first item in validation."""
    losses = pred[0] if isinstance(pred, tuple) else pred
    if not isinstance(losses, dict) or not losses or not all(
            isinstance(v, Tensor) and v.ndim == 0 for v in losses.values()):
        raise TypeError("expected the detector's loss dict (model(images, targets)), got "
                        f"{type(losses).__name__}")
    return losses


def total_loss(losses: dict[str, Tensor]) -> Tensor:
    """Sum of the loss parts, added left to right in the dict's order."""
    parts = iter(losses.values())
    total = next(parts)
    for part in parts:
        total = total + part
    return total


class DetectorLoss:
    """fastai ``loss_func(pred, *yb)``: :func:`total_loss` of :func:`loss_dict` (``yb``, the padded targets,
    are already inside the prediction). ``last_parts`` holds the detached parts of the last batch."""

    def __init__(self):
        self.last_parts: dict[str, Tensor] = {}

    def __call__(self, pred, *_targets) -> Tensor:
        losses = loss_dict(pred)
        self.last_parts = {name: value.detach() for name, value in losses.items()}
        return total_loss(losses)
