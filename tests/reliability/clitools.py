"""Helpers of the reliability battery (issue 14; docs/reliability.md), importable as ``clitools``.

- :func:`run_cli` runs ``python -m ccmct.cli ...`` in a fresh process (so a traceback, a crash or a write to
  the wrong place is seen exactly as a user sees it);
- :func:`assert_clean_error` checks the one error path: exit code 2, stderr at most a few lines, no
  ``Traceback``;
- :func:`snapshot` / :func:`assert_unchanged` prove inputs (and earlier good results) are byte-identical
  after a command ran.

In this folder: ``from clitools import run_cli, assert_clean_error, snapshot, assert_unchanged`` (the module
name is unique in the test tree; ``conftest`` is not).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAX_ERROR_LINES = 3


def run_cli(*args, cwd: str | os.PathLike[str] | None = None, timeout: float = 600,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m ccmct.cli ARGS`` in a new process; returns the completed process (text output)."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "lib"),
                                                                os.environ.get("PYTHONPATH", "")]), **(env or {})}
    return subprocess.run([sys.executable, "-m", "ccmct.cli", *map(str, args)], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout, check=False)


def assert_clean_error(proc: subprocess.CompletedProcess, *, contains: str | None = None) -> str:
    """Exit 2, stderr non-empty, at most :data:`MAX_ERROR_LINES` lines, no traceback. Returns the stderr text."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, f"exit {proc.returncode}, stderr:\n{proc.stderr}\nstdout:\n{proc.stdout[-2000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in err.splitlines() if line.strip()]
    assert 1 <= len(lines) <= MAX_ERROR_LINES, f"{len(lines)} stderr lines:\n{proc.stderr}"
    if contains is not None:
        assert contains in err, f"{contains!r} not in stderr:\n{err}"
    return err


def _digest(path: Path) -> dict[str, str | None]:
    """relative path -> sha256 (files), 'dir' (folders), 'link:<target>' (symlinks); {'.': None} if absent."""
    if path.is_symlink():
        return {".": f"link:{os.readlink(path)}"}
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    if path.is_dir():
        out: dict[str, str | None] = {".": "dir"}
        for child in sorted(path.rglob("*")):
            rel = str(child.relative_to(path))
            if child.is_symlink():
                out[rel] = f"link:{os.readlink(child)}"
            elif child.is_file():
                out[rel] = hashlib.sha256(child.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
        return out
    return {".": None}


def snapshot(*paths: str | os.PathLike[str]) -> dict[Path, dict]:
    """Content digests of files / folders (recursively), to compare after a command with :func:`assert_unchanged`."""
    return {Path(p): _digest(Path(p)) for p in paths}


def assert_unchanged(before: dict[Path, dict]) -> None:
    """Every path of a :func:`snapshot` is byte-identical (same files, same content, same links)."""
    for path, digest in before.items():
        now = _digest(path)
        assert now == digest, f"{path} changed: {sorted(set(now.items()) ^ set(digest.items()))[:5]}"


def explain(outcome) -> str:
    """Assertion message for a case that did not end as expected."""
    return (f"{outcome.case.name}: {outcome.verdict} ({outcome.detail}); exit {outcome.returncode}\n"
            f"stderr:\n{outcome.stderr[-3000:]}\nstdout:\n{outcome.stdout[-1000:]}")
