"""Networks: the tile detectors (stage 1) and, separately, the cell classifier (stage 2).

Detector public API: the interface :mod:`ccmct.models.detector` (``model(images, targets)`` -> loss dict in
training, ``model(images)`` -> per-tile boxes / scores / labels in tile px in eval; :func:`prepare_tiles`);
:class:`ccmct.models.retinanet.RetinaNet` with :class:`DetectorConfig` (the paper's; anchors, box coding,
loss and :func:`postprocess` stay in its module with :mod:`ccmct.models.anchors` and
:mod:`ccmct.models.box_coder`), :class:`ccmct.models.fcos.TinyFCOS` (a tiny second detector), the kind table
:mod:`ccmct.models.registry`, :func:`ccmct.models.io.save_model_dir` / ``load_model_dir``.
Submodules are imported on use (torch is heavy).
"""
