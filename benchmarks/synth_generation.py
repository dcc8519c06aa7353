"""Benchmark: how long ``ccmct synth`` takes and how big its output is, per preset, side by side.

Targets (issue 4): ``tiny`` in a few seconds, ``demo`` in <= 60 s and <= 100 MB on a 2-core machine.

Usage:
    python benchmarks/synth_generation.py                    # tiny and demo
    python benchmarks/synth_generation.py --presets tiny --repeat 3 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def measure(preset: str, seed: int, workdir: Path) -> dict:
    """Generate one root from scratch; wall and CPU seconds, output size and throughput."""
    from ccmct.synthetic import generate_dataset
    from ccmct.synthetic.dataset import _cached_library

    _cached_library.cache_clear()  # time the stamp library too, as a fresh process would
    out = workdir / f"{preset}-{seed}-{time.monotonic_ns()}"
    wall, cpu = time.perf_counter(), time.process_time()
    report = generate_dataset(out, preset=preset, seed=seed, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    mpx = sum(s["width"] * s["height"] for s in report["slides"].values()) / 1e6
    mitoses = sum(s["counts"]["ODAEL"][2] for s in report["slides"].values())
    return {"preset": preset, "seed": seed, "slides": len(report["slides"]), "megapixels": round(mpx, 1),
            "mitoses_odael": mitoses, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "size_mb": round(size / 1e6, 1), "mpx_per_s": round(mpx / wall, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "demo"], help="presets to time; default tiny demo")
    parser.add_argument("--repeat", type=int, default=1, help="runs per preset (best wall time kept); default 1")
    parser.add_argument("--seed", type=int, default=0, help="seed; default 0")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write (default: a temp folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    settings = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
                "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "repeat": args.repeat, "seed": args.seed}
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for preset in args.presets:
            runs = [measure(preset, args.seed, Path(tmp)) for _ in range(args.repeat)]
            rows.append(min(runs, key=lambda r: r["wall_s"]))
    base = rows[0]
    for row in rows:
        row["wall_ratio_vs_first"] = round(row["wall_s"] / base["wall_s"], 2)
        row["mpx_ratio_vs_first"] = round(row["megapixels"] / base["megapixels"], 2)
    if args.json:
        json.dump({"settings": settings, "results": rows}, sys.stdout, indent=1)
        print()
        return 0
    print("settings:", ", ".join(f"{k}={v}" for k, v in settings.items()))
    print(f"{'preset':7s} {'slides':>6s} {'Mpx':>7s} {'MF':>6s} {'wall s':>7s} {'cpu s':>7s} {'MB':>6s} "
          f"{'Mpx/s':>6s} {'wall x':>7s} {'Mpx x':>6s}")
    for r in rows:
        print(f"{r['preset']:7s} {r['slides']:6d} {r['megapixels']:7.1f} {r['mitoses_odael']:6d} {r['wall_s']:7.2f} "
              f"{r['cpu_s']:7.2f} {r['size_mb']:6.1f} {r['mpx_per_s']:6.2f} {r['wall_ratio_vs_first']:7.2f} "
              f"{r['mpx_ratio_vs_first']:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
