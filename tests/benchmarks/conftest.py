"""Load a script of benchmarks/ as a module (the scripts are not a package; they import each other by name)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="session")
def load_benchmark():
    """``load_benchmark("fast_mode")`` -> the module of benchmarks/fast_mode.py (its folder on sys.path while
    it loads, so that it finds the scripts it imports)."""

    def load(name: str):
        sys.path.insert(0, str(BENCHMARKS))
        try:
            spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
        finally:
            sys.path.remove(str(BENCHMARKS))

    return load
