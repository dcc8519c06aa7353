"""Data-parallel training under torchrun: 2 CPU processes (gloo) on the tiny root."""

import json
import math
import os
import subprocess
import sys

import pytest

from ccmct.models.io import load_model_dir

pytestmark = pytest.mark.timeout(1800)  # trains: longer than the default timeout on a loaded CPU


def test_torchrun_two_processes(tiny_root, tmp_path):
    out = tmp_path / "model"
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "ccmct.cli", "train", "--data-root", str(tiny_root), "--variant", "ODAEL", "--preset", "smoke",
           "--out", str(out), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout[proc.stdout.index("{"):])      # printed once, by rank 0
    assert report["world_size"] == 2 and report["epochs"] == 3
    summary = json.loads((out / "training.json").read_text())
    assert summary["world_size"] == 2 and summary["patches_per_epoch"] == 32
    for row in summary["history"]:
        assert math.isfinite(row["train_loss"]) and math.isfinite(row["valid_loss"])
    assert [row["frozen"] for row in summary["history"]] == [False, False, True]
    model, config = load_model_dir(out)
    assert config.preset == "smoke"
    assert not (out / "checkpoint").exists()


_RANK_SCRIPT = '''
import dataclasses, sys
import torch
from fastai.callback.core import Callback
from ccmct.config.presets import Stage, detector_preset
from ccmct.training.distributed import barrier, init_distributed, shutdown_distributed
from ccmct.training.learner import build_learner
from ccmct.training.schedule import run_schedule

root, out = sys.argv[1], sys.argv[2]
preset = dataclasses.replace(detector_preset("smoke"), patches_per_epoch=8, val_patches=4, batch_size=4,
                             stages=(Stage(1, 2, 1e-3, frozen=False),))


class Draws(Callback):
    def __init__(self):
        self.specs = []

    def before_train(self):
        s = self.dls.train.dataset.specs
        self.specs.append(torch.tensor([[int(s[i][0]), int(s[i][1]), int(s[i][2])] for i in range(len(s))]))


info = init_distributed()
run = build_learner(root, "ODAEL", preset, seed=0, dist=info, num_workers=0, progress=False)
draws = Draws()
run.learn.add_cb(draws)
run_schedule(run, out, is_main=info.is_main)
model = getattr(run.learn.model, "module", run.learn.model)
torch.save({"weights": model.state_dict(), "draws": draws.specs}, f"{out}/rank{info.rank}.pt")
barrier()
shutdown_distributed()
'''


def test_two_ranks_end_identical_and_draw_different_patches(tiny_root, tmp_path):
    """gloo on CPU: DDP keeps the replicas identical while each rank trains on its own patches."""
    script = tmp_path / "rank.py"
    script.write_text(_RANK_SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(tiny_root), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import torch

    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    w0, w1 = ranks[0]["weights"], ranks[1]["weights"]
    assert set(w0) == set(w1)
    assert all(torch.equal(w0[k], w1[k]) for k in w0), [k for k in w0 if not torch.equal(w0[k], w1[k])][:3]
    assert len(ranks[0]["draws"]) == len(ranks[1]["draws"]) == 2  # two pseudo-epochs
    for d0, d1 in zip(ranks[0]["draws"], ranks[1]["draws"]):
        assert d0.shape == d1.shape == (4, 3)  # 8 patches per pseudo-epoch, 4 per rank
        assert not torch.equal(d0, d1)  # (slide, x, y) of the ranks' patches differ
    assert not torch.equal(ranks[0]["draws"][0], ranks[0]["draws"][1])  # and are redrawn each pseudo-epoch
