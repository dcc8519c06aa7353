"""The battery script itself: it runs, judges and tabulates (the full table is in docs/reliability.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from battery import CATEGORIES, Case, Outcome, all_cases, table

HERE = Path(__file__).resolve().parent


def test_script_runs_a_category_and_prints_the_table(tiny_root, tmp_path):
    proc = subprocess.run([sys.executable, str(HERE / "battery.py"), "--root", str(tiny_root), "--only", "unpickler",
                           "--keep", str(tmp_path / "ws")], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| category | cases tried | clean errors |")
    assert rows[-1] == "| **all** | 4 | 4 | 0 | 0 | 0 | 0 | 0 |"
    assert proc.stdout.count("clean     unpickler") == 4


def test_table_counts_each_verdict():
    def outcome(name, category, verdict):
        return Outcome(Case(name, category, build=None), verdict, 0, "", "")

    outcomes = [outcome("a", "outputs", "clean"), outcome("b", "outputs", "lost"), outcome("c", "errors", "ok"),
                outcome("d", "errors", "traceback"), outcome("e", "options", "silent"),
                outcome("f", "options", "wrong")]
    lines = table(outcomes).splitlines()
    assert lines[-1] == "| **all** | 6 | 1 | 1 | 1 | 1 | 1 | 1 |"
    assert any(line.startswith(f"| {CATEGORIES['outputs']} | 2 | 1 | 0 | 0 | 0 | 1 | 0 |") for line in lines)


def test_every_case_name_is_unique_and_every_category_has_cases():
    cases = all_cases()
    assert len({c.name for c in cases}) == len(cases)
    assert {c.category for c in cases} == set(CATEGORIES)
