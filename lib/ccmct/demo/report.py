"""Evaluation and ``report.md`` of ``ccmct demo``: Table 1 excerpt, Table 4 cells, F1 curves, example
detections, a mitotic-count hotspot; ``summary.json`` with the table, thresholds, timings and checks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ccmct.atomicio import atomic_write_text
from ccmct.config.dataset import DETECTION_RADIUS_L0
from ccmct.pipeline.study import MIN_THRESHOLD  # re-exported: the threshold-search floor per stage
from ccmct.types import VARIANTS


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
    from ccmct.demo.seeds import stage_key

    out: dict = {}
    for row in long.itertuples():
        v = getattr(row, value)
        out.setdefault(stage_key(row.stage), {}).setdefault(row.train, {})[row.test] = None if pd.isna(v) else float(v)
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
    """Evaluate the demo's result files (every training seed) and write ``report.md`` + figures; returns the
    summary (docs/contracts.md, ``ccmct demo``)."""
    import matplotlib

    matplotlib.use("Agg")
    from ccmct.data.stats import table1
    from ccmct.demo.seeds import evaluate_seed, seed_summary

    figures = plan.layout.figures_dir
    figures.mkdir(exist_ok=True)
    root = plan.root
    evaluations = {seed: evaluate_seed(plan.for_seed(seed)) for seed in plan.seeds}
    long = evaluations[plan.seed].long
    fast_rows = evaluations[plan.seed].fast_long
    every = pd.concat([long, fast_rows], ignore_index=True) if len(fast_rows) else long
    if long.empty:
        from ccmct.errors import CcmctError

        raise CcmctError(f"{plan.results_dir}: no result files to evaluate")
    multi = seed_summary(evaluations)
    t1 = table1(root.path)
    n_seeds = len(plan.seeds)
    seeds_note = (f"training seed {plan.seed}" if n_seeds == 1 else
                  f"{n_seeds} training seeds ({', '.join(map(str, plan.seeds))}) on the same data")
    sections = [
        "# ccmct demo report\n",
        f"Synthetic data set `{plan.data_preset}` (seed {plan.seed}) in `{root.path}`; preset `{plan.preset}`; "
        f"{seeds_note}; "
        f"both stages trained on each of {', '.join(plan.variants)}; each detector's output is re-scored by "
        f"the cell classifier of the same label set ({_classifier_note(plan)}). "
        + (_fast_note(plan) if plan.fast else "")
        + "Thresholds are chosen on "
        "the training slides "
        "(first maximum of micro F1) and applied unchanged to the test slides. Intervals are 95 % slide-bootstrap "
        "intervals (docs/evaluation.md): they cover slide-to-slide variation only; the spread over training "
        "seeds is the ± sd.\n",
        "## Table 1 (excerpt)\n", markdown_table(_table1_excerpt(t1)) + "\n",
    ]
    sections += _failed_section(multi["failed_slides"])
    sections += _table4_sections(long, multi, n_seeds, plan.second_stage_combine)
    sections.append("## Effects of the paper (on the ODAEL test labels)\n")
    sections.append(_effects_table(multi["effects"]) + "\n")
    fast = {}
    if plan.fast:
        from ccmct.pipeline.fast import fast_comparison, fast_markdown

        fast = fast_comparison(plan, {seed: e.counts for seed, e in evaluations.items()}, timings_s)
        sections.append("## Fast mode vs the paper's two-stage pipeline (docs/fast_mode.md)\n")
        sections.append(fast_markdown(fast) + "\n")
    sections.append(f"### Paper vs strict one-to-one F1 (training seed {plan.seed})\n")
    cols = ["stage", "train", "test", "threshold", "train_f1", "tp", "fp", "fn", "f1", "strict_f1"]
    sections.append(markdown_table(every[cols].set_index("stage")) + "\n")
    sections.append(f"## F1 vs threshold (training slides, training seed {plan.seed})\n\n"
                    "![curves](figures/threshold_curves.png)\n")
    _plot_curves(plan, figures / "threshold_curves.png")
    example = _plot_examples(plan, long, figures / "examples.png")
    sections.append(f"## Example detections ({example})\n\nGreen: true positive, red: false positive, "
                    "yellow: missed mitotic figure (strict one-to-one matching within 25 px).\n\n"
                    "![examples](figures/examples.png)\n")
    hotspot, drawn = _plot_hotspot(plan, long, figures / "hotspot.png")
    sections.append(f"## Mitotic-count hotspot\n\n{hotspot}\n" + ("\n![hotspot](figures/hotspot.png)\n" if drawn else ""))
    correlation, drawn = _plot_correlation(plan, long, figures / "count_correlation.png")
    sections.append(f"## Mitotic count per test slide\n\n{correlation}\n"
                    + ("\n![count correlation](figures/count_correlation.png)\n" if drawn else ""))
    sections.append("## Viewer\n\n[viewer/index.html](viewer/index.html) (written after this report; opens from the file "
                    "system in any browser): the test slides with the ODAEL-trained detector's stage 1 and stage 2 "
                    "detections at the thresholds above, marked TP / FP, the missed mitoses (FN), the ground truth "
                    "by class and the true and predicted 10-HPF hotspots (docs/viewer.md).\n")
    checks = _checks(long)
    sections.append("## Checks\n\n" + "\n".join(f"- {k}: {v}" for k, v in checks.items()) + "\n")
    sections.append("## Timings (s)\n\n" + "\n".join(f"- {k}: {v}" for k, v in timings_s.items()) + "\n")
    atomic_write_text(plan.layout.report, "\n".join(sections))
    from ccmct.demo.seeds import stage_key

    thresholds = {stage_key(r.stage): {} for r in every.itertuples()}
    for r in every.drop_duplicates(["stage", "train"]).itertuples():
        thresholds[stage_key(r.stage)][r.train] = float(r.threshold)
    summary = {"table4": _nested(every, "f1"), "table4_strict": _nested(every, "strict_f1"),
               "thresholds": thresholds, "timings_s": dict(timings_s), "checks": checks, "preset": plan.preset,
               "second_stage_score": plan.second_stage_combine, "data_root": str(root.path), "data_seed": plan.seed,
               **multi}
    if plan.fast:
        summary["fast"] = fast
    return summary


def _fmt(value, fmt: str = ".3f") -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def _interval(ci) -> str:
    return "[—]" if not ci or ci[0] is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


STAGE2_SCORE = {"replace": "score: the classifier's P(mitotic figure), as the paper",
                "geometric_mean": "score: sqrt(P(mitotic figure) x stage-1 score), this preset's second stage "
                                  "(docs/benchmarks.md)"}


def _table4_sections(long: pd.DataFrame, multi: dict, n_seeds: int, combine: str = "replace") -> list[str]:
    """Table 4 per stage: one seed -> F1 [interval] (slides); several -> mean ± sd (seeds, slides), then
    every seed's F1 with its interval. ``combine``: the second-stage score (named in the stage-2 title)."""
    out = ["## Table 4 — F1 on the test slides (paper matching)\n"]
    mean, sd, n_slides = multi["table4_mean"], multi["table4_sd"], multi["table4_n_slides"]
    for key in mean:
        title = ("**Fast mode** (candidate model at reduced resolution, confirmed by the cell classifier of the "
                 "same label set; rows: trained on; columns: tested on)\n" if key == "fast" else
                 f"**Stage 2** ({STAGE2_SCORE[combine]}; rows: trained on; columns: tested on)\n" if key == "stage2"
                 else f"**Stage {key[-1]}** (rows: trained on; columns: tested on)\n")
        out.append(title)
        rows = []
        for train, cells in mean.get(key, {}).items():
            row = {"train": train}
            for test in [v for v in VARIANTS if v in cells]:
                n = n_slides[key][train][test]
                if n_seeds == 1:
                    ci = next(iter(multi["table4_ci"].values()))[key][train][test]
                    row[test] = f"{_fmt(cells[test])} {_interval(ci)} ({_slides(n)})"
                else:
                    row[test] = f"{_fmt(cells[test])} ± {_fmt(sd[key][train][test])} ({n_seeds} seeds, {_slides(n)})"
            rows.append(row)
        out.append(markdown_table(pd.DataFrame(rows).set_index("train")) + "\n")
    if n_seeds > 1:
        out.append("### Every seed (F1 with its 95 % slide-bootstrap interval)\n")
        rows = []
        for seed, table in multi["per_seed"].items():
            for key, trains in table.items():
                for train, cells in trains.items():
                    for test, f1 in cells.items():
                        ci = multi["table4_ci"][seed][key][train][test]
                        rows.append({"seed": seed, "stage": "fast" if key == "fast" else key[-1],
                                     "train": train, "test": test,
                                     "threshold": multi["per_seed_thresholds"][seed][key][train],
                                     "F1": f"{_fmt(f1)} {_interval(ci)}"})
        out.append(markdown_table(pd.DataFrame(rows).set_index("seed")) + "\n")
    return out


