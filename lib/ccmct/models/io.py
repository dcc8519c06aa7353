"""Model directories: ``weights.pt`` (a state dict, loadable with ``weights_only=True``) + ``config.json``.

``config.json`` = ``{"format_version": 1, "kind": "retinanet", "ccmct_version": ..., "config": {...}}``
where ``config`` is :meth:`DetectorConfig.to_dict` (architecture, anchors, GT box size, tile size,
normalisation, classes, preset, variant, score / NMS thresholds). Never a pickled Learner.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ccmct import __version__, jsonable
from ccmct.errors import ModelError
from ccmct.atomicio import atomic_write
from ccmct.models.registry import MODEL_KINDS, kind_of_config
from ccmct.config.units import LEGACY_MPP

__all__ = ["CONFIG_FILE", "FORMAT_VERSION", "WEIGHTS_FILE", "load_model_dir", "model_fingerprint", "save_model_dir"]

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.json"


def save_model_dir(directory: str | os.PathLike[str], model: nn.Module, config) -> Path:
    """Write a model directory (atomically per file; the folder is created).

    Args:
        directory: output folder.
        model: the network (a DDP / compiled wrapper is unwrapped).
        config: its config dataclass (e.g. :class:`ccmct.models.retinanet.DetectorConfig`).

    Returns:
        The directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    document = {"format_version": FORMAT_VERSION, "kind": kind_of_config(config), "ccmct_version": __version__,
                "config": config.to_dict()}
    _atomic_write(directory / WEIGHTS_FILE, lambda f: torch.save(state, f))
    _atomic_write(directory / CONFIG_FILE,
                  lambda f: f.write(jsonable.dumps(document, indent=1).encode("utf-8")))
    return directory


def read_config_document(directory: str | os.PathLike[str], *, kind: str | None = None) -> dict:
    """The parsed ``config.json`` of a model directory, checked for format version (and ``kind`` if given).

    Raises:
        ModelError: missing or unreadable file, another format version, another kind.
    """
    config_path = Path(directory) / CONFIG_FILE
    if not config_path.is_file():
        raise ModelError(config_path, "missing; not a ccmct model directory (expected config.json + weights.pt)")
    try:
        document = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(config_path, f"not valid JSON ({err})") from err
    if not isinstance(document, dict):
        raise ModelError(config_path, "not a model config (expected a JSON object)")
    if kind is not None and document.get("kind") != kind:
        raise ModelError(config_path, f"model kind {document.get('kind')!r}, expected {kind!r}")
    if document.get("format_version") != FORMAT_VERSION:
        raise ModelError(config_path, f"model format version {document.get('format_version')!r}, "
                                      f"this ccmct reads {FORMAT_VERSION}")
    return document


KIND_NAMES = {name: kind.description for name, kind in MODEL_KINDS.items()}
"""kind -> how messages name it (from :data:`ccmct.models.registry.MODEL_KINDS`)."""


