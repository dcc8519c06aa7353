"""``torchrun --nproc_per_node=2 -m ccmct.cli infer``: two CPU ranks (gloo) shard the slides, rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ccmct.cli import main
from ccmct.data.results import read_results
from ccmct.errors import CcmctError
from ccmct.inference.distributed import DistContext, gather_to_main, resolve_device, shard_by_size
from ccmct.inference.runner import work_dir_for


def test_shard_by_size_balances_and_covers_every_slide():
    names = [f"s{i}.svs" for i in range(7)]
    sizes = [70, 10, 60, 20, 50, 30, 40]
    shards = shard_by_size(names, sizes, 3)
    assert sorted(n for shard in shards for n in shard) == sorted(names)
    loads = [sum(sizes[names.index(n)] for n in shard) for shard in shards]
    assert max(loads) - min(loads) <= 20
    assert shard_by_size(names, sizes, 1) == [names]
    assert shard_by_size(["a"], [5], 2) == [["a"], []]


def test_context_from_torchrun_environment(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    context = DistContext.from_env()
    assert (context.rank, context.world_size, context.local_rank, context.is_main) == (3, 4, 1, False)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name)
    assert DistContext.from_env() == DistContext() and gather_to_main("x", DistContext()) == ["x"]


def test_two_cpu_ranks_give_the_single_process_result(tiny_model_dir, spot_root, tmp_path):
    common = ["infer", "--model", str(tiny_model_dir), "--data-root", str(spot_root), "--split", "test",
              "--device", "cpu", "--no-progress", "--json"]
    single = tmp_path / "single.npz"
    assert main([*common, "--workers", "0", "--out", str(single)]) == 0

    out = tmp_path / "dist.npz"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "ccmct.cli", *common, "--workers", "1", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert sorted(report["rank_of"].values()) == [0, 1]               # one slide per rank
    assert sorted(report["computed"]) == ["a.svs", "b.svs"]
    dist_results, single_results = read_results(out), read_results(single)
    assert list(dist_results) == list(single_results) == ["a.svs", "b.svs"]
    for name in single_results:
        assert len(dist_results[name]) == len(single_results[name]) > 0
        np.testing.assert_allclose(dist_results[name], single_results[name], rtol=1e-5, atol=1e-3)
    assert sorted(p.name for p in work_dir_for(out).iterdir()) == ["a.svs.npz", "b.svs.npz"]


def test_resolve_device_cpu_and_cuda():
    assert resolve_device("cpu", DistContext()) == torch.device("cpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda", DistContext()).type == "cuda"
    else:
        with pytest.raises(CcmctError, match="no GPU"):
            resolve_device("cuda", DistContext())
    with pytest.raises(CcmctError, match="cpu"):
        resolve_device("tpu", DistContext())
