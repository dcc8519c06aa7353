"""Whole-slide inference: tiles -> detector -> level-0 detections -> result files.

Public API (submodules import torch; they load on first use):

- :class:`ccmct.inference.detector.WholeSlideDetector`, :class:`~ccmct.inference.detector.InferenceOptions`,
  :class:`~ccmct.inference.detector.SlideDetections`: detection on one slide (tissue-masked sliding window,
  batched, DataLoader reader processes, slide-level distance NMS).
- :func:`ccmct.inference.runner.run_inference` / :func:`~ccmct.inference.runner.infer_slides`: many slides,
  resumable per slide (``<out>.parts/``), sharded under torchrun; rank 0 writes one result file.
- :mod:`ccmct.inference.tiling`: tile planning (tissue mask) and the tile DataLoader.
- :mod:`ccmct.inference.distributed`: torchrun environment, sharding, gathering.

See docs/inference.md.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "InferenceOptions": "ccmct.inference.detector",
    "SlideDetections": "ccmct.inference.detector",
    "WholeSlideDetector": "ccmct.inference.detector",
    "InferenceReport": "ccmct.inference.runner",
    "infer_slides": "ccmct.inference.runner",
    "run_inference": "ccmct.inference.runner",
    "work_dir_for": "ccmct.inference.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ccmct.inference' has no attribute {name!r}")
