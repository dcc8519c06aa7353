"""Helpers of benchmarks/inference_throughput.py: tiles spread over the slide, FLOP counting, precisions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("inference_throughput")


def test_subset_spreads_tiles_over_the_whole_slide(bench):
    from ccmct.inference.tiling import SlideTiles

    class Grid:  # only its length matters to SlideTiles.n_total
        def __len__(self):
            return 1000

    selected = np.zeros(1000, bool)
    selected[100:900:2] = True  # 400 tissue tiles
    plan = SlideTiles(Path("x.svs"), Grid(), selected)
    tissue = bench.subset(plan, 40, tissue=True).tile_ids
    assert len(tissue) == 40 and tissue[0] == 100 and tissue[-1] == 898 and selected[tissue].all()
    assert np.ptp(np.diff(tissue)) <= 2  # evenly spaced, not the first rows
    every = bench.subset(plan, 50, tissue=False).tile_ids
    assert every[0] == 0 and every[-1] == 999 and 0.1 < 1 - selected[every].mean() < 0.9  # glass included


def test_flops_per_tile_counts_multiply_adds_twice(bench):
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    images = torch.zeros(4, 3, 16, 16)
    assert bench.flops_per_tile(conv, images, torch.float32) == 2 * 16 * 16 * 8 * 3 * 3 * 3


def test_precisions_and_gemm_peak(bench, monkeypatch):
    cpu = torch.device("cpu")
    assert bench.precisions(cpu, "float32") == [torch.float32]
    assert bench.precisions(cpu, "both") == [torch.float32, torch.bfloat16]
    monkeypatch.setenv("CCMCT_CPU_BF16", "0")
    assert bench.precisions(cpu, "auto") == [torch.float32]
    monkeypatch.setenv("CCMCT_CPU_BF16", "1")
    assert bench.precisions(cpu, "auto") == [torch.bfloat16]
    with bench.detector_precision(cpu, torch.float32):
        from ccmct.precision import autocast_dtype

        assert autocast_dtype("cpu") is None
    assert autocast_dtype("cpu") == torch.bfloat16  # restored
    assert bench.gemm_peak(cpu, torch.float32, n=64, repeats=2) > 0
