"""Second-stage re-scoring throughput: one patch per forward pass (the authors' ``learn.predict`` loop) vs
batched classification with 0 and N DataLoader reader processes (ccmct).

Generates (or reuses) a synthetic ``tiny`` root, takes ``--patches`` annotation centres of its slides and
classifies them with a randomly initialised ResNet-18 cell classifier in each mode, side by side in one run.
Prints settings, patches/s and the ratios; ``--json`` prints one JSON document.

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
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    return parser.parse_args()


def _one_at_a_time(model, dataset) -> None:
    with torch.no_grad():
        for i in range(len(dataset)):
            image, _ = dataset[i]
            torch.softmax(model(image[None]), 1)


def main() -> None:
    args = _args()
    torch.set_num_threads(args.threads)
    from ccmct.models.classifier import build_classifier, predict_probabilities
    from ccmct.sampling.cells import CellPatchDataset, cell_table

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root
        if root is None:
            from ccmct.data.synthetic import generate_dataset

            root = Path(tmp) / "tiny"
            generate_dataset(root, preset="tiny", seed=0, progress=False)
        cells = cell_table(root, "ODAEL")
        rows = cells.sample(n=min(args.patches, len(cells)), random_state=0)
        dataset = CellPatchDataset.from_table(rows, root)
        model = build_classifier(4).eval()
        timings = {}
        for name, run in (("one_at_a_time", lambda: _one_at_a_time(model, dataset)),
                          ("batched_0_workers", lambda: predict_probabilities(model, dataset,
                                                                              batch_size=args.batch_size)),
                          (f"batched_{args.workers}_workers", lambda: predict_probabilities(
                              model, dataset, batch_size=args.batch_size, num_workers=args.workers))):
            start = time.perf_counter()
            run()
            timings[name] = len(dataset) / (time.perf_counter() - start)
    base = timings["one_at_a_time"]
    report = {"settings": {"patches": len(dataset), "batch_size": args.batch_size, "workers": args.workers,
                           "threads": args.threads, "device": "cpu"},
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