def _slides(n: int) -> str:
    return f"{n} slide" if n == 1 else f"{n} slides"


def _effects_table(effects: list[dict]) -> str:
    """The paper's two effects: mean difference, paired interval over slides and seeds, verdict."""
    if not effects:
        return "No effect could be evaluated (a result file is missing)."
    rows = [{"effect": e["effect"], "A": e["a"], "B": e["b"], "F1 A": _fmt(e["f1_a"]), "F1 B": _fmt(e["f1_b"]),
             "mean A − B": _fmt(e["delta_f1"], "+.3f"), "95 % paired interval": _interval(e["delta_f1_ci"]),
             "A wins": _fmt(e["a_wins"], ".0%"), "seeds x slides": f"{e['n_seeds']} x {e['n_slides']}",
             "verdict": e["verdict"]} for e in effects]
    return (markdown_table(pd.DataFrame(rows).set_index("effect")) + "\n\n"
            "Paired bootstrap over the test slides (the same resamples for A, B and every seed; the statistic is "
            "the mean over seeds of F1(A) − F1(B)). Verdict \"holds\" when the whole interval lies above 0, "
            "else \"not shown\".")


def _failed_section(failed: dict) -> list[str]:
    """Slides that a result file does not hold (failed or pending): listed, never silently dropped."""
    if not failed:
        return []
    lines = ["## Slides missing from the results\n",
             "These slides are NOT in the evaluation below (a rerun of `ccmct demo` retries them):\n"]
    for seed, files in failed.items():
        for file, slides in files.items():
            lines += [f"- seed {seed}, `{file}`: `{name}`: {reason}" for name, reason in slides.items()]
    return ["\n".join(lines) + "\n"]


