"""A restricted unpickler for the authors' result pickles (no code from the file ever runs).

A pickle names the callables it wants (``GLOBAL`` opcodes) and the unpickler calls them. This unpickler
maps the few names the authors' files use to our own small, side-effect-free functions and refuses
every other name:

- NumPy arrays / dtypes / scalars, under NumPy 1.x (``numpy.core.multiarray``) and 2.x
  (``numpy._core.multiarray``) module paths; only numeric dtypes (bool, integers, floats, complex): object,
  string and structured dtypes are refused, ``numpy.ndarray`` itself is replaced by a numeric-only stand-in,
  and the loaded object is walked once more (:func:`assert_numbers_only`).
- torch tensors as pickled by old torch (``torch._utils._rebuild_tensor_v2`` over a storage serialised with
  ``torch.storage._load_from_bytes``, i.e. a nested legacy ``torch.save`` stream). We decode that stream
  ourselves (magic number, protocol 1001, system info, a storage reference, the storage keys, then raw
  little-endian data) and return NumPy arrays. torch is not imported.
- ``collections.OrderedDict`` (the empty backward-hook dict of a tensor) and ``_codecs.encode`` with
  latin-1 (how protocol-2 pickles store bytes).
"""

from __future__ import annotations

import collections
import io
import pickle
from typing import BinaryIO

import numpy as np

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PROTOCOL = 1001
_TORCH_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for something outside the admitted NumPy / torch-tensor names."""


_NUMERIC_KINDS = "biufc"  # bool, signed / unsigned integer, float, complex


def _check_dtype(dtype: np.dtype) -> np.dtype:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.kind not in _NUMERIC_KINDS:
        raise UnsafePickleError(f"dtype {dtype!r} is not a plain numeric dtype")
    return dtype


def _dtype(spec, align=False, copy=False) -> np.dtype:
    if not isinstance(spec, str):
        raise UnsafePickleError(f"dtype spec {spec!r} is not a string")
    dtype = np.dtype(spec, align=bool(align), copy=bool(copy))
    return _check_dtype(dtype)


MAX_ELEMENTS = 1 << 28
"""Largest array a result pickle may ask for (2 GiB of float64; the authors' biggest slide has ~70,000 rows)."""


def _check_shape(shape) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, int) else shape
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                               for n in shape):
        raise UnsafePickleError(f"array shape {shape!r} is not a tuple of sizes")
    if int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
        raise UnsafePickleError(f"array shape {shape} is larger than a result file can hold")
    return shape


def _plain_dtype(dtype) -> np.dtype:
    """A dtype given as a dtype object made by :func:`_dtype`, a Python number type or a type code."""
    if isinstance(dtype, np.dtype):
        return _check_dtype(dtype)
    if dtype in (float, int, bool) or (isinstance(dtype, str) and len(dtype) <= 4):
        return _check_dtype(np.dtype(dtype))
    if isinstance(dtype, bytes) and len(dtype) <= 4:
        return _check_dtype(np.dtype(dtype.decode("latin-1")))
    raise UnsafePickleError(f"dtype {dtype!r} is not a plain numeric dtype")


class _NumericArray:
    """Stands for ``numpy.ndarray`` inside a pickle: admits only numeric dtypes and bounded shapes.

    ``numpy.ndarray`` itself is never handed to the pickle, so neither ``numpy.ndarray(shape, 'O')`` (a
    REDUCE) nor ``__setstate__`` with an object dtype (a BUILD) can produce an object array.
    """

    def __new__(cls, shape, dtype=float, *args, **kwargs):
        if args or kwargs:
            raise UnsafePickleError("numpy.ndarray is admitted with a shape and a dtype only")
        return np.zeros(_check_shape(shape), _plain_dtype(dtype))


def _reconstruct(subtype, shape, dtype) -> np.ndarray:
    if subtype is not _NumericArray:
        raise UnsafePickleError(f"array subtype {subtype!r} is not numpy.ndarray")
    return np.ndarray.__new__(np.ndarray, _check_shape(shape), _plain_dtype(dtype))


def _scalar(dtype, data=None):
    if not isinstance(data, bytes):
        raise UnsafePickleError("numpy scalar without raw bytes")
    return np.frombuffer(data, dtype=_plain_dtype(dtype), count=1)[0]


def _frombuffer(buffer, dtype, shape, order) -> np.ndarray:
    if not isinstance(buffer, (bytes, bytearray)):
        raise UnsafePickleError("numpy buffer is not bytes")
    array = np.frombuffer(bytes(buffer), dtype=_plain_dtype(dtype))
    return array.reshape(shape, order="F" if order == "F" else "C").copy()


def _codecs_encode(text, encoding="utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("_codecs.encode is admitted only for latin-1 text")
    return text.encode("latin-1")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None) -> np.ndarray:
    """A tensor as a NumPy array (copied; bounds checked against its storage)."""
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise UnsafePickleError("tensor without a decoded storage")
    size, stride, offset = tuple(int(s) for s in size), tuple(int(s) for s in stride), int(storage_offset)
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in (*size, *stride)):
        raise UnsafePickleError(f"bad tensor geometry size={size} stride={stride} offset={offset}")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset - 1
    if last >= len(storage):
        raise UnsafePickleError(f"tensor reaches element {last} of a storage of {len(storage)}")
    if not all(size):
        return np.zeros(size, storage.dtype)
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=[s * storage.itemsize for s in stride])
    return np.array(view)


