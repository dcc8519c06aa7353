"""JSON encoding of the values ccmct puts in documents (numpy scalars and arrays, paths)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def json_default(value):
    """``default=`` hook for :func:`json.dump`: numpy scalars/arrays -> Python, paths -> str."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
