"""Facts about the MITOS_WSI_CCMCT data set: class ids, the 32 slides, the split, the subsets.

This module is the single source of truth for these numbers (paper, Table 1; docs/data.md); nothing else in
the project repeats them. Numbers come from the paper (Bertram et al., Sci Data 2019) and the authors'
published notebooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from ccmct.config.units import DETECTION_RADIUS_UM, PAPER_MPP, px

# --- class ids in the MEL / HEAEL / ODAEL databases (Annotations.agreedClass) -------------------------
GRANULOCYTE = 1
MITOTIC_FIGURE = 2
TUMOR_CELL = 3
AMBIGUOUS = 4
LOOKALIKE = 7
NO_AGREED_CLASS = 0

CELL_CLASS_NAMES = MappingProxyType(
    {
        GRANULOCYTE: "Granulocyte",
        MITOTIC_FIGURE: "Mitotic figure",
        TUMOR_CELL: "Tumor cell",
        AMBIGUOUS: "Ambiguous/other",
        LOOKALIKE: "Mitotic figure look-alike",
    }
)
"""Class id -> name used when *writing* databases. Readers take names from the database's Classes table."""

# --- tumor-zone database (MITOS_WSI_CCMCT_Tumorzone.sqlite) ------------------------------------------
TUMORZONE_CLASS = 1  # 'Tumorzone'; every other polygon class (necrosis, blurry, non-tumor) is subtracted

# --- geometry ----------------------------------------------------------------------------------------
DETECTION_RADIUS_L0 = px(DETECTION_RADIUS_UM, PAPER_MPP)
"""Match / distance-NMS radius in level-0 px at the paper's µm/px (25 px = 6.25 µm; :mod:`ccmct.config.units`)."""

HPF_AREA_MM2 = 0.237
"""One high-power field (Meuten), mm². 10 HPF = 2.37 mm² at aspect 4:3."""

HPF_ASPECT = (4, 3)

# PAPER_MPP (µm/px the paper states) lives in ccmct.config.units with the other physical sizes.

# --- database file names under <data root>/databases -------------------------------------------------
DATABASE_FILES = MappingProxyType(
    {
        "MEL": "MITOS_WSI_CCMCT_MEL.sqlite",
        "HEAEL": "MITOS_WSI_CCMCT_HEAEL.sqlite",
        "ODAEL": "MITOS_WSI_CCMCT_ODAEL.sqlite",
        "Tumorzone": "MITOS_WSI_CCMCT_Tumorzone.sqlite",
    }
)
HIGH_MC_AREAS_FILE = "HighMCAreas.sqlite"
SPLIT_FILE = "split.json"
"""Optional file in a data root listing its train/test slides (written by the synthetic generator)."""
SYNTHETIC_REPORT_FILE = "synthetic.json"
"""The synthetic generator's report in a data root it wrote (``ccmct.synthetic``); its presence marks a root as
synthetic (``ccmct setup`` refuses to take it for the real data, ``ccmct synth`` only resumes its own)."""


@dataclass(frozen=True)
class SlideFacts:
    """One of the 32 real slides (paper, Table 1).

    Attributes:
        filename: file name under ``<root>/WSI``.
        uid: slide uid in the ODAEL database.
        split: 'train' or 'test'.
        figshare_id: figshare file id of the slide.
        mitoses_odael: mitotic figures in ODAEL (paper Table 1).
        tumor_area_mm2: tumor area printed by the authors (paper Table 1).
    """

    filename: str
    uid: int
    split: str
    figshare_id: int
    mitoses_odael: int
    tumor_area_mm2: float