class _StorageRef:
    def __init__(self, key: str, dtype, numel: int, view):
        self.key, self.dtype, self.numel, self.view = key, dtype, numel, view


class _LegacyTorchUnpickler(pickle.Unpickler):
    """Reads the pickles inside a legacy ``torch.save`` stream of one storage."""

    def find_class(self, module, name):
        if module == "torch" and name in _TORCH_STORAGE_DTYPES:
            return _TORCH_STORAGE_DTYPES[name]
        raise UnsafePickleError(f"torch storage stream asks for {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise UnsafePickleError(f"unexpected persistent id {pid!r}")
        _, dtype, key, _location, numel, view = pid
        if dtype not in _TORCH_STORAGE_DTYPES.values():
            raise UnsafePickleError(f"unknown storage type {dtype!r}")
        return _StorageRef(str(key), np.dtype(dtype), int(numel), view)


def _load_storage_bytes(data: bytes) -> np.ndarray:
    """Decode a legacy ``torch.save`` stream holding one storage into a 1-D NumPy array."""
    if not isinstance(data, bytes):
        raise UnsafePickleError("torch storage payload is not bytes")
    if data[:2] == b"PK":
        raise UnsafePickleError("zip-format torch storages are not supported (only legacy streams)")
    stream = io.BytesIO(data)
    unpickler = _LegacyTorchUnpickler(stream)
    if unpickler.load() != _TORCH_LEGACY_MAGIC or unpickler.load() != _TORCH_LEGACY_PROTOCOL:
        raise UnsafePickleError("not a legacy torch storage stream (magic number / protocol)")
    sys_info = unpickler.load()
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", True)):
        raise UnsafePickleError("big-endian torch storage")
    ref = unpickler.load()
    keys = unpickler.load()
    if not isinstance(ref, _StorageRef) or not isinstance(keys, list):
        raise UnsafePickleError("torch stream does not hold a single storage")
    storages = {}
    for key in keys:
        numel = int.from_bytes(stream.read(8), "little", signed=True)
        if key != ref.key or numel != ref.numel or numel < 0:
            raise UnsafePickleError(f"storage {key!r}: inconsistent size {numel}")
        raw = stream.read(numel * ref.dtype.itemsize)
        if len(raw) != numel * ref.dtype.itemsize:
            raise UnsafePickleError(f"storage {key!r}: truncated data")
        storages[key] = np.frombuffer(raw, dtype=ref.dtype.newbyteorder("<")).astype(ref.dtype)
    if ref.key not in storages:
        raise UnsafePickleError(f"storage {ref.key!r} has no data")
    storage = storages[ref.key]
    if ref.view is not None:
        _view_key, offset, view_size = ref.view
        storage = storage[int(offset):int(offset) + int(view_size)]
    return storage


_ADMITTED = {
    ("numpy", "ndarray"): _NumericArray,
    ("numpy", "dtype"): _dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _codecs_encode,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ADMITTED[(_module, "_reconstruct")] = _reconstruct
    _ADMITTED[(_module, "scalar")] = _scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _ADMITTED[(_module, "_frombuffer")] = _frombuffer


class _ResultsUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ADMITTED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"the pickle asks for {module}.{name}; only NumPy arrays and torch tensors are admitted"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"unexpected persistent id {pid!r}")


def safe_load(handle: BinaryIO):
    """Unpickle from an open binary file, admitting only NumPy arrays/scalars and legacy torch tensors.

    Numbers only: every array that comes out has a numeric dtype, whatever path the pickle takes (checked
    again on the loaded object, :func:`assert_numbers_only`).

    Raises:
        UnsafePickleError: the pickle names anything else (nothing it names is ever called), or an object
            array or a foreign object came out of it.
    """
    payload = _ResultsUnpickler(handle).load()
    assert_numbers_only(payload)
    return payload


_PLAIN = (str, bytes, int, float, bool, type(None), np.generic)


def assert_numbers_only(value, *, _depth: int = 0) -> None:
    """Refuse anything but dicts / lists / tuples of numbers, strings, numeric scalars and numeric arrays."""
    if _depth > 50:
        raise UnsafePickleError("nested deeper than a result file")
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject or value.dtype.kind not in _NUMERIC_KINDS or type(value) is not np.ndarray:
            raise UnsafePickleError(f"an array of dtype {value.dtype} ({type(value).__name__}) came out of the pickle")
        return
    if isinstance(value, np.generic) and value.dtype.kind not in _NUMERIC_KINDS:
        raise UnsafePickleError(f"a {value.dtype} scalar came out of the pickle")
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            assert_numbers_only(key, _depth=_depth + 1)
            assert_numbers_only(item, _depth=_depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            assert_numbers_only(item, _depth=_depth + 1)
        return
    raise UnsafePickleError(f"a {type(value).__name__} came out of the pickle; only numbers and arrays are admitted")
