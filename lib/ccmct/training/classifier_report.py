"""Tables and figures of the cell classifier: Table 3 (confusion matrix), training curves, example patches.

Table 3 of the paper: rows = true class, columns = predicted class, order MF, LA, Gr, TC, counts of test
patches.

Example:
    >>> confusion_table(np.array([0, 0, 1, 3]), np.array([0, 1, 1, 3])).loc["MF", "LA"]
    np.int64(1)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ccmct.sampling.cells import CELL_CLASSES, CellPatchDataset

SHORT = tuple(c.short for c in CELL_CLASSES)


def confusion_table(true_labels: np.ndarray, predicted_labels: np.ndarray) -> pd.DataFrame:
    """Counts of (true, predicted) class index pairs as Table 3.

    Args:
        true_labels: (N,) int class indices into :data:`ccmct.sampling.cells.CELL_CLASSES`.
        predicted_labels: (N,) int class indices.

    Returns:
        4 x 4 int64 DataFrame, index "true" MF/LA/Gr/TC, columns "predicted" MF/LA/Gr/TC.
    """
    n = len(CELL_CLASSES)
    true_labels = np.asarray(true_labels, dtype=np.int64)
    predicted_labels = np.asarray(predicted_labels, dtype=np.int64)
    counts = np.bincount(true_labels * n + predicted_labels, minlength=n * n).reshape(n, n)
    return pd.DataFrame(counts, index=pd.Index(SHORT, name="true"), columns=pd.Index(SHORT, name="predicted"))


def plot_confusion(confusion: pd.DataFrame, *, ax=None, title: str = "Test patches (rows: true, columns: predicted)"):
    """Heat map of a :func:`confusion_table`, each cell annotated with its count and row share.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(4.8, 4.2))
    counts = confusion.to_numpy()
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, f"{value}\n{share[i, j]:.1%}", ha="center", va="center", fontsize=8,
                color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(confusion.columns)), confusion.columns)
    ax.set_yticks(range(len(confusion.index)), confusion.index)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    return fig


def plot_history(history: pd.DataFrame, batch_losses: pd.DataFrame | None = None):
    """Training curves: per-step training loss (running mean) and per-epoch train/valid loss and valid accuracy;
    epoch 0 is the untrained network, epoch e covers (e - 1, e]; the frozen-body epochs are shaded.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.2))
    if batch_losses is not None and len(batch_losses):
        steps_per_epoch = len(batch_losses) / max(int((history["phase"] != "start").sum()), 1)
        ax_loss.plot(batch_losses["step"] / steps_per_epoch, batch_losses["smooth_loss"], lw=0.8, alpha=0.6,
                     label="train (per step)")
    ax_loss.plot(history["epoch"], history["train_loss"], "o-", label="train (epoch end)")
    ax_loss.plot(history["epoch"], history["valid_loss"], "s-", label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.legend(fontsize=8)
    ax_acc.plot(history["epoch"], history["valid_accuracy"], "s-", color="C2")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy")
    ax_acc.set_ylim(0, 1)
    frozen = history[history["phase"] == "frozen"]
    for ax in (ax_loss, ax_acc):
        if len(frozen):
            ax.axvspan(0, frozen["epoch"].max(), color="0.9", zorder=0, label="frozen body")
    fig.tight_layout()
    return fig


def plot_example_patches(table: pd.DataFrame, root, *, per_class: int = 6, seed: int = 0):
    """A grid of patches, one row per class (MF, LA, Gr, TC), drawn at random from ``table``.

    Args:
        table: from :func:`ccmct.sampling.cells.cell_table`.
        root: the data root.
        per_class: patches per row.
        seed: which patches.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(CELL_CLASSES), per_class, figsize=(1.4 * per_class, 1.5 * len(CELL_CLASSES)),
                             squeeze=False)
    for row, cls in enumerate(CELL_CLASSES):
        rows = table[table["class_id"] == cls.class_id]
        rows = rows.sample(n=min(per_class, len(rows)), random_state=seed) if len(rows) else rows
        ds = CellPatchDataset.from_table(rows, root)
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(ds):
                ax.imshow(ds.patch(col))
            if col == 0:
                ax.set_ylabel(f"{cls.short}\n({len(table[table['class_id'] == cls.class_id])})", fontsize=8)
    fig.suptitle("128 px cell patches per class (row label: class, number of annotations)", fontsize=9)
    fig.tight_layout()
    return fig
