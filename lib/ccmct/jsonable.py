"""JSON encoding of the values ccmct puts in documents (numpy scalars and arrays, paths), always strict JSON.

Every JSON document ccmct writes (``--json`` output, GeoJSON / COCO exports, ``summary.json``, metadata) is
strict JSON (RFC 8259): ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON, and many readers (browsers,
``jq``, QuPath) reject them. By design a non-finite float becomes ``null`` ("no value": an undefined F1,
a missing area), and :func:`dumps` / :func:`dump` then encode with ``allow_nan=False`` so that nothing
non-finite can slip through. See docs/reliability.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import numpy as np

__all__ = ["dump", "dumps", "json_default", "strict"]


def json_default(value):
    """``default=`` hook for :func:`json.dump`: numpy scalars/arrays -> Python, paths -> str."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def strict(value):
    """A copy of ``value`` that strict JSON can hold: non-finite floats -> None, numpy/paths converted.

    Dict keys become strings the way :mod:`json` does it (numpy integer keys included).
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {_key(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray, Path)):
        return strict(json_default(value))
    if isinstance(value, (set, frozenset)):
        return [strict(v) for v in sorted(value, key=repr)]
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _key(key):
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, float) and not math.isfinite(key):
        return str(key)
    return key if isinstance(key, (str, int, float, bool)) or key is None else str(key)


def dumps(value, **kwargs) -> str:
    """Strict JSON text of ``value`` (:func:`strict`, then ``json.dumps(allow_nan=False)``)."""
    return json.dumps(strict(value), allow_nan=False, **kwargs)


def dump(value, handle: IO[str], **kwargs) -> None:
    """Write strict JSON of ``value`` to an open text file."""
    json.dump(strict(value), handle, allow_nan=False, **kwargs)