def _table1_excerpt(t1: pd.DataFrame) -> pd.DataFrame:
    keep = ["filename", "split"] + [c for c in t1.columns if c.startswith(("mitotic_figure_", "lookalike_"))]
    keep += ["tumor_area_mm2"] if "tumor_area_mm2" in t1 else []
    return t1[keep].set_index("filename")


def _results(plan, variant: str, split: str, stage: int) -> dict:
    from ccmct.data.results import read_results
    from ccmct.evaluation import restrict_results

    return restrict_results(read_results(plan.result_path(variant, split, stage)), plan.root.slides(split))


def _plot_curves(plan, path: Path) -> None:
    import matplotlib.pyplot as plt

    from ccmct.evaluation import load_ground_truth, threshold_curve
    from ccmct.evaluation.figures import plot_threshold_curves

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, stage in zip(axes, (1, 2)):
        curves = {}
        for variant in plan.variants:
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


def _test_points(plan, long: pd.DataFrame):
    """The best two-stage model's test detections (centres after NMS, level-0 px) and the ODAEL ground truth."""
    from ccmct.evaluation import load_ground_truth
    from ccmct.evaluation.f1 import detections_after_nms

    variant, threshold = _best_variant(long)
    results = _results(plan, variant, "test", 2)
    gt = load_ground_truth(plan.root.database("ODAEL"), slides=list(results))
    det = {}
    for name, boxes in results.items():
        kept = detections_after_nms(boxes, threshold, DETECTION_RADIUS_L0)
        det[name] = np.c_[(kept[:, 0] + kept[:, 2]) / 2, (kept[:, 1] + kept[:, 3]) / 2]
    return variant, threshold, results, gt, det


