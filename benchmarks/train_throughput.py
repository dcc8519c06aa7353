"""Detector training throughput: patch loader alone, training steps on pre-loaded batches, real training.

Measured side by side in one run on a synthetic ``demo`` root (generated into a temporary folder unless
``--data-root`` is given). "model" runs forward + focal/box loss + backward + Adam step on batches already in
memory; "end_to_end" runs the same steps on batches coming from the DataLoader (worker processes reading and
augmenting patches from the slides), so ``end_to_end / model`` is the cost of feeding the model.

    python benchmarks/train_throughput.py --json
    python benchmarks/train_throughput.py --data-root /data/demo --batches 20 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=None, help="data root; default: generate the demo set")
    p.add_argument("--variant", default="ODAEL", help="label set; default ODAEL")
    p.add_argument("--preset", default="quick", help="detector preset (architecture, batch size); default quick")
    p.add_argument("--batches", type=int, default=12, help="batches per measurement; default 12")
    p.add_argument("--workers", type=int, default=None, help="loader processes; default: the preset's")
    p.add_argument("--threads", type=int, default=None, help="torch threads; default: torch's")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    return p


def _steps(model, loss_fn, opt, batches, normalise) -> float:
    """Seconds for training steps over ``batches`` (iterable of collated uint8 batches)."""
    from ccmct.models.detector import targets_from_padded

    start = time.perf_counter()
    n = 0
    for images, boxes, labels in batches:
        x, boxes, labels = normalise((images, boxes, labels))
        loss = loss_fn(model(x, targets_from_padded(boxes, labels)))  # the detector's own loss dict, summed
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += len(images)
    return n / (time.perf_counter() - start)


def main(args) -> dict:
    import torch

    from ccmct.config.presets import detector_preset
    from ccmct.models.registry import model_kind
    from ccmct.sampling.patches import PatchSampler
    from ccmct.sampling.slides import load_training_slides
    from ccmct.training.data import Normalise, PatchDataset, collate_patches
    from ccmct.training.learner import detector_config
    from ccmct.training.loss import DetectorLoss

    if args.threads:
        torch.set_num_threads(args.threads)
    preset = detector_preset(args.preset)
    workers = preset.num_workers if args.workers is None else args.workers
    tmp = None
    root = args.data_root
    if root is None:
        from ccmct.synthetic import generate_dataset

        tmp = tempfile.TemporaryDirectory(prefix="ccmct_bench_")
        root = Path(tmp.name)
        generate_dataset(root, preset="demo", seed=0, progress=False)
    config = detector_config(preset, args.variant)
    slides = load_training_slides(root, args.variant)
    sampler = PatchSampler(slides, half="train", tile_px=config.tile_px, box_px=config.gt_box_px)
    n = args.batches * preset.batch_size
    dataset = PatchDataset(sampler, n, seed=0, augment=True)

    def loader():
        return torch.utils.data.DataLoader(dataset, batch_size=preset.batch_size, num_workers=workers,
                                           collate_fn=collate_patches, persistent_workers=False)

    list(islice(loader(), 1))  # warm the page cache and the slide handles
    start = time.perf_counter()
    preloaded = list(loader())
    loader_rate = n / (time.perf_counter() - start)

    torch.manual_seed(0)
    model = model_kind("retinanet").build(config).train()
    loss_fn = DetectorLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    normalise = Normalise(config.mean, config.std)
    _steps(model, loss_fn, opt, preloaded[:2], normalise)  # warm-up
    model_rate = _steps(model, loss_fn, opt, preloaded, normalise)
    dataset.set_epoch(1)
    end_to_end_rate = _steps(model, loss_fn, opt, loader(), normalise)
    model_rate_again = _steps(model, loss_fn, opt, preloaded, normalise)  # drift check on a shared machine
    if tmp is not None:
        tmp.cleanup()
    model_runs = [round(model_rate, 2), round(model_rate_again, 2)]
    model_rate = (model_rate + model_rate_again) / 2
    return {"loader_patches_per_s": round(loader_rate, 2), "model_patches_per_s": round(model_rate, 2),
            "end_to_end_patches_per_s": round(end_to_end_rate, 2),
            "end_to_end_over_model": round(end_to_end_rate / model_rate, 3),
            "model_patches_per_s_before_after": model_runs,
            "settings": {"preset": preset.name, "batch_size": preset.batch_size, "batches": args.batches,
                         "workers": workers, "torch_threads": torch.get_num_threads(),
                         "fpn_channels": preset.fpn_channels, "head_convs": preset.head_convs,
                         "cpus": os.cpu_count(), "device": "cpu"}}


if __name__ == "__main__":
    arguments = get_args_parser().parse_args()
    result = main(arguments)
    if arguments.json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
