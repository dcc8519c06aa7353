"""Throughput of ``fetch_file`` (MD5, progress callback, ``.part`` + rename) against a plain ``requests``
download of the same file from a local HTTP server, for several read sizes.

The local server removes the network from the measurement: what is left is the downloader's own overhead,
which must stay far below a real link's speed (figshare: typically 10-100 MB/s).

    python benchmarks/download.py [--size-mb 256] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from ccmct.data.download import RetryPolicy, fetch_file


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _plain(url: str, dest: Path, chunk_bytes: int) -> None:
    with requests.get(url, stream=True, timeout=60) as response, open(dest, "wb") as handle:
        for chunk in response.iter_content(chunk_bytes):
            handle.write(chunk)


def _best_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=256, help="file size in MiB (default 256)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting; the best counts (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "served").mkdir()
        (tmp / "served" / "file.bin").write_bytes(os.urandom(args.size_mb << 20))
        handler = functools.partial(_QuietHandler, directory=str(tmp / "served"))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/file.bin"
        for chunk_kib in (16, 64, 1024):
            chunk = chunk_kib << 10
            dest = tmp / f"out_{chunk_kib}.bin"

            def ours(dest=dest, chunk=chunk) -> None:
                dest.unlink(missing_ok=True)
                fetch_file(url, dest, policy=RetryPolicy(chunk_bytes=chunk), progress=lambda done, total: None)

            plain_s = _best_s(lambda dest=dest, chunk=chunk: _plain(url, dest, chunk), args.repeats)
            ours_s = _best_s(ours, args.repeats)
            mib = args.size_mb
            rows.append({"chunk_kib": chunk_kib, "plain_mib_s": round(mib / plain_s, 1),
                         "fetch_file_mib_s": round(mib / ours_s, 1), "overhead_ratio": round(ours_s / plain_s, 2)})
        server.shutdown()
    settings = {"size_mib": args.size_mb, "repeats": args.repeats, "python": platform.python_version(),
                "cpus": os.cpu_count(), "server": "http.server on 127.0.0.1 (same machine)"}
    if args.json:
        json.dump({"settings": settings, "rows": rows}, sys.stdout, indent=1)
        print()
        return 0
    print("settings:", ", ".join(f"{k}={v}" for k, v in settings.items()))
    print(f"{'chunk KiB':>10} {'plain MiB/s':>12} {'fetch_file MiB/s':>17} {'time ratio':>11}")
    for row in rows:
        print(f"{row['chunk_kib']:>10} {row['plain_mib_s']:>12} {row['fetch_file_mib_s']:>17} "
              f"{row['overhead_ratio']:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
