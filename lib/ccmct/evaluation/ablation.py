"""The ablation study's tables (paper, Table 5; docs/ablation.md) and Fig. 5 of the paper, from the runs' summaries.

Each run (``AblationStudy/Ablation-Train.ipynb`` on one subset) leaves ``<runs>/<name>/summary.json``
(:mod:`ccmct.pipeline.ablation`). :func:`load_runs` collects them into one table;
:func:`ablation_table` formats it like the authors' ``AblationStudy_Evaluation.ipynb``; :func:`plot_figure5`
draws the paper's Fig. 5: a) dual-stage F1 against the annotated training area (HPF subsets and the complete
set), b) against the number of training WSIs (WSI subsets and the complete set), every point labelled with
its number of training mitotic figures. The published values (:data:`PAPER_ABLATION`) can be drawn beside
ours as a reference line — meaningful only on the real data set.

Example:
    >>> runs = load_runs("ablation_runs")                 # doctest: +SKIP
    >>> fig = plot_figure5(runs, reference=True)          # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from ccmct.config.dataset import REAL_SLIDES, REAL_TEST_SLIDES
from ccmct.errors import ResultsError

SUMMARY_FILE = "summary.json"
PAPER_SOURCE = ("Bertram et al., Sci Data 2019, Fig. 5 (dual stage) and the stored outputs of the authors' "
                "AblationStudy_Evaluation.ipynb (test = the 11 full test WSIs; thresholds from the subset's own "
                "training images, minimum 0.20); as published in the paper, Table 5 and Fig. 5")
PAPER_COMPLETE_TRAIN_AREA_MM2 = round(sum(s.tumor_area_mm2 for s in REAL_SLIDES if s.split == "train"), 2)
"""Tumor area of the 21 training slides (paper Table 1): the 'annotated area' of the complete set."""


@dataclass(frozen=True)
class PaperAblationRun:
    """One published ablation model (values from :data:`PAPER_SOURCE`).

    Attributes:
        name: '5HPF', '10HPF', '50HPF', '3WSI', '6WSI', '12WSI' or 'complete'.
        kind: 'hpf', 'wsi' or 'complete'.
        n_train_slides: training WSIs (21 for every HPF model: one crop per training slide).
        train_mitoses: ODAEL mitotic figures in the training images (the labels in Fig. 5).
        train_area_mm2: annotated training area, mm² (21 x n x 0.237 for HPF; tumor area otherwise;
            None where the paper gives none, i.e. the WSI subsets).
        trainval_stage1, trainval_stage2: (best F1, threshold) on the training images.
        test_stage1, test_stage2: (TP, FP, FN, F1) on the 11 full test WSIs.
    """

    name: str
    kind: str
    n_train_slides: int
    train_mitoses: int
    train_area_mm2: float | None
    trainval_stage1: tuple[float, float]
    trainval_stage2: tuple[float, float]
    test_stage1: tuple[int, int, int, float]
    test_stage2: tuple[int, int, int, float]


PAPER_ABLATION: tuple[PaperAblationRun, ...] = (
    PaperAblationRun("5HPF", "hpf", 21, 378, 21 * 5 * 0.237, (0.2077, 0.77), (0.5153, 0.29),
                     (16616, 22266, 5860, 0.5416), (18430, 22306, 4046, 0.5831)),
    PaperAblationRun("10HPF", "hpf", 21, 745, 21 * 10 * 0.237, (0.8106, 0.65), (0.8072, 0.76),
                     (14538, 10059, 7938, 0.6177), (15578, 8027, 6898, 0.6761)),
    PaperAblationRun("50HPF", "hpf", 21, 2467, 21 * 50 * 0.237, (0.6858, 0.69), (0.8302, 0.57),
                     (18484, 27280, 3992, 0.5417), (17878, 6074, 4598, 0.7701)),
    PaperAblationRun("3WSI", "wsi", 3, 4432, None, (0.7597, 0.71), (0.8169, 0.32),
                     (13489, 4770, 8987, 0.6623), (15751, 2580, 6725, 0.7720)),
    PaperAblationRun("6WSI", "wsi", 6, 5798, None, (0.6125, 0.73), (0.8199, 0.48),
                     (13236, 9771, 9240, 0.5820), (17291, 3226, 5185, 0.8044)),
    PaperAblationRun("12WSI", "wsi", 12, 12370, None, (0.6188, 0.84), (0.8273, 0.49),
                     (15624, 13065, 6852, 0.6107), (18189, 3813, 4287, 0.8179)),
    PaperAblationRun("complete", "complete", 21, 22404, PAPER_COMPLETE_TRAIN_AREA_MM2, (0.6285, 0.79),
                     (0.8080, 0.54), (16074, 11216, 6402, 0.6460), (18248, 3783, 4228, 0.8200)),
)
"""The paper's ablation results (Fig. 5 plots ``test_stage2`` F1). Source: :data:`PAPER_SOURCE`."""

