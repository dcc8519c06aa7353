"""float32 vs bfloat16 autocast on the CPU: detector training steps, detector inference, classifier inference.

Side by side in one run, on random inputs (the arithmetic does not depend on the pixels): the quick preset's
RetinaNet (ResNet-18 + FPN, 256 px patches, batch 16) forward + loss + backward + Adam step, the same model's
forward on a batch of tiles, and the ResNet-18 cell classifier's forward on 128 px patches. bf16 runs under
``torch.autocast('cpu', torch.bfloat16)`` exactly as :mod:`ccmct.precision` applies it; the ratio is only
meaningful on a CPU with native bf16 (the script says whether this one has it).

    python benchmarks/cpu_precision.py [--repeats 4] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import time


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=4, help="timed repetitions per measurement; default 4")
    p.add_argument("--batch", type=int, default=16, help="patches / tiles per batch; default 16")
    p.add_argument("--threads", type=int, default=None, help="torch threads; default: torch's")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    return p


def _time(fn, repeats: int) -> float:
    fn()  # warm-up (oneDNN primitive creation)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main(argv=None) -> dict:
    args = get_args_parser().parse_args(argv)
    import torch

    from ccmct.config.presets import detector_preset
    from ccmct.models.classifier import build_classifier
    from ccmct.precision import _cpu_bf16_native
    from ccmct.training.learner import detector_config
    from ccmct.models.retinanet import RetinaNet

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    detector = RetinaNet(detector_config(detector_preset("quick"), "ODAEL"))
    classifier = build_classifier(4).eval()
    opt = torch.optim.Adam(detector.parameters(), 1e-4)
    patches = torch.randn(args.batch, 3, 256, 256)
    cells = torch.randn(args.batch * 4, 3, 128, 128)

    def train_step(bf16: bool):
        detector.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, deltas = detector.head_outputs(patches)  # raw head outputs (no loss / post-processing)
        loss = logits.float().sigmoid().mean() + deltas.float().abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    @torch.no_grad()
    def infer(model, x, bf16: bool):
        model.eval()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x)

    rows = {}
    for name, fn, items in (("detector_train_step", train_step, args.batch),
                            ("detector_inference", lambda b: infer(detector, patches, b), args.batch),
                            ("classifier_inference", lambda b: infer(classifier, cells, b), len(cells))):
        fp32 = _time(lambda: fn(False), args.repeats)
        bf16 = _time(lambda: fn(True), args.repeats)
        rows[name] = {"fp32_items_per_s": round(items / fp32, 2), "bf16_items_per_s": round(items / bf16, 2),
                      "speedup": round(fp32 / bf16, 2)}
    result = {"cpu_bf16_native": _cpu_bf16_native(), "threads": torch.get_num_threads(), "batch": args.batch,
              "results": rows}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"native CPU bf16: {result['cpu_bf16_native']}, torch threads: {result['threads']}")
        for name, row in rows.items():
            print(f"{name:22s} fp32 {row['fp32_items_per_s']:8.2f}/s  bf16 {row['bf16_items_per_s']:8.2f}/s  "
                  f"x{row['speedup']:.2f}")
    return result


if __name__ == "__main__":
    main()
