"""Benchmark: reading every spot of an ODAEL-sized database.

Compares ``SlideRunnerDB.spots()`` (two plain queries, first vertex picked with pandas) with the previous
single query that picked the first vertex with a correlated ``MIN(orderIdx)`` sub-query per annotation.

    python benchmarks/sliderunner_spots.py [--spots 262481] [--compare-spots 20000] [--slides 32] [--json]

The old query grows quadratically (20,000 spots: ~40 s; ODAEL's 262,481 would take hours), so both are
timed side by side at ``--compare-spots`` and the new one alone at ``--spots``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ccmct.data.sliderunner import SlideRunnerDB

OLD_SQL = ("SELECT a.uid AS anno_id, a.slide, a.type, c.coordinateX AS x, c.coordinateY AS y, "
           "a.agreedClass AS agreed_class FROM Annotations a "
           "LEFT JOIN Annotations_coordinates c ON c.annoId = a.uid AND c.orderIdx = "
           "(SELECT MIN(orderIdx) FROM Annotations_coordinates WHERE annoId = a.uid) "
           "WHERE a.type IN (1, 4) ORDER BY a.uid")


def build(path: Path, n_spots: int, n_slides: int) -> None:
    rng = np.random.default_rng(0)
    with SlideRunnerDB.create(path) as db:
        for s in range(n_slides):
            uid = db.add_slide(f"s{s}.svs")
            n = n_spots // n_slides
            db.add_spots(uid, rng.integers(0, 100_000, (n, 2)), rng.choice([1, 2, 3, 7], n))


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spots", type=int, default=262_481, help="spots in total (default: ODAEL's 262,481)")
    parser.add_argument("--compare-spots", type=int, default=20_000,
                        help="spots for the side-by-side comparison with the old query (default 20,000)")
    parser.add_argument("--slides", type=int, default=32, help="slides (default 32)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, full = Path(tmp) / "small.sqlite", Path(tmp) / "full.sqlite"
        build(small, args.compare_spots, args.slides)
        build(full, args.spots, args.slides)
        with SlideRunnerDB.open(small) as db:
            new_small = timed(db.spots)
            old_small = timed(lambda: pd.read_sql_query(OLD_SQL, db._con), repeat=1)
            assert db.spots()[["anno_id", "x", "y"]].equals(
                pd.read_sql_query(OLD_SQL, db._con)[["anno_id", "x", "y"]].astype("int64"))
        with SlideRunnerDB.open(full) as db:
            new_full = timed(db.spots)
    result = {"slides": args.slides, "compare_spots": args.compare_spots, "new_s": round(new_small, 3),
              "old_s": round(old_small, 3), "speedup": round(old_small / new_small, 1),
              "spots": args.spots, "new_full_s": round(new_full, 3)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.compare_spots} spots / {args.slides} slides: spots() {new_small:.3f} s, correlated "
              f"sub-query {old_small:.3f} s, x{old_small / new_small:.0f}")
        print(f"{args.spots} spots: spots() {new_full:.3f} s")

if __name__ == "__main__":
    main()
