"""Networks: the RetinaNet detector (stage 1) and, separately, the cell classifier (stage 2).

Detector public API: :func:`ccmct.models.anchors.make_anchors`, :mod:`ccmct.models.box_coder`
(``encode`` / ``decode``), :class:`ccmct.models.retinanet.RetinaNet` with :class:`DetectorConfig`,
:func:`ccmct.models.retinanet.postprocess`, :func:`ccmct.models.io.save_model_dir` / ``load_model_dir``.
Submodules are imported on use (torch is heavy).
"""
