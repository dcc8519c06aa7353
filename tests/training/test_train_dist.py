"""Data-parallel training under torchrun: 2 CPU processes (gloo) on the tiny root."""

import json
import math
import os
import subprocess
import sys

from ccmct.models.io import load_model_dir


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