_SLIDE_ROWS = (
    ("2f2591b840e83a4b4358.svs", 23, "train", 16261514, 3, 144.79),
    ("ce949341ba99845813ac.svs", 34, "train", 16261484, 4, 13.94),
    ("91a8e57ea1f9cb0aeb63.svs", 24, "train", 16261544, 6, 25.24),
    ("9374efe6ac06388cc877.svs", 26, "train", 16261553, 7, 35.63),
    ("0e56fd11a762be0983f0.svs", 36, "train", 16261442, 8, 25.63),
    ("dd6dd0d54b81ebc59c77.svs", 28, "train", 16261478, 11, 62.25),
    ("be10fa37ad6e88e1f406.svs", 11, "test", 16261469, 12, 14.87),
    ("2e611073cff18d503cea.svs", 32, "train", 16261439, 18, 81.64),
    ("066c94c4c161224077a9.svs", 25, "train", 16261547, 19, 115.49),
    ("285f74bb6be025a676b6.svs", 29, "train", 16261550, 19, 83.07),
    ("f3741e764d39ccc4d114.svs", 31, "test", 16261493, 37, 39.23),
    ("c86cd41f96331adf3856.svs", 30, "test", 16261475, 56, 189.02),
    ("2efb541724b5c017c503.svs", 22, "train", 16261520, 66, 21.27),
    ("70ed18cd5f806cf396f0.svs", 35, "train", 16261541, 85, 88.30),
    ("552c51bfb88fd3e65ffe.svs", 27, "test", 16261556, 119, 185.63),
    ("3f2e034c75840cb901e6.svs", 15, "train", 16261505, 571, 103.25),
    ("8c9f9618fcaca747b7c3.svs", 9, "test", 16261526, 715, 312.96),
    ("c91a842257ed2add5134.svs", 1, "test", 16261481, 759, 160.25),
    ("dd4246ab756f6479c841.svs", 18, "test", 16261487, 777, 238.22),
    ("8bebdd1f04140ed89426.svs", 17, "train", 16261523, 1000, 213.66),
    ("2f17d43b3f9e7dacf24c.svs", 8, "train", 16261535, 1157, 87.86),
    ("a0c8b612fe0655eab3ce.svs", 13, "train", 16261424, 1279, 261.85),
    ("ac1168b2c893d2acad38.svs", 12, "train", 16261445, 1329, 346.26),
    ("fff27b79894fe0157b08.svs", 7, "train", 16261490, 1744, 256.29),
    ("34eb28ce68c1106b2bac.svs", 14, "train", 16261538, 2279, 190.18),
    ("f26e9fcef24609b988be.svs", 6, "test", 16261496, 2380, 136.58),
    ("96274538c93980aad8d6.svs", 3, "test", 16261559, 3068, 188.35),
    ("add0a9bbc53d1d9bac4c.svs", 2, "test", 16261436, 3569, 242.71),
    ("39ecf7f94ed96824405d.svs", 19, "train", 16261529, 3689, 220.56),
    ("20c0753af38303691b27.svs", 21, "train", 16261532, 4343, 269.48),
    ("c3eb4b8382b470dd63a9.svs", 4, "train", 16261466, 4767, 149.74),
    ("1018715d369dd0df2fc0.svs", 20, "test", 16261562, 10984, 337.88),
)

REAL_SLIDES: tuple[SlideFacts, ...] = tuple(SlideFacts(*row) for row in _SLIDE_ROWS)
"""The 32 slides, in the order of the paper's Table 1 (ascending ODAEL mitotic count)."""

REAL_TEST_SLIDES: frozenset[str] = frozenset(s.filename for s in REAL_SLIDES if s.split == "test")
"""The paper's 11 test slides (identical list in every script of the authors)."""

DATABASE_FIGSHARE_IDS = MappingProxyType(
    {"ODAEL": 16261571, "MEL": 16261574, "HEAEL": 16261583, "Tumorzone": 16261586}
)

# --- WSI ablation subsets (the authors' `create_WSIsubsets.py`; docs/ablation.md): kept training slides --------
_UID_TO_NAME = {s.uid: s.filename for s in REAL_SLIDES}
_DELETED_FOR_12 = (13, 8, 4, 7, 17, 22, 28, 26, 23)
_DELETED_FOR_6 = _DELETED_FOR_12 + (24, 36, 29, 15, 14, 19)
_DELETED_FOR_3 = _DELETED_FOR_6 + (32, 25, 12)


def _kept(deleted: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(s.filename for s in REAL_SLIDES if s.split == "train" and s.uid not in deleted)


WSI_SUBSETS: MappingProxyType[int, tuple[str, ...]] = MappingProxyType(
    {12: _kept(_DELETED_FOR_12), 6: _kept(_DELETED_FOR_6), 3: _kept(_DELETED_FOR_3)}
)
"""Number of kept training WSIs -> their file names (test slides are always kept too)."""

WSI_DELETION_ORDER: tuple[str, ...] = tuple(
    _UID_TO_NAME[uid] for uid in _DELETED_FOR_3
)
"""Training slides in the order the authors removed them (12, then 6, then 3 kept)."""

HPF_SUBSET_SIZES = (5, 10, 50)
