"""HPF crop writing: streamed strip by strip (ccmct) vs the whole crop read into memory first (the authors).

Writes one synthetic source slide, then crops an n-HPF window from it both ways, each in a fresh process so
that the peak resident memory (ru_maxrss) of each approach is measured on its own. Prints settings, seconds,
peak MiB and the ratios; ``--json`` prints one JSON document.

    python benchmarks/ablation_crops.py --hpf 10 --mpp 0.25
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_CHILD = r"""
import json, resource, sys, time
from ccmct.data.subsets_hpf import CropWindow, crop_slide
from ccmct.data.slides import open_slide
from ccmct.data.svs_writer import write_svs
mode, src, dst, x0, y0, w, h = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if mode == "streamed":
    crop_slide(src, dst, CropWindow(x0, y0, w, h))
else:
    with open_slide(src) as s:
        image = s.read_l0(x0, y0, (w, h))
        write_svs(dst, image, mpp=s.mpp)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "import_mib": base / 1024}))
"""


def _source(path: Path, size_wh: tuple[int, int], mpp: float) -> None:
    from ccmct.data.svs_writer import write_svs

    rng = np.random.default_rng(0)
    w, h = size_wh
    tile = rng.integers(60, 250, (256, 256, 3), dtype=np.uint8)

    def render(y0: int, rows: int) -> np.ndarray:
        return np.tile(tile, (1, -(-w // 256), 1))[:rows, :w]

    write_svs(path, render, size_wh=size_wh, mpp=mpp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hpf", type=float, default=10, help="HPFs per crop; default 10")
    parser.add_argument("--mpp", type=float, default=0.25, help="µm/px of the source slide; default 0.25")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    from ccmct.data.subsets_hpf import hpf_crop_size_px

    w, h = hpf_crop_size_px(args.hpf, args.mpp)
    size = (w + 1024, h + 1024)
    out = {"settings": {"hpf": args.hpf, "mpp": args.mpp, "crop_wh": [w, h], "source_wh": list(size),
                        "compression": "jpeg q90", "machine": "2-core CPU container, no GPU"}}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "source.svs"
        t0 = time.perf_counter()
        _source(src, size, args.mpp)
        out["settings"]["source_write_s"] = round(time.perf_counter() - t0, 2)
        for mode in ("streamed", "in_memory"):
            cmd = [sys.executable, "-c", _CHILD, mode, str(src), str(Path(tmp) / f"{mode}.tiff"), "512", "512", str(w), str(h)]
            out[mode] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    s, m = out["streamed"], out["in_memory"]
    out["ratios"] = {"peak_mib_in_memory_over_streamed": round(m["peak_mib"] / s["peak_mib"], 2),
                     "seconds_in_memory_over_streamed": round(m["seconds"] / s["seconds"], 2)}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"settings: {out['settings']}")
        for mode in ("streamed", "in_memory"):
            r = out[mode]
            print(f"{mode:>10}: {r['seconds']:.2f} s, peak RSS {r['peak_mib']:.0f} MiB (after imports {r['import_mib']:.0f})")
        print(f"ratios (in-memory / streamed): {out['ratios']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
