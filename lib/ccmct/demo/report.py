"""Evaluation and ``report.md`` of ``ccmct demo``: Table 1 excerpt, Table 4 cells, F1 curves, example
detections, a mitotic-count hotspot; ``summary.json`` with the table, thresholds, timings and checks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ccmct.config.dataset import DETECTION_RADIUS_L0
from ccmct.types import VARIANTS

MIN_THRESHOLD = {1: 0.3, 2: 0.2}
"""Lowest threshold of the search per stage: stage 1 from the detector's own score cut (0.3, the paper's
detect threshold), stage 2 from 0.2 as in the authors' ablation evaluation (original_facts.md §5.3)."""


def markdown_table(df: pd.DataFrame, *, floatfmt: str = ".3f") -> str:
    """A GitHub-markdown table of a DataFrame (index included)."""
    def cell(value) -> str:
        if isinstance(value, float):
            return "—" if math.isnan(value) else format(value, floatfmt)
        return str(value)

    header = [df.index.name or ""] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in df.iterrows():
        lines.append("| " + " | ".join([cell(index)] + [cell(v) for v in row.to_list()]) + " |")
    return "\n".join(lines)


def _nested(long: pd.DataFrame, value: str) -> dict:
    out: dict = {}
    for row in long.itertuples():
        stage = f"stage{row.stage}"
        v = getattr(row, value)
        out.setdefault(stage, {}).setdefault(row.train, {})[row.test] = None if pd.isna(v) else float(v)
    return out


def _checks(long: pd.DataFrame) -> dict:
    def f1(stage: int, train: str, test: str) -> float:
        sel = long[(long.stage == stage) & (long.train == train) & (long.test == test)]
        return float(sel.f1.iloc[0]) if len(sel) and not pd.isna(sel.f1.iloc[0]) else float("nan")

    trains = sorted(set(long.train))
    two_stage = all(f1(2, t, "ODAEL") > f1(1, t, "ODAEL") for t in trains)
    odael_vs_mel = {f"stage{s}": f1(s, "ODAEL", "ODAEL") >= f1(s, "MEL", "ODAEL") for s in (1, 2)}
    return {"two_stage_above_first_stage_on_ODAEL": bool(two_stage),
            "ODAEL_trained_at_least_MEL_trained_on_ODAEL_labels": odael_vs_mel}