def load_model_dir(directory: str | os.PathLike[str], *, map_location: str | torch.device = "cpu",
                   kind: str | tuple[str, ...] | None = None):
    """Rebuild the exact model of a model directory.

    Args:
        directory: the model directory.
        map_location: device of the returned model.
        kind: the kind the caller needs (``"retinanet"``, ``"cell_classifier"``), or a tuple of acceptable
            kinds (e.g. :func:`ccmct.models.registry.detector_kinds`); another kind is refused with a message
            naming both (e.g. a classifier given to ``ccmct infer``).

    Returns:
        ``(model, config)``; the model is in eval mode on ``map_location``.

    Raises:
        ModelError: a missing / unreadable / empty file, another format version, an unknown or unwanted kind,
            a ``config.json`` with a missing or mistyped key (no silent defaults), or weights that do not fit
            the architecture (naming the first mismatching key and the counts).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelError(directory, "model directory not found" if not directory.exists()
                         else "is a file; a model directory (config.json + weights.pt) is expected")
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    document = read_config_document(directory)
    found = document.get("kind")
    if found not in MODEL_KINDS:
        raise ModelError(config_path, f"unknown model kind {found!r}; expected one of {sorted(MODEL_KINDS)}")
    wanted = (kind,) if isinstance(kind, str) else tuple(kind or ())
    if wanted and found not in wanted:
        raise ModelError(directory, f"is {KIND_NAMES.get(found, found)}; this command needs "
                                    f"{' or '.join(KIND_NAMES.get(k, k) for k in wanted)}")
    if not weights_path.is_file():
        raise ModelError(weights_path, "missing; not a ccmct model directory (expected config.json + weights.pt)")
    config_cls, factory = MODEL_KINDS[found].config_class(), MODEL_KINDS[found].build
    raw = document.get("config")
    if not isinstance(raw, dict):
        raise ModelError(config_path, "has no 'config' object")
    raw = with_recorded_mpp(config_path, config_cls, raw)
    check_config_keys(config_path, config_cls, raw)
    try:
        config = config_cls.from_dict(raw)
        model = factory(config)
    except (TypeError, ValueError, KeyError, RuntimeError) as err:
        raise ModelError(config_path, f"invalid config ({err})") from err
    load_weights(weights_path, model, map_location=map_location)
    return model.to(map_location).eval(), config


def with_recorded_mpp(config_path: Path, config_cls, raw: dict) -> dict:
    """``raw`` with its ``mpp`` (µm/px trained at); a config written before ccmct recorded it gets
    :data:`ccmct.config.units.LEGACY_MPP` (the paper's 0.25) and a one-line note (docs/contracts.md)."""
    if "mpp" in raw or "mpp" not in {f.name for f in dataclasses.fields(config_cls)}:
        return raw
    warnings.warn(f"{config_path}: records no µm/px (written before model configs carried 'mpp'); "
                  f"assuming it was trained at {LEGACY_MPP:g} µm/px", stacklevel=3)
    return {**raw, "mpp": LEGACY_MPP}


def check_config_keys(config_path: Path, config_cls, raw: dict) -> None:
    """Every field of the config dataclass present in ``raw`` with a value of the field's type.

    Defaults are never filled in silently: a config.json that lost a key could otherwise build another
    architecture than the one its weights were trained with.

    Raises:
        ModelError: the first missing key (and how many are missing), or a value of the wrong type.
    """
    names = [f.name for f in dataclasses.fields(config_cls)]
    missing = [name for name in names if name not in raw]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ModelError(config_path, f"config key {missing[0]!r} is missing{more}; refusing to assume a default")
    for f in dataclasses.fields(config_cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        problem = _type_problem(raw[f.name], default)
        if problem:
            raise ModelError(config_path, f"config key {f.name!r}: {problem}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _type_problem(value, default) -> str | None:
    """Why ``value`` cannot stand where ``default``'s type is expected (None when it can)."""
    if default is None:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else f"expected true/false, got {value!r}"
    if isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"expected a whole number, got {value!r}"
    if isinstance(default, float):
        return None if _is_number(value) else f"expected a finite number, got {value!r}"
    if isinstance(default, str):
        return None if isinstance(value, str) else f"expected a string, got {value!r}"
    if isinstance(default, tuple):
        if not isinstance(value, list):
            return f"expected a list, got {value!r}"
        if all(_is_number(d) for d in default) and not all(_is_number(v) for v in value):
            return f"expected a list of finite numbers, got {value!r}"
    return None


def load_weights(weights_path: Path, model: nn.Module, *, map_location: str | torch.device = "cpu") -> None:
    """Load a ``weights.pt`` state dict (``weights_only=True``) into ``model``, strictly.

    Raises:
        ModelError: empty or unreadable file, not a state dict, or keys / shapes that do not fit (one line:
            the first mismatching key and the counts; never torch's long key lists or its advice to
            disable ``weights_only``).
    """
    size = weights_path.stat().st_size
    if size == 0:
        raise ModelError(weights_path, "empty file (0 bytes); the model was not saved completely")
    try:
        state = torch.load(weights_path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
        raise ModelError(weights_path, f"not a loadable state dict ({_first_line(err)})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(weights_path, f"expected a state dict of tensors, found {type(state).__name__}")
    problem = state_dict_mismatch(model.state_dict(), state)
    if problem:
        raise ModelError(weights_path, f"weights do not fit the architecture in config.json: {problem}")
    model.load_state_dict(state)


def state_dict_mismatch(expected: dict, found: dict) -> str | None:
    """One line describing how ``found`` differs from ``expected`` (keys, then shapes), or None."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing or unexpected:
        first = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        return (f"{first} ({len(missing)} key(s) missing, {len(unexpected)} unexpected, "
                f"{len(expected)} expected)")
    for key, tensor in expected.items():
        if tuple(found[key].shape) != tuple(tensor.shape):
            n_bad = sum(tuple(found[k].shape) != tuple(v.shape) for k, v in expected.items())
            return (f"{key!r} has shape {tuple(found[key].shape)}, the architecture needs {tuple(tensor.shape)} "
                    f"({n_bad} of {len(expected)} tensors differ)")
    return None


def _first_line(err: BaseException) -> str:
    """The first line of an exception's message without torch's ``weights_only`` advice."""
    text = str(err).strip().splitlines()
    lines = [line for line in text if line.strip() and "weights_only" not in line]
    head = lines[0] if lines else type(err).__name__
    if "WeightsUnpickler error:" in str(err):
        head = str(err).split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
        head = f"refused by the safe loader: {head}"
    return f"{type(err).__name__}: {head[:200]}"


def _atomic_write(path: Path, write) -> None:
    atomic_write(path, write, mkdir=False)


def model_fingerprint(model_dir: str | os.PathLike[str]) -> str:
    """SHA-256 of a model directory's ``config.json`` and ``weights.pt`` (hex): the identity result files and
    models trained from this one record, so that a model trained again makes what was made from it stale."""
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        with open(Path(model_dir) / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
