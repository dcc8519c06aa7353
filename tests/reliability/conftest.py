"""Fixtures of the reliability battery (issue 14; docs/reliability.md).

Helpers live in ``clitools`` (``from clitools import run_cli, assert_clean_error, snapshot,
assert_unchanged``); they are re-exported here. Fixtures:

- ``rel_root``: a private copy of the session's tiny synthetic root, per test (tests may damage it);
- ``detector_dir`` / ``classifier_dir``: random-init model directories, built once per session (they
  exercise every check without training);
- ``results_file``: a small valid result file on the tiny root's test slides;
- ``battery_ws`` / ``battery_outcome``: the battery's workspace (``battery.Workspace``) and a function that
  runs one ``battery.Case`` once per session and returns its judged ``battery.Outcome``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from clitools import MAX_ERROR_LINES, REPO, assert_clean_error, assert_unchanged, run_cli, snapshot  # noqa: F401

@pytest.fixture
def rel_root(tiny_root, tmp_path) -> Path:
    """A private copy of the session's tiny synthetic data root (tests may modify or damage it)."""
    return Path(shutil.copytree(tiny_root, tmp_path / "root"))


@pytest.fixture(scope="session")
def detector_dir(tmp_path_factory) -> Path:
    """A random-init RetinaNet model directory (small FPN; scores ~0.5, so inference finds detections)."""
    import torch

    from ccmct.models.io import save_model_dir
    from ccmct.models.retinanet import DetectorConfig, RetinaNet

    torch.manual_seed(0)
    config = DetectorConfig(fpn_channels=16, head_convs=1, prior_prob=0.5, variant="ODAEL", preset="smoke")
    return save_model_dir(tmp_path_factory.mktemp("rel_models") / "RetinaNet-ODAEL", RetinaNet(config).eval(),
                          config)


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory) -> Path:
    """A random-init cell-classifier model directory (class order MF, LA, Gr, TC)."""
    import torch

    from ccmct.models.classifier import ClassifierConfig, build_classifier, save_classifier_dir
    from ccmct.sampling.cells import CELL_CLASSES

    torch.manual_seed(0)
    config = ClassifierConfig(class_ids=tuple(c.class_id for c in CELL_CLASSES),
                              class_names=tuple(c.name for c in CELL_CLASSES),
                              class_short=tuple(c.short for c in CELL_CLASSES), patch_size_px=128,
                              mean=(0.7, 0.55, 0.7), std=(0.15, 0.2, 0.15), preset="smoke", variant="ODAEL")
    return save_classifier_dir(tmp_path_factory.mktemp("rel_models") / "CellClassifier-ODAEL",
                               build_classifier(len(CELL_CLASSES)).eval(), config)


@pytest.fixture(scope="session")
def results_file(tiny_root, tmp_path_factory) -> Path:
    """A valid primary-format result file with a few boxes inside each test slide of the tiny root."""
    from ccmct.config.paths import DataRoot
    from ccmct.data.results import write_results

    rng = np.random.default_rng(0)
    results = {}
    for name, split in sorted(DataRoot(tiny_root).split().items()):
        if split != "test":
            continue
        centres = rng.uniform(200, 2400, (6, 2))
        boxes = np.column_stack([centres - 25, centres + 25, np.zeros(6), rng.uniform(0.1, 0.99, 6)])
        results[name] = boxes
    return write_results(tmp_path_factory.mktemp("rel_results") / "RetinaNet-ODAEL-test.npz", results)


@pytest.fixture(scope="session")
def battery_ws(tiny_root, tmp_path_factory):
    """The battery's shared inputs (a copy of the tiny root, model directories, result files)."""
    from battery import Workspace

    return Workspace.create(tmp_path_factory.mktemp("battery"), tiny_root=tiny_root)


@pytest.fixture(scope="session")
def battery_outcome(battery_ws):
    """``outcome(case)``: run a battery case once per session (cached) and return its judged outcome."""
    from battery import run_case

    cache: dict = {}

    def outcome(case):
        if case.name not in cache:
            cache[case.name] = run_case(case, battery_ws)
        return cache[case.name]

    return outcome

