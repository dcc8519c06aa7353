"""Fixtures for whole-slide inference tests (the helpers live in ``spot_slides.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from spot_slides import SPOT_ROOT_CROPS, GreySpotDetector, render_slide

from ccmct.data.svs_writer import write_svs
from ccmct.models.retinanet import DetectorConfig


@pytest.fixture(scope="session")
def spot_config() -> DetectorConfig:
    return DetectorConfig(backbone="resnet18", fpn_channels=16, head_convs=1)


@pytest.fixture(scope="session")
def spot_detector_model(spot_config) -> GreySpotDetector:
    return GreySpotDetector(spot_config).eval()


@pytest.fixture(scope="session")
def spot_slide(tmp_path_factory) -> Path:
    """An exact-pixel (zlib) SVS slide of :func:`render_slide`."""
    path = tmp_path_factory.mktemp("spots") / "spots.svs"
    return write_svs(path, render_slide(), mpp=0.25, compression="zlib")


@pytest.fixture(scope="session")
def spot_root(tmp_path_factory) -> Path:
    """A data root with three small crops of :func:`render_slide` (test: a, b; train: c), 2 spots each."""
    root = tmp_path_factory.mktemp("spot_root")
    (root / "WSI").mkdir()
    for name, (x0, y0, x1, y1) in SPOT_ROOT_CROPS.items():
        crop = np.ascontiguousarray(render_slide()[y0:y1, x0:x1])
        write_svs(root / "WSI" / name, crop, mpp=0.25, compression="zlib")
    (root / "split.json").write_text(json.dumps({"train": ["c.svs"], "test": ["a.svs", "b.svs"]}))
    return root


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random-init RetinaNet model directory whose scores are ~0.5 (so there are detections to gather)."""
    from ccmct.models.io import save_model_dir
    from ccmct.models.retinanet import RetinaNet

    torch.manual_seed(0)
    config = DetectorConfig(fpn_channels=16, head_convs=1, prior_prob=0.5, variant="ODAEL", preset="smoke")
    out = tmp_path_factory.mktemp("model") / "ODAEL"
    return save_model_dir(out, RetinaNet(config).eval(), config)
