"""Training of the first-stage detector with fastai over slides (see docs/training.md).

Modules (imported on use; fastai is heavy):

- ``run``: :func:`ccmct.training.run.train_detector`, the whole run (what ``ccmct train`` calls).
- ``learner``: the fastai Learner (data, model, loss, metrics, parameter groups).
- ``schedule``: the preset's schedule, checkpoints and resume, early stopping.
- ``data`` / ``augment``: patch datasets over slides, worker processes, augmentations.
- ``loss`` / ``metrics``: the sum of the detector's own loss dict; loss parts and the patch-level F1.
- ``distributed``: torchrun / DistributedDataParallel.  ``export``: the model directory.
- ``plots``: figures of the RetinaNet-CCMCT notebooks.
"""
