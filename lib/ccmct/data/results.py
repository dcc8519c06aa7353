"""Detection result files: slide file name -> detections ``(N, 6)`` = x1, y1, x2, y2, class, score.

All coordinates are level-0 pixels; ``class`` is the detector's foreground-class index (0 = mitotic figure in
the authors' files), ``score`` the detection score in [0, 1].

Two on-disk formats, chosen by the file name:

- **primary** (any suffix but ``.p.bz2``; we use ``.npz``): a compressed NumPy archive read with
  ``allow_pickle=False``. Arrays: ``format`` (``"ccmct-results"``), ``version`` (1), ``slides`` (S unicode
  names), ``offsets`` (S + 1 int64; the rows of slide *i* are ``boxes[offsets[i]:offsets[i + 1]]``),
  ``boxes`` (N x 6 float64) and ``metadata`` (a JSON string, ``{}`` when empty). A slide with no detections
  keeps its entry (zero rows), which matters for the authors' F1 (a slide with an empty result list adds no
  false negatives).
- **authors'** (``.p.bz2``): a bz2-compressed pickle of ``{filename: [array([x1, y1, x2, y2, class, score]),
  ...]}`` as written by the authors' ``Inference-RetinaNet.py``. It is read through a restricted
  unpickler (:mod:`ccmct.data._safe_pickle`) that admits NumPy arrays, NumPy scalars and legacy torch
  tensors only; torch is not needed and no code from the file runs.

Naming convention for our own files: :func:`result_filename`.
"""

from __future__ import annotations

import bz2
import contextlib
import json
import os
import pickle
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ccmct import jsonable
from ccmct.errors import ResultsError
from ccmct.atomicio import atomic_write

AUTHORS_SUFFIX = ".p.bz2"
PRIMARY_SUFFIX = ".npz"
FORMAT_NAME = "ccmct-results"
FORMAT_VERSION = 1
N_COLUMNS = 6
COLUMNS = ("x1", "y1", "x2", "y2", "class", "score")
SPLITS = ("train", "test")


def result_filename(variant: str, split: str, *, stage: int = 1) -> str:
    """Our file name for a model's results on one split.

    Args:
        variant: label set the model was trained on (``MEL``, ``HEAEL``, ``ODAEL``, or a subset name).
        split: ``'train'`` (the training slides, used to choose the threshold) or ``'test'``.
        stage: 1 = RetinaNet scores, 2 = scores replaced by the second-stage cell classifier.

    Returns:
        ``RetinaNet-<variant>-<split>.npz`` or ``2ndstage_RetinaNet-<variant>-<split>.npz``.

    Example:
        >>> result_filename("ODAEL", "test", stage=2)
        '2ndstage_RetinaNet-ODAEL-test.npz'
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")
    prefix = "2ndstage_" if stage == 2 else ""
    return f"{prefix}RetinaNet-{variant}-{split}{PRIMARY_SUFFIX}"


def is_authors_format(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` names an authors' ``.p.bz2`` pickle."""
    return str(path).endswith(AUTHORS_SUFFIX)


def as_detections(array, *, path: str | os.PathLike[str] = "<memory>", slide: str = "?") -> np.ndarray:
    """One slide's detections as a C-contiguous float64 ``(N, 6)`` array, checked (:func:`check_detections`).

    Raises:
        ResultsError: the data is not N x 6 finite numbers with x1 <= x2, y1 <= y2 and scores in [0, 1]
            (naming ``path`` and ``slide``).
    """
    if isinstance(array, np.ndarray) and array.dtype.hasobject:
        raise ResultsError(path, f"slide {slide!r}: detections are an object array, not numbers")
    try:
        boxes = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as err:
        raise ResultsError(path, f"slide {slide!r}: detections are not numeric ({err})") from None
    if boxes.size == 0:
        return np.zeros((0, N_COLUMNS), np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != N_COLUMNS:
        raise ResultsError(path, f"slide {slide!r}: expected N x {N_COLUMNS} detections "
                                 f"[x1, y1, x2, y2, class, score], got shape {boxes.shape}")
    check_detections(boxes, path=path, slide=slide)
    return np.ascontiguousarray(boxes)


def check_detections(boxes: np.ndarray, *, path: str | os.PathLike[str] = "<memory>", slide: str = "?",
                     size_wh: tuple[int, int] | None = None) -> None:
    """Refuse detections a result file cannot hold (vectorised; names the first bad row).

    Args:
        boxes: (N, 6) float64 [x1, y1, x2, y2, class, score], level-0 px.
        path, slide: named in the message.
        size_wh: the slide's level-0 size (px), when the slide is available: every box centre must lie on
            the slide (boxes themselves may reach past the edge, as the detector does not clip them).

    Raises:
        ResultsError: a non-finite value, x2 < x1 or y2 < y1, a score outside [0, 1], or a box centre
            outside the slide.
    """
    if not len(boxes):
        return
    checks = [
        (~np.isfinite(boxes).all(axis=1), "a non-finite value (NaN or infinity)"),
        ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]), "x2 < x1 or y2 < y1"),
        ((boxes[:, 5] < 0) | (boxes[:, 5] > 1), "a score outside [0, 1]"),
    ]
    if size_wh is not None:
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        width, height = size_wh
        checks.append(((cx < 0) | (cy < 0) | (cx > width) | (cy > height),
                       f"a box centre outside the slide ({width} x {height} px)"))
    for bad, what in checks:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ResultsError(path, f"slide {slide!r}: {int(bad.sum())} detection(s) with {what}, first row "
                                     f"{row}: {np.array2string(boxes[row], precision=2, separator=', ')}")


