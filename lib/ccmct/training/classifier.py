"""Train the second-stage cell classifier with fastai (ResNet-18, 4 classes MF / LA / Gr / TC).

Recipe (preset ``paper``, the authors' `2nd_stage` notebooks; docs/second_stage.md): ``vision_learner(resnet18, pretrained)``; one epoch with
the body frozen (``fit_one_cycle(1, 1e-2)``); unfreeze; ``fit_one_cycle(10, slice(1e-3, 1e-2),
pct_start=0.05)``; Adam (fastai's default), cross-entropy, batch 16, 128 px patches. What differs from the
authors, on purpose (quirk #23): validation is held-out training *slides* (see
:func:`ccmct.sampling.cells.assign_subsets`), not a random 20 % of patches; the normalisation statistics are
estimated once from training patches and used unchanged for validation, test and inference; seeds are set.

Patches are read straight from the slides (:class:`ccmct.sampling.cells.CellPatchDataset`); each training
epoch draws ``items_per_epoch`` of them at random (all with ``None``).

Outputs in ``out_dir``: the model directory (``weights.pt`` + ``config.json``), ``history.csv`` (per epoch),
``batch_losses.csv``, ``confusion.csv`` (Table 3 on the test slides), ``confusion.png``, ``metrics.json``.

Example:
    >>> run = train_classifier("data", "ODAEL", "quick", "models/cls-ODAEL")       # doctest: +SKIP
    >>> run.test_accuracy, run.confusion                                              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ccmct.config import MITOTIC_FIGURE, DataRoot
from ccmct.errors import CcmctError
from ccmct.models.classifier import (
    ClassifierConfig,
    load_classifier_config,
    classifier_splitter,
    detector_normalisation,
    predict_probabilities,
    resnet18_arch,
    save_classifier_dir,
)
from ccmct.sampling.cells import CELL_CLASSES, PATCH_SIZE_PX, CellPatchDataset, assign_subsets, cell_table
from ccmct.training import resume
from ccmct.training.classifier_checkpoint import (
    CHECKPOINT_FILE,
    TrainingState,
    epoch_callbacks,
    load_checkpoint,
    remove_checkpoint,
)
from ccmct.training.classifier_report import confusion_table, plot_confusion
from ccmct.atomicio import atomic_path, atomic_write_json
from ccmct.data.slide_checks import root_mpp
from ccmct.config.presets import CLASSIFIER_PRESETS, ClassifierPreset, classifier_preset  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)


def default_start_weights(preset: str | ClassifierPreset, detector_dir: str | os.PathLike[str] | None) -> Path | None:
    """What a pipeline's classifier starts from when nobody says otherwise (the ``weights_path`` to pass).

    A preset that asks for ImageNet weights (``paper``, as the authors) gets ``None``: torchvision's download.
    The CPU presets (``quick``, ``smoke``) cannot assume a download, and a random-init ResNet-18 learns the
    mitosis / look-alike boundary slowly: they start from the ResNet-18 backbone of the first-stage model
    trained on the same slides (``detector_dir``) when it exists; ``None`` (random init) otherwise.
    Used by ``ccmct demo``, the CellClassification notebooks and the ablation runs.
    """
    if classifier_preset(preset).pretrained or detector_dir is None:
        return None
    detector_dir = Path(detector_dir)
    return detector_dir if (detector_dir / "weights.pt").is_file() and (detector_dir / "config.json").is_file() else None


@dataclass
class ClassifierRun:
    """What :func:`train_classifier` produced.

    Attributes:
        model_dir: the written model directory.
        config: its configuration.
        history: per epoch: phase ('start' | 'frozen' | 'unfrozen'), epoch, epoch_in_phase, train_loss,
            valid_loss, valid_accuracy; epoch 0 ('start') is the untrained network's validation.
        batch_losses: per training step: step, phase, loss (raw), smooth_loss (fastai's running mean).
        confusion: Table 3 on the test slides (rows true, columns predicted, order MF, LA, Gr, TC).
        test_accuracy: share of test patches classified correctly (NaN without test cells).
        counts: patches per subset (train / valid / test) and class.
        validation: how validation was split off (``assign_subsets``' description).
    """

    model_dir: Path
    config: ClassifierConfig
    history: pd.DataFrame
    batch_losses: pd.DataFrame
    confusion: pd.DataFrame
    test_accuracy: float
    counts: pd.DataFrame
    validation: dict


class TrainingDataError(CcmctError):
    """The data root holds too few cells to train or validate."""


# ---------------------------------------------------------------------------------------------- data
def _epoch_sample_dl():
    """fastai DataLoader that draws ``n`` random items of its dataset per epoch (shuffled)."""
    from fastai.data.load import DataLoader

    class EpochSampleDL(DataLoader):
        def get_idxs(self):
            total = len(self.dataset)
            if not self.shuffle or self.n is None or self.n >= total:
                return super().get_idxs()
            return self.rng.sample(range(total), self.n)

    return EpochSampleDL


def estimate_normalisation(table: pd.DataFrame, root: DataRoot, *, n_items: int, seed: int
                           ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of [0, 1] RGB over ``n_items`` random patches of ``table``."""
    rows = table.sample(n=min(n_items, len(table)), random_state=seed)
    ds = CellPatchDataset.from_table(rows, root, mean=(0, 0, 0), std=(1, 1, 1))
    pixels = np.stack([ds.patch(i) for i in range(len(ds))]).reshape(-1, 3).astype(np.float64) / 255.0
    return tuple(pixels.mean(0).round(6).tolist()), tuple(np.maximum(pixels.std(0), 1e-3).round(6).tolist())


def _subset(table: pd.DataFrame, name: str, limit: int | None, seed: int) -> pd.DataFrame:
    rows = table[table["subset"] == name]
    if limit is not None and len(rows) > limit:
        rows = rows.sample(n=limit, random_state=seed).sort_index()
    return rows


def _counts(table: pd.DataFrame) -> pd.DataFrame:
    counts = table.groupby(["subset", "label"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=["train", "valid", "test"], columns=range(len(CELL_CLASSES)), fill_value=0)
    counts.columns = [c.short for c in CELL_CLASSES]
    return counts


def _dataloaders(table: pd.DataFrame, root: DataRoot, preset: ClassifierPreset, stats, num_workers: int,
                 device: torch.device):
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader

    mean, std = stats
    train_rows = table[table["subset"] == "train"]
    valid_rows = _subset(table, "valid", preset.valid_items, preset.seed)
    train_ds = CellPatchDataset.from_table(train_rows, root, mean=mean, std=std, augment=True,
                                           jitter_px=preset.jitter_px)
    valid_ds = CellPatchDataset.from_table(valid_rows, root, mean=mean, std=std)
    n = min(preset.items_per_epoch or len(train_ds), len(train_ds))
    train_dl = _epoch_sample_dl()(train_ds, bs=preset.batch_size, shuffle=True, drop_last=n > preset.batch_size,
                                  n=n, num_workers=num_workers, device=device)
    valid_dl = DataLoader(valid_ds, bs=preset.batch_size * 2, num_workers=num_workers, device=device)
    return DataLoaders(train_dl, valid_dl, device=device)


# ---------------------------------------------------------------------------------------------- training
def train_classifier(data_root: str | os.PathLike[str] | DataRoot, variant: str, preset: str | ClassifierPreset,
                     out_dir: str | os.PathLike[str], *, pretrained: bool | None = None,
                     weights_path: str | os.PathLike[str] | None = None, seed: int | None = None,
                     num_workers: int | None = None, device: str | None = None,
                     progress: bool = True) -> ClassifierRun:
    """Train, validate on held-out training slides, test on the test slides, and export a model directory.

    Args:
        data_root: data root (real or synthetic).
        variant: label set, ``MEL`` / ``HEAEL`` / ``ODAEL``.
        preset: ``smoke`` / ``quick`` / ``paper`` or a :class:`ClassifierPreset`.
        out_dir: model directory to write (created).
        pretrained: override the preset: start from ImageNet weights (torchvision download) or not.
        weights_path: a local torchvision ResNet-18 state dict to start from (implies pretrained).
        seed: override the preset's seed.
        num_workers: override the preset's reader processes.
        device: ``cpu`` / ``cuda`` (default: cuda if available).
        progress: fastai progress bars and tqdm.

    Returns:
        :class:`ClassifierRun`.

    Raises:
        TrainingDataError: no training or validation cells.
        ModelError: ImageNet weights requested but not obtainable, or a bad ``weights_path``.
    """
    from fastai.torch_core import set_seed

    root = data_root if isinstance(data_root, DataRoot) else DataRoot(data_root)
    preset = _effective_preset(preset, seed=seed, num_workers=num_workers, pretrained=pretrained)
    start = _start_name(weights_path, preset.pretrained)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    set_seed(preset.seed, reproducible=True)
    table, validation = assign_subsets(cell_table(root, variant), root, seed=preset.seed)
    _check_subsets(table, root, variant)
    if weights_path is not None and Path(weights_path).is_dir():  # a detector's backbone: its input scaling
        stats = detector_normalisation(weights_path)
    else:
        stats = estimate_normalisation(table[table["subset"] == "train"], root, n_items=preset.norm_items,
                                       seed=preset.seed)
    learn = _learner(_dataloaders(table, root, preset, stats, preset.num_workers, dev), preset, weights_path, out_dir)
    signature = {"variant": variant, "preset": {**asdict(preset), "num_workers": None}, "start": start,
                 "counts": _counts(table).to_dict(orient="index"), "mean": stats[0], "std": stats[1]}
    history, batch_losses = _fit(learn, preset, Path(out_dir), signature, progress=progress)
    confusion, test_accuracy = _test(learn.model, table[table["subset"] == "test"], root, preset, stats, dev,
                                     progress=progress)
    config = ClassifierConfig(
        class_ids=tuple(c.class_id for c in CELL_CLASSES), class_names=tuple(c.name for c in CELL_CLASSES),
        class_short=tuple(c.short for c in CELL_CLASSES), patch_size_px=PATCH_SIZE_PX, mean=stats[0], std=stats[1],
        preset=preset.name, variant=variant, mpp=root_mpp(root.slides("train").values()),
        training={"preset": asdict(preset), "start": start, "validation": validation, "test_accuracy": test_accuracy,
                  "final_valid_accuracy": float(history["valid_accuracy"].iloc[-1]),
                  "start_fingerprint": _start_fingerprint(weights_path)})
    run = ClassifierRun(Path(out_dir), config, history, batch_losses, confusion, test_accuracy, _counts(table),
                        validation)
    _write_outputs(run, learn.model)
    remove_checkpoint(run.model_dir)
    return run


def _learner(dls, preset: ClassifierPreset, weights_path, out_dir):
    """fastai ``vision_learner`` with ResNet-18 (start weights per preset / ``weights_path``), Adam, CE loss."""
    import fastai.callback.progress  # noqa: F401 - Learner.no_bar
    import fastai.callback.schedule  # noqa: F401 - Learner.fit_one_cycle
    from fastai.losses import CrossEntropyLossFlat
    from fastai.metrics import accuracy
    from fastai.vision.learner import vision_learner

    from ccmct.training.precision import add_cpu_autocast

    arch = resnet18_arch(weights_path=weights_path, imagenet=preset.pretrained)
    learn = vision_learner(dls, arch, n_out=len(CELL_CLASSES), pretrained=preset.pretrained or weights_path is not None,
                           normalize=False, loss_func=CrossEntropyLossFlat(), metrics=accuracy, cut=-2,
                           splitter=classifier_splitter, path=Path(out_dir), model_dir=".")
    add_cpu_autocast(learn, dls.device or "cpu")  # bf16 on CPUs that compute it natively (ccmct.precision)
    return learn


def _effective_preset(preset: str | ClassifierPreset, *, seed: int | None = None, num_workers: int | None = None,
                      pretrained: bool | None = None) -> ClassifierPreset:
    """The preset with :func:`train_classifier`'s overrides applied."""
    preset = classifier_preset(preset)
    return replace(preset, seed=preset.seed if seed is None else seed,
                   num_workers=preset.num_workers if num_workers is None else num_workers,
                   pretrained=preset.pretrained if pretrained is None else pretrained)


def _start_fingerprint(weights_path) -> str | None:
    """:func:`ccmct.models.io.model_fingerprint` of a first-stage model the network starts from (else None)."""
    from ccmct.models.io import model_fingerprint

    return model_fingerprint(weights_path) if weights_path is not None and Path(weights_path).is_dir() else None


def trained_as(out_dir: str | os.PathLike[str], variant: str, preset: str | ClassifierPreset, *,
               weights_path: str | os.PathLike[str] | None = None, seed: int | None = None,
               pretrained: bool | None = None) -> dict | None:
    """The ``training`` record (config.json) of a finished classifier in ``out_dir`` that :func:`train_classifier`
    with these arguments would make, else None: missing or unfinished, another label set or preset (reader
    processes and the second-stage score aside), or started from another network — a first-stage model trained
    again since (its fingerprint differs) makes the classifier started from its backbone stale."""
    from ccmct.jsonable import strict
    from ccmct.models.io import CONFIG_FILE, WEIGHTS_FILE

    out_dir = Path(out_dir)
    if not ((out_dir / WEIGHTS_FILE).is_file() and (out_dir / CONFIG_FILE).is_file()):
        return None
    try:
        config = load_classifier_config(out_dir)
    except CcmctError:  # unreadable or of another format: not this model
        return None
    training = dict(config.training or {})
    want = _effective_preset(preset, seed=seed, pretrained=pretrained)
    # reader processes and the second-stage score (``combine``, applied when re-scoring) do not change the model
    ignore = {"num_workers": None, "combine": None}
    same = (config.variant == variant
            and strict({**(training.get("preset") or {}), **ignore}) == strict({**asdict(want), **ignore})
            and training.get("start") == _start_name(weights_path, want.pretrained)
            and training.get("start_fingerprint") == _start_fingerprint(weights_path))
    return training if same else None


def _start_name(weights_path, pretrained: bool) -> str:
    """How the network was initialised, in words (config.json, checkpoint signature)."""
    if weights_path is not None and Path(weights_path).is_dir():
        return f"backbone of first-stage model {Path(weights_path).name}"
    if weights_path is not None:
        return f"weights file {Path(weights_path).name}"
    return "ImageNet (torchvision)" if pretrained else "random init"


def _check_subsets(table: pd.DataFrame, root: DataRoot, variant: str) -> None:
    for subset in ("train", "valid"):
        if not (table["subset"] == subset).any():
            raise TrainingDataError(f"{root.database(variant)}: no {subset} cells (of classes "
                                    f"{', '.join(c.short for c in CELL_CLASSES)}) on the training slides")
    if not ((table["subset"] == "train") & (table["class_id"] == MITOTIC_FIGURE)).any():
        raise TrainingDataError(f"{root.database(variant)}: no mitotic figure on the training slides")


PHASES = ("start", "frozen", "unfrozen")


def _fit(learn, preset: ClassifierPreset, out_dir: Path, signature: dict, *, progress: bool
         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two phases, resuming from ``out_dir/checkpoint.pt`` if an interrupted run of the same signature left
    one; returns (per-epoch history, per-step losses: raw and fastai-smoothed)."""
    from contextlib import nullcontext

    resumed = load_checkpoint(out_dir, signature)
    if resumed is None:
        state, opt_state = TrainingState(), None
        with learn.no_bar(), learn.no_logging():
            valid_loss, valid_accuracy = (float(v) for v in learn.validate())
        state.rows.append({"phase": "start", "epoch": 0, "epoch_in_phase": 0, "train_loss": float("nan"),
                           "valid_loss": valid_loss, "valid_accuracy": valid_accuracy})
    else:
        state, model_state, opt_state = resumed
        learn.model.load_state_dict(model_state)
        log.info("resuming from %s: %s epoch %d done", out_dir / CHECKPOINT_FILE, state.phase, state.epochs_done)
    phases = (("frozen", preset.frozen_epochs, preset.max_lr, 0.25),
              ("unfrozen", preset.epochs, slice(preset.max_lr / 10, preset.max_lr), preset.pct_start))
    for phase, n_epochs, lr, pct_start in phases:
        done = min(state.done_in(phase, PHASES), n_epochs)
        if done >= n_epochs:
            continue
        learn.freeze() if phase == "frozen" else learn.unfreeze()  # both reset the optimiser state
        if done and opt_state:
            learn.opt.load_state_dict(opt_state)
        if resumed is not None:  # the first phase run after a resume continues the interrupted run's RNGs
            resume.restore(state.rng, learn)
            resumed = None
        quiet = (learn.no_bar(), learn.no_logging()) if not progress else (nullcontext(), nullcontext())
        with quiet[0], quiet[1]:
            learn.fit_one_cycle(n_epochs, lr, pct_start=pct_start, start_epoch=done,
                                cbs=epoch_callbacks(out_dir, signature, state, phase, done))
    batch_losses = pd.DataFrame(state.steps, columns=["phase", "loss", "smooth_loss"])
    batch_losses.insert(0, "step", np.arange(1, len(batch_losses) + 1))
    return pd.DataFrame(state.rows), batch_losses


def _test(model, test_rows: pd.DataFrame, root: DataRoot, preset: ClassifierPreset, stats, device,
          *, progress: bool) -> tuple[pd.DataFrame, float]:
    if test_rows.empty:
        log.warning("no test cells: Table 3 stays empty")
        return confusion_table(np.zeros(0, np.int64), np.zeros(0, np.int64)), float("nan")
    ds = CellPatchDataset.from_table(test_rows, root, mean=stats[0], std=stats[1])
    probs = predict_probabilities(model, ds, batch_size=preset.batch_size * 4, num_workers=preset.num_workers,
                                  device=device, progress=progress, desc="test patches")
    predicted = probs.argmax(1)
    truth = test_rows["label"].to_numpy()
    return confusion_table(truth, predicted), float((predicted == truth).mean())


def _write_outputs(run: ClassifierRun, model) -> None:
    out = run.model_dir
    out.mkdir(parents=True, exist_ok=True)
    for name, frame, index in (("history.csv", run.history, False), ("batch_losses.csv", run.batch_losses, False),
                               ("confusion.csv", run.confusion, True), ("counts.csv", run.counts, True)):
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=index)
    figure = plot_confusion(run.confusion)
    with atomic_path(out / "confusion.png") as tmp:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    metrics = {"test_accuracy": run.test_accuracy, "validation": run.validation,
               "final_valid_accuracy": run.config.training.get("final_valid_accuracy"),
               "counts": run.counts.to_dict(orient="index")}
    atomic_write_json(out / "metrics.json", metrics)
    save_classifier_dir(out, model, run.config)  # config.json last: marks a complete directory


def load_run_tables(model_dir: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """The CSV outputs of a finished run: history, batch_losses, confusion, counts (for notebooks)."""
    model_dir = Path(model_dir)
    return {"history": pd.read_csv(model_dir / "history.csv"),
            "batch_losses": pd.read_csv(model_dir / "batch_losses.csv"),
            "confusion": pd.read_csv(model_dir / "confusion.csv", index_col=0),
            "counts": pd.read_csv(model_dir / "counts.csv", index_col=0)}