PAPER_HPF_CROP_TEST: dict[str, tuple[tuple[int, int, int, float], tuple[int, int, int, float]]] = {
    "5HPF": ((35, 239, 113, 0.1659), (39, 29, 109, 0.3611)),
    "10HPF": ((196, 63, 100, 0.7063), (214, 40, 82, 0.7782)),
    "50HPF": ((1218, 1365, 231, 0.6042), (1203, 260, 246, 0.8262)),
}
"""HPF models tested on the HPF crops of the 11 test slides: name -> (stage 1, stage 2) as (TP, FP, FN, F1)."""

_ORDER = {"hpf": 0, "wsi": 1, "complete": 2}
TABLE_COLUMNS = ("name", "kind", "n_train_slides", "train_mitoses", "train_area_mm2",
                 "trainval_f1_stage1", "threshold_stage1", "trainval_f1_stage2", "threshold_stage2",
                 "tp_stage1", "fp_stage1", "fn_stage1", "f1_stage1", "tp_stage2", "fp_stage2", "fn_stage2",
                 "f1_stage2")


def paper_runs() -> pd.DataFrame:
    """:data:`PAPER_ABLATION` as a table with the columns of :func:`load_runs`."""
    rows = []
    for run in PAPER_ABLATION:
        d = asdict(run)
        rows.append({
            "name": run.name, "kind": run.kind, "n_train_slides": run.n_train_slides,
            "train_mitoses": run.train_mitoses, "train_area_mm2": run.train_area_mm2,
            "trainval_f1_stage1": d["trainval_stage1"][0], "threshold_stage1": d["trainval_stage1"][1],
            "trainval_f1_stage2": d["trainval_stage2"][0], "threshold_stage2": d["trainval_stage2"][1],
            **{f"{k}_stage{s}": v for s in (1, 2) for k, v in zip(("tp", "fp", "fn", "f1"), d[f"test_stage{s}"])},
        })
    return _sorted(pd.DataFrame(rows, columns=list(TABLE_COLUMNS)))


