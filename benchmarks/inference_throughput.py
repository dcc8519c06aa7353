"""Benchmark: whole-slide inference throughput, ours vs the authors' style, like for like, with FLOP/s.

Per precision (``--precision``: ``auto`` = the autocast dtype :mod:`ccmct.precision` picks for the device,
bfloat16 on a CPU with native bf16 and float16 on CUDA; ``float32``; ``both``, labelled), on one large slide
with a random-init detector of the real size (ResNet-18 RetinaNet, :class:`ccmct.models.retinanet.DetectorConfig`
defaults), in tiles/s:

- ``read_only``: the DataLoader alone (``--workers`` reader processes, tissue tiles, batch ``--batch-size``;
  independent of the precision, measured once);
- ``forward_only``: the model's forward alone on batches in memory (already normalised);
- ``model_only``: preprocess + forward + per-tile decoding/NMS on batches already in memory (measured before
  and after the end-to-end run; the mean is reported);
- ``end_to_end``: :meth:`WholeSlideDetector.detect_tiles` on ``--tiles`` tissue tiles spread evenly over the
  slide (reading, model, edge rule, distance NMS);
- ``baseline``: the authors' ``Inference-RetinaNet.py`` style at the *same* precision: every tile (background
  included), one reader process, batch 8, normalisation per sample on the CPU; ``--model-tiles`` tiles spread
  evenly over the whole slide (glass and tissue in the slide's proportion, not the first rows).

Achieved FLOP/s: the forward's FLOPs per tile (:class:`torch.utils.flop_counter.FlopCounterMode`, one batch)
times the forward-only and model-only rates, beside a GEMM peak (``torch.matmul`` of ``--gemm-n`` square
matrices in the same dtype, best of several, measured in the same run) — how close to this machine's limit
the model runs.

The slide: ``--slide FILE`` (e.g. from ``ccmct synth --preset large``), else one of the ``large`` preset's size
(40000 x 30000 px at 0.25 µm/px) written strip by strip with :func:`ccmct.data.svs_writer.write_svs` (JPEG,
tissue ellipses on glass) into a temporary folder.

    python benchmarks/inference_throughput.py [--json] [--slide FILE] [--tiles 320] [--precision both]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ccmct.data.svs_writer import write_svs
from ccmct.inference.detector import InferenceOptions, WholeSlideDetector
from ccmct.inference.tiling import SlideTiles, TileDataset, tile_loader
from ccmct.models.retinanet import DetectorConfig, RetinaNet, postprocess, preprocess
from ccmct.precision import CPU_BF16_ENV, autocast_dtype
from ccmct.precision import _cpu_bf16_native as cpu_bf16_native  # the policy's own hardware probe

LARGE_WH = (40_000, 30_000)
"""Level-0 size of one slide of the synthetic ``large`` preset (10 x 7.5 mm at 0.25 µm/px)."""


def write_large_slide(path: Path, size_wh: tuple[int, int], *, seed: int = 0) -> Path:
    """Glass with three tissue ellipses (~45 % of the area) of stained-looking texture, JPEG tiles."""
    width, height = size_wh
    rng = np.random.default_rng(seed)
    texture = np.clip(rng.normal([200, 120, 175], 25, (256, 256, 3)), 0, 255).astype(np.uint8)
    row = np.tile(texture, (1, -(-width // 256), 1))[:, :width]
    ellipses = [(0.3, 0.35, 0.25, 0.3), (0.7, 0.6, 0.25, 0.35), (0.45, 0.8, 0.2, 0.15)]  # cx, cy, rx, ry (frac)
    xs = (np.arange(0, width, 16) + 8) / width

    def strip(y0: int, h: int) -> np.ndarray:
        ys = (np.arange(y0, y0 + h, 16) + 8)[:, None] / height
        inside = np.zeros((len(ys), len(xs)), bool)
        for cx, cy, rx, ry in ellipses:
            inside |= ((xs[None] - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1
        mask = np.repeat(np.repeat(inside, 16, 0), 16, 1)[:h, :width]
        out = np.full((h, width, 3), 244, np.uint8)
        out[mask] = row[:h][mask]
        return out

    return write_svs(path, strip, size_wh=size_wh, mpp=0.25, compression="jpeg", quality=80)


def subset(plan: SlideTiles, n_tiles: int, *, tissue: bool) -> SlideTiles:
    """``n_tiles`` tiles spread evenly over the slide in raster order (tissue tiles, or any tile for the
    baseline, which then meets glass and tissue in the slide's proportion)."""
    candidates = plan.tile_ids if tissue else np.arange(plan.n_total)
    take = np.unique(np.linspace(0, len(candidates) - 1, min(n_tiles, len(candidates))).round().astype(int))
    selected = np.zeros(plan.n_total, bool)
    selected[candidates[take]] = True
    return SlideTiles(plan.path, plan.grid, selected)


def autocast_for(device: torch.device, dtype: torch.dtype):
    """``torch.autocast`` to ``dtype`` (a no-op context for float32)."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def flops_per_tile(model: torch.nn.Module, images: torch.Tensor, dtype: torch.dtype) -> float:
    """FLOPs of one forward per tile (FlopCounterMode counts a multiply-add as 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), autocast_for(images.device, dtype), counter:
        model(images)
    return counter.get_total_flops() / len(images)


def gemm_peak(device: torch.device, dtype: torch.dtype, *, n: int, repeats: int = 5) -> float:
    """Best FLOP/s of an (n x n) @ (n x n) matmul in ``dtype`` (after one warm-up)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    with torch.inference_mode():
        torch.matmul(a, b)
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            torch.matmul(a, b)
            _sync(device)
            best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def forward_only(model: torch.nn.Module, images: list[torch.Tensor], dtype: torch.dtype) -> float:
    """tiles/s of the bare forward on normalised batches in memory (after one warm-up batch)."""
    device = images[0].device
    with torch.inference_mode(), autocast_for(device, dtype):
        model(images[0])
        _sync(device)
        start = time.perf_counter()
        for batch in images:
            model(batch)
        _sync(device)
    return sum(len(b) for b in images) / (time.perf_counter() - start)


def read_only(plan: SlideTiles, *, batch_size: int, workers: int) -> tuple[float, list[torch.Tensor]]:
    """tiles/s of the DataLoader alone; also returns the batches read (for the model-only run)."""
    origins = plan.grid.origins_l0()[plan.tile_ids]
    loader = tile_loader(TileDataset(plan.path, origins, plan.grid.tile_px), batch_size=batch_size,
                         workers=workers)
    start, batches = time.perf_counter(), []
    for tiles, _, _ in loader:
        batches.append(tiles)
    return len(origins) / (time.perf_counter() - start), batches


def model_only(detector: WholeSlideDetector, batches: list[torch.Tensor]) -> float:
    """tiles/s of preprocess + forward + per-tile postprocess on batches in memory."""
    detector.detect_batch(batches[0])  # warm-up
    _sync(detector.device)
    start = time.perf_counter()
    for tiles in batches:
        detector.detect_batch(tiles)
    _sync(detector.device)
    return sum(len(t) for t in batches) / (time.perf_counter() - start)


def baseline(model: torch.nn.Module, config: DetectorConfig, plan: SlideTiles, device: torch.device,
             dtype: torch.dtype) -> float:
    """The authors' loop: every tile, one reader, batch 8, per-sample normalisation, per-tile NMS; the
    forward under the same autocast ``dtype`` as ours."""
    origins = plan.grid.origins_l0()[plan.tile_ids]
    loader = tile_loader(TileDataset(plan.path, origins, config.tile_px), batch_size=8, workers=1)
    mean, std = torch.tensor(config.mean).view(3, 1, 1), torch.tensor(config.std).view(3, 1, 1)
    anchors = config.anchors().to(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for tiles, _, _ in loader:
            samples = [(t.permute(2, 0, 1).float() / 255 - mean) / std for t in tiles]   # per sample
            with autocast_for(device, dtype):
                cls_logits, deltas = model.head_outputs(torch.stack(samples).to(device))
            postprocess(cls_logits.float(), deltas.float(), anchors, score_threshold=config.score_threshold,
                        iou_threshold=config.nms_iou)
    _sync(device)
    return len(origins) / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def precisions(device: torch.device, choice: str) -> list[torch.dtype]:
    """The autocast dtypes to run: ``auto`` = :func:`ccmct.precision.autocast_dtype` (float32 where None);
    ``both`` = float32 and the device's reduced dtype (float16 on CUDA, bfloat16 on a CPU — forced, and
    labelled as emulated, where the CPU lacks native bf16)."""
    reduced = autocast_dtype(device)
    if choice == "float32" or (choice == "auto" and reduced is None):
        return [torch.float32]
    if choice == "auto":
        return [reduced]
    if choice == "bfloat16":
        return [torch.bfloat16]
    return [torch.float32, torch.float16 if device.type == "cuda" else torch.bfloat16]


@contextlib.contextmanager
def detector_precision(device: torch.device, dtype: torch.dtype):
    """Make :class:`WholeSlideDetector` (which follows :mod:`ccmct.precision`) run in ``dtype``."""
    old = os.environ.get(CPU_BF16_ENV)
    if device.type == "cpu":
        os.environ[CPU_BF16_ENV] = "0" if dtype == torch.float32 else "1"
    try:
        yield
    finally:
        if device.type == "cpu":
            if old is None:
                os.environ.pop(CPU_BF16_ENV, None)
            else:
                os.environ[CPU_BF16_ENV] = old


def measure_precision(model, config, plan, batches, device, dtype, args) -> dict:
    """Every model-dependent rate at one precision; ours and the baseline alike."""
    name = str(dtype).removeprefix("torch.")
    with detector_precision(device, dtype):
        options = InferenceOptions(batch_size=args.batch_size, workers=args.workers,
                                   mixed_precision=dtype != torch.float32)
        detector = WholeSlideDetector(model, config, device=device, options=options)
        used = autocast_dtype(device) if options.mixed_precision else None
        assert (used or torch.float32) == dtype, f"detector would run {used}, wanted {dtype}"
        model_batches = batches[: max(args.model_tiles // args.batch_size, 2)]
        images = [detector_images(detector, b) for b in model_batches]
        fwd = forward_only(model, images, dtype)
        model_before = model_only(detector, model_batches)
        e2e_plan = subset(plan, args.tiles, tissue=True)
        e2e = detector.detect_tiles(e2e_plan)
        e2e_rate = e2e_plan.n_selected / e2e.seconds
        model_after = model_only(detector, model_batches)
    model_rate = (model_before + model_after) / 2
    base_plan = subset(plan, args.model_tiles, tissue=False)
    base_rate = baseline(model, config, base_plan, device, dtype)
    flops = flops_per_tile(model, images[0], dtype)
    peak = gemm_peak(device, dtype, n=args.gemm_n)
    authors_tiles = len(range(0, plan.grid.size_wh[0] - 256, 230)) * len(range(0, plan.grid.size_wh[1] - 256, 230))
    return {
        "autocast_dtype": name,
        "native": dtype == torch.float32 or device.type == "cuda" or cpu_bf16_native(),
        "forward_only_tiles_per_s": round(fwd, 2),
        "model_only_tiles_per_s": round(model_rate, 2),
        "end_to_end_tiles_per_s": round(e2e_rate, 2),
        "baseline_tiles_per_s": round(base_rate, 2),
        "model_only_before_after": [round(model_before, 2), round(model_after, 2)],
        "baseline_glass_share": round(1 - float(plan.selected[base_plan.tile_ids].mean()), 3),
        "seconds_per_slide_end_to_end": round(plan.n_selected / e2e_rate, 1),
        "seconds_per_slide_baseline": round(authors_tiles / base_rate, 1),
        "gflop_per_tile": round(flops / 1e9, 3),
        "achieved_gflop_s_forward": round(flops * fwd / 1e9, 1),
        "achieved_gflop_s_model_only": round(flops * model_rate / 1e9, 1),
        "gemm_peak_gflop_s": round(peak / 1e9, 1),
        "forward_share_of_gemm_peak": round(flops * fwd / peak, 3),
    }


def detector_images(detector: WholeSlideDetector, tiles_uint8: torch.Tensor) -> torch.Tensor:
    """The detector's own preprocessing of a batch (normalised float tensor on its device)."""
    return preprocess(tiles_uint8.to(detector.device), detector.config)


