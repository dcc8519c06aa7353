"""``STUDY/report.md`` + the summary of ``ccmct reproduce``: every number beside the paper's published value
(:mod:`ccmct.config.paper_values`)."""

from __future__ import annotations

import json
import math

import pandas as pd

from ccmct.atomicio import atomic_write_text
from ccmct.config.paper_values import PAPER_TABLE3, PAPER_TABLE3_ACCURACY, PAPER_TABLE4, PAPER_TOTALS
from ccmct.pipeline.study import MIN_THRESHOLD, Study
from ccmct.types import VARIANTS


def _md(df: pd.DataFrame) -> str:
    def cell(v) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "—"
        if isinstance(v, float):  # counts come back as floats from joined frames: whole numbers print as such
            return str(int(v)) if v.is_integer() and abs(v) > 1 else f"{v:.3f}"
        return str(v)
    header = [df.index.name or ""] + [str(c) for c in df.columns]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows += ["| " + " | ".join([cell(i)] + [cell(v) for v in r]) + " |" for i, r in zip(df.index, df.itertuples(index=False))]
    return "\n".join(rows)


def _none(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def table1_part(study: Study) -> dict:
    """Mitotic figures and look-alikes per label set (all slides) beside the paper's totals (Table 1 / 6)."""
    from ccmct.data.stats import table1

    t1 = table1(study.root.path)
    out = {}
    for v in study.variants:
        if f"mitotic_figure_{v}" in t1:
            out[v] = {k: {"ours": int(t1[f"{k}_{v}"].sum()) if f"{k}_{v}" in t1 else None,
                          "paper": PAPER_TOTALS[v][k]} for k in ("mitotic_figure", "lookalike")}
    return {"n_slides": int(len(t1)), "counts": out}


def table3_part(study: Study) -> dict:
    """Each label set's classifier confusion matrix (test slides) and accuracy beside Table 3's."""
    out = {}
    for v in study.variants:
        d = study.classifier_dir(v)
        if (d / "confusion.csv").exists():
            conf = pd.read_csv(d / "confusion.csv", index_col=0)
            acc = json.loads((d / "metrics.json").read_text()).get("test_accuracy")
            out[v] = {"confusion": conf.to_numpy().astype(int).tolist(), "accuracy": _none(acc)}
    return {"ours": out, "paper": {"confusion": [list(r) for r in PAPER_TABLE3], "accuracy": PAPER_TABLE3_ACCURACY}}


def table4_part(study: Study) -> dict:
    """Thresholds chosen on the training slides, F1 on the test slides, beside Table 4."""
    from ccmct.evaluation.tables import table4_long

    # rows: the label sets trained on (their result files); columns: every label set whose database is there
    long = table4_long(study.root, study.results_dir, variants=VARIANTS, min_threshold=MIN_THRESHOLD)
    cells = {}
    for r in long.itertuples():
        cells.setdefault(f"stage{r.stage}", {}).setdefault(r.train, {})[r.test] = {
            "f1": _none(float(r.f1)), "threshold": float(r.threshold),
            "paper": PAPER_TABLE4[f"stage{r.stage}"][r.train][r.test]}
    if study.fast:  # one more row (the paper has none: its value is None), thresholds by the same rule
        from ccmct.pipeline.fast import FAST, fast_long

        for r in fast_long(study).itertuples():
            cells.setdefault(FAST, {}).setdefault(r.train, {})[r.test] = {
                "f1": _none(float(r.f1)), "threshold": float(r.threshold), "paper": None}
    return cells


def fast_part(study: Study, timings_s: dict) -> dict:
    """The fast row against stage 2 of the same label set on the ODAEL test labels, over every seed's test
    slides (:func:`ccmct.pipeline.fast.fast_comparison`), the candidate recall and the speed-up."""
    from ccmct.pipeline.fast import comparison_counts, fast_comparison

    counts = {seed: comparison_counts(study.for_seed(seed)) for seed in study.seeds}
    return fast_comparison(study, counts, timings_s)


def ablation_part(study: Study) -> dict:
    """Fig. 5 (drawn to ``figures/figure5.png``) and Table 5: every run's dual-stage test F1 and training
    mitotic figures beside the paper's."""
    import matplotlib

    matplotlib.use("Agg")
    from ccmct.evaluation.ablation import compare_with_paper, load_runs, plot_figure5

    runs = load_runs(study.layout.ablation_runs_dir)
    layout = study.layout
    layout.figures_dir.mkdir(parents=True, exist_ok=True)
    fig = plot_figure5(runs, reference=True)  # the paper's points as the dashed reference
    fig.savefig(layout.figure5, dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    cmp = compare_with_paper(runs)
    rows = {str(n): {k: _none(float(v)) for k, v in r.items()} for n, r in cmp.iterrows()}
    ours = {str(r["name"]): {"f1_stage2": _none(float(r["f1_stage2"])), "train_mitoses": int(r["train_mitoses"])}
            for _, r in runs.iterrows()}
    return {"runs": ours, "vs_paper": rows, "figure5": str(layout.figure5.relative_to(layout.out))}


def write_study_report(study: Study, *, timings_s: dict) -> dict:
    """Evaluate the study folder and write ``report.md``; returns the summary (``summary.json``)."""
    summary = {"data_root": str(study.root.path), "preset": study.preset,
               "second_stage_score": study.second_stage_combine, "variants": list(study.variants),
               "seeds": list(study.seeds), "table1": table1_part(study), "table3": table3_part(study),
               "table4": table4_part(study), "timings_s": dict(timings_s)}
    if study.fast:
        summary["fast"] = fast_part(study, timings_s)
    if study.ablation:
        summary["ablation"] = ablation_part(study)
    atomic_write_text(study.layout.report, _markdown(summary))
    return summary


def _markdown(s: dict) -> str:
    out = ["# ccmct reproduce report\n",
           f"Data root `{s['data_root']}`, preset `{s['preset']}`, label sets {', '.join(s['variants'])}, "
           f"training seed(s) {', '.join(map(str, s['seeds']))} (first seed's results below). Paper values: "
           "Bertram et al., Sci Data 2019 (Tables 1/6, 3, 4; Fig. 5). Thresholds are chosen on the training "
           "slides and applied unchanged to the test slides.\n",
           f"## Table 1 — annotations ({s['table1']['n_slides']} slides; paper: 32)\n"]
    t1 = pd.DataFrame({f"{v} {k}": {"ours": c[k]["ours"], "paper": c[k]["paper"]}
                       for v, c in s["table1"]["counts"].items() for k in c}).T.rename_axis("label set, class")
    out.append(_md(t1) + "\n")
    out.append("## Table 3 — cell classifier on the test cells (rows true, columns predicted: MF, LA, Gr, TC)\n")
    out.append(f"Paper: accuracy {s['table3']['paper']['accuracy']:.4f}, matrix {s['table3']['paper']['confusion']}\n")
    for v, r in s["table3"]["ours"].items():
        out.append(f"- {v}: accuracy {_none(r['accuracy']) if r['accuracy'] is None else format(r['accuracy'], '.4f')}, "
                   f"matrix {r['confusion']}")
    out.append("\n## Table 4 — F1 on the test slides (ours / paper)\n")
    if s.get("second_stage_score", "replace") != "replace":
        out.append(f"Stage 2 scores with `{s['second_stage_score']}` (sqrt(P(mitotic figure) x stage-1 score), the "
                   f"`{s['preset']}` preset's second stage; the paper's is P(mitotic figure) alone: docs/benchmarks.md)"
                   ".\n")
    for stage, rows in s["table4"].items():
        df = pd.DataFrame({train: {f"{test} as test": f"{'—' if c['f1'] is None else format(c['f1'], '.3f')} / "
                                   f"{'—' if c['paper'] is None else format(c['paper'], '.3f')} "
                                   f"(thr {c['threshold']:.2f})" for test, c in cells.items()}
                           for train, cells in rows.items()}).T.rename_axis(f"{stage}: trained on")
        out.append(_md(df) + "\n")
    if "fast" in s:
        from ccmct.pipeline.fast import fast_markdown

        out.append("## Fast mode vs the paper's two-stage pipeline (docs/fast_mode.md)\n")
        out.append("The fast row above: a candidate model per label set at 4x reduced resolution, its candidates "
                   "confirmed by the cell classifier of the same label set (the paper has no such row).\n")
        out.append(fast_markdown(s["fast"]) + "\n")
    if "ablation" in s:
        out.append("## Ablation — Fig. 5 and Table 5 (dual-stage test F1, training mitotic figures)\n")
        out.append(f"![Fig. 5]({s['ablation']['figure5']})\n")
        df = pd.DataFrame(s["ablation"]["runs"]).T.rename_axis("run")
        paper = pd.DataFrame(s["ablation"]["vs_paper"]).T
        if not paper.empty:
            df = df.join(paper[[c for c in paper.columns if c.startswith("paper")]])
        out.append(_md(df) + "\n")
    out.append("## Timings (s)\n\n" + "\n".join(f"- {k}: {v}" for k, v in s["timings_s"].items()) + "\n")
    return "\n".join(out)
