"""The model-kind registry: one explicit table from the ``kind`` written in a model directory's ``config.json``
to the config dataclass and the network builder (docs/design.md, "Model registry"; docs/contracts.md).

Adding a model means one module and one row here (a tile detector, role ``"detector"``, follows the interface
of :mod:`ccmct.models.detector`; training and inference take any kind of that role); nothing registers itself
on import, and a missing optional dependency is an error when that kind is used, never a silently shorter table. Entries name their config class
and builder as ``"module:attribute"`` and are resolved on first use, so :mod:`ccmct.models.io` imports no model
module at import time (no circle between the model modules and their I/O).

Example:
    >>> model_kind("retinanet").description
    'a RetinaNet detector (`ccmct train`)'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ccmct.errors import CcmctError

__all__ = ["MODEL_KINDS", "ModelKind", "UnknownModelKind", "detector_kinds", "kind_of_config", "model_kind"]


class UnknownModelKind(CcmctError):
    """A kind name that is not in :data:`MODEL_KINDS`."""


def _resolve(reference: str) -> Any:
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class ModelKind:
    """One row of the registry.

    Attributes:
        name: the ``kind`` string of ``config.json``.
        description: how messages name a model of this kind (``"... is a cell classifier; this command needs ..."``).
        config: ``"module:Class"`` of the config dataclass (``to_dict`` / ``from_dict``).
        builder: ``"module:callable"`` building the network from a config (detectors also take
            ``backbone_weights=``).
        role: ``"detector"`` (a tile detector: ``ccmct train`` / ``ccmct infer``), ``"classifier"`` (stage 2)
            or ``"candidate"`` (fast mode's screening model).
    """

    name: str
    description: str
    config: str
    builder: str
    role: str

    def config_class(self) -> type:
        """The config dataclass (imports its module)."""
        return _resolve(self.config)

    def build(self, config, **kwargs):
        """A freshly initialised network for ``config`` (``kwargs`` go to the builder, e.g. ``backbone_weights``)."""
        return _resolve(self.builder)(config, **kwargs)


MODEL_KINDS: dict[str, ModelKind] = {kind.name: kind for kind in (
    ModelKind("retinanet", "a RetinaNet detector (`ccmct train`)",
              "ccmct.models.retinanet:DetectorConfig", "ccmct.models.retinanet:RetinaNet", "detector"),
    ModelKind("fcos", "a tiny FCOS detector (`ccmct train --model fcos`)",
              "ccmct.models.fcos:FCOSConfig", "ccmct.models.fcos:TinyFCOS", "detector"),
    ModelKind("cell_classifier", "a cell classifier (`ccmct train-classifier`)",
              "ccmct.models.classifier:ClassifierConfig", "ccmct.models.classifier:classifier_from_config",
              "classifier"),
    ModelKind("candidate", "a fast-mode candidate model (`ccmct train --model candidate`)",
              "ccmct.models.candidate:CandidateConfig", "ccmct.models.candidate:CandidateNet", "candidate"),
)}
"""kind -> :class:`ModelKind`: every model ccmct writes and reads."""


def model_kind(name: str) -> ModelKind:
    """The registry row of ``name``.

    Raises:
        UnknownModelKind: ``name`` is not registered (the message lists the known kinds).
    """
    try:
        return MODEL_KINDS[name]
    except (KeyError, TypeError):
        raise UnknownModelKind(f"unknown model kind {name!r}; expected one of {sorted(MODEL_KINDS)}") from None


def detector_kinds() -> tuple[str, ...]:
    """Names of the tile-detector kinds (role ``"detector"``), in table order (``"retinanet"`` first)."""
    return tuple(name for name, kind in MODEL_KINDS.items() if kind.role == "detector")


def kind_of_config(config) -> str:
    """The kind whose config class ``config`` is an instance of.

    Raises:
        TypeError: no registered kind has this config type (a programming error, not bad input).
    """
    for kind in MODEL_KINDS.values():
        if isinstance(config, kind.config_class()):
            return kind.name
    raise TypeError(f"no model kind for config type {type(config).__name__}")
