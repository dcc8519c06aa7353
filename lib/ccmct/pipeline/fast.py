"""The fast row of a study (``Study.fast``; docs/fast_mode.md): one more row of Table 4 and of the timings.

- :func:`fast_long`: Table 4 cells of the fast pipeline (a label set's candidate model, confirmed by that label
  set's cell classifier): the threshold is chosen on the *training* slides' fast results against the label
  set's own labels (the paper's rule, floor :data:`ccmct.pipeline.study.MIN_THRESHOLD_FAST`), then the test
  slides are scored against every label set — :func:`ccmct.evaluation.tables.table4_long` on the
  ``Fast-<variant>-<split>.npz`` files, stage ``"fast"``.
- :func:`fast_comparison`: per label set, the paired slide-bootstrap difference fast − stage 2 on the ODAEL
  test labels (:func:`ccmct.evaluation.bootstrap.paired_bootstrap`; with several training seeds over slides
  and seeds, like the demo's effects), the candidate stage's recall of the ground-truth mitoses (every
  candidate the classifier saw, any score, within 25 px), and the speed-up: the wall time of the paper path
  on the test slides (stage-1 inference + stage-2 re-scoring) over the fast path's, both from ``timings.json``.

Used by the demo's report (:mod:`ccmct.demo.report`) and ``ccmct reproduce``'s (:mod:`ccmct.pipeline.report`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ccmct.evaluation.bootstrap import SlideCounts, paired_bootstrap
from ccmct.pipeline.layout import fast_result_filename
from ccmct.pipeline.study import MIN_THRESHOLD, MIN_THRESHOLD_FAST, Study
from ccmct.types import VARIANTS

FAST = "fast"
"""The stage key of the fast row (``table4["fast"]``, ``table4_long``'s ``stage`` column)."""
COMPARE_TEST_LABELS = "ODAEL"
"""Label set the fast row is compared with stage 2 on (the paper's headline column, as the demo's effects)."""
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0

__all__ = ["BOOTSTRAP_RESAMPLES", "COMPARE_TEST_LABELS", "FAST", "common_slides", "comparison_counts",
           "fast_comparison", "fast_long", "fast_markdown", "fast_timing_names", "mean_finite", "wall_times"]


def _fast_name(variant: str, split: str, stage) -> str:
    return fast_result_filename(variant, split)


def fast_long(study: Study, *, slide_counts: bool = False) -> pd.DataFrame:
    """Table 4 rows of the fast result files of one seed's study (``Study.for_seed``): the columns of
    :func:`ccmct.evaluation.tables.table4_long`, ``stage`` = ``"fast"``; empty without fast result files."""
    from ccmct.evaluation.tables import table4_long

    return table4_long(study.root, study.results_dir, variants=VARIANTS, stages=(FAST,),
                       min_threshold={FAST: MIN_THRESHOLD_FAST}, slide_counts=slide_counts, result_name=_fast_name)


def comparison_counts(study: Study) -> dict[tuple, SlideCounts]:
    """Per-slide test counts of stage 2 and of the fast row of one seed's study on the comparison labels:
    ``{(2 or "fast", train, COMPARE_TEST_LABELS): SlideCounts}`` (each at its own training-slide threshold)."""
    from ccmct.evaluation.tables import table4_long

    stage2 = table4_long(study.root, study.results_dir, variants=VARIANTS, stages=(2,),
                         min_threshold=MIN_THRESHOLD, slide_counts=True)
    out = {}
    for long in (stage2, fast_long(study, slide_counts=True)):
        for row in long.itertuples():
            if row.test == COMPARE_TEST_LABELS and row.train in study.variants:
                out[(row.stage, row.train, row.test)] = row.slide_counts
    return out


def common_slides(items: list[SlideCounts]) -> list[SlideCounts]:
    """The counts restricted to the slides all of them hold (a slide failed in one result file drops out of a
    paired comparison; the reports list it under the missing slides)."""
    slides = [s for s in items[0].slides if all(s in item.slides for item in items)]
    out = []
    for item in items:
        index = {name: i for i, name in enumerate(item.slides)}
        order = np.array([index[s] for s in slides], np.int64)
        out.append(SlideCounts(tuple(slides), item.tp[order], item.fp[order], item.fn[order]))
    return out


def fast_timing_names(variant: str, prefix: str = "") -> dict[str, list[str]]:
    """The ``timings.json`` step names of each path on the test slides: ``{"paper": [stage-1 inference,
    stage-2 re-scoring], "fast": [fast inference]}`` (``prefix``: ``seed <s>: `` for seeds after the first)."""
    return {"paper": [f"{prefix}infer {variant} test", f"{prefix}stage 2 {variant} test"],
            "fast": [f"{prefix}fast inference {variant} test"]}


def wall_times(timings_s: dict, variant: str, seeds, first_seed: int) -> dict:
    """Wall time of the paper path and of the fast path on the test slides, summed over the seeds whose
    ``timings.json`` holds all three steps; ``wall_ratio`` = paper / fast (None when no seed has them all)."""
    paper = fast = 0.0
    counted = []
    for seed in seeds:
        names = fast_timing_names(variant, "" if seed == first_seed else f"seed {seed}: ")
        if all(timings_s.get(n) is not None for n in names["paper"] + names["fast"]):
            paper += sum(float(timings_s[n]) for n in names["paper"])
            fast += sum(float(timings_s[n]) for n in names["fast"])
            counted.append(int(seed))
    if not counted:
        return {"paper_s": None, "fast_s": None, "wall_ratio": None, "seeds": []}
    return {"paper_s": round(paper, 1), "fast_s": round(fast, 1),
            "wall_ratio": paper / fast if fast > 0 else None, "seeds": counted}


def candidate_recall_of(study: Study, variant: str) -> dict | None:
    """Candidate recall of one seed's fast test results on the comparison labels
    (:func:`ccmct.evaluation.fast_vs_paper.candidate_recall`: every row the classifier scored, any score)."""
    from ccmct.data.results import read_results
    from ccmct.evaluation import load_ground_truth, restrict_results
    from ccmct.evaluation.fast_vs_paper import candidate_recall

    path, db = study.fast_result_path(variant, "test"), study.root.database(COMPARE_TEST_LABELS)
    if not (path.exists() and db.exists()):
        return None
    results = restrict_results(read_results(path), study.root.slides("test"))
    return candidate_recall(load_ground_truth(db, slides=list(results)), results)


def mean_finite(values) -> float | None:
    """Mean of the defined values (None when none is)."""
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def fast_comparison(study: Study, counts: dict[int, dict[tuple, SlideCounts]], timings_s: dict) -> dict:
    """The fast row's comparison part of ``summary.json`` (``fast``).

    Args:
        study: the study (all its seeds).
        counts: seed -> per-slide test counts keyed ``(stage, train, test)`` holding at least stage 2 and
            ``"fast"`` on :data:`COMPARE_TEST_LABELS` (the demo's per-seed evaluation, or
            :func:`comparison_counts`).
        timings_s: the study's ``timings.json``.

    Returns:
        ``{"test", "variant", "f1_fast", "f1_stage2", "delta_f1", "delta_f1_ci", "fast_wins", "n_seeds",
        "n_slides", "candidate_recall", "wall_ratio", "paper_s", "fast_s", "per_variant": {variant: the same}}``;
        the top-level values are those of the headline label set (ODAEL when trained, else the last one).
        Empty when no label set has both rows.
    """
    per_variant = {}
    for variant in study.variants:
        a_key, b_key = (FAST, variant, COMPARE_TEST_LABELS), (2, variant, COMPARE_TEST_LABELS)
        pairs = [(c[a_key], c[b_key]) for c in counts.values() if a_key in c and b_key in c]
        if not pairs:
            continue
        common = common_slides([item for pair in pairs for item in pair])
        fast_list, paper_list = common[0::2], common[1::2]
        if common[0].slides:
            paired = paired_bootstrap(fast_list, paper_list, n_resamples=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED)
        else:  # every test slide failed somewhere: nothing to pair
            paired = {"delta_f1": None, "delta_f1_ci": [None, None], "a_wins": None, "n_seeds": len(pairs),
                      "n_slides": 0}
        recalls = [r for r in (candidate_recall_of(study.for_seed(s), variant) for s in counts) if r]
        found, total = sum(r["found"] for r in recalls), sum(r["total"] for r in recalls)
        wall = wall_times(timings_s, variant, list(counts), study.seed)
        per_variant[variant] = {
            "f1_fast": mean_finite(c.scores()[0] for c in fast_list),
            "f1_stage2": mean_finite(c.scores()[0] for c in paper_list),
            "delta_f1": paired["delta_f1"], "delta_f1_ci": paired["delta_f1_ci"], "fast_wins": paired["a_wins"],
            "n_seeds": paired["n_seeds"], "n_slides": paired["n_slides"],
            "candidate_recall": found / total if total else None, "candidates_found": found,
            "mitoses": total, "candidates": sum(r["candidates"] for r in recalls),
            "wall_ratio": wall["wall_ratio"], "paper_s": wall["paper_s"], "fast_s": wall["fast_s"],
            "timed_seeds": wall["seeds"]}
    if not per_variant:
        return {}
    headline = COMPARE_TEST_LABELS if COMPARE_TEST_LABELS in per_variant else list(per_variant)[-1]
    return {"test": COMPARE_TEST_LABELS, "variant": headline, **per_variant[headline], "per_variant": per_variant}


def fast_markdown(fast: dict) -> str:
    """The fast row's comparison as a markdown table with a short explanation (both reports)."""
    def num(v, spec=".3f") -> str:
        return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)

    def interval(ci) -> str:
        return "[—]" if not ci or ci[0] is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"

    if not fast:
        return "No fast row (its result files or stage 2's are missing)."
    header = ["trained on", "F1 fast", "F1 stage 2", "fast − stage 2", "95 % paired interval", "fast wins",
              "seeds x slides", "candidate recall", "paper path s", "fast path s", "speed-up"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant, r in fast["per_variant"].items():
        recall = (f"{num(r['candidate_recall'], '.1%')} ({r['candidates_found']} of {r['mitoses']}, "
                  f"{r['candidates']} candidates)")
        cells = [variant, num(r["f1_fast"]), num(r["f1_stage2"]), num(r["delta_f1"], "+.3f"),
                 interval(r["delta_f1_ci"]), num(r["fast_wins"], ".0%"), f"{r['n_seeds']} x {r['n_slides']}",
                 recall, num(r["paper_s"], ".1f"), num(r["fast_s"], ".1f"),
                 "—" if r["wall_ratio"] is None else f"{r['wall_ratio']:.1f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return ("\n".join(lines) + "\n\n"
            f"On the {fast['test']} test labels, each pipeline at the threshold chosen on its training slides. "
            "Paired bootstrap over the test slides (the same resamples for both pipelines and every seed; the "
            "statistic is the mean over seeds of F1(fast) − F1(stage 2)). Candidate recall: ground-truth mitoses "
            "with a candidate within 25 px (every candidate the classifier scored, any score). Paper path: "
            "stage-1 inference + stage-2 re-scoring of the test slides; fast path: fast inference of the test "
            "slides (screening + confirming); wall times from timings.json, summed over the timed seeds.")
