"""The download manifest and the checksums file."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from ccmct.config.dataset import DATABASE_FIGSHARE_IDS, DATABASE_FILES, REAL_SLIDES
from ccmct.config.paths import DataRoot
from ccmct.data.manifest import (
    CHECKSUMS_FILE,
    FIGSHARE_PRIVATE_LINK,
    PRIVATE_LINK_ENV,
    manifest,
    md5_of_file,
    read_checksums,
    record_checksum,
    select_entries,
)
from ccmct.errors import CcmctError, FileProblem


def test_manifest_covers_the_data_set_once():
    entries = manifest()
    assert len(entries) == 4 + 32
    databases = [e for e in entries if e.kind == "database"]
    assert {e.name: e.figshare_id for e in databases} == dict(DATABASE_FIGSHARE_IDS)
    slides = [e for e in entries if e.kind == "slide"]
    assert [(e.name, e.figshare_id) for e in slides] == [(s.filename, s.figshare_id) for s in REAL_SLIDES]
    assert len({e.figshare_id for e in entries}) == 36
    assert len({e.relative_path for e in entries}) == 36


def test_destinations_follow_the_data_root_layout(tmp_path):
    root = DataRoot(tmp_path)
    for entry in manifest():
        expected = root.database(entry.name) if entry.kind == "database" else root.slide_path(entry.name)
        assert entry.destination(tmp_path) == expected


def test_figshare_url_uses_the_published_private_link(monkeypatch):
    monkeypatch.delenv(PRIVATE_LINK_ENV, raising=False)
    odael = next(e for e in manifest() if e.name == "ODAEL")
    assert odael.url() == (f"https://ndownloader.figshare.com/files/{DATABASE_FIGSHARE_IDS['ODAEL']}"
                           f"?private_link={FIGSHARE_PRIVATE_LINK}")
    monkeypatch.setenv(PRIVATE_LINK_ENV, "abc123")
    assert odael.url().endswith("?private_link=abc123")


def test_mirror_url_is_base_plus_relative_destination():
    slide = next(e for e in manifest() if e.kind == "slide")
    assert slide.url("http://mirror:8000/ccmct/") == f"http://mirror:8000/ccmct/WSI/{slide.name}"
    odael = next(e for e in manifest() if e.name == "ODAEL")
    assert odael.url("http://m") == f"http://m/databases/{DATABASE_FILES['ODAEL']}"


def test_select_entries_filters():
    assert [e.kind for e in select_entries(only="databases")] == ["database"] * 4
    assert len(select_entries(only="slides")) == 32
    chosen = select_entries(slides=["be10fa37ad6e88e1f406", "f3741e764d39ccc4d114.svs"])
    assert [e.name for e in chosen if e.kind == "slide"] == ["be10fa37ad6e88e1f406.svs", "f3741e764d39ccc4d114.svs"]
    assert sum(e.kind == "database" for e in chosen) == 4
    assert len(select_entries(only="slides", slides=["be10fa37ad6e88e1f406"])) == 1


def test_select_entries_rejects_unknown_names():
    with pytest.raises(CcmctError, match=r"unknown slide\(s\) nope.svs; the data set has: 066c94c4"):
        select_entries(slides=["nope"])
    with pytest.raises(CcmctError, match="--only must be one of databases, slides"):
        select_entries(only="everything")


def test_checksums_round_trip_in_md5sum_format(tmp_path):
    files = {"databases/a.sqlite": b"first file", "WSI/b.svs": b"second file" * 1000}
    for relative, content in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        record_checksum(tmp_path, relative, md5_of_file(path))
    record_checksum(tmp_path, "databases/a.sqlite", md5_of_file(tmp_path / "databases/a.sqlite"))  # replaces
    expected = {relative: hashlib.md5(content).hexdigest() for relative, content in files.items()}
    assert read_checksums(tmp_path) == expected
    assert (tmp_path / CHECKSUMS_FILE).read_text().count("\n") == 2
    if shutil.which("md5sum"):
        check = subprocess.run(["md5sum", "-c", CHECKSUMS_FILE], cwd=tmp_path, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_concurrent_records_are_all_kept(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: record_checksum(tmp_path, f"WSI/{i:02d}.svs", f"{i:032x}"), range(40)))
    assert read_checksums(tmp_path) == {f"WSI/{i:02d}.svs": f"{i:032x}" for i in range(40)}


def test_no_checksums_file_means_empty(tmp_path):
    assert read_checksums(tmp_path) == {}


def test_malformed_checksums_line_names_file_and_line(tmp_path):
    (tmp_path / CHECKSUMS_FILE).write_text(f"{'a' * 32}  WSI/x.svs\nnot a checksum line\n")
    with pytest.raises(FileProblem, match=r"checksums.md5: line 2 is not"):
        read_checksums(tmp_path)