def read_summary(path: str | os.PathLike[str]) -> dict:
    """One run's ``summary.json``.

    Raises:
        ResultsError: missing or without the fields the tables need.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text())
        for stage in ("stage1", "stage2"):
            for key in ("tp", "fp", "fn", "f1"):
                summary["test"][stage][key]
            summary["trainval"][stage]["f1"], summary["trainval"][stage]["threshold"]
        summary["name"], summary["kind"], summary["train_mitoses"]
    except FileNotFoundError as err:
        raise ResultsError(path, "no run summary (run AblationStudy/Ablation-Train.ipynb for this subset)") from err
    except (ValueError, KeyError, TypeError) as err:
        raise ResultsError(path, f"not an ablation run summary ({type(err).__name__}: {err})") from err
    return summary


def summary_row(summary: dict) -> dict:
    """Flatten a run summary into one row with :data:`TABLE_COLUMNS`."""
    row = {key: summary.get(key) for key in ("name", "kind", "n_train_slides", "train_mitoses", "train_area_mm2")}
    for s in (1, 2):
        stage = f"stage{s}"
        row[f"trainval_f1_{stage}"] = _float(summary["trainval"][stage]["f1"])
        row[f"threshold_{stage}"] = summary["trainval"][stage]["threshold"]
        for key in ("tp", "fp", "fn"):
            row[f"{key}_{stage}"] = summary["test"][stage][key]
        row[f"f1_{stage}"] = _float(summary["test"][stage]["f1"])
    return row


def _float(value) -> float:
    """JSON F1 -> float; null (undefined F1: no TP, FP or FN) -> NaN."""
    return float("nan") if value is None else float(value)


def load_runs(runs_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """All run summaries below ``runs_dir`` (``<runs_dir>/<name>/summary.json``), one row each.

    Raises:
        ResultsError: the folder holds no summary, or a summary is malformed.
    """
    runs_dir = Path(runs_dir)
    files = sorted(runs_dir.glob(f"*/{SUMMARY_FILE}"))
    if not files:
        raise ResultsError(runs_dir, f"no */{SUMMARY_FILE} here; run `ccmct ablation run` first")
    return _sorted(pd.DataFrame([summary_row(read_summary(f)) for f in files], columns=list(TABLE_COLUMNS)))


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    key = df["kind"].map(_ORDER).fillna(3) * 1e6 + df["n_train_slides"].fillna(0) + df["train_area_mm2"].fillna(0) / 1e6
    return df.assign(_k=key).sort_values("_k").drop(columns="_k").reset_index(drop=True)


def ablation_table(runs: pd.DataFrame, *, digits: int = 4) -> pd.DataFrame:
    """The §5.3 table: per model the training set, the thresholds found on it, and the test results.

    Returns:
        DataFrame indexed by model name with columns 'train WSIs', 'train MF', 'train area mm²',
        'stage 1 trainval F1 @ thr', 'stage 2 trainval F1 @ thr', 'stage 1 test TP/FP/FN', 'stage 1 test F1',
        'stage 2 test TP/FP/FN', 'stage 2 test F1 (Fig. 5)'.
    """
    def at(f1, thr):
        return f"{f1:.{digits}f} @ {thr:.2f}"

    out = pd.DataFrame({
        "train WSIs": runs["n_train_slides"].astype(int).to_numpy(),
        "train MF": runs["train_mitoses"].astype(int).to_numpy(),
        "train area mm²": runs["train_area_mm2"].astype(float).round(2).to_numpy(),
        "stage 1 trainval F1 @ thr": [at(f, t) for f, t in zip(runs["trainval_f1_stage1"], runs["threshold_stage1"])],
        "stage 2 trainval F1 @ thr": [at(f, t) for f, t in zip(runs["trainval_f1_stage2"], runs["threshold_stage2"])],
        "stage 1 test TP/FP/FN": [f"{int(a)}/{int(b)}/{int(c)}" for a, b, c in runs[["tp_stage1", "fp_stage1", "fn_stage1"]].to_numpy()],
        "stage 1 test F1": runs["f1_stage1"].astype(float).round(digits).to_numpy(),
        "stage 2 test TP/FP/FN": [f"{int(a)}/{int(b)}/{int(c)}" for a, b, c in runs[["tp_stage2", "fp_stage2", "fn_stage2"]].to_numpy()],
        "stage 2 test F1 (Fig. 5)": runs["f1_stage2"].astype(float).round(digits).to_numpy(),
    }, index=pd.Index(runs["name"].to_list(), name="model"))
    return out


def compare_with_paper(runs: pd.DataFrame) -> pd.DataFrame:
    """Our dual-stage test F1 beside the paper's, for the models present in both (index: model name)."""
    paper = paper_runs().set_index("name")
    ours = runs.set_index("name")
    common = [n for n in ours.index if n in paper.index]
    return pd.DataFrame({"ours F1 (dual stage)": ours.loc[common, "f1_stage2"].astype(float),
                         "paper F1 (dual stage)": paper.loc[common, "f1_stage2"].astype(float),
                         "ours train MF": ours.loc[common, "train_mitoses"].astype(int),
                         "paper train MF": paper.loc[common, "train_mitoses"].astype(int)})


def is_real_test_set(test_slides) -> bool:
    """True when the test slides are the paper's 11 (then the published values are a fair reference)."""
    return frozenset(test_slides) == REAL_TEST_SLIDES


def figure5_points(runs: pd.DataFrame, panel: str) -> pd.DataFrame:
    """The points of one panel: 'area' (HPF runs + complete; x = training area mm²) or 'wsi' (WSI runs +
    complete; x = training WSIs). Columns x, f1 (dual-stage test F1), train_mitoses, name; sorted by x."""
    if panel not in ("area", "wsi"):
        raise ValueError(f"panel must be 'area' or 'wsi', got {panel!r}")
    kind = "hpf" if panel == "area" else "wsi"
    sel = runs[runs["kind"].isin([kind, "complete"])]
    x = sel["train_area_mm2"] if panel == "area" else sel["n_train_slides"]
    pts = pd.DataFrame({"x": x.astype(float).to_numpy(), "f1": sel["f1_stage2"].astype(float).to_numpy(),
                        "train_mitoses": sel["train_mitoses"].astype(int).to_numpy(), "name": sel["name"].to_numpy()})
    return pts.dropna(subset=["x"]).sort_values("x").reset_index(drop=True)


