"""The data-set facts module agrees with itself and with the paper's published numbers."""

from __future__ import annotations

from ccmct.config import dataset
from ccmct.config.dataset import (
    DATABASE_FILES, REAL_SLIDES, REAL_TEST_SLIDES, WSI_DELETION_ORDER, WSI_SUBSETS,
)

# The paper's test slides (the test list of the authors' `Inference-RetinaNet.py`), as written in every script of the authors.
PAPER_TEST = {"be10fa37ad6e88e1f406", "f3741e764d39ccc4d114", "c86cd41f96331adf3856", "552c51bfb88fd3e65ffe",
              "8c9f9618fcaca747b7c3", "c91a842257ed2add5134", "dd4246ab756f6479c841", "f26e9fcef24609b988be",
              "96274538c93980aad8d6", "add0a9bbc53d1d9bac4c", "1018715d369dd0df2fc0"}


def test_32_slides_unique_names_uids_and_figshare_ids():
    assert len(REAL_SLIDES) == 32
    for field in ("filename", "uid", "figshare_id"):
        assert len({getattr(s, field) for s in REAL_SLIDES}) == 32, field
    assert all(s.filename.endswith(".svs") and len(s.filename) == 24 for s in REAL_SLIDES)
    assert all(s.split in ("train", "test") for s in REAL_SLIDES)


def test_test_split_is_the_papers():
    assert {name.removesuffix(".svs") for name in REAL_TEST_SLIDES} == PAPER_TEST
    assert {s.uid for s in REAL_SLIDES if s.split == "test"} == {27, 30, 31, 6, 18, 20, 1, 2, 3, 9, 11}


def test_table1_sums_match_the_published_totals():
    """paper, Table 1: ODAEL mitotic figures 22404 train / 22476 test / 44880 all; area 4842.06 mm²."""
    train = sum(s.mitoses_odael for s in REAL_SLIDES if s.split == "train")
    test = sum(s.mitoses_odael for s in REAL_SLIDES if s.split == "test")
    assert (train, test, train + test) == (22404, 22476, 44880)
    assert abs(sum(s.tumor_area_mm2 for s in REAL_SLIDES) - 4842.06) < 0.05
    assert [s.mitoses_odael for s in REAL_SLIDES] == sorted(s.mitoses_odael for s in REAL_SLIDES)  # Table 1 order


def test_wsi_subsets():
    """the authors' `AblationStudy/create_WSIsubsets.py`; docs/ablation.md: kept slides and their training mitotic figures (12370 / 5798 / 4432)."""
    mitoses = {s.filename: s.mitoses_odael for s in REAL_SLIDES}
    assert {n: len(v) for n, v in WSI_SUBSETS.items()} == {12: 12, 6: 6, 3: 3}
    assert {n: sum(mitoses[f] for f in v) for n, v in WSI_SUBSETS.items()} == {12: 12370, 6: 5798, 3: 4432}
    assert set(WSI_SUBSETS[3]) < set(WSI_SUBSETS[6]) < set(WSI_SUBSETS[12])
    assert {f[:8] for f in WSI_SUBSETS[3]} == {"ce949341", "70ed18cd", "20c0753a"}
    assert not set(WSI_SUBSETS[12]) & REAL_TEST_SLIDES
    train = {s.filename for s in REAL_SLIDES if s.split == "train"}
    assert set(WSI_DELETION_ORDER) | set(WSI_SUBSETS[3]) == train and len(WSI_DELETION_ORDER) == 18


def test_class_ids_and_files():
    assert (dataset.GRANULOCYTE, dataset.MITOTIC_FIGURE, dataset.TUMOR_CELL, dataset.AMBIGUOUS,
            dataset.LOOKALIKE) == (1, 2, 3, 4, 7)
    assert set(dataset.CELL_CLASS_NAMES) == {1, 2, 3, 4, 7}
    assert DATABASE_FILES["ODAEL"] == "MITOS_WSI_CCMCT_ODAEL.sqlite"
    assert set(DATABASE_FILES) == {"MEL", "HEAEL", "ODAEL", "Tumorzone"}
    assert dataset.DETECTION_RADIUS_L0 == 25 and dataset.HPF_AREA_MM2 == 0.237
