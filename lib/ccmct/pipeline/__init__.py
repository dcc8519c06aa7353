"""The study as one object: a layer above training / inference / evaluation / data, below cli / demo / notebooks.

- :mod:`~ccmct.pipeline.layout`: :class:`Layout`, where models, results, reports, figures, viewer go in a study
  folder and what they are called (the one definition);
- :mod:`~ccmct.pipeline.done`: is a step done (model directory complete, result file with nothing pending/failed);
- :mod:`~ccmct.pipeline.study`: :class:`Study` (data root, variants, preset, seeds, output folder, ablation);
- :mod:`~ccmct.pipeline.steps`: the steps as plain functions over a Study, and :class:`StepTimer`;
- :mod:`~ccmct.pipeline.ablation`: one ablation run per subset (Fig. 5, Table 5);
- :mod:`~ccmct.pipeline.reproduce`: ``ccmct reproduce`` — plan, measured time estimate, run, report.

Import direction (docs/design.md): this package imports training, inference, evaluation, data and config;
cli, demo and notebooks import it; nothing below imports it.
"""

from ccmct.pipeline.layout import Layout
from ccmct.pipeline.study import MIN_THRESHOLD, Study

__all__ = ["Layout", "MIN_THRESHOLD", "Study"]
