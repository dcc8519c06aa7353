"""Model directories: ``weights.pt`` (a state dict, loadable with ``weights_only=True``) + ``config.json``.

``config.json`` = ``{"format_version": 1, "kind": "retinanet", "ccmct_version": ..., "config": {...}}``
where ``config`` is :meth:`DetectorConfig.to_dict` (architecture, anchors, GT box size, tile size,
normalisation, classes, preset, variant, score / NMS thresholds). Never a pickled Learner.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from ccmct import __version__
from ccmct.errors import ModelError

__all__ = ["CONFIG_FILE", "FORMAT_VERSION", "WEIGHTS_FILE", "load_model_dir", "save_model_dir"]

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.json"


def _kinds() -> dict:
    """kind -> (config class, model factory); imported lazily."""
    from ccmct.models.retinanet import DetectorConfig, RetinaNet

    kinds = {"retinanet": (DetectorConfig, RetinaNet)}
    try:  # the second-stage classifier, when present, registers the same way
        from ccmct.models import classifier

        kinds.update(getattr(classifier, "MODEL_KINDS", {}))
    except ImportError:
        pass
    return kinds


def _kind_of(config) -> str:
    for kind, (config_cls, _) in _kinds().items():
        if isinstance(config, config_cls):
            return kind
    msg = f"no model kind for config type {type(config).__name__}"
    raise TypeError(msg)


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
    document = {"format_version": FORMAT_VERSION, "kind": _kind_of(config), "ccmct_version": __version__,
                "config": config.to_dict()}
    _atomic_write(directory / WEIGHTS_FILE, lambda f: torch.save(state, f))
    _atomic_write(directory / CONFIG_FILE,
                  lambda f: f.write(json.dumps(document, indent=1).encode("utf-8")))
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


def load_model_dir(directory: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"):
    """Rebuild the exact model of a model directory.

    Returns:
        ``(model, config)``; the model is in eval mode on ``map_location``.

    Raises:
        ModelError: a missing / unreadable file, another format version, an unknown kind, or weights
            that do not fit the architecture.
    """
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ModelError(weights_path, "missing; not a ccmct model directory (expected config.json + weights.pt)")
    document = read_config_document(directory)
    kinds = _kinds()
    if document.get("kind") not in kinds:
        raise ModelError(config_path, f"unknown model kind {document.get('kind')!r}; expected {sorted(kinds)}")
    config_cls, factory = kinds[document["kind"]]
    try:
        config = config_cls.from_dict(document.get("config", {}))
    except (TypeError, ValueError) as err:
        raise ModelError(config_path, f"invalid config ({err})") from err
    model = factory(config)
    try:
        state = torch.load(weights_path, map_location=map_location, weights_only=True)
        model.load_state_dict(state)
    except Exception as err:  # noqa: BLE001 - unpickling / shape errors come in many types
        raise ModelError(weights_path, f"weights do not load into this architecture ({err})") from err
    return model.to(map_location).eval(), config


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
