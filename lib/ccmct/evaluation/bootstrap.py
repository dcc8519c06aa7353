"""Confidence intervals for F1 / precision / recall and paired comparisons: a bootstrap over slides.

Slides are the independent units of the data set (the paper's 21 training and 11 test WSIs), so a resample
draws ``n_slides`` slides with replacement and adds up their TP / FP / FN — the same micro aggregation as
:func:`ccmct.evaluation.f1.f1_scores` (F1 = 2 TP / (2 TP + FP + FN), see :func:`ccmct.evaluation.f1.micro_scores`).
No re-matching is needed: per-slide counts of one evaluated result file (one matching, one threshold) are
enough, so thousands of resamples cost one matrix product (``resample weights (R, S) @ counts (S,)``).

The interval is the percentile interval of the resampled statistic (``level`` = 0.95: the 2.5th and
97.5th percentiles). Limits (docs/evaluation.md): with few slides the interval is wide and itself
uncertain (11 test slides give only 11 units); slide-to-slide variation is the only variation it covers
(not the training seed, not the threshold choice: a threshold chosen by ``--optimize`` is held fixed);
with one slide the interval collapses to the point. A resample whose statistic is undefined (e.g. no
detections and no mitoses at all -> F1 = 0/0) is left out of the percentiles; ``n_undefined`` says how
many. Undefined values are ``None`` in the returned dictionaries (strict JSON).

Reproducible: the same ``seed`` draws the same resamples (``numpy.random.default_rng(seed)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ccmct.errors import CcmctError
from ccmct.evaluation.f1 import micro_scores

METHOD = "slide bootstrap, percentile"


class SlideMismatch(CcmctError, ValueError):
    """Two per-slide count sets that should cover the same slides do not."""


@dataclass(frozen=True)
class SlideCounts:
    """Per-slide TP / FP / FN of one evaluated result file (one matching, one threshold).

    Attributes:
        slides: slide names, in order.
        tp, fp, fn: int64 arrays aligned with ``slides``.
    """

    slides: tuple[str, ...]
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    def __post_init__(self):
        for name in ("tp", "fp", "fn"):
            array = np.asarray(getattr(self, name), np.int64).reshape(-1)
            if len(array) != len(self.slides):
                raise ValueError(f"{name} has {len(array)} entries for {len(self.slides)} slides")
            if np.any(array < 0):
                raise ValueError(f"{name} has negative counts")
            object.__setattr__(self, name, array)
        object.__setattr__(self, "slides", tuple(self.slides))
        if len(set(self.slides)) != len(self.slides):
            raise ValueError("slide names repeat")

    @classmethod
    def from_per_slide(cls, per_slide: Mapping) -> "SlideCounts":
        """From the ``per_slide`` of an evaluation: a JSON dict ``{slide: {"tp", "fp", "fn", ...}}`` (as
        ``ccmct evaluate --json`` writes it) or ``F1Result.per_slide`` (``{slide: SlideScore}``)."""
        slides, rows = [], []
        for name, score in per_slide.items():
            if hasattr(score, "counts"):
                score = score.counts
            if isinstance(score, Mapping):
                rows.append((score["tp"], score["fp"], score["fn"]))
            else:
                rows.append((score.tp, score.fp, score.fn))
            slides.append(str(name))
        table = np.asarray(rows, np.int64).reshape(-1, 3)
        return cls(tuple(slides), table[:, 0], table[:, 1], table[:, 2])

    @classmethod
    def from_result(cls, result) -> "SlideCounts":
        """From an :class:`ccmct.evaluation.f1.F1Result` (or its ``as_dict()``)."""
        per_slide = result["per_slide"] if isinstance(result, Mapping) else result.per_slide
        return cls.from_per_slide(per_slide)

    def __len__(self) -> int:
        return len(self.slides)

    def aligned_to(self, slides: Sequence[str]) -> "SlideCounts":
        """The same counts in the order of ``slides``; :class:`SlideMismatch` if the slide sets differ."""
        slides = tuple(slides)
        if set(slides) != set(self.slides):
            missing = sorted(set(slides) - set(self.slides))
            extra = sorted(set(self.slides) - set(slides))
            raise SlideMismatch(f"the per-slide counts cover other slides: missing {missing[:3]}"
                                f"{' ...' if len(missing) > 3 else ''}, extra {extra[:3]}"
                                f"{' ...' if len(extra) > 3 else ''}")
        index = {name: i for i, name in enumerate(self.slides)}
        order = np.array([index[name] for name in slides], np.int64)
        return SlideCounts(slides, self.tp[order], self.fp[order], self.fn[order])

    def scores(self) -> tuple[float, float, float]:
        """Micro (F1, precision, recall) over all slides (NaN where undefined)."""
        f1, precision, recall = micro_scores(self.tp.sum(), self.fp.sum(), self.fn.sum())
        return float(f1), float(precision), float(recall)


def _check(n_resamples: int, level: float, n_slides: int) -> None:
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0 < float(level) < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if n_slides < 1:
        raise ValueError("no slides to resample")


def resample_weights(n_slides: int, *, n_resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """(n_resamples, n_slides) int64: how often each slide is drawn in each resample (rows sum to n_slides).

    A multinomial draw per resample, which is the same as drawing ``n_slides`` indices with replacement.
    """
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_slides, np.full(n_slides, 1.0 / n_slides), size=int(n_resamples)).astype(np.int64)


def _none(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> list[float | None]:
    """[lo, hi] percentile interval of the finite ``values`` ([None, None] when none is finite)."""
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        return [None, None]
    tail = (1 - float(level)) / 2 * 100
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return [float(lo), float(hi)]


def format_interval(interval, digits: int = 4) -> str:
    """``"[lo, hi]"`` of an interval from this module, or ``"undefined"`` when no resample had a defined value
    (e.g. a detector that found nothing: F1 is 0/0 on every resample)."""
    if not interval or any(v is None for v in interval):
        return "undefined (no resample with a defined value)"
    return f"[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def bootstrap_f1(counts: SlideCounts, *, n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Point estimates and percentile intervals of micro F1, precision and recall over resampled slides.

    Args:
        counts: per-slide TP / FP / FN of one evaluated result file.
        n_resamples: bootstrap resamples.
        seed: seed of the resampling (same seed -> same interval).
        level: coverage of the interval (0.95 -> 2.5th..97.5th percentile).

    Returns:
        ``{"f1", "f1_ci": [lo, hi], "precision", "precision_ci", "recall", "recall_ci", "n_slides",
        "n_resamples", "level", "seed", "method", "n_undefined": {"f1", "precision", "recall"}}``; undefined
        values are None. The point estimates are the scores on all slides (the resamples' mean is not used).
    """
    _check(n_resamples, level, len(counts))
    weights = resample_weights(len(counts), n_resamples=n_resamples, seed=seed)
    sums = weights @ np.column_stack([counts.tp, counts.fp, counts.fn])
    resampled = micro_scores(sums[:, 0], sums[:, 1], sums[:, 2])
    point = counts.scores()
    out: dict = {}
    undefined = {}
    for name, estimate, values in zip(("f1", "precision", "recall"), point, resampled):
        out[name] = _none(estimate)
        out[f"{name}_ci"] = percentile_interval(values, level)
        undefined[name] = int(np.count_nonzero(~np.isfinite(values)))
    out.update({"n_slides": len(counts), "n_resamples": int(n_resamples), "level": float(level),
                "seed": int(seed), "method": METHOD, "n_undefined": undefined})
    return out