def _plot_hotspot(plan, long: pd.DataFrame, path: Path) -> tuple[str, bool]:
    """Heat maps of the 10-HPF count on the largest test slide; (text, drawn). Not drawn (the reason is the
    text) when the slide fits in one window (:func:`ccmct.evaluation.figures.hotspot_refusal`)."""
    import matplotlib.pyplot as plt

    from ccmct.data.slides import open_slide
    from ccmct.evaluation import mitotic_count
    from ccmct.evaluation.figures import FigureRefused, plot_mc_heatmap

    variant, threshold, results, gt, det = _test_points(plan, long)
    sizes = {}
    for name in gt:
        with open_slide(plan.root.slide_path(name)) as slide:
            sizes[name] = (slide.dimensions, slide.mpp)
    name = max(gt, key=lambda n: (sizes[n][0][0] * sizes[n][0][1], len(gt[n])))
    extent, mpp = sizes[name]
    true_mc = mitotic_count(gt[name], mpp=mpp, extent_l0=extent)
    pred_mc = mitotic_count(det[name], mpp=mpp, extent_l0=extent)
    path.unlink(missing_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    try:
        plot_mc_heatmap(true_mc, ax=axes[0], title=f"ground truth: MC = {true_mc.count}", slide_size_l0=extent)
        plot_mc_heatmap(pred_mc, ax=axes[1], title=f"two-stage detections: MC = {pred_mc.count}",
                        slide_size_l0=extent)
    except FigureRefused as refused:
        plt.close(fig)
        return f"Slide `{name}` ({extent[0]} x {extent[1]} px): {refused}.", False
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    offset_um = mpp * float(np.hypot(true_mc.x_l0 - pred_mc.x_l0, true_mc.y_l0 - pred_mc.y_l0))
    windows = extent[0] * extent[1] / (true_mc.width_l0 * true_mc.height_l0)
    return (f"Slide `{name}` ({extent[0]} x {extent[1]} px, {windows:.1f} 10-HPF windows of "
            f"{true_mc.width_l0} x {true_mc.height_l0} px; the largest test slide): the 10-HPF window with the "
            f"most mitotic figures holds {true_mc.count} by the ground truth and {pred_mc.count} by the "
            f"{variant}-trained two-stage detections (threshold {threshold:.2f}); the predicted hotspot lies "
            f"{offset_um:.0f} µm from the true one (top-left corners).", True)


def _plot_correlation(plan, long: pd.DataFrame, path: Path) -> tuple[str, bool]:
    """Predicted vs true 10-HPF mitotic count over the test slides; (text, drawn), refused when Pearson r is
    undefined (:func:`ccmct.evaluation.figures.count_correlation_refusal`)."""
    import matplotlib.pyplot as plt

    from ccmct.evaluation.figures import FigureRefused, plot_count_correlation
    from ccmct.evaluation.mitotic_count import count_correlation, mitotic_count_table, slide_mpps

    variant, threshold, results, gt, _ = _test_points(plan, long)
    table = mitotic_count_table(gt, results, threshold=threshold, mpp=slide_mpps(plan.root, list(results)))
    path.unlink(missing_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    try:
        plot_count_correlation(table, ax=ax)
    except FigureRefused as refused:
        plt.close(fig)
        return f"{refused}.", False
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    cells = table[["true_count", "predicted_count"]].rename_axis("slide")
    return (f"{variant}-trained two-stage model, threshold {threshold:.2f}; Pearson r = "
            f"{count_correlation(table):.3f} over {len(table)} test slides.\n\n{markdown_table(cells)}", True)


def _fast_note(plan) -> str:
    """The fast row in the report's header: its candidate models (from their config.json)."""
    from ccmct.models.io import read_config_document

    notes = []
    for variant in plan.variants:
        if (plan.candidate_dir(variant) / "config.json").exists():
            config = read_config_document(plan.candidate_dir(variant), kind="candidate")["config"]
            notes.append(f"{variant}: {config['downsample']}x reduced, recall-tuned candidate threshold "
                         f"{config['threshold']:.2f}")
    return ("The fast row: a candidate model per label set (same preset and seed; "
            + ("; ".join(notes) or "not trained yet")
            + "), its candidates confirmed by the cell classifier of the same label set (docs/fast_mode.md). ")


def _classifier_note(plan) -> str:
    """How each second-stage classifier started and its test accuracy (from its config.json)."""
    from ccmct.models.classifier import load_classifier_config

    notes = []
    for variant in plan.variants:
        training = load_classifier_config(plan.classifier_dir(variant)).training
        accuracy = training.get("test_accuracy")
        accuracy = f", test accuracy {accuracy:.3f}" if isinstance(accuracy, (int, float)) else ""
        notes.append(f"{variant}: started from {training.get('start', 'an unknown start')}{accuracy}")
    return "; ".join(notes)
