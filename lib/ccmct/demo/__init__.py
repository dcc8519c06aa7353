"""``ccmct demo``: the whole pipeline on the synthetic data set, with a report.

Steps (each reused when its output exists, so a rerun continues where the last one stopped):
synthetic ``demo`` data -> first stage trained on MEL and ODAEL -> second-stage classifier -> inference on the
training and test slides -> second-stage re-scoring -> thresholds chosen on the training slides -> paper and
strict F1 on the test slides -> ``report.md`` with figures and ``summary.json``.
"""

from ccmct.demo.pipeline import DemoPlan, run_demo

__all__ = ["DemoPlan", "run_demo"]