def _as_list(x) -> list[SlideCounts]:
    items = [x] if isinstance(x, SlideCounts) else list(x)
    if not items or not all(isinstance(item, SlideCounts) for item in items):
        raise TypeError("expected SlideCounts or a non-empty list of SlideCounts (one per seed)")
    return items


def paired_bootstrap(a, b, *, n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Paired difference of micro F1, A - B, on the same slide resamples.

    Args:
        a, b: :class:`SlideCounts`, or lists of them (one per training seed, the same number for a and b);
            all must cover the same slides (order does not matter: they are aligned to the first of ``a``).
        n_resamples, seed, level: as in :func:`bootstrap_f1`.

    The slides are resampled jointly (the same resample weights for a, b and every seed); the statistic is
    the mean over seeds of F1(a_s) - F1(b_s) on the resample. ``delta_f1`` is that statistic on all slides.

    Returns:
        ``{"delta_f1", "delta_f1_ci": [lo, hi], "a_wins", "b_wins", "n_slides", "n_seeds", "n_resamples",
        "level", "seed", "method", "n_undefined"}``; ``a_wins`` (``b_wins``) is the share of defined
        resamples with delta > 0 (< 0). Identical a and b give exactly 0, [0, 0] and a_wins = 0.
    """
    a_list, b_list = _as_list(a), _as_list(b)
    if len(a_list) != len(b_list):
        raise ValueError(f"a has {len(a_list)} seeds, b has {len(b_list)}: a paired comparison needs the same")
    slides = a_list[0].slides
    a_list = [item.aligned_to(slides) for item in a_list]
    b_list = [item.aligned_to(slides) for item in b_list]
    _check(n_resamples, level, len(slides))
    weights = resample_weights(len(slides), n_resamples=n_resamples, seed=seed)

    def f1_per_seed(items: list[SlideCounts], w: np.ndarray) -> np.ndarray:
        tp = w @ np.stack([item.tp for item in items], axis=1)  # (R, n_seeds)
        fp = w @ np.stack([item.fp for item in items], axis=1)
        fn = w @ np.stack([item.fn for item in items], axis=1)
        return micro_scores(tp, fp, fn)[0]

    with np.errstate(invalid="ignore"):
        delta = (f1_per_seed(a_list, weights) - f1_per_seed(b_list, weights)).mean(axis=1)
        full = np.ones((1, len(slides)), np.int64)
        point = float((f1_per_seed(a_list, full) - f1_per_seed(b_list, full)).mean())
    defined = np.isfinite(delta)
    n_defined = int(defined.sum())
    return {"delta_f1": _none(point), "delta_f1_ci": percentile_interval(delta, level),
            "a_wins": float(np.count_nonzero(delta[defined] > 0) / n_defined) if n_defined else None,
            "b_wins": float(np.count_nonzero(delta[defined] < 0) / n_defined) if n_defined else None,
            "n_slides": len(slides), "n_seeds": len(a_list), "n_resamples": int(n_resamples),
            "level": float(level), "seed": int(seed), "method": METHOD, "n_undefined": len(delta) - n_defined}
