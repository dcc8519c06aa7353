"""Download against a real HTTP server on 127.0.0.1 that drops, truncates, stalls, ignores Range, answers
5xx/429/404/403 and serves HTML pages. Every case ends with the destination byte-identical to the source,
or a clear failure and no file that looks complete."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from http_server import CORRUPT_SLIDE, SERVED_SLIDE, Fault, FaultyServer, build_mirror

from ccmct.cli import main
from ccmct.config.dataset import DATABASE_FILES
from ccmct.data.download import (
    DownloadReport,
    OfflineError,
    PermanentDownloadError,
    RetryPolicy,
    download_dataset,
    fetch_file,
    verify_dataset,
)
from ccmct.data.manifest import CHECKSUMS_FILE, read_checksums
from ccmct.errors import DownloadError

FAST = RetryPolicy(attempts=3, backoff_s=0.01, max_backoff_s=0.05, timeout_s=2.0, chunk_bytes=4096)
ODAEL = f"databases/{DATABASE_FILES['ODAEL']}"
TUMORZONE = f"databases/{DATABASE_FILES['Tumorzone']}"
SLIDE = f"WSI/{SERVED_SLIDE}"


@pytest.fixture(scope="session")
def source_root(tmp_path_factory, tumorzone_db, openslide_fixtures):
    return build_mirror(tmp_path_factory.mktemp("mirror_source"), tumorzone_db=tumorzone_db,
                        unreadable_svs=openslide_fixtures / "unreadable.svs")


@pytest.fixture()
def mirror(tmp_path, source_root):
    """A fresh copy of the source folder served on 127.0.0.1; stopped after the test."""
    served = shutil.copytree(source_root, tmp_path / "served")
    server = FaultyServer(served).start()
    yield server
    server.stop()


def _same(a, b) -> bool:
    return a.read_bytes() == b.read_bytes()


def _fetch(mirror, relative, dest, **kwargs):
    return fetch_file(f"{mirror.url}/{relative}", dest, policy=kwargs.pop("policy", FAST), **kwargs)


# ------------------------------------------------------------------------------------------- one file
def test_plain_download_is_identical_and_md5_is_right(mirror, tmp_path):
    dest = tmp_path / "out" / "x.svs"
    md5 = _fetch(mirror, SLIDE, dest)
    source = mirror.root / SLIDE
    assert _same(dest, source)
    assert md5 == hashlib.md5(source.read_bytes()).hexdigest()
    assert not dest.with_name("x.svs.part").exists()


@pytest.mark.parametrize("kind", ["short", "stall"])
def test_interrupted_body_resumes_with_range(mirror, tmp_path, kind):
    mirror.add_fault(TUMORZONE, Fault(kind, stall_s=1.0))
    dest = tmp_path / "t.sqlite"
    policy = RetryPolicy(attempts=3, backoff_s=0.01, timeout_s=0.3, chunk_bytes=4096)
    _fetch(mirror, TUMORZONE, dest, policy=policy)
    assert _same(dest, mirror.root / TUMORZONE)
    first, second = mirror.requests_for(TUMORZONE)
    assert first.range is None and first.status == 200
    assert second.status == 206 and second.range.startswith("bytes=") and second.range != "bytes=0-"


def test_connection_reset_mid_body_is_retried(mirror, tmp_path):
    # A TCP reset may discard bytes the client had not read yet, so the retry may start anywhere.
    mirror.add_fault(TUMORZONE, Fault("drop", times=2))
    dest = tmp_path / "t.sqlite"
    _fetch(mirror, TUMORZONE, dest)
    assert _same(dest, mirror.root / TUMORZONE)
    assert len(mirror.requests_for(TUMORZONE)) == 3


def test_server_ignoring_range_restarts_cleanly(mirror, tmp_path):
    mirror.add_fault(TUMORZONE, Fault("drop"))
    mirror.add_fault(TUMORZONE, Fault("ignore_range"))
    dest = tmp_path / "t.sqlite"
    _fetch(mirror, TUMORZONE, dest)
    assert _same(dest, mirror.root / TUMORZONE)
    statuses = [(r.range is not None, r.status) for r in mirror.requests_for(TUMORZONE)]
    assert statuses == [(False, 200), (True, 200)]


def test_5xx_then_success(mirror, tmp_path):
    mirror.add_fault(SLIDE, Fault("status", times=2, status=503))
    dest = tmp_path / "s.svs"
    _fetch(mirror, SLIDE, dest)
    assert _same(dest, mirror.root / SLIDE)
    assert [r.status for r in mirror.requests_for(SLIDE)] == [503, 503, 200]


@pytest.mark.parametrize("status", [429, 202])
def test_429_and_202_are_retried(mirror, tmp_path, status):
    mirror.add_fault(SLIDE, Fault("status", times=1, status=status, retry_after="0"))
    dest = tmp_path / "s.svs"
    _fetch(mirror, SLIDE, dest)
    assert _same(dest, mirror.root / SLIDE)
    assert [r.status for r in mirror.requests_for(SLIDE)] == [status, 200]


def test_retry_policy_backoff_and_retry_after():
    policy = RetryPolicy(backoff_s=2.0, max_backoff_s=10.0)
    assert [policy.delay_s(i) for i in range(4)] == [2.0, 4.0, 8.0, 10.0]
    assert policy.delay_s(0, retry_after_s=3.0) == 3.0
    assert policy.delay_s(0, retry_after_s=3600.0) == 10.0


def test_persistent_5xx_gives_up_after_the_attempts(mirror, tmp_path):
    mirror.add_fault(SLIDE, Fault("status", times=None, status=500))
    dest = tmp_path / "s.svs"
    with pytest.raises(DownloadError, match="gave up after 3 attempts.*HTTP 500"):
        _fetch(mirror, SLIDE, dest)
    assert len(mirror.requests_for(SLIDE)) == 3
    assert not dest.exists()


@pytest.mark.parametrize(("status", "words"), [(404, "not found"), (403, "forbidden")])
def test_404_and_403_fail_at_once(mirror, tmp_path, status, words):
    mirror.add_fault(SLIDE, Fault("status", times=None, status=status))
    dest = tmp_path / "s.svs"
    with pytest.raises(PermanentDownloadError, match=f"HTTP {status}: .*{words}"):
        _fetch(mirror, SLIDE, dest)
    assert len(mirror.requests_for(SLIDE)) == 1
    assert not dest.exists()


def test_missing_file_on_mirror_is_404(mirror, tmp_path):
    with pytest.raises(PermanentDownloadError, match="404"):
        _fetch(mirror, "WSI/nothing.svs", tmp_path / "n.svs")


@pytest.mark.parametrize("kind", ["html", "html_body"])
def test_html_page_is_refused(mirror, tmp_path, kind):
    mirror.add_fault(ODAEL, Fault(kind, times=None))
    dest = tmp_path / "o.sqlite"
    with pytest.raises(PermanentDownloadError, match="web page"):
        _fetch(mirror, ODAEL, dest)
    assert not dest.exists()
    part = tmp_path / "o.sqlite.part"
    assert not part.exists() or part.stat().st_size == 0


@pytest.mark.parametrize("kind", ["html", "html_body"])
def test_html_page_does_not_spoil_a_partial_file(mirror, tmp_path, kind):
    dest = tmp_path / "t.sqlite"
    source = (mirror.root / TUMORZONE).read_bytes()
    dest.with_name("t.sqlite.part").write_bytes(source[:10000])
    mirror.add_fault(TUMORZONE, Fault(kind))  # answered 200 to a Range request: looks like a restart
    with pytest.raises(PermanentDownloadError):
        _fetch(mirror, TUMORZONE, dest)
    assert dest.with_name("t.sqlite.part").read_bytes() == source[:10000]
    _fetch(mirror, TUMORZONE, dest)
    assert _same(dest, mirror.root / TUMORZONE)
    assert mirror.requests_for(TUMORZONE)[-1].range == "bytes=10000-"


def test_empty_body_is_never_accepted(mirror, tmp_path):
    mirror.add_fault(ODAEL, Fault("empty", times=None))
    dest = tmp_path / "o.sqlite"
    with pytest.raises(DownloadError, match="empty body"):
        _fetch(mirror, ODAEL, dest)
    assert not dest.exists()


def test_complete_part_file_is_finished_with_416(mirror, tmp_path):
    dest = tmp_path / "t.sqlite"
    dest.with_name("t.sqlite.part").write_bytes((mirror.root / TUMORZONE).read_bytes())
    _fetch(mirror, TUMORZONE, dest)
    assert _same(dest, mirror.root / TUMORZONE)
    assert [r.status for r in mirror.requests_for(TUMORZONE)] == [416]


def test_part_file_longer_than_the_source_restarts(mirror, tmp_path):
    dest = tmp_path / "t.sqlite"
    dest.with_name("t.sqlite.part").write_bytes(b"\0" * (5 << 20))
    _fetch(mirror, TUMORZONE, dest)
    assert _same(dest, mirror.root / TUMORZONE)


def test_wrong_expected_md5_is_refused(mirror, tmp_path):
    dest = tmp_path / "s.svs"
    with pytest.raises(PermanentDownloadError, match="MD5"):
        _fetch(mirror, SLIDE, dest, expected_md5="0" * 32)
    assert not dest.exists() and not dest.with_name("s.svs.part").exists()


def test_offline_is_reported_as_such(tmp_path):
    with pytest.raises(OfflineError, match="looks offline"):
        fetch_file("http://ccmct-test.invalid/x.svs", tmp_path / "x.svs", policy=FAST)


# ------------------------------------------------------------------------------------------- data set
def _download(mirror, root, **kwargs) -> DownloadReport:
    return download_dataset(root, base_url=mirror.url, policy=FAST, progress=False, workers=2, **kwargs)


def test_databases_download_then_rerun_is_a_noop(mirror, tmp_path):
    root = tmp_path / "data"
    report = _download(mirror, root, only="databases")
    assert report.ok, report.summary()
    assert report.counts() == {"downloaded": 4}
    checksums = read_checksums(root)
    for name in DATABASE_FILES.values():
        relative = f"databases/{name}"
        assert _same(root / relative, mirror.root / relative)
        assert checksums[relative] == hashlib.md5((root / relative).read_bytes()).hexdigest()
    mirror.reset()
    again = _download(mirror, root, only="databases")
    assert again.counts() == {"present": 4} and again.ok
    assert mirror.log == []


def test_corrupt_slide_is_moved_aside(mirror, tmp_path):
    root = tmp_path / "data"
    report = _download(mirror, root, only="slides", slides=[SERVED_SLIDE, CORRUPT_SLIDE])
    by_path = {o.relative_path: o for o in report.outcomes}
    assert by_path[SLIDE].status == "downloaded"
    bad = by_path[f"WSI/{CORRUPT_SLIDE}"]
    assert bad.status == "corrupt" and "moved aside" in bad.message and "OpenSlide" in bad.message
    assert not (root / "WSI" / CORRUPT_SLIDE).exists()
    assert _same(root / "WSI" / f"{CORRUPT_SLIDE}.corrupt", mirror.root / "WSI" / CORRUPT_SLIDE)
    assert not report.ok
    assert report.retry_command.endswith(f"--only slides --slides {CORRUPT_SLIDE} --base-url {mirror.url}")


def test_database_that_is_not_sqlite_is_moved_aside(mirror, tmp_path):
    (mirror.root / ODAEL).write_bytes(b"\x00\x01binary but not a database" * 1000)
    root = tmp_path / "data"
    report = _download(mirror, root, only="databases")
    bad = [o for o in report.outcomes if not o.complete]
    assert [(o.relative_path, o.status) for o in bad] == [(ODAEL, "corrupt")]
    assert "not a SQLite database" in bad[0].message
    assert (root / f"{ODAEL}.corrupt").exists() and not (root / ODAEL).exists()
    assert report.retry_command.endswith("--only databases --base-url " + mirror.url)


def test_missing_file_is_reported_with_retry_command(mirror, tmp_path):
    root = tmp_path / "data"
    report = _download(mirror, root, slides=["c91a842257ed2add5134"])  # databases + one slide not on the mirror
    failed = report.failed
    assert [o.relative_path for o in failed] == ["WSI/c91a842257ed2add5134.svs"]
    assert "HTTP 404" in failed[0].message
    summary = report.summary()
    assert "complete: 4 (downloaded 4)" in summary and "retry with: ccmct setup" in summary


def test_offline_data_set_download_stops_early(tmp_path):
    report = download_dataset(tmp_path / "data", base_url="http://ccmct-test.invalid", policy=FAST,
                              progress=False, workers=1, only="databases")
    assert report.offline and not report.ok
    assert "looks offline" in report.summary()
    assert sum("not tried" in o.message for o in report.outcomes) == 3


def test_verify_detects_changed_and_missing_files(mirror, tmp_path):
    root = tmp_path / "data"
    assert _download(mirror, root, only="databases").ok
    assert verify_dataset(root, only="databases", progress=False).ok
    changed = root / ODAEL
    content = bytearray(changed.read_bytes())
    content[-1] ^= 0xFF
    changed.write_bytes(bytes(content))
    (root / TUMORZONE).unlink()
    report = verify_dataset(root, only="databases", progress=False)
    statuses = {o.relative_path: o.status for o in report.outcomes}
    assert statuses[ODAEL] == "corrupt" and statuses[TUMORZONE] == "missing"
    assert (root / f"{ODAEL}.corrupt").exists() and not changed.exists()


def test_verify_records_checksum_of_a_file_copied_in(source_root, tmp_path):
    root = tmp_path / "data"
    (root / "databases").mkdir(parents=True)
    shutil.copyfile(source_root / TUMORZONE, root / TUMORZONE)
    report = verify_dataset(root, only="databases", progress=False)
    assert {o.relative_path: o.status for o in report.outcomes}[TUMORZONE] == "verified"
    assert read_checksums(root) == {TUMORZONE: hashlib.md5((root / TUMORZONE).read_bytes()).hexdigest()}


# ------------------------------------------------------------------------------------------- CLI
def test_cli_setup_resumes_interrupted_transfer_then_does_nothing(mirror, tmp_path, capsys):
    root = tmp_path / "data"
    args = ["setup", "--data-root", str(root), "--base-url", mirror.url, "--only", "databases",
            "--attempts", "1", "--backoff", "0.01", "--timeout", "2", "--no-progress"]
    mirror.add_fault(TUMORZONE, Fault("short"))  # the connection ends mid-body, then the server fails
    mirror.add_fault(TUMORZONE, Fault("status", times=None, status=500))
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "not complete: 1" in out and "retry with: ccmct setup" in out
    partial = (root / f"{TUMORZONE}.part").stat().st_size
    assert 0 < partial < (mirror.root / TUMORZONE).stat().st_size
    assert not (root / TUMORZONE).exists()

    mirror.reset()
    assert main(args) == 0
    assert [r.range for r in mirror.log] == [f"bytes={partial}-"]
    for name in DATABASE_FILES.values():
        assert _same(root / "databases" / name, mirror.root / "databases" / name)

    mirror.reset()
    assert main(args) == 0
    assert mirror.log == []
    assert "present 4" in capsys.readouterr().out
    assert main(["setup", "--data-root", str(root), "--only", "databases", "--verify", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] and document["counts"] == {"verified": 4} and document["retry_command"] is None
    assert (root / CHECKSUMS_FILE).read_text().count("\n") == 4


def test_cli_rejects_unknown_slide(tmp_path, capsys):
    assert main(["setup", "--data-root", str(tmp_path), "--slides", "nope.svs"]) == 2
    assert "unknown slide(s) nope.svs" in capsys.readouterr().err


def test_cli_synthetic_passes_the_preset_to_the_generator(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:  # refused at the boundary, before anything is written
        main(["setup", "--data-root", str(tmp_path / "syn"), "--synthetic", "huge"])
    assert info.value.code == 2 and "invalid choice: 'huge'" in capsys.readouterr().err
    assert not (tmp_path / "syn").exists()