def measure(slide: Path, args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = DetectorConfig()
    model = RetinaNet(config).eval().to(device)
    detector = WholeSlideDetector(model, config, device=device,
                                  options=InferenceOptions(batch_size=args.batch_size, workers=args.workers))
    plan = detector.plan(slide)
    authors_tiles = len(range(0, plan.grid.size_wh[0] - 256, 230)) * len(range(0, plan.grid.size_wh[1] - 256, 230))
    read_rate, batches = read_only(subset(plan, args.read_tiles, tissue=True), batch_size=args.batch_size,
                                   workers=args.workers)
    runs = {}
    for dtype in precisions(device, args.precision):
        name = str(dtype).removeprefix("torch.")
        start = time.perf_counter()
        runs[name] = measure_precision(model, config, plan, batches, device, dtype, args)
        print(f"{name}: measured in {time.perf_counter() - start:.0f} s: {runs[name]}", file=sys.stderr)
    for run in runs.values():
        run["end_to_end_over_min_read_model"] = round(run["end_to_end_tiles_per_s"]
                                                      / min(read_rate, run["model_only_tiles_per_s"]), 3)
    return {
        "read_only_tiles_per_s": round(read_rate, 2),
        "by_precision": runs,
        "tiles_total": plan.n_total,
        "tiles_skipped": plan.n_total - plan.n_selected,
        "baseline_tiles_per_slide": authors_tiles,
        "settings": {"slide": str(slide), "size_wh": list(plan.grid.size_wh), "device": str(device),
                     "torch_threads": torch.get_num_threads(), "batch_size": args.batch_size,
                     "workers": args.workers, "tiles_end_to_end": args.tiles, "tiles_read_only": args.read_tiles,
                     "tiles_model_only": max(args.model_tiles // args.batch_size, 2) * args.batch_size,
                     "tiles_baseline": args.model_tiles, "gemm_n": args.gemm_n, "precision": args.precision,
                     "tile_sampling": "evenly spread over the slide (end to end: tissue tiles; baseline: all)",
                     "cpu_bf16_native": cpu_bf16_native(),
                     "detector": "random-init ResNet-18 RetinaNet (defaults)", "torch": torch.__version__},
    }


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slide", type=Path, help="slide to use (default: write a large-preset-sized one)")
    parser.add_argument("--size", type=int, nargs=2, default=LARGE_WH, metavar=("W", "H"),
                        help="size of the written slide, px (default %(default)s)")
    parser.add_argument("--tiles", type=int, default=320, help="tissue tiles of the end-to-end run (default 320)")
    parser.add_argument("--model-tiles", type=int, default=160,
                        help="tiles of the model-only and baseline runs (default 160)")
    parser.add_argument("--read-tiles", type=int, default=2000, help="tiles of the read-only run (default 2000)")
    parser.add_argument("--batch-size", type=int, default=16, help="tiles per batch (default 16)")
    parser.add_argument("--workers", type=int, default=2, help="reader processes (default 2)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16", "both"], default="auto",
                        help="autocast of ours AND the baseline: auto = ccmct.precision's choice (bf16 on a "
                             "native-bf16 CPU, fp16 on CUDA), float32, bfloat16 (forced), or both float32 and "
                             "the reduced dtype (labelled, 'native' false where emulated); default auto")
    parser.add_argument("--gemm-n", type=int, default=None,
                        help="matrix size of the GEMM peak probe (default 2048 on CPU, 8192 on CUDA)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    if args.gemm_n is None:
        args.gemm_n = 8192 if args.device.startswith("cuda") else 2048
    with tempfile.TemporaryDirectory(prefix="ccmct-bench-") as tmp:
        slide = args.slide
        if slide is None:
            start = time.perf_counter()
            slide = write_large_slide(Path(tmp) / "large.svs", tuple(args.size))
            print(f"wrote {slide} {args.size} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        result = measure(slide, args)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for key, value in result.items():
            if key != "by_precision":
                print(f"{key:32s} {value}")
        for name, run in result["by_precision"].items():
            print(f"--- {name} (ours and the baseline)")
            for key, value in run.items():
                print(f"{key:32s} {value}")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    sys.exit(main())
