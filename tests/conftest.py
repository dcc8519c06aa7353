"""Shared fixtures.

- ``shared_data``: the real files of ``../shared/data`` (or ``$CCMCT_SHARED_DATA``). Without them the tests
  that need them skip with a reason; CI sets ``CCMCT_REQUIRE_SHARED_DATA=1`` and they fail instead.
- ``tiny_root``: one synthetic ``tiny`` data root per session (seed 0), read-only for tests.
- CPU precision is pinned: ``CCMCT_CPU_BF16`` is ``"0"`` (float32) unless the caller set it, so a test's
  numbers do not depend on whether the CI machine's CPU has native bfloat16. ``cpu_precision`` runs a test
  once in float32 and once under bfloat16 autocast (the training and inference tests use it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CCMCT_SHARED_DATA", REPO.parent / "shared" / "data"))

# Keep every cache and config out of the user's home.
_CACHE = REPO / ".ci" / "cache"
for _var, _sub in (("TORCH_HOME", "torch"), ("MPLCONFIGDIR", "matplotlib"), ("IPYTHONDIR", "ipython")):
    os.environ.setdefault(_var, str(_CACHE / _sub))
os.environ.setdefault("MPLBACKEND", "Agg")
# One CPU precision for the whole suite (ccmct.precision.CPU_BF16_ENV), chosen here, not by the CPU's features.
os.environ.setdefault("CCMCT_CPU_BF16", "0")


def _need_shared(path: Path) -> Path:
    if not path.exists():
        reason = (f"real test data missing: {path} (set CCMCT_SHARED_DATA to the folder holding "
                  "original_repo/ and openslide_fixtures/)")
        if os.environ.get("CCMCT_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder with original_repo/ (authors' databases and results) and openslide_fixtures/."""
    return _need_shared(SHARED_DATA)


@pytest.fixture(scope="session")
def tumorzone_db(shared_data) -> Path:
    return _need_shared(shared_data / "original_repo" / "databases" / "MITOS_WSI_CCMCT_Tumorzone.sqlite")


@pytest.fixture(scope="session")
def high_mc_db(shared_data) -> Path:
    return _need_shared(shared_data / "original_repo" / "databases" / "HighMCAreas.sqlite")


@pytest.fixture(scope="session")
def authors_results_dir(shared_data) -> Path:
    return _need_shared(shared_data / "original_repo" / "results")


@pytest.fixture(scope="session")
def openslide_fixtures(shared_data) -> Path:
    return _need_shared(shared_data / "openslide_fixtures")


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A synthetic ``tiny`` data root (seed 0), shared by the whole session. Do not modify it."""
    from ccmct.synthetic import generate_dataset

    out = tmp_path_factory.mktemp("tiny_root")
    generate_dataset(out, preset="tiny", seed=0, progress=False)
    return out


@pytest.fixture(params=["float32", "bfloat16"])
def cpu_precision(request, monkeypatch) -> str:
    """Run the test in both CPU precisions (sets ``CCMCT_CPU_BF16`` to 0 / 1 for its duration)."""
    from ccmct.precision import CPU_BF16_ENV

    monkeypatch.setenv(CPU_BF16_ENV, "1" if request.param == "bfloat16" else "0")
    return request.param
