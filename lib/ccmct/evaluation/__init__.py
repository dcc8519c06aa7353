"""Evaluation: F1 with the authors' matching and strict one-to-one matching, threshold search, mitotic
count, paper tables and figures.

Distance NMS lives in :mod:`ccmct.geometry` (inference uses it too).
"""

from ccmct.evaluation.f1 import F1Result, SlideScore, f1_scores, slide_score
from ccmct.evaluation.ground_truth import load_ground_truth, restrict_results
from ccmct.evaluation.matching import Counts, match_paper, match_strict, strict_pairs
from ccmct.evaluation.mitotic_count import (
    MitoticCount,
    count_correlation,
    hpf_window_l0,
    mitotic_count,
    mitotic_count_table,
)
from ccmct.evaluation.threshold import ThresholdSearch, optimize_threshold, paper_thresholds, threshold_curve
from ccmct.geometry import distance_nms

__all__ = [
    "Counts", "F1Result", "MitoticCount", "SlideScore", "ThresholdSearch", "count_correlation", "distance_nms",
    "f1_scores", "hpf_window_l0", "load_ground_truth", "match_paper", "match_strict", "mitotic_count",
    "mitotic_count_table", "optimize_threshold", "paper_thresholds", "restrict_results", "slide_score",
    "strict_pairs", "threshold_curve",
]
