"""Benchmark: whole-slide inference throughput, ours vs the authors' style, measured side by side.

Four numbers in tiles/s on one large slide, with a random-init detector of the real size (ResNet-18 RetinaNet,
:class:`ccmct.models.retinanet.DetectorConfig` defaults):

- ``read_only``: the DataLoader alone (``--workers`` reader processes, tissue tiles, batch ``--batch-size``);
- ``model_only``: preprocess + forward + per-tile decoding/NMS on batches already in memory (measured before
  and after the end-to-end run; the mean is reported);
- ``end_to_end``: :meth:`WholeSlideDetector.detect_tiles` on the first ``--tiles`` tissue tiles (reading,
  model, edge rule, distance NMS);
- ``baseline``: the authors' ``Inference-RetinaNet.py`` style: every tile in raster order (background
  included), one reader process, batch 8, normalisation per sample on the CPU.

The slide: ``--slide FILE`` (e.g. from ``ccmct synth --preset large``), else one of the ``large`` preset's size
(40000 x 30000 px at 0.25 µm/px) written strip by strip with :func:`ccmct.data.svs_writer.write_svs` (JPEG,
tissue ellipses on glass) into a temporary folder.

    python benchmarks/inference_throughput.py [--json] [--slide FILE] [--tiles 320] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
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
from ccmct.models.retinanet import DetectorConfig, RetinaNet, postprocess

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
    """The first ``n_tiles`` tiles in raster order (tissue tiles, or any tile for the baseline)."""
    candidates = plan.tile_ids if tissue else np.arange(plan.n_total)
    selected = np.zeros(plan.n_total, bool)
    selected[candidates[:n_tiles]] = True
    return SlideTiles(plan.path, plan.grid, selected)


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


def baseline(model: torch.nn.Module, config: DetectorConfig, plan: SlideTiles, device: torch.device) -> float:
    """The authors' loop: every tile, one reader, batch 8, per-sample normalisation, per-tile NMS."""
    origins = plan.grid.origins_l0()[plan.tile_ids]
    loader = tile_loader(TileDataset(plan.path, origins, config.tile_px), batch_size=8, workers=1)
    mean, std = torch.tensor(config.mean).view(3, 1, 1), torch.tensor(config.std).view(3, 1, 1)
    anchors = config.anchors().to(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for tiles, _, _ in loader:
            samples = [(t.permute(2, 0, 1).float() / 255 - mean) / std for t in tiles]   # per sample
            cls_logits, deltas = model(torch.stack(samples).to(device))
            postprocess(cls_logits, deltas, anchors, score_threshold=config.score_threshold,
                        iou_threshold=config.nms_iou)
    _sync(device)
    return len(origins) / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(slide: Path, args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = DetectorConfig()
    model = RetinaNet(config).eval().to(device)
    options = InferenceOptions(batch_size=args.batch_size, workers=args.workers)
    detector = WholeSlideDetector(model, config, device=device, options=options)
    plan = detector.plan(slide)
    authors_tiles = len(range(0, plan.grid.size_wh[0] - 256, 230)) * len(range(0, plan.grid.size_wh[1] - 256, 230))
    read_rate, batches = read_only(subset(plan, args.read_tiles, tissue=True), batch_size=args.batch_size,
                                   workers=args.workers)
    model_batches = batches[: max(args.model_tiles // args.batch_size, 2)]
    model_before = model_only(detector, model_batches)
    e2e_plan = subset(plan, args.tiles, tissue=True)
    e2e = detector.detect_tiles(e2e_plan)
    e2e_rate = e2e_plan.n_selected / e2e.seconds
    model_after = model_only(detector, model_batches)
    model_rate = (model_before + model_after) / 2
    base_rate = baseline(model, config, subset(plan, args.model_tiles, tissue=False), device)
    return {
        "read_only_tiles_per_s": round(read_rate, 2),
        "model_only_tiles_per_s": round(model_rate, 2),
        "end_to_end_tiles_per_s": round(e2e_rate, 2),
        "baseline_tiles_per_s": round(base_rate, 2),
        "tiles_total": plan.n_total,
        "tiles_skipped": plan.n_total - plan.n_selected,
        "end_to_end_over_min_read_model": round(e2e_rate / min(read_rate, model_rate), 3),
        "model_only_before_after": [round(model_before, 2), round(model_after, 2)],
        "seconds_per_slide_end_to_end": round(plan.n_selected / e2e_rate, 1),
        "seconds_per_slide_baseline": round(authors_tiles / base_rate, 1),
        "baseline_tiles_per_slide": authors_tiles,
        "settings": {"slide": str(slide), "size_wh": list(plan.grid.size_wh), "device": str(device),
                     "torch_threads": torch.get_num_threads(), "batch_size": args.batch_size,
                     "workers": args.workers, "tiles_end_to_end": e2e_plan.n_selected,
                     "tiles_read_only": args.read_tiles, "tiles_model_only": len(model_batches) * args.batch_size,
                     "tiles_baseline": args.model_tiles, "detector": "random-init ResNet-18 RetinaNet (defaults)"},
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
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
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
            print(f"{key:32s} {value}")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    sys.exit(main())
