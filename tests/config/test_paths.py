"""Data-root layout and the split mechanism (split.json, else the paper's)."""

from __future__ import annotations

import json

import pytest

from ccmct.config.dataset import REAL_SLIDES, REAL_TEST_SLIDES
from ccmct.config.paths import DataRoot, default_data_root, load_split, write_split
from ccmct.errors import FileProblem


def test_layout(tmp_path):
    root = DataRoot(tmp_path)
    assert root.wsi_dir == tmp_path / "WSI" and root.databases_dir == tmp_path / "databases"
    assert root.database("HEAEL") == tmp_path / "databases" / "MITOS_WSI_CCMCT_HEAEL.sqlite"
    assert root.database("Tumorzone").name == "MITOS_WSI_CCMCT_Tumorzone.sqlite"
    assert root.high_mc_areas == tmp_path / "databases" / "HighMCAreas.sqlite"
    assert root.slide_path("a.svs") == tmp_path / "WSI" / "a.svs"
    with pytest.raises(ValueError, match="unknown database 'XYZ'"):
        root.database("XYZ")


def test_without_split_file_the_papers_split(tmp_path):
    root = DataRoot(tmp_path)
    split = root.split()
    assert len(split) == 32 and root.test_slides() == REAL_TEST_SLIDES
    assert all(split[s.filename] == s.split for s in REAL_SLIDES)
    assert root.split_of("unknown.svs") == "train"


def test_split_file_round_trip(tmp_path):
    root = DataRoot(tmp_path)
    write_split(root.split_file, ["b.svs", "a.svs"], ["c.svs"])
    assert json.loads(root.split_file.read_text()) == {"train": ["a.svs", "b.svs"], "test": ["c.svs"]}
    assert root.split() == {"a.svs": "train", "b.svs": "train", "c.svs": "test"}
    assert root.test_slides() == {"c.svs"} and root.split_of("c.svs") == "test"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split.json"]  # no temporary file left


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not a split file"),
    ('{"train": []}', "not a split file"),
    ('{"train": "a.svs", "test": []}', "must be lists of file names"),
    ('{"train": ["a.svs"], "test": ["a.svs"]}', "listed in both train and test: a.svs"),
])
def test_bad_split_file(tmp_path, content, problem):
    path = tmp_path / "split.json"
    path.write_text(content)
    with pytest.raises(FileProblem, match=problem) as info:
        load_split(path)
    assert str(path) in str(info.value)


def test_default_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("CCMCT_DATA_ROOT", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("CCMCT_DATA_ROOT")
    assert str(default_data_root()) == "data"
