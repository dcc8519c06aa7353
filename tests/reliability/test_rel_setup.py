"""Category 6: setup checks present files against the manifest, names synthetic roots, never invents .part files."""

from __future__ import annotations

import shutil

import pytest
from battery import cases_of
from clitools import explain

from ccmct.data.download.runner import present_problem, refuse_synthetic_root
from ccmct.data.manifest import select_entries
from ccmct.errors import CcmctError


@pytest.mark.parametrize("case", cases_of("setup"), ids=lambda c: c.name)
def test_case(case, battery_outcome):
    outcome = battery_outcome(case)
    assert outcome.passed, explain(outcome)


def test_synthetic_root_is_named(tiny_root):
    with pytest.raises(CcmctError, match=r"is a synthetic data root \(synthetic.json: preset 'tiny', seed 0\)"):
        refuse_synthetic_root(tiny_root)


def test_present_files_are_checked(tiny_root, tumorzone_db, tmp_path):
    entries = {e.name: e for e in select_entries(only="databases")}
    synthetic_odael = tiny_root / "databases" / "MITOS_WSI_CCMCT_ODAEL.sqlite"
    assert "none of them one of the data set's 32" in present_problem(entries["ODAEL"], synthetic_odael, {})
    assert present_problem(entries["Tumorzone"], tumorzone_db, {}) is None  # the authors' real file
    junk = tmp_path / "x.sqlite"
    junk.write_bytes(b"<html>403</html>")
    assert "not a SQLite database" in present_problem(entries["MEL"], junk, {})
    # a file this downloader fetched (MD5 recorded) is complete without opening it again
    assert present_problem(entries["MEL"], junk, {entries["MEL"].relative_path: "0" * 32}) is None
    sized = entries["MEL"].__class__(**{**entries["MEL"].__dict__, "size_bytes": 10})
    assert "has 16 bytes, the data set's file has 10" in present_problem(sized, junk, {})
    folder = tmp_path / "folder.sqlite"
    folder.mkdir()
    assert present_problem(entries["MEL"], folder, {}) == "is not a regular file"


def test_give_up_message_names_a_part_file_only_when_there_is_one(tmp_path):
    import requests

    from ccmct.data.download.fetch import RetryPolicy, fetch_file
    from ccmct.errors import DownloadError

    dest = tmp_path / "x.sqlite"
    with pytest.raises(DownloadError) as info:
        fetch_file("http://127.0.0.1:9/x", dest, policy=RetryPolicy(attempts=1, backoff_s=0.01, timeout_s=1),
                   session=requests.Session())
    message = str(info.value)
    part = dest.with_name(dest.name + ".part")
    assert (str(part) in message) == part.exists()
    shutil.rmtree(tmp_path, ignore_errors=True)
