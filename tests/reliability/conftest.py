"""Helpers and fixtures of the reliability battery (issue 14; docs/reliability.md).

Reusable by every test module in this folder:

- :func:`run_cli` runs ``python -m ccmct.cli ...`` in a fresh process (so a traceback, a crash or a write to
  the wrong place is seen exactly as a user sees it);
- :func:`assert_clean_error` checks the one error path: exit code 2, stderr at most a few lines, no
  ``Traceback``;
- :func:`snapshot` / :func:`assert_unchanged` prove inputs (and earlier good results) are byte-identical
  after a command ran;
- fixtures: ``rel_root`` (a private copy of the session's tiny synthetic root, per test, so tests may damage
  it), ``detector_dir`` and ``classifier_dir`` (random-init model directories, built once per session: they
  exercise every check without training), ``results_file`` (a small valid result file on the tiny root).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
MAX_ERROR_LINES = 3


def run_cli(*args, cwd: str | os.PathLike[str] | None = None, timeout: float = 600,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m ccmct.cli ARGS`` in a new process; returns the completed process (text output)."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "lib"),
                                                                os.environ.get("PYTHONPATH", "")]), **(env or {})}
    return subprocess.run([sys.executable, "-m", "ccmct.cli", *map(str, args)], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout, check=False)


def assert_clean_error(proc: subprocess.CompletedProcess, *, contains: str | None = None) -> str:
    """Exit 2, stderr non-empty, at most :data:`MAX_ERROR_LINES` lines, no traceback. Returns the stderr text."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, f"exit {proc.returncode}, stderr:\n{proc.stderr}\nstdout:\n{proc.stdout[-2000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in err.splitlines() if line.strip()]
    assert 1 <= len(lines) <= MAX_ERROR_LINES, f"{len(lines)} stderr lines:\n{proc.stderr}"
    if contains is not None:
        assert contains in err, f"{contains!r} not in stderr:\n{err}"
    return err


def _digest(path: Path) -> dict[str, str | None]:
    """relative path -> sha256 (files), 'dir' (folders), 'link:<target>' (symlinks); {'.': None} if absent."""
    if path.is_symlink():
        return {".": f"link:{os.readlink(path)}"}
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    if path.is_dir():
        out: dict[str, str | None] = {".": "dir"}
        for child in sorted(path.rglob("*")):
            rel = str(child.relative_to(path))
            if child.is_symlink():
                out[rel] = f"link:{os.readlink(child)}"
            elif child.is_file():
                out[rel] = hashlib.sha256(child.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
        return out
    return {".": None}


def snapshot(*paths: str | os.PathLike[str]) -> dict[Path, dict]:
    """Content digests of files / folders (recursively), to compare after a command with :func:`assert_unchanged`."""
    return {Path(p): _digest(Path(p)) for p in paths}


def assert_unchanged(before: dict[Path, dict]) -> None:
    """Every path of a :func:`snapshot` is byte-identical (same files, same content, same links)."""
    for path, digest in before.items():
        now = _digest(path)
        assert now == digest, f"{path} changed: {sorted(set(now.items()) ^ set(digest.items()))[:5]}"


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
