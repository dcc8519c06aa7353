"""The ``paper`` preset's schedule, run once end to end with its sizes scaled down (issue 14 item 9): the path a
GPU user takes with ``ccmct train --preset paper`` — a frozen stage, the head cycles, then the unfrozen stage
with early stopping and the restore of the stage's best weights."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ccmct.config.presets import Stage, detector_preset
from ccmct.training.learner import build_learner
from ccmct.training.schedule import run_schedule, units

PAPER = detector_preset("paper")


def _scaled():
    """The paper schedule's shape (1 frozen epoch, 3 head cycles, 2 unfrozen cycles with early stopping), tiny
    sizes. Patience 0 makes early stopping act deterministically after the first epoch of each unfrozen cycle
    (3 epochs each without it), whatever the validation values of random weights do."""
    frozen, heads, unfrozen = PAPER.stages
    assert (frozen.frozen, heads.frozen, unfrozen.frozen, unfrozen.early_stopping) == (True, True, False, True)
    return dataclasses.replace(
        PAPER, patches_per_epoch=8, val_patches=4, batch_size=4, fpn_channels=32, head_convs=1, num_workers=0,
        patience=0, stages=(dataclasses.replace(frozen, epochs=1), dataclasses.replace(heads, epochs=1),
                            dataclasses.replace(unfrozen, epochs=3)))


@pytest.mark.timeout(1800)
def test_paper_schedule_scaled_down(tiny_root, tmp_path):
    preset = _scaled()
    assert [(s.cycles, s.frozen, s.early_stopping) for s in preset.stages] == [
        (s.cycles, s.frozen, s.early_stopping) for s in PAPER.stages]  # same shape as the paper's
    run = build_learner(tiny_root, "ODAEL", preset, seed=0, progress=False)
    backbone_before = {k: v.clone() for k, v in run.learn.model.body.state_dict().items() if "conv" in k}
    state = run_schedule(run, tmp_path)
    history = state["history"]
    assert [row["unit"] for row in history][:4] == [0, 1, 2, 3] and len(units(preset)) == 6
    assert [row["frozen"] for row in history[:4]] == [True] * 4
    checkpoint = torch.load(tmp_path / "checkpoint" / "state.pt", weights_only=True)  # written after the last unit
    assert checkpoint["unit"] == 6
    unfrozen = [row for row in history if not row["frozen"]]
    per_cycle = [sum(row["unit"] == u for row in unfrozen) for u in (4, 5)]
    assert per_cycle == [1, 1], f"early stopping did not act: {unfrozen}"
    # the stage's best epoch was restored at the end of the stage
    scores = {row["epoch"]: (row["patch_f1"] or 0.0, -row["valid_loss"]) for row in unfrozen}
    assert state["stage_best_epoch"] == max(scores, key=scores.get)
    final = run.learn.model.state_dict()
    assert all(torch.equal(final[k].cpu(), v) for k, v in state["best_model"].items())
    assert any(not torch.equal(final["body." + k].cpu(), v) for k, v in backbone_before.items())  # it did train