def check_within_slides(path: str | os.PathLike[str], results: Mapping[str, np.ndarray],
                        sizes_wh: Mapping[str, tuple[int, int]]) -> None:
    """Every slide's box centres on its slide (:func:`check_detections` with ``size_wh``).

    Args:
        path: the result file (named in the message).
        results: slide -> (N, 6) detections.
        sizes_wh: slide -> level-0 (width, height) px for the slides that are available (others skipped).

    Raises:
        ResultsError: the first slide with a box centre outside it.
    """
    for name, boxes in results.items():
        if name in sizes_wh:
            check_detections(boxes, path=path, slide=name, size_wh=tuple(sizes_wh[name]))


def read_results(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a result file (either format, chosen by suffix).

    Args:
        path: ``*.p.bz2`` (authors' pickle, read safely) or our primary ``*.npz``.

    Returns:
        Slide file name -> float64 array (N, 6) [x1, y1, x2, y2, class, score], level-0 px; slides without
        detections map to a (0, 6) array. Order of slides as stored.

    Raises:
        ResultsError: missing, unreadable, unsafe (a pickle that wants to run code) or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsError(path, "is a folder, not a result file" if path.is_dir() else "result file not found")
    if is_authors_format(path):
        return _read_authors(path)
    return _read_primary(path)


def read_metadata(path: str | os.PathLike[str]) -> dict:
    """The ``metadata`` dict stored in a primary-format file (``{}`` for the authors' files).

    Raises:
        ResultsError: missing or unreadable file, or metadata that is not a JSON object.
    """
    path = Path(path)
    if is_authors_format(path):
        return {}
    if not path.is_file():
        raise ResultsError(path, "result file not found")
    with _reading(path):
        with _open_npz(path) as npz:
            if "metadata" not in npz.files:
                return {}
            document = json.loads(str(_member(npz, "metadata")))
    if not isinstance(document, dict):
        raise ResultsError(path, "metadata is not a JSON object")
    return document


def write_results(path: str | os.PathLike[str], results: Mapping[str, np.ndarray], *,
                  metadata: Mapping | None = None) -> Path:
    """Write results atomically (temporary file in the same folder + ``os.replace``).

    Args:
        path: target; ``*.p.bz2`` writes the authors' pickle dict (a list of 6-element float64 arrays per
            slide, readable by their code), any other name the primary npz format.
        results: slide file name -> (N, 6) detections [x1, y1, x2, y2, class, score], level-0 px.
        metadata: JSON-serialisable information (model, threshold, ...) kept in the primary format only.

    Returns:
        The path written.
    """
    path = Path(path)
    clean = {str(name): as_detections(boxes, path=path, slide=str(name)) for name, boxes in results.items()}
    if is_authors_format(path):
        return atomic_write(path, lambda handle: _write_authors(handle, clean))
    return atomic_write(path, lambda handle: _write_primary(handle, clean, dict(metadata or {})))


def detection_counts(results: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Slide file name -> number of detections."""
    return {name: int(len(boxes)) for name, boxes in results.items()}


# ---------------------------------------------------------------------------------------------- primary
def _write_primary(handle, results: dict[str, np.ndarray], metadata: dict) -> None:
    names = list(results)
    lengths = [len(results[name]) for name in names]
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
    boxes = (np.concatenate([results[n] for n in names]) if names else np.zeros((0, N_COLUMNS)))
    np.savez_compressed(
        handle,
        format=np.array(FORMAT_NAME),
        version=np.array(FORMAT_VERSION, dtype=np.int64),
        slides=np.array(names, dtype=np.str_).reshape(len(names)),
        offsets=offsets,
        boxes=boxes.astype(np.float64).reshape(-1, N_COLUMNS),
        metadata=np.array(jsonable.dumps(metadata)),  # strict JSON: NaN -> null
    )


_DAMAGE = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, TypeError, IndexError,
           OverflowError, MemoryError)
"""What NumPy / zipfile raise for a truncated, non-zip, pickled (object-dtype) or otherwise damaged .npz."""


@contextlib.contextmanager
def _reading(path: Path):
    """Turn any low-level read failure of a primary-format file into one :class:`ResultsError` line."""
    try:
        yield
    except ResultsError:
        raise
    except _DAMAGE as err:
        raise ResultsError(path, f"not a ccmct result file (.npz): {_damage_reason(path, err)}") from None


def _damage_reason(path: Path, err: BaseException) -> str:
    """A user's description of why NumPy could not read ``path`` (never NumPy's allow_pickle advice)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as os_err:
        return os_err.strerror or type(os_err).__name__
    if not head:
        return "empty file (0 bytes)"
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):
        return f"not a zip archive (authors' pickles must end in {AUTHORS_SUFFIX})"
    text = " ".join(str(err).split())
    if "pickle" in text.lower() or "object" in text.lower():
        return "it holds an object (pickled) array; only numeric arrays are read"
    if isinstance(err, (zipfile.BadZipFile, EOFError, zlib.error)):
        return f"truncated or damaged zip archive ({type(err).__name__}: {text[:120]})"
    return f"{type(err).__name__}: {text[:160]}"


def _open_npz(path: Path):
    return np.load(path, allow_pickle=False)


def _member(npz, name: str) -> np.ndarray:
    """One array of the archive; object (pickled) arrays are refused by ``allow_pickle=False``."""
    array = npz[name]
    if array.dtype.hasobject:
        raise ValueError(f"{name!r} is an object array")
    return array


def _read_primary(path: Path) -> dict[str, np.ndarray]:
    with _reading(path):
        with _open_npz(path) as npz:
            missing = {"format", "version", "slides", "offsets", "boxes"} - set(npz.files)
            if missing or str(_member(npz, "format")) != FORMAT_NAME:
                raise ResultsError(path, f"not a ccmct result file (missing {sorted(missing) or 'format tag'})")
            version = _member(npz, "version")
            if version.shape != () or not np.issubdtype(version.dtype, np.integer) or int(version) != FORMAT_VERSION:
                raise ResultsError(path, f"result format version {version!r}; this ccmct reads version "
                                         f"{FORMAT_VERSION}")
            slides, offsets, boxes = (_member(npz, "slides"), _member(npz, "offsets"), _member(npz, "boxes"))
        if (slides.ndim != 1 or not np.issubdtype(slides.dtype, np.str_)
                or not np.issubdtype(offsets.dtype, np.integer) or not np.issubdtype(boxes.dtype, np.number)):
            raise ResultsError(path, "arrays of the wrong type (slides must be text, offsets integers, boxes "
                                     "numbers)")
        if (offsets.shape != (len(slides) + 1,) or offsets[0] != 0 or offsets[-1] != len(boxes)
                or np.any(np.diff(offsets) < 0) or boxes.ndim != 2 or boxes.shape[1] != N_COLUMNS):
            raise ResultsError(path, "inconsistent arrays (slides/offsets/boxes do not fit together)")
        if len(set(slides.tolist())) != len(slides):
            raise ResultsError(path, "a slide is listed twice")
        return {_slide_name(path, name): as_detections(boxes[offsets[i]:offsets[i + 1]], path=path, slide=str(name))
                for i, name in enumerate(slides)}


def _slide_name(path: Path, name) -> str:
    """A slide key is a plain file name (it is joined to a slide folder later): no folders, no ``..``."""
    name = str(name)
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ResultsError(path, f"slide name {name!r} is not a plain file name")
    return name


# ---------------------------------------------------------------------------------------------- authors'
def _write_authors(handle, results: dict[str, np.ndarray]) -> None:
    payload = {name: [row.copy() for row in boxes] for name, boxes in results.items()}
    with bz2.BZ2File(handle, "wb") as out:
        pickle.dump(payload, out, protocol=3)


def _read_authors(path: Path) -> dict[str, np.ndarray]:
    from ccmct.data._safe_pickle import UnsafePickleError, safe_load

    try:
        with bz2.open(path, "rb") as handle:
            payload = safe_load(handle)
    except UnsafePickleError as err:
        raise ResultsError(path, f"refused to load: {err}") from err
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            OverflowError, MemoryError, RecursionError) as err:
        detail = " ".join(str(err).split())[:160]
        raise ResultsError(path, f"not a readable bz2 result pickle ({type(err).__name__}: {detail})") from None
    if not isinstance(payload, dict):
        raise ResultsError(path, f"expected a dict slide -> detections, got {type(payload).__name__}")
    return {_slide_name(path, name): _authors_slide(path, str(name), rows) for name, rows in payload.items()}


def _authors_slide(path: Path, name: str, rows) -> np.ndarray:
    """Rows as the authors stored them: an array, or a list of 6-element arrays / lists of scalars."""
    if not isinstance(rows, (list, tuple, np.ndarray)):
        raise ResultsError(path, f"slide {name!r}: expected a list of detections, got {type(rows).__name__}")
    return as_detections(rows, path=path, slide=name)
