"""The output guard: every command that writes checks its targets against its inputs *before* any work.

One rule for every writing command (``export``, ``infer``, ``classify``, ``synth``, ``train``,
``train-classifier``, ``ablation``, ``demo``, ``setup``, ``notebooks``, ``view``); see docs/reliability.md:

1. a target is never one of the command's inputs, and never lies inside a folder the command reads (a
   model directory, a data root, a subsets folder); a folder target never holds an input *file* either (a
   run would overwrite it);
2. a target that exists must be what the command writes: a regular file where a file is meant (not a
   folder, a device, a FIFO or a symbolic link), a folder where a folder is meant (not a file; a link to
   a folder is followed, a dangling link refused);
3. the folder that will receive the target must be creatable and writable (the nearest existing ancestor
   is a writable folder), so a permission problem is one line at the start, not a traceback at the end.

Violations raise :class:`OutputError` (a :class:`ccmct.errors.FileProblem`: one line naming the path, exit
code 2 in the CLI). Inputs are compared after resolving symbolic links, so a link or ``..`` path to an
input is caught too.

Example:
    >>> guard_output("results/r.npz", reads=["models/ODAEL", "data"])          # doctest: +SKIP
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from ccmct.errors import FileProblem

__all__ = ["OutputError", "guard_output", "guard_outputs"]

Kind = Literal["file", "dir"]


class OutputError(FileProblem):
    """A target a command must not write (an input, inside an input folder, a non-regular file, unwritable)."""


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _describe(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _check_existing(target: Path, kind: Kind, what: str) -> None:
    """A target that exists must be of the kind the command writes (never a link, device or FIFO)."""
    if target.is_symlink() and (kind == "file" or not target.exists()):
        where = os.readlink(target)
        raise OutputError(target, f"{what} is a symbolic link (to {where}); refusing to write through it; "
                                  "give the real path or a new name")
    try:
        mode = target.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # absent (or under a file: reported by the writable check)
        return
    except OSError as err:
        raise OutputError(target, f"{what} cannot be inspected ({err.strerror})") from None
    if kind == "file" and not stat.S_ISREG(mode):
        raise OutputError(target, f"{what} exists and is {_describe(mode)}, not a file; choose a file name")
    if kind == "dir" and not stat.S_ISDIR(mode):
        shown = "a file" if stat.S_ISREG(mode) else _describe(mode)
        raise OutputError(target, f"{what} exists and is {shown}, not a folder; choose a folder")


def _check_writable(target: Path, what: str) -> None:
    """The nearest existing ancestor (or the target folder itself) must be a writable folder."""
    probe = _resolved(target)
    folder = probe if probe.is_dir() else probe.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(target, f"{what} cannot be created: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(target, f"{what} cannot be written: no write permission in {folder}")
    try:  # os.access says yes to root everywhere; a probe file is the real test (read-only mounts, /proc, ...)
        fd, probe_name = tempfile.mkstemp(prefix=".ccmct-write-probe-", dir=folder)
    except OSError as err:
        raise OutputError(target, f"{what} cannot be written in {folder} ({err.strerror})") from None
    os.close(fd)
    os.unlink(probe_name)


def _check_inputs(target: Path, kind: Kind, reads: Iterable, what: str) -> None:
    real = _resolved(target)
    for item in reads:
        if item is None:
            continue
        source = Path(item)
        source_real = _resolved(source)
        if real == source_real:
            raise OutputError(target, f"{what} is also an input of this command ({source}); "
                                      "choose another output path")
        if source_real.is_dir() and _inside(real, source_real):
            raise OutputError(target, f"{what} lies inside {source}, which this command reads; "
                                      "write outside it")
        if kind == "dir" and not source_real.is_dir() and _inside(source_real, real):
            raise OutputError(target, f"{what} holds the input file {source}, which the run could overwrite; "
                                      "choose another folder")


def guard_output(target: str | os.PathLike[str], *, reads: Iterable[str | os.PathLike[str] | None] = (),
                 kind: Kind = "file", what: str = "output") -> Path:
    """Check one output target before any work (see the module docstring for the rule).

    Args:
        target: the file or folder the command will write.
        reads: the command's inputs (files or folders; None entries are ignored).
        kind: ``"file"`` or ``"dir"`` — what the command writes at ``target``.
        what: how the target is named in messages (e.g. ``"--out"``).

    Returns:
        ``target`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: the target must not be written.
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir', got {kind!r}")
    target = Path(target)
    if str(target) == "":
        raise OutputError(target, f"{what} is empty")
    _check_existing(target, kind, what)
    _check_inputs(target, kind, list(reads), what)
    _check_writable(target, what)
    return target


def guard_outputs(targets: Iterable[tuple[str | os.PathLike[str], Kind]], *,
                  reads: Iterable[str | os.PathLike[str] | None] = (), what: str = "output") -> list[Path]:
    """:func:`guard_output` for several targets of one command (e.g. a result file and its ``.parts`` folder)."""
    reads = list(reads)
    return [guard_output(t, reads=reads, kind=k, what=what) for t, k in targets]
