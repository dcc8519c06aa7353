"""The demo over several training seeds: per-seed evaluation with per-slide counts, Table 4 mean and sd,
slide-bootstrap intervals, and the paper's two effects as paired comparisons (docs/evaluation.md).

The paper's effects (Bertram et al. 2019, Table 4): the second stage improves on the first stage for each
detector, and training on ODAEL is at least as good as training on MEL in each stage. Each is tested on the
ODAEL test labels with :func:`ccmct.evaluation.bootstrap.paired_bootstrap` over the test slides and all
training seeds; it "holds" when the whole 95 % interval of the mean F1 difference lies above 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ccmct.evaluation.bootstrap import SlideCounts, bootstrap_f1, paired_bootstrap
from ccmct.pipeline.fast import FAST, common_slides, mean_finite

EFFECT_TEST_LABELS = "ODAEL"
"""Label set the effects are tested on (the paper's headline column)."""
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
SPLITS = ("train", "test")


@dataclass
class SeedEvaluation:
    """One training seed's evaluation.

    Attributes:
        long: :func:`ccmct.evaluation.tables.table4_long` of the seed's result files.
        counts: (stage, train, test) -> per-slide counts on the test slides at the row's threshold (paper
            matching; ``table4_long(..., slide_counts=True)``); they add up to the row's tp / fp / fn. The
            fast row's (with ``plan.fast``) have the stage ``"fast"``.
        missing: result file name -> {slide: reason} for slides of its split that it does not hold
            (failed or pending in its metadata, or simply absent).
        fast_long: the fast row's Table 4 rows (:func:`ccmct.pipeline.fast.fast_long`; empty without
            ``plan.fast``).
    """

    long: pd.DataFrame
    counts: dict[tuple, SlideCounts] = field(default_factory=dict)
    missing: dict[str, dict[str, str]] = field(default_factory=dict)
    fast_long: pd.DataFrame = field(default_factory=pd.DataFrame)

    def rows(self):
        """Every Table 4 row: the two stages', then the fast row's."""
        yield from self.long.itertuples()
        yield from self.fast_long.itertuples()


def stage_key(stage) -> str:
    """``stage1`` / ``stage2`` / ``fast``: the key of a stage in ``summary.json``'s tables."""
    return FAST if stage == FAST else f"stage{int(stage)}"


def _stage(stage):
    return FAST if stage == FAST else int(stage)


def evaluate_seed(plan) -> SeedEvaluation:
    """Table 4 rows, per-slide test counts and missing slides of one seed's plan (``DemoPlan.for_seed``)."""
    from ccmct.data.results import read_results
    from ccmct.pipeline.done import unfinished_slides
    from ccmct.pipeline.fast import fast_long
    from ccmct.pipeline.study import MIN_THRESHOLD
    from ccmct.evaluation.tables import table4_long
    from ccmct.types import VARIANTS

    root = plan.root
    long = table4_long(root, plan.results_dir, variants=VARIANTS, min_threshold=MIN_THRESHOLD, slide_counts=True)
    fast = getattr(plan, "fast", False)
    fast_rows = fast_long(plan, slide_counts=True) if fast else pd.DataFrame()
    evaluation = SeedEvaluation(long.drop(columns=["slide_counts", "strict_slide_counts"]),
                                fast_long=fast_rows.drop(columns=["slide_counts", "strict_slide_counts"],
                                                         errors="ignore"))
    expected = {split: set(root.slides(split)) for split in SPLITS}
    for variant in plan.variants:
        for split in SPLITS:
            paths = [plan.result_path(variant, split, stage) for stage in (1, 2)]
            paths += [plan.fast_result_path(variant, split)] if fast else []
            for path in paths:
                if not path.exists():
                    continue
                missing = unfinished_slides(path)
                absent = expected[split] - set(read_results(path))
                missing.update({name: "not in the result file" for name in sorted(absent) if name not in missing})
                if missing:
                    evaluation.missing[path.name] = missing
    for row in long.itertuples():
        evaluation.counts[(int(row.stage), row.train, row.test)] = row.slide_counts
    for row in fast_rows.itertuples():
        evaluation.counts[(FAST, row.train, row.test)] = row.slide_counts
    return evaluation


def _nest(values: dict[tuple, object]) -> dict:
    out: dict = {}
    for (stage, train, test), value in values.items():
        out.setdefault(stage_key(stage), {}).setdefault(train, {})[test] = value
    return out


def _none(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def effect(evaluations: dict[int, SeedEvaluation], name: str, a: tuple[int, str], b: tuple[int, str], *,
           test: str = EFFECT_TEST_LABELS) -> dict | None:
    """Paired comparison of cell ``a`` = (stage, train) against ``b`` over every seed holding both."""
    pairs = [(e.counts[(*a, test)], e.counts[(*b, test)]) for e in evaluations.values()
             if (*a, test) in e.counts and (*b, test) in e.counts]
    if not pairs:
        return None
    common = common_slides([c for pair in pairs for c in pair])
    if not common[0].slides:
        return None
    a_list, b_list = common[0::2], common[1::2]
    paired = paired_bootstrap(a_list, b_list, n_resamples=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED)
    low = paired["delta_f1_ci"][0]
    return {"effect": name, "a": f"stage {a[0]}, {a[1]}-trained", "b": f"stage {b[0]}, {b[1]}-trained",
            "test": test, "f1_a": mean_finite([c.scores()[0] for c in a_list]),
            "f1_b": mean_finite([c.scores()[0] for c in b_list]),
            "delta_f1": paired["delta_f1"], "delta_f1_ci": paired["delta_f1_ci"], "a_wins": paired["a_wins"],
            "n_seeds": paired["n_seeds"], "n_slides": paired["n_slides"],
            "verdict": "holds" if low is not None and low > 0 else "not shown"}


def paper_effects(evaluations: dict[int, SeedEvaluation]) -> list[dict]:
    """Second stage vs first stage per detector; ODAEL-trained vs MEL-trained per stage."""
    trains = sorted({key[1] for e in evaluations.values() for key in e.counts})
    out = [effect(evaluations, f"second stage vs first stage ({t}-trained)", (2, t), (1, t)) for t in trains]
    if {"MEL", "ODAEL"} <= set(trains):
        out += [effect(evaluations, f"ODAEL-trained vs MEL-trained (stage {s})", (s, "ODAEL"), (s, "MEL"))
                for s in (1, 2)]
    return [e for e in out if e is not None]


def seed_summary(evaluations: dict[int, SeedEvaluation]) -> dict:
    """The multi-seed part of ``summary.json``: ``seeds``, ``per_seed`` (seed -> Table 4 as ``table4``),
    ``per_seed_thresholds``, ``table4_mean``, ``table4_sd`` (sample sd over seeds, None with one seed),
    ``table4_n_slides``, ``table4_ci`` (seed -> cell -> 95 % slide-bootstrap interval of F1), ``effects``,
    ``failed_slides`` (seed -> result file -> {slide: reason})."""
    per_seed, thresholds, cis, cells = {}, {}, {}, {}
    for seed, e in evaluations.items():
        values, ci, thr = {}, {}, {}
        for row in e.rows():
            key = (_stage(row.stage), row.train, row.test)
            values[key] = _none(row.f1)
            cells.setdefault(key, []).append(row.f1)
            counts = e.counts[key]
            ci[key] = (bootstrap_f1(counts, n_resamples=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED)["f1_ci"]
                       if len(counts) else [None, None])  # every test slide failed: no interval
            thr.setdefault(stage_key(row.stage), {})[row.train] = float(row.threshold)
        per_seed[str(seed)], cis[str(seed)], thresholds[str(seed)] = _nest(values), _nest(ci), thr
    mean, sd, n_slides = {}, {}, {}
    for key, values in cells.items():
        finite = np.array([v for v in values if v is not None and np.isfinite(v)], np.float64)
        mean[key] = float(finite.mean()) if len(finite) else None
        sd[key] = float(finite.std(ddof=1)) if len(finite) > 1 else None
        n_slides[key] = min(len(e.counts[key]) for e in evaluations.values() if key in e.counts)
    return {"seeds": [int(s) for s in evaluations], "per_seed": per_seed, "per_seed_thresholds": thresholds,
            "table4_mean": _nest(mean), "table4_sd": _nest(sd), "table4_n_slides": _nest(n_slides),
            "table4_ci": cis, "effects": paper_effects(evaluations),
            "failed_slides": {str(s): e.missing for s, e in evaluations.items() if e.missing}}
