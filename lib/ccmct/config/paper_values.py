"""The paper's published numbers that ``ccmct reproduce`` puts beside its own, in one place.

Source: Bertram, Aubreville et al., Sci Data 2019 (docs/design.md): Table 3 (confusion matrix of the cell
classifier), Table 4 (F1 per train / test label set and stage), Table 6 (totals per label set). The per-slide
Table 1 figures are :data:`ccmct.config.dataset.REAL_SLIDES`; the ablation's (Fig. 5, Table 5)
:data:`ccmct.evaluation.ablation.PAPER_ABLATION`.
"""

from __future__ import annotations

from types import MappingProxyType

PAPER_TABLE4 = MappingProxyType({
    "stage1": {"MEL": {"MEL": 0.610, "HEAEL": 0.607, "ODAEL": 0.616},
               "HEAEL": {"MEL": 0.615, "HEAEL": 0.615, "ODAEL": 0.625},
               "ODAEL": {"MEL": 0.620, "HEAEL": 0.620, "ODAEL": 0.628}},
    "stage2": {"MEL": {"MEL": 0.786, "HEAEL": 0.786, "ODAEL": 0.795},
               "HEAEL": {"MEL": 0.755, "HEAEL": 0.755, "ODAEL": 0.764},
               "ODAEL": {"MEL": 0.810, "HEAEL": 0.810, "ODAEL": 0.820}},
})
"""Table 4: F1 on the test slides, ``stage -> trained on -> tested on`` (stage 1 RetinaNet; stage 2 + ResNet-18)."""

PAPER_TABLE3_ORDER = ("mitotic figure", "mitotic figure look-alike", "granulocyte", "tumor cell")
PAPER_TABLE3 = (
    (19478, 2985, 10, 3),
    (2942, 10582, 57, 44),
    (1, 66, 16011, 30),
    (3, 92, 53, 20651),
)
"""Table 3: the cell classifier's confusion matrix on the test patches (rows true, columns predicted, in
:data:`PAPER_TABLE3_ORDER`)."""

PAPER_TABLE3_ACCURACY = 0.91390
"""Table 3 caption: accuracy on the test set, 91.390 %."""

PAPER_TOTALS = MappingProxyType({
    "MEL": {"cells": 238340, "mitotic_figure": 42465, "lookalike": 0},
    "HEAEL": {"cells": 238339, "mitotic_figure": 42607, "lookalike": 6099},
    "ODAEL": {"cells": 262481, "mitotic_figure": 44880, "lookalike": 27965},
})
"""Table 6: annotations, mitotic figures and look-alikes per label set (32 slides, 4,842.062 mm² tumor area)."""

PAPER_SLIDES = 32
PAPER_TUMOR_AREA_MM2 = 4842.062
