"""Second-stage re-scoring throughput: one patch per forward pass (the authors' ``learn.predict`` loop) vs
batched classification with 0 and N DataLoader reader processes (ccmct).

Generates (or reuses) a synthetic ``tiny`` root, takes ``--patches`` annotation centres of its slides and
classifies them with a randomly initialised ResNet-18 cell classifier in each mode, side by side in one run.
Every mode runs at the same precision (the autocast :mod:`ccmct.precision` picks, recorded in the settings)
and is warmed up on ``--warmup`` patches before it is timed (first-call allocations, oneDNN kernel
selection and reader start-up are not timed for any mode). Prints settings, patches/s and the ratios;
``--json`` prints one JSON document.

    python benchmarks/second_stage.py --patches 256 --workers 2 --threads 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=None, help="data root (default: a fresh synthetic tiny one)")
    parser.add_argument("--patches", type=int, default=256, help="patches per mode (default 256)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size of the batched modes (default 64)")
    parser.add_argument("--workers", type=int, default=2, help="reader processes of the last mode (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="patches of the untimed warm-up run of every mode (default: one batch)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    return parser.parse_args()


def _one_at_a_time(model, dataset) -> None:
    """The authors' loop: one patch per forward pass (under the same autocast as the batched modes)."""
    from ccmct.precision import autocast

    with torch.no_grad():
        for i in range(len(dataset)):
            image, _ = dataset[i]
            with autocast("cpu"):
                logits = model(image[None])
            torch.softmax(logits.float(), 1)


def main() -> None:
    args = _args()
    torch.set_num_threads(args.threads)
    from ccmct.models.classifier import build_classifier, predict_probabilities
    from ccmct.sampling.cells import CellPatchDataset, cell_table

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root
        if root is None:
            from ccmct.synthetic import generate_dataset

            root = Path(tmp) / "tiny"
            generate_dataset(root, preset="tiny", seed=0, progress=False)
        cells = cell_table(root, "ODAEL")
        rows = cells.sample(n=min(args.patches, len(cells)), random_state=0)
        dataset = CellPatchDataset.from_table(rows, root)
        model = build_classifier(4).eval()
        n_warm = min(len(dataset), args.warmup if args.warmup is not None else args.batch_size)
        warm = torch.utils.data.Subset(dataset, range(n_warm))
        modes = {"one_at_a_time": lambda data: _one_at_a_time(model, data),
                 "batched_0_workers": lambda data: predict_probabilities(model, data, batch_size=args.batch_size),
                 f"batched_{args.workers}_workers": lambda data: predict_probabilities(
                     model, data, batch_size=args.batch_size, num_workers=args.workers)}
        for run in modes.values():  # warm up every mode before timing any
            run(warm)
        timings = {}
        for name, run in modes.items():
            start = time.perf_counter()
            run(dataset)
            timings[name] = len(dataset) / (time.perf_counter() - start)
    from ccmct.precision import autocast_dtype

    dtype = autocast_dtype("cpu")
    base = timings["one_at_a_time"]
    report = {"settings": {"patches": len(dataset), "batch_size": args.batch_size, "workers": args.workers,
                           "threads": args.threads, "device": "cpu", "warmup_patches": n_warm,
                           "autocast_dtype": "float32" if dtype is None else str(dtype).removeprefix("torch.")},
              "patches_per_s": {k: round(v, 1) for k, v in timings.items()},
              "speedup_vs_one_at_a_time": {k: round(v / base, 2) for k, v in timings.items()}}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print("settings:", report["settings"])
    for name, rate in timings.items():
        print(f"{name:>20}: {rate:8.1f} patches/s  x{rate / base:.2f}")


if __name__ == "__main__":
    np.random.seed(0)
    main()