def write_report(plan, *, timings_s: dict) -> dict:
    """Evaluate the demo's result files and write ``report.md`` + figures; returns the summary."""
    import matplotlib

    matplotlib.use("Agg")
    from ccmct.data.stats import table1
    from ccmct.evaluation.tables import table4, table4_long

    figures = plan.out_dir / "figures"
    figures.mkdir(exist_ok=True)
    root = plan.root
    long = table4_long(root, plan.results_dir, variants=VARIANTS, min_threshold=MIN_THRESHOLD)
    if long.empty:
        from ccmct.errors import CcmctError

        raise CcmctError(f"{plan.results_dir}: no result files to evaluate")
    t1 = table1(root.path)
    sections = [
        "# ccmct demo report\n",
        f"Synthetic data set `{plan.data_preset}` (seed {plan.seed}) in `{root.path}`; preset `{plan.preset}`; "
        f"both stages trained on each of {', '.join(plan.train_variants)}; each detector's output is re-scored by "
        f"the cell classifier of the same label set ({_classifier_note(plan)}). Thresholds are chosen on "
        "the training slides "
        "(first maximum of micro F1) and applied unchanged to the test slides.\n",
        "## Table 1 (excerpt)\n", markdown_table(_table1_excerpt(t1)) + "\n",
        "## Table 4 — F1 on the test slides (paper matching)\n",
    ]
    for stage in sorted(set(long.stage)):
        sections.append(f"**Stage {stage}** (rows: trained on; columns: tested on)\n")
        cells = table4(long[long.stage == stage])
        if isinstance(cells.columns, pd.MultiIndex):
            cells.columns = [c[-1] for c in cells.columns]
        cells = cells[[v for v in VARIANTS if v in cells.columns]]
        sections.append(markdown_table(cells) + "\n")
    sections.append("### Paper vs strict one-to-one F1\n")
    cols = ["stage", "train", "test", "threshold", "train_f1", "tp", "fp", "fn", "f1", "strict_f1"]
    sections.append(markdown_table(long[cols].set_index("stage")) + "\n")
    sections.append("## F1 vs threshold (training slides)\n\n![curves](figures/threshold_curves.png)\n")
    _plot_curves(plan, figures / "threshold_curves.png")
    example = _plot_examples(plan, long, figures / "examples.png")
    sections.append(f"## Example detections ({example})\n\nGreen: true positive, red: false positive, "
                    "yellow: missed mitotic figure (strict one-to-one matching within 25 px).\n\n"
                    "![examples](figures/examples.png)\n")
    hotspot = _plot_hotspot(plan, long, figures / "hotspot.png")
    sections.append(f"## Mitotic-count hotspot\n\n{hotspot}\n\n![hotspot](figures/hotspot.png)\n")
    checks = _checks(long)
    sections.append("## Checks\n\n" + "\n".join(f"- {k}: {v}" for k, v in checks.items()) + "\n")
    sections.append("## Timings (s)\n\n" + "\n".join(f"- {k}: {v}" for k, v in timings_s.items()) + "\n")
    (plan.out_dir / "report.md").write_text("\n".join(sections))
    thresholds = {f"stage{r.stage}": {} for r in long.itertuples()}
    for r in long.drop_duplicates(["stage", "train"]).itertuples():
        thresholds[f"stage{r.stage}"][r.train] = float(r.threshold)
    return {"table4": _nested(long, "f1"), "table4_strict": _nested(long, "strict_f1"), "thresholds": thresholds,
            "timings_s": dict(timings_s), "checks": checks, "preset": plan.preset, "data_root": str(root.path)}


def _table1_excerpt(t1: pd.DataFrame) -> pd.DataFrame:
    keep = ["filename", "split"] + [c for c in t1.columns if c.startswith(("mitotic_figure_", "lookalike_"))]
    keep += ["tumor_area_mm2"] if "tumor_area_mm2" in t1 else []
    return t1[keep].set_index("filename")


def _results(plan, variant: str, split: str, stage: int) -> dict:
    from ccmct.data.results import read_results
    from ccmct.evaluation import restrict_results, slides_of_split

    return restrict_results(read_results(plan.result_path(variant, split, stage)), slides_of_split(plan.root, split))


