"""Weight averaging of the detector preset (``DetectorPreset.weight_average``, :mod:`ccmct.training.averaging`):
the exported weights are the moving average of the per-step weights (BatchNorm statistics included), validation
sees that average, and a run interrupted and resumed ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from fastai.callback.core import Callback

from ccmct.config.presets import Stage, detector_preset
from ccmct.training.averaging import WeightAverage, decay_at
from ccmct.training.learner import build_learner
from ccmct.training.run import train_detector, trained_as
from ccmct.training.schedule import CHECKPOINT_DIR, STATE_FILE, run_schedule

from .test_resume_exact import Interrupted, StopAfter

pytestmark = pytest.mark.timeout(1800)

DECAY = 0.6
# two units (unfrozen 2 pseudo-epochs, frozen 1), 2 steps per pseudo-epoch
PRESET = dataclasses.replace(detector_preset("smoke"), patches_per_epoch=8, val_patches=4, batch_size=4,
                             weight_average=DECAY,
                             stages=(Stage(1, 2, 1e-3, frozen=False), Stage(1, 1, 1e-3, frozen=True)))


class _Snapshots(Callback):
    """The model's weights and buffers at every ``event``: ``after_step`` at order 29 (each optimiser step, before
    the average folds it in), ``before_validate`` at order 40 (after the averager swapped its weights in)."""

    def __init__(self, event: str, order: float):
        self.order, self.states = order, []
        setattr(self, event, self._take)

    def _take(self):
        self.states.append({k: v.detach().clone() for k, v in self.learn.model.state_dict().items()})


def _expected_average(start: dict, steps: list[dict]) -> dict:
    avg = {k: v.clone() for k, v in start.items()}
    for t, weights in enumerate(steps):
        d = decay_at(DECAY, t)
        for k, v in weights.items():
            avg[k] = d * avg[k] + (1 - d) * v if v.is_floating_point() else v.clone()
    return avg


def test_decay_warms_up_then_holds():
    assert decay_at(0.97, 0) == pytest.approx(0.1)  # the random start is forgotten at once
    assert decay_at(0.97, 10) == pytest.approx(11 / 20)
    assert decay_at(0.97, 1000) == 0.97
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(1.0)


def test_no_built_in_preset_averages():
    # measured on the quick preset: no smaller seed spread, slightly lower test F1 (docs/benchmarks.md)
    assert all(detector_preset(name).weight_average is None for name in ("smoke", "quick", "paper"))


def test_result_is_the_average_of_the_steps_and_is_what_was_validated(tiny_root, tmp_path):
    run = build_learner(tiny_root, "ODAEL", PRESET, seed=0, num_workers=0, progress=False)
    start = {k: v.detach().clone() for k, v in run.learn.model.state_dict().items()}
    steps, validated = _Snapshots("after_step", 29), _Snapshots("before_validate", 40)
    run.learn.add_cbs([steps, validated])
    state = run_schedule(run, tmp_path)
    assert len(steps.states) == 3 * 2  # 3 pseudo-epochs x 2 steps
    want = _expected_average(start, steps.states)
    got = run.learn.model.state_dict()
    bn_mean = next(k for k in got if k.endswith("running_mean"))
    for k, v in want.items():
        torch.testing.assert_close(got[k], v, rtol=1e-5, atol=1e-6, msg=f"{k} is not the moving average")
    # the average differs from the last trained weights (weights and BatchNorm statistics alike)
    assert not torch.equal(got[bn_mean], steps.states[-1][bn_mean])
    assert any(not torch.equal(got[k], steps.states[-1][k]) for k in got if k.endswith("weight"))
    # the last validation ran on exactly these weights
    for k in want:
        assert torch.equal(validated.states[-1][k], got[k])
    assert len(state["history"]) == 3


def test_trained_model_exports_the_average_and_records_the_schedule(tiny_root, tmp_path):
    out = tmp_path / "model"
    summary = train_detector(tiny_root, "ODAEL", PRESET, out, seed=0, num_workers=0, progress=False)
    assert summary["schedule"]["weight_average"] == DECAY
    plain = train_detector(tiny_root, "ODAEL", dataclasses.replace(PRESET, weight_average=None),
                           tmp_path / "plain", seed=0, num_workers=0, progress=False)
    assert plain["schedule"]["weight_average"] is None
    # a model recorded before the field existed (no "weight_average" in its schedule) is still current for a
    # preset that leaves it off, and stale for one that averages
    path = tmp_path / "plain" / "training.json"
    record = json.loads(path.read_text())
    del record["schedule"]["weight_average"]
    path.write_text(json.dumps(record))
    assert trained_as(tmp_path / "plain", tiny_root, "ODAEL", dataclasses.replace(PRESET, weight_average=None), seed=0)
    assert not trained_as(tmp_path / "plain", tiny_root, "ODAEL", PRESET, seed=0)
    averaged = torch.load(out / "weights.pt", weights_only=True)
    last = torch.load(tmp_path / "plain" / "weights.pt", weights_only=True)
    assert set(averaged) == set(last)
    assert any(not torch.equal(averaged[k], last[k]) for k in averaged)


@pytest.mark.parametrize("stop_after", [3, 5], ids=["inside-unit-0", "at-unit-1"])
def test_resumed_run_continues_the_same_average(tiny_root, tmp_path, stop_after):
    reference = build_learner(tiny_root, "ODAEL", PRESET, seed=0, num_workers=0, progress=False)
    run_schedule(reference, tmp_path / "reference")
    first = build_learner(tiny_root, "ODAEL", PRESET, seed=0, num_workers=0, progress=False,
                          slides=reference.slides)
    first.learn.add_cb(StopAfter(stop_after))
    with pytest.raises(Interrupted):
        run_schedule(first, tmp_path / "resumed")
    saved = torch.load(tmp_path / "resumed" / CHECKPOINT_DIR / STATE_FILE, weights_only=True)
    assert saved["average"]["updates"] == 2 * (stop_after // 2)  # the average of the finished pseudo-epochs
    second = build_learner(tiny_root, "ODAEL", PRESET, seed=0, num_workers=0, progress=False,
                           slides=reference.slides)
    run_schedule(second, tmp_path / "resumed")
    want, got = reference.learn.model.state_dict(), second.learn.model.state_dict()
    different = [k for k in want if not torch.equal(got[k], want[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
