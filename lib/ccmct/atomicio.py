"""Atomic writes: the one helper every ccmct writer uses (docs/reliability.md, "Writes are atomic").

A file appears at its final name complete or not at all: the content is written to a temporary file *in the
same folder* (a unique name from :func:`tempfile.mkstemp`, so concurrent writers never share one), given ordinary permissions (0644; ``mkstemp`` creates 0600), and moved into place with :func:`os.replace`
(atomic on POSIX and Windows within one file system). On any error — including ``KeyboardInterrupt`` — the
temporary file is removed and the destination is left as it was.

Writers that want a path, not bytes (``torch.save``, ``np.savez``, ``tifffile.TiffWriter``, ``sqlite3``,
``DataFrame.to_csv``, ``Figure.savefig``, ``shutil.copyfile``) use :func:`atomic_path`::

    with atomic_path(out / "weights.pt") as tmp:
        torch.save(state, tmp)

Strict JSON (no NaN/Infinity) comes from :mod:`ccmct.jsonable`; :func:`atomic_write_json` uses it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from ccmct import jsonable

__all__ = ["FILE_MODE", "atomic_path", "atomic_write", "atomic_write_bytes", "atomic_write_json",
           "atomic_write_text"]

FILE_MODE = 0o644
"""Permissions of every file ccmct writes (what a plain ``open(..., "w")`` gives under the usual umask)."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, mkdir: bool = True, suffix: str | None = None) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; on clean exit it replaces ``path`` atomically.

    Args:
        path: the destination file.
        mkdir: create the destination's folder first.
        suffix: ending of the temporary name; by default ``".tmp"`` + the destination's own extension
            (``.r.npz.k3j2.tmp.npz``), because some writers choose the format from it or append it
            (``np.savez`` adds ``.npz``, ``Figure.savefig`` and PIL pick the format from it).

    The temporary file exists (empty) when the block starts; writers that refuse an existing file may delete it
    first. If the block raises, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".tmp{path.suffix}" if suffix is None else suffix
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object], *,
                 mkdir: bool = True) -> Path:
    """Call ``write(handle)`` on a binary handle of a temporary file, then move it to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path, mkdir=mkdir) as tmp:
        with open(tmp, "wb") as handle:
            write(handle)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mkdir: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda handle: handle.write(data), mkdir=mkdir)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8",
                      mkdir: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8 unless told otherwise)."""
    return atomic_write_bytes(path, text.encode(encoding), mkdir=mkdir)


def atomic_write_json(path: str | os.PathLike[str], value, *, indent: int | None = 1, mkdir: bool = True,
                      **kwargs) -> Path:
    """Write ``value`` as strict JSON (:func:`ccmct.jsonable.dumps`: NaN/inf -> null) to ``path`` atomically."""
    return atomic_write_text(path, jsonable.dumps(value, indent=indent, **kwargs) + "\n", mkdir=mkdir)