def _plot_curves(plan, path: Path) -> None:
    import matplotlib.pyplot as plt

    from ccmct.evaluation import load_ground_truth, threshold_curve
    from ccmct.evaluation.figures import plot_threshold_curves

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, stage in zip(axes, (1, 2)):
        curves = {}
        for variant in plan.train_variants:
            results = _results(plan, variant, "train", stage)
            gt = load_ground_truth(plan.root.database(variant), slides=list(results))
            curves[f"{variant}"] = threshold_curve(gt, results, min_threshold=MIN_THRESHOLD[stage])
        plot_threshold_curves(curves, ax=ax)
        ax.set_title(f"stage {stage}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _best_variant(long: pd.DataFrame) -> tuple[str, float]:
    """The train variant with the best two-stage F1 on the ODAEL test labels (undefined F1 sorts last)."""
    row = long[(long.stage == 2) & (long.test == "ODAEL")].sort_values("f1", ascending=False,
                                                                       na_position="last").iloc[0]
    return row.train, float(row.threshold)


def _plot_examples(plan, long: pd.DataFrame, path: Path, per_kind: int = 4) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    from ccmct.data.slides import open_slide
    from ccmct.evaluation import load_ground_truth
    from ccmct.evaluation.f1 import detections_after_nms
    from ccmct.evaluation.matching import strict_pairs

    variant, threshold = _best_variant(long)
    results = _results(plan, variant, "test", 2)
    gt = load_ground_truth(plan.root.database("ODAEL"), slides=list(results))
    rng = np.random.default_rng(0)
    picks = []  # (slide, x, y, kind)
    for name, boxes in results.items():
        det = detections_after_nms(boxes, threshold, DETECTION_RADIUS_L0)
        det_xy = np.c_[(det[:, 0] + det[:, 2]) / 2, (det[:, 1] + det[:, 3]) / 2]
        d_idx, g_idx = strict_pairs(det_xy, gt[name], DETECTION_RADIUS_L0)
        fp = np.setdiff1d(np.arange(len(det_xy)), d_idx)
        fn = np.setdiff1d(np.arange(len(gt[name])), g_idx)
        picks += [(name, *det_xy[i], "TP") for i in d_idx] + [(name, *det_xy[i], "FP") for i in fp]
        picks += [(name, *gt[name][i], "FN") for i in fn]
    colours = {"TP": "lime", "FP": "red", "FN": "yellow"}
    fig, axes = plt.subplots(3, per_kind, figsize=(2.2 * per_kind, 7))
    for r, kind in enumerate(("TP", "FP", "FN")):
        pool = [p for p in picks if p[3] == kind]
        chosen = [pool[i] for i in rng.permutation(len(pool))[:per_kind]]
        for c in range(per_kind):
            ax = axes[r, c]
            ax.axis("off")
            if c >= len(chosen):
                continue
            name, x, y, _ = chosen[c]
            with open_slide(plan.root.slide_path(name)) as slide:
                patch = slide.read_l0(int(x) - 64, int(y) - 64, (128, 128))
            ax.imshow(patch)
            ax.add_patch(Circle((64, 64), DETECTION_RADIUS_L0, fill=False, color=colours[kind], lw=1.5))
            ax.set_title(f"{kind} {name[:6]}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"two-stage {variant}-trained model on the ODAEL test labels, threshold {threshold:.2f}"


def _plot_hotspot(plan, long: pd.DataFrame, path: Path) -> str:
    import matplotlib.pyplot as plt

    from ccmct.data.slides import open_slide
    from ccmct.evaluation import load_ground_truth, mitotic_count
    from ccmct.evaluation.f1 import detections_after_nms
    from ccmct.evaluation.figures import plot_mc_heatmap

    variant, threshold = _best_variant(long)
    results = _results(plan, variant, "test", 2)
    gt = load_ground_truth(plan.root.database("ODAEL"), slides=list(results))
    name = max(gt, key=lambda n: len(gt[n]))
    with open_slide(plan.root.slide_path(name)) as slide:
        mpp, extent = slide.mpp, slide.dimensions
    det = detections_after_nms(results[name], threshold, DETECTION_RADIUS_L0)
    det_xy = np.c_[(det[:, 0] + det[:, 2]) / 2, (det[:, 1] + det[:, 3]) / 2]
    true_mc = mitotic_count(gt[name], mpp=mpp, extent_l0=extent)
    pred_mc = mitotic_count(det_xy, mpp=mpp, extent_l0=extent)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    plot_mc_heatmap(true_mc, ax=axes[0], title=f"ground truth: MC = {true_mc.count}")
    plot_mc_heatmap(pred_mc, ax=axes[1], title=f"two-stage detections: MC = {pred_mc.count}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return (f"Slide `{name}` (most mitoses among the test slides): the 10-HPF window with the most mitotic "
            f"figures holds {true_mc.count} by the ground truth and {pred_mc.count} by the detections.")


def _classifier_note(plan) -> str:
    """How each second-stage classifier started and its test accuracy (from its config.json)."""
    from ccmct.models.classifier import load_classifier_config

    notes = []
    for variant in plan.train_variants:
        training = load_classifier_config(plan.classifier_dir(variant)).training
        accuracy = training.get("test_accuracy")
        accuracy = f", test accuracy {accuracy:.3f}" if isinstance(accuracy, (int, float)) else ""
        notes.append(f"{variant}: started from {training.get('start', 'an unknown start')}{accuracy}")
    return "; ".join(notes)
