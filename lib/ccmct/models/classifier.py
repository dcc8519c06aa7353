"""The second-stage cell classifier: ResNet-18 body + fastai head, its configuration and model directory.

The network is what fastai's ``vision_learner(dls, resnet18, n_out=4)`` builds (torchvision ResNet-18 cut
before its pooling layer, fastai's concat-pool head), so a model trained with fastai and one rebuilt here for
inference share one state dict. A model directory holds::

    weights.pt    the state dict (load with torch.load(weights_only=True))
    config.json   {"format_version": 1, "kind": "cell_classifier", "ccmct_version": ..., "config": {...}}
                  config = architecture, class order (ids, names, Table 3 abbreviations), patch size,
                  normalisation mean/std, preset, variant, training summary (ClassifierConfig.to_dict)

written and read through :mod:`ccmct.models.io` (kind listed in :data:`ccmct.models.registry.MODEL_KINDS`).
Never a pickled Learner.

Example:
    >>> model = build_classifier(4)                                 # random init
    >>> model(torch.zeros(2, 3, 128, 128)).shape
    torch.Size([2, 4])
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ccmct.jsonable import json_default
from ccmct.errors import ModelError
from ccmct.models.io import CONFIG_FILE, load_model_dir, read_config_document, save_model_dir
from ccmct.precision import autocast
from ccmct.config.units import PAPER_MPP

KIND = "cell_classifier"
ARCHITECTURE = "resnet18"


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything needed to use a trained cell classifier (written as ``config.json``).

    Attributes:
        class_ids: database class id per output index (order MF, LA, Gr, TC).
        class_names: class name per output index.
        class_short: Table 3 abbreviation per output index.
        patch_size_px: side of the level-0 input patch, px.
        mean, std: per-channel normalisation of [0, 1] RGB.
        architecture: backbone name (``resnet18``).
        preset: training preset name.
        variant: label set it was trained on (MEL / HEAEL / ODAEL).
        training: free-form summary (validation rule, accuracy, seed, ...).
        mpp: µm per level-0 px of the slides it was trained at (:mod:`ccmct.config.units`); configs written
            without it are read as 0.25 (docs/contracts.md).
    """

    class_ids: tuple[int, ...]
    class_names: tuple[str, ...]
    class_short: tuple[str, ...]
    patch_size_px: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    architecture: str = ARCHITECTURE
    preset: str | None = None
    variant: str | None = None
    training: dict = field(default_factory=dict)
    mpp: float = PAPER_MPP

    @property
    def n_classes(self) -> int:
        return len(self.class_ids)

    def index_of(self, class_id: int) -> int:
        """Output index of a database class id.

        Raises:
            ModelError: the classifier has no output for that class.
        """
        if class_id not in self.class_ids:
            raise ModelError(Path("config.json"), f"the classifier has no output for class id {class_id} "
                                                f"(it knows {list(self.class_ids)})")
        return self.class_ids.index(class_id)

    def to_dict(self) -> dict:
        """JSON-ready dict (the ``config`` entry of ``config.json``)."""
        document = asdict(self)
        return json.loads(json.dumps(document, default=json_default))

    @classmethod
    def from_dict(cls, document: dict) -> "ClassifierConfig":
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: a missing or malformed field.
        """
        try:
            return cls(
                class_ids=tuple(int(c) for c in document["class_ids"]),
                class_names=tuple(str(n) for n in document["class_names"]),
                class_short=tuple(str(n) for n in document["class_short"]),
                patch_size_px=int(document["patch_size_px"]),
                mean=tuple(float(v) for v in document["mean"]),
                std=tuple(float(v) for v in document["std"]),
                architecture=str(document.get("architecture", ARCHITECTURE)),
                preset=document.get("preset"),
                variant=document.get("variant"),
                training=dict(document.get("training") or {}),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"cell-classifier config has a missing or bad field ({err!r})") from err


# ---------------------------------------------------------------------------------------------- network
def resnet18_arch(*, weights_path: str | os.PathLike[str] | None = None, imagenet: bool = False):
    """A torchvision ResNet-18 constructor for fastai (``arch(pretrained)`` signature).

    Args:
        weights_path: a local torchvision ``resnet18`` state dict (``.pth``), loaded with ``weights_only=True``;
            or a first-stage model directory, whose trained ResNet-18 backbone starts the classifier (see
            :func:`detector_backbone_state`).
        imagenet: download torchvision's ImageNet weights (needs the internet; cached in ``$TORCH_HOME``).

    Returns:
        A function ``arch(pretrained: bool = False) -> torchvision ResNet``.
    """
    from torchvision.models import ResNet18_Weights, resnet18

    def arch(pretrained: bool = False, **_ignored) -> nn.Module:
        if weights_path is not None and Path(weights_path).is_dir():
            model = resnet18(weights=None)
            missing, unexpected = model.load_state_dict(detector_backbone_state(weights_path), strict=False)
            if unexpected or any(not k.startswith("fc.") for k in missing):
                raise ModelError(Path(weights_path), "its backbone does not fit a ResNet-18 "
                                                     f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
            return model
        if weights_path is not None:
            model = resnet18(weights=None)
            model.load_state_dict(_load_state_dict(Path(weights_path)))
            return model
        if imagenet and pretrained:
            try:
                return resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)
            except (OSError, RuntimeError) as err:  # URLError is an OSError
                raise ModelError(Path(os.environ.get("TORCH_HOME", "~/.cache/torch")),
                                 f"cannot get torchvision's ImageNet ResNet-18 weights ({err}); "
                                 "pass a local file (--weights) or train without (--no-pretrained)") from err
        return resnet18(weights=None)

    return arch


def build_classifier(n_classes: int, *, arch=None, pretrained: bool = False) -> nn.Module:
    """The classifier network fastai's ``vision_learner`` builds for ResNet-18 (body cut at -2 + head).

    Args:
        n_classes: number of outputs.
        arch: from :func:`resnet18_arch` (default: random init).
        pretrained: whether ``arch`` brings weights (fastai then keeps the first layer's weights).

    Returns:
        ``nn.Sequential(body, head)``: (B, 3, H, W) normalised float -> (B, n_classes) logits.
    """
    from fastai.vision.learner import create_vision_model

    return create_vision_model(arch or resnet18_arch(), n_classes, pretrained=pretrained, cut=-2)


def classifier_splitter(model: nn.Module):
    """fastai parameter groups of the ResNet-18 classifier (stem+layer1 / layer2-4 / head), as fastai's resnet."""
    from fastai.vision.learner import _resnet_split

    return _resnet_split(model)


# ---------------------------------------------------------------------------------------------- model dir
def classifier_from_config(config: ClassifierConfig) -> nn.Module:
    """The network of ``config`` (the registry's builder for kind ``cell_classifier``)."""
    if config.architecture != ARCHITECTURE:
        raise ValueError(f"architecture {config.architecture!r} is not supported (expected {ARCHITECTURE!r})")
    return build_classifier(config.n_classes)


def save_classifier_dir(directory: str | os.PathLike[str], model: nn.Module, config: ClassifierConfig) -> Path:
    """Write ``weights.pt`` then ``config.json`` (:func:`ccmct.models.io.save_model_dir`, atomic per file)."""
    return save_model_dir(directory, model, config)


def load_classifier_config(directory: str | os.PathLike[str]) -> ClassifierConfig:
    """Read a model directory's ``config.json`` without building the network.

    Raises:
        ModelError: missing, unreadable, another kind or format version.
    """
    path = Path(directory) / CONFIG_FILE
    document = read_config_document(directory)
    if document.get("kind") != KIND:
        raise ModelError(path, f"model kind {document.get('kind')!r}, expected a cell classifier ({KIND!r})")
    try:
        config = ClassifierConfig.from_dict(document.get("config", {}))
    except (TypeError, ValueError) as err:
        raise ModelError(path, f"invalid config ({err})") from err
    if config.architecture != ARCHITECTURE:
        raise ModelError(path, f"architecture {config.architecture!r} is not supported (expected {ARCHITECTURE!r})")
    return config


def load_classifier_dir(directory: str | os.PathLike[str], *, device: str | torch.device = "cpu"
                        ) -> tuple[nn.Module, ClassifierConfig]:
    """Rebuild the network of a classifier model directory and load its weights (``weights_only=True``).

    Returns:
        (model in eval mode on ``device``, config).

    Raises:
        ModelError: a missing file, another kind or format, or weights that do not fit the architecture.
    """
    load_classifier_config(directory)  # clear message for a detector directory, before building anything
    return load_model_dir(directory, map_location=device)


def detector_backbone_state(model_dir: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The ResNet-18 body of a first-stage model directory as a torchvision ``resnet18`` state dict (no ``fc``).

    Where ImageNet weights cannot be had (offline CPU runs), the first stage's backbone — trained on the same
    slides to tell mitoses from look-alikes — is the nearest thing to the paper's pretrained start.

    Raises:
        ModelError: not a detector model directory, or its backbone is not a ResNet-18.
    """
    model, config = load_model_dir(model_dir)
    if not hasattr(model, "body"):
        raise ModelError(Path(model_dir), "not a first-stage (detector) model directory")
    if getattr(config, "backbone", None) != "resnet18":
        raise ModelError(Path(model_dir), f"backbone {getattr(config, 'backbone', None)!r} is not the classifier's "
                                          "resnet18; start from ImageNet weights or random init instead")
    return {k: v.detach().clone() for k, v in model.body.state_dict().items()}


def detector_normalisation(model_dir: str | os.PathLike[str]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) a first-stage model normalises its input with (its ``config.json``).

    A classifier started from that model's backbone must feed it inputs scaled the same way.

    Raises:
        ModelError: not a detector model directory, or no mean/std in its config.
    """
    document = read_config_document(model_dir, kind="retinanet")
    try:
        config = document["config"]
        return tuple(float(v) for v in config["mean"]), tuple(float(v) for v in config["std"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelError(Path(model_dir) / "config.json", f"no usable mean/std ({err!r})") from err


def _load_state_dict(path: Path) -> dict:
    if not path.exists():
        raise ModelError(path, "weights file missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
        raise ModelError(path, f"not a loadable state dict ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict):
        raise ModelError(path, f"expected a state dict, found {type(state).__name__}")
    return state


# ---------------------------------------------------------------------------------------------- prediction
@torch.no_grad()
def predict_probabilities(model: nn.Module, dataset: torch.utils.data.Dataset, *, batch_size: int = 64,
                          num_workers: int = 0, device: str | torch.device | None = None,
                          progress: bool = False, desc: str = "classify", mixed_precision: bool = True) -> np.ndarray:
    """Softmax class probabilities for every item of a dataset, in dataset order, in batches.

    Args:
        model: the classifier (set to eval mode here).
        dataset: yields (normalised image (3, H, W), label); e.g. :class:`ccmct.sampling.cells.CellPatchDataset`.
        batch_size: patches per forward pass.
        num_workers: DataLoader reader processes (each keeps its own slide handles).
        device: where the model runs (default: the model's device).
        progress: show a tqdm bar.
        desc: bar label.
        mixed_precision: autocast per :mod:`ccmct.precision` (float16 on CUDA, bfloat16 on a bf16 CPU).

    Returns:
        (N, n_classes) float32 probabilities.
    """
    from tqdm.auto import tqdm

    model.eval()
    device = device or next(model.parameters()).device
    model.to(device)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                         persistent_workers=False, pin_memory=torch.device(device).type == "cuda")
    out: list[np.ndarray] = []
    for images, _labels in tqdm(loader, disable=not progress, desc=desc, unit="batch"):
        with autocast(device, enabled=mixed_precision):
            logits = model(images.to(device, non_blocking=True))
        out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
    if not out:
        n_out = _n_outputs(model)
        return np.zeros((0, n_out), np.float32)
    return np.concatenate(out).astype(np.float32)


def _n_outputs(model: nn.Module) -> int:
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    return int(last.out_features)


def class_order(class_ids: Sequence[int]) -> dict[int, int]:
    """class id -> output index."""
    return {int(c): i for i, c in enumerate(class_ids)}
