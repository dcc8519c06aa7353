"""Checkpoints: a run interrupted after a pseudo-epoch resumes there (weights, optimizer, draws)."""

import dataclasses

import pytest
import torch
from fastai.callback.core import Callback

from ccmct.config.presets import Stage, detector_preset
from ccmct.training.learner import build_learner
from ccmct.training.schedule import CHECKPOINT_DIR, STATE_FILE, run_schedule, units

pytestmark = pytest.mark.timeout(1800)  # trains: longer than the default timeout on a loaded CPU

PRESET = dataclasses.replace(detector_preset("smoke"), patches_per_epoch=8, val_patches=4,
                             stages=(Stage(1, 2, 1e-3, frozen=False), Stage(1, 1, 1e-3, frozen=True)))


class _Interrupt(Callback):
    order = 61  # after the checkpoint of the epoch is written

    def __init__(self, after_epochs):
        self.after_epochs, self.seen, self.trained = after_epochs, 0, False

    def before_train(self):
        self.trained = True

    def after_epoch(self):  # Learner.validate() also fires after_epoch: count training epochs only
        self.seen += self.trained
        self.trained = False
        if self.seen == self.after_epochs:
            raise KeyboardInterrupt


class _Record(Callback):
    def __init__(self):
        self.draws = []

    def before_train(self):
        self.draws.append(self.dls.train.dataset.epoch)


def test_units():
    paper = detector_preset("paper")
    assert len(units(paper)) == 1 + 3 + 2 and paper.total_epochs == 1 + 30 + 60


def test_interrupted_run_resumes(tiny_root, tmp_path):
    first = build_learner(tiny_root, "ODAEL", PRESET, seed=0, progress=False)
    first.learn.add_cb(_Interrupt(after_epochs=1))
    with pytest.raises(KeyboardInterrupt):
        run_schedule(first, tmp_path)
    state = torch.load(tmp_path / CHECKPOINT_DIR / STATE_FILE, weights_only=True)
    assert (state["unit"], state["epoch_in_unit"], state["global_epoch"]) == (0, 1, 1)
    assert len(state["history"]) == 1 and state["opt"] is not None
    weights_after_epoch0 = state["model"]

    second = build_learner(tiny_root, "ODAEL", PRESET, seed=0, progress=False, slides=first.slides)
    record = _Record()
    second.learn.add_cb(record)
    final = run_schedule(second, tmp_path)
    # only the two missing pseudo-epochs were trained, with the draws of global epochs 1 and 2
    assert record.draws == [1, 2]
    assert [row["epoch"] for row in final["history"]] == [0, 1, 2]
    assert final["history"][0] == state["history"][0]
    assert any(not torch.equal(weights_after_epoch0[k], v.cpu())
               for k, v in second.learn.model.state_dict().items() if v.is_floating_point())


def test_checkpoint_of_another_config_is_refused(tiny_root, tmp_path):
    from ccmct.errors import CcmctError
    from ccmct.training.schedule import load_state

    (tmp_path / CHECKPOINT_DIR).mkdir()
    torch.save({"config": {"fpn_channels": 1}}, tmp_path / CHECKPOINT_DIR / STATE_FILE)
    with pytest.raises(CcmctError, match="another configuration"):
        load_state(tmp_path, {"fpn_channels": 2})
