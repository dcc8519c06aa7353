"""Resume is exact (issue 14 item 7): an interrupted training run that is resumed ends with weights
bit-identical to an uninterrupted run on the same machine — detector and cell classifier, interrupted by an
exception after N batches (deterministic) and by a real SIGKILL of a ``train_detector`` process."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from fastai.callback.core import Callback

from ccmct.config.presets import Stage, detector_preset
from ccmct.training import classifier as classifier_module
from ccmct.training.classifier import ClassifierPreset, train_classifier
from ccmct.training.learner import build_learner
from ccmct.training.run import train_detector
from ccmct.training.schedule import CHECKPOINT_DIR, STATE_FILE, run_schedule

pytestmark = pytest.mark.timeout(1800)

# Two units (unfrozen 2 pseudo-epochs, then frozen 1), 2 batches per pseudo-epoch: every kind of resume point
# (inside a unit after a finished pseudo-epoch, at a unit boundary, inside a pseudo-epoch) is cheap to reach.
PRESET = dataclasses.replace(detector_preset("smoke"), name="smoke", patches_per_epoch=8, val_patches=4, batch_size=4,
                             stages=(Stage(1, 2, 1e-3, frozen=False), Stage(1, 1, 1e-3, frozen=True)))
CLS_PRESET = ClassifierPreset("smoke", frozen_epochs=1, epochs=2, max_lr=2e-3, pct_start=0.25, batch_size=8,
                              items_per_epoch=16, valid_items=8, norm_items=16, pretrained=False, num_workers=0,
                              jitter_px=4)


class Interrupted(RuntimeError):
    """Raised by :class:`StopAfter` (a stand-in for a crash or Ctrl-C)."""


class StopAfter(Callback):
    """Raise after ``n`` training batches (counted over the whole run of this Learner)."""

    order = 5

    def __init__(self, n: int):
        self.n, self.seen = n, 0

    def after_batch(self):
        if self.training:
            self.seen += 1
            if self.seen == self.n:
                raise Interrupted(f"stopped after {self.n} batches")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _assert_identical(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(want)
    different = [k for k in want if not torch.equal(got[k].cpu(), want[k].cpu())]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def reference(tiny_root, tmp_path_factory) -> dict[str, torch.Tensor]:
    """Weights of an uninterrupted detector run."""
    out = tmp_path_factory.mktemp("reference") / "model"
    train_detector(tiny_root, "ODAEL", PRESET, out, seed=0, num_workers=0, progress=False)
    return _weights(out / "weights.pt")


@pytest.mark.parametrize("stop_after", [3, 5], ids=["inside-unit-0", "at-unit-1"])
def test_detector_resumed_after_an_exception_is_bit_identical(tiny_root, tmp_path, reference, stop_after):
    # 3: second pseudo-epoch of the unfrozen unit (Adam moments and one-cycle position must carry over);
    # 5: first batch of the frozen unit (resumes at the unit boundary)
    first = build_learner(tiny_root, "ODAEL", PRESET, seed=0, num_workers=0, progress=False)
    first.learn.add_cb(StopAfter(stop_after))
    with pytest.raises(Interrupted):
        run_schedule(first, tmp_path)
    assert (tmp_path / CHECKPOINT_DIR / STATE_FILE).is_file()
    second = build_learner(tiny_root, "ODAEL", PRESET, seed=0, num_workers=0, progress=False, slides=first.slides)
    run_schedule(second, tmp_path)
    _assert_identical(second.learn.model.state_dict(), reference)


_TRAIN_SCRIPT = """
import dataclasses, sys
import torch
torch.set_num_threads(int(sys.argv[3]))  # as the test process: float sums depend on the thread count
from ccmct.config.presets import Stage, detector_preset
from ccmct.training.run import train_detector
preset = dataclasses.replace(detector_preset("smoke"), name="smoke", patches_per_epoch=8, val_patches=4,
                             batch_size=4, stages=(Stage(1, 2, 1e-3, frozen=False), Stage(1, 1, 1e-3, frozen=True)))
train_detector(sys.argv[1], "ODAEL", preset, sys.argv[2], seed=0, num_workers=0, progress=False)
"""


def test_detector_resumed_after_sigkill_is_bit_identical(tiny_root, tmp_path, reference):
    out = tmp_path / "model"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "lib"),
                                                         os.environ.get("PYTHONPATH", "")])}
    args = [str(tiny_root), str(out), str(torch.get_num_threads())]
    proc = subprocess.Popen([sys.executable, "-c", _TRAIN_SCRIPT, *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = out / CHECKPOINT_DIR / STATE_FILE
    try:
        deadline = time.monotonic() + 900
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed"
        time.sleep(0.5)  # somewhere inside the next pseudo-epoch (or its checkpoint write)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert checkpoint.exists() and not (out / "weights.pt").exists()
    train_detector(tiny_root, "ODAEL", PRESET, out, seed=0, num_workers=0, progress=False)
    _assert_identical(_weights(out / "weights.pt"), reference)
    assert not (out / CHECKPOINT_DIR).exists()


def test_classifier_resumed_after_an_exception_is_bit_identical(tiny_root, tmp_path, monkeypatch):
    """Inside the unfrozen phase: model, Adam, the epoch sample's shuffling RNG and torch's augmentation RNG."""
    reference = train_classifier(tiny_root, "ODAEL", CLS_PRESET, tmp_path / "reference", progress=False)
    make = classifier_module._learner

    def interrupted_learner(*args, **kwargs):
        learn = make(*args, **kwargs)
        learn.add_cb(StopAfter(2 + 2 + 1))  # frozen epoch (2 batches), unfrozen epoch 1, then 1 batch of epoch 2
        return learn

    monkeypatch.setattr(classifier_module, "_learner", interrupted_learner)
    with pytest.raises(Interrupted):
        train_classifier(tiny_root, "ODAEL", CLS_PRESET, tmp_path / "resumed", progress=False)
    monkeypatch.undo()
    resumed = train_classifier(tiny_root, "ODAEL", CLS_PRESET, tmp_path / "resumed", progress=False)
    _assert_identical(_weights(resumed.model_dir / "weights.pt"), _weights(reference.model_dir / "weights.pt"))
    assert resumed.history["valid_loss"].tolist() == reference.history["valid_loss"].tolist()
