"""Configuration: data-set facts (class ids, slides, split) and the data-root layout."""

from ccmct.config.dataset import (
    AMBIGUOUS,
    CELL_CLASS_NAMES,
    DATABASE_FILES,
    DETECTION_RADIUS_L0,
    GRANULOCYTE,
    HIGH_MC_AREAS_FILE,
    HPF_AREA_MM2,
    LOOKALIKE,
    MITOTIC_FIGURE,
    REAL_SLIDES,
    REAL_TEST_SLIDES,
    SPLIT_FILE,
    TUMOR_CELL,
    WSI_SUBSETS,
)
from ccmct.config.paths import DataRoot

__all__ = [
    "AMBIGUOUS",
    "CELL_CLASS_NAMES",
    "DATABASE_FILES",
    "DETECTION_RADIUS_L0",
    "GRANULOCYTE",
    "HIGH_MC_AREAS_FILE",
    "HPF_AREA_MM2",
    "LOOKALIKE",
    "MITOTIC_FIGURE",
    "REAL_SLIDES",
    "REAL_TEST_SLIDES",
    "SPLIT_FILE",
    "TUMOR_CELL",
    "WSI_SUBSETS",
    "DataRoot",
]