def plot_figure5(runs: pd.DataFrame, *, reference: bool = False, axes=None, label: str = "this run"):
    """Fig. 5: dual-stage test F1 against a) annotated training area, b) number of training WSIs.

    Args:
        runs: :func:`load_runs` output.
        reference: also draw the paper's values (:data:`PAPER_ABLATION`) as a dashed reference line.
        axes: two matplotlib axes to draw into (default: a new 1 x 2 figure).
        label: legend label of our points.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    else:
        fig = axes[0].figure
    paper = paper_runs()
    titles = {"area": ("a) training area around the expert's high-MC region", "annotated training area [mm²]"),
              "wsi": ("b) number of training WSIs", "training WSIs")}
    for ax, panel in zip(axes, ("area", "wsi")):
        _draw_panel(ax, figure5_points(runs, panel), label=label, style="o-", color="C0")
        if reference:
            _draw_panel(ax, figure5_points(paper, panel), label="paper (Bertram et al. 2019)", style="s--",
                        color="0.5")
        ax.set_title(titles[panel][0], fontsize=10)
        ax.set_xlabel(titles[panel][1])
        ax.set_ylabel("F1 (dual stage, test WSIs)")
        if panel == "area":
            ax.set_xscale("log")
        else:
            xs = set(figure5_points(runs, panel)["x"]) | (set(figure5_points(paper, panel)["x"]) if reference else set())
            ax.set_xticks(sorted(xs))
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def _draw_panel(ax, pts: pd.DataFrame, *, label: str, style: str, color) -> None:
    if pts.empty:
        return
    ax.plot(pts["x"], pts["f1"], style, color=color, label=label)
    for x, y, mf in zip(pts["x"], pts["f1"], pts["train_mitoses"]):
        ax.annotate(f"{mf} MF", (x, y), textcoords="offset points", xytext=(4, 6), fontsize=7, color=color)


def run_intervals(runs_dir: str | os.PathLike[str], *, n_resamples: int = 2000, seed: int = 0,
                  level: float = 0.95) -> pd.DataFrame:
    """Test F1 of every run with its slide-bootstrap interval (:func:`ccmct.evaluation.bootstrap.bootstrap_f1`,
    the same resamples of the test slides for every run; each run's thresholds held fixed).

    Returns:
        One row per run (order of :func:`load_runs`): name, kind, and per stage ``f1_stage{s}``,
        ``f1_stage{s}_lo``, ``f1_stage{s}_hi`` (NaN where the summary has no ``per_slide`` counts: runs
        written before they were stored).
    """
    from ccmct.evaluation.bootstrap import SlideCounts, bootstrap_f1

    order = load_runs(runs_dir)["name"].tolist()
    summaries = {s["name"]: s for s in (read_summary(p) for p in Path(runs_dir).glob(f"*/{SUMMARY_FILE}"))}
    rows = []
    for name in order:
        summary = summaries[name]
        row = {"name": name, "kind": summary["kind"]}
        for s in (1, 2):
            test = summary["test"][f"stage{s}"]
            row[f"f1_stage{s}"] = _float(test["f1"])
            lo = hi = float("nan")
            if test.get("per_slide"):
                ci = bootstrap_f1(SlideCounts.from_per_slide(test["per_slide"]), n_resamples=n_resamples,
                                  seed=seed, level=level)["f1_ci"]
                lo, hi = (float("nan") if v is None else v for v in ci)
            row[f"f1_stage{s}_lo"], row[f"f1_stage{s}_hi"] = lo, hi
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["PAPER_ABLATION", "PAPER_COMPLETE_TRAIN_AREA_MM2", "PAPER_HPF_CROP_TEST", "PAPER_SOURCE", "SUMMARY_FILE",
           "TABLE_COLUMNS", "PaperAblationRun", "ablation_table", "compare_with_paper", "figure5_points",
           "is_real_test_set", "load_runs", "paper_runs", "plot_figure5", "read_summary", "run_intervals",
           "summary_row"]
