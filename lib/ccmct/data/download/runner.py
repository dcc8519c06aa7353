"""Download or verify the data set: several files in parallel, progress bars, a report and a retry command.

Example:
    >>> report = download_dataset("data", only="databases")        # doctest: +SKIP
    >>> print(report.summary())                                     # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shlex
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import requests
from tqdm import tqdm

from ccmct.data.download.checks import check_content, move_aside
from ccmct.data.download.fetch import OfflineError, PermanentDownloadError, RetryPolicy, fetch_file
from ccmct.data.manifest import (
    ManifestEntry,
    manifest,
    md5_of_file,
    read_checksums,
    record_checksum,
    select_entries,
)
from ccmct.config.dataset import REAL_SLIDES
from ccmct.errors import CcmctError, DownloadError, FileProblem

COMPLETE = ("downloaded", "present", "verified")
_LISTED = 12  # failures listed one per line in the summary
OFFLINE_HINT = ("This machine looks offline (DNS failure or network unreachable). Connect it to the internet, "
                "point --base-url at a local mirror, or generate the synthetic data set (--synthetic tiny).")


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file.

    Attributes:
        relative_path: destination under the data root.
        kind: ``"database"`` or ``"slide"``.
        status: ``downloaded`` | ``present`` (already complete, not fetched) | ``verified`` | ``failed`` |
            ``corrupt`` (moved aside to ``<name>.corrupt``) | ``missing`` (``--verify``: not there).
        message: why it failed, or a note.
        md5: MD5 (hex) when computed.
        offline: the failure came from a missing network.
    """

    relative_path: str
    kind: str
    status: str
    message: str = ""
    md5: str | None = None
    offline: bool = False

    @property
    def complete(self) -> bool:
        return self.status in COMPLETE


@dataclass(frozen=True)
class DownloadReport:
    """The outcome of :func:`download_dataset` or :func:`verify_dataset`."""

    data_root: Path
    outcomes: tuple[FileOutcome, ...]
    retry_command: str | None = None
    action: str = "download"

    @property
    def ok(self) -> bool:
        """True when every requested file is complete."""
        return all(o.complete for o in self.outcomes)

    @property
    def failed(self) -> tuple[FileOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.complete)

    @property
    def offline(self) -> bool:
        return any(o.offline for o in self.outcomes)

    def counts(self) -> dict[str, int]:
        """Files per status."""
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return counts

    def as_dict(self) -> dict:
        return {"data_root": str(self.data_root), "action": self.action, "ok": self.ok, "counts": self.counts(),
                "offline": self.offline, "retry_command": self.retry_command,
                "files": [o.__dict__ for o in self.outcomes]}

    def summary(self) -> str:
        """Human-readable summary: complete, failed (with reasons) and the command to retry."""
        counts = self.counts()
        done = ", ".join(f"{status} {counts[status]}" for status in COMPLETE if counts.get(status))
        lines = [f"{self.action}: {len(self.outcomes)} file(s) under {self.data_root}",
                 f"  complete: {len(self.outcomes) - len(self.failed)}" + (f" ({done})" if done else "")]
        if self.failed:
            lines.append(f"  not complete: {len(self.failed)}")
            lines += [f"    {o.relative_path}: {o.status}: {o.message}" for o in self.failed[:_LISTED]]
            if len(self.failed) > _LISTED:
                lines.append(f"    ... and {len(self.failed) - _LISTED} more (--json lists every file)")
        if self.offline:
            lines.append(f"  {OFFLINE_HINT}")
        if self.retry_command:
            lines.append(f"  retry with: {self.retry_command}")
        return "\n".join(lines)


@dataclass
class _Progress:
    """One overall byte bar plus one bar per file in flight (thread-safe)."""

    enabled: bool
    overall: tqdm | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _files: dict[str, list] = field(default_factory=dict)  # name -> [bar, done, total]

    def __post_init__(self):
        if self.enabled:
            self.overall = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1024, desc="all files",
                                position=0, dynamic_ncols=True)

    def callback(self, name: str):
        def update(done: int, total: int | None) -> None:
            if not self.enabled:
                return
            with self._lock:
                self._update(name, done, total)
        return update

    def _update(self, name: str, done: int, total: int | None) -> None:
        state = self._files.get(name)
        if state is None:
            bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                       leave=False, dynamic_ncols=True)
            state = self._files[name] = [bar, done, total]
            self.overall.total += total or 0
            self.overall.update(done)
            return
        bar, before, known = state
        if total is not None and known is None:
            bar.total = total
            self.overall.total += total
            state[2] = total
        bar.update(done - before)
        self.overall.update(done - before)
        state[1] = done

    def close_file(self, name: str) -> None:
        with self._lock:
            state = self._files.pop(name, None)
            if state is not None:
                state[0].close()

    def close(self) -> None:
        if self.overall is not None:
            self.overall.close()


def download_dataset(data_root: str | os.PathLike[str], *, only: str | None = None,
                     slides: Iterable[str] | None = None, base_url: str | None = None, workers: int = 3,
                     policy: RetryPolicy = RetryPolicy(), progress: bool = True) -> DownloadReport:
    """Download the real data set (or part of it) into ``data_root``; files already there are skipped.

    Args:
        data_root: destination folder (``databases/``, ``WSI/`` and ``checksums.md5`` are created in it).
        only: ``"databases"``, ``"slides"`` or None for everything.
        slides: slide file names to fetch (default: all 32).
        base_url: a mirror to use instead of figshare: files come from ``<base_url>/<relative path>``.
        workers: files downloaded at the same time.
        policy: retries, back-off and time-outs.
        progress: show tqdm bars (overall bytes and one per file).

    Returns:
        The report; ``report.ok`` is True only when every requested file is complete.

    Raises:
        CcmctError: unknown ``only`` or slide name.
    """
    root = Path(data_root)
    slides = list(slides) if slides is not None else None
    entries = select_entries(only=only, slides=slides)
    if workers < 1:
        raise CcmctError(f"workers must be at least 1, got {workers}")
    refuse_synthetic_root(root)
    root.mkdir(parents=True, exist_ok=True)
    bars = _Progress(progress)
    flags = _Flags(threading.Event(), threading.Event())
    local = threading.local()

    def task(entry: ManifestEntry) -> FileOutcome:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return _download_one(entry, root, base_url=base_url, policy=policy, bars=bars, flags=flags,
                             session=local.session)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ccmct-download") as pool:
            futures = [pool.submit(task, entry) for entry in entries]
            try:
                outcomes = tuple(future.result() for future in futures)
            except BaseException:  # Ctrl-C: stop the running downloads at their next chunk (.part files stay)
                flags.cancel.set()
                for future in futures:
                    future.cancel()
                raise
    finally:
        bars.close()
    failed = [e for e, o in zip(entries, outcomes) if not o.complete]
    command = retry_command(root, failed, base_url=base_url, only=only, slides=slides) if failed else None
    return DownloadReport(root, outcomes, command)


@dataclass(frozen=True)
class _Flags:
    offline: threading.Event  # a download found no network: do not try the others
    cancel: threading.Event  # the user interrupted: running downloads stop at their next chunk


class _Cancelled(Exception):
    """Raised from the progress callback to stop a download (its ``.part`` file stays for a later run)."""


def refuse_synthetic_root(root: Path) -> None:
    """A synthetic data root (``synthetic.json``, ``ccmct synth``) is never taken for the real data set.

    Raises:
        CcmctError: naming the root as synthetic, with its preset and seed.
    """
    from ccmct.config.dataset import SYNTHETIC_REPORT_FILE as SYNTHETIC_MARKER

    marker = root / SYNTHETIC_MARKER
    if not marker.exists():
        return
    try:
        document = json.loads(marker.read_text())
        what = f"preset {document.get('preset')!r}, seed {document.get('seed')!r}"
    except (OSError, ValueError, AttributeError):
        what = "unreadable report"
    raise CcmctError(f"{root}: is a synthetic data root ({SYNTHETIC_MARKER}: {what}), not the real data set; "
                     "download or verify the real data in another folder")


def present_problem(entry: ManifestEntry, dest: Path, recorded: dict[str, str]) -> str | None:
    """Why a file already at ``dest`` is not the data set's file (None when it is taken as complete).

    Checked without downloading: the size when the manifest knows it; then a file this downloader fetched
    (its MD5 is in ``checksums.md5``) is complete; any other file must open as what it claims to be
    (:func:`check_content`), and a database must describe the real slides (a synthetic database lists
    other slide names). ``--verify`` adds the MD5.
    """
    if not dest.is_file():
        return "is not a regular file"
    size = dest.stat().st_size
    if entry.size_bytes is not None and size != entry.size_bytes:
        return f"has {size} bytes, the data set's file has {entry.size_bytes}"
    if entry.relative_path in recorded:
        return None
    try:
        check_content(entry.kind, dest)
    except FileProblem as err:
        return err.problem
    if entry.kind == "database":
        return _foreign_database(dest)
    return None


def _foreign_database(path: Path) -> str | None:
    from ccmct.data.sliderunner import SlideRunnerDB

    real = {s.filename for s in REAL_SLIDES}
    with SlideRunnerDB.open(path) as db:
        names = set(db.slides()["filename"].astype(str))
    if names and not names & real:
        return (f"lists {len(names)} slide(s), none of them one of the data set's 32 (e.g. {sorted(names)[0]}); "
                "a synthetic or foreign database")
    return None


def _download_one(entry: ManifestEntry, root: Path, *, base_url: str | None, policy: RetryPolicy,
                  bars: _Progress, flags: _Flags, session: requests.Session) -> FileOutcome:
    dest = entry.destination(root)
    if dest.exists() or dest.is_symlink():
        problem = present_problem(entry, dest, read_checksums(root))
        if problem is None:
            return FileOutcome(entry.relative_path, entry.kind, "present", "already complete; not downloaded")
        return FileOutcome(entry.relative_path, entry.kind, "failed",
                           f"a file is already there but {problem}; it was left untouched: move it away and rerun")
    if flags.offline.is_set():
        return FileOutcome(entry.relative_path, entry.kind, "failed", "not tried: the machine is offline",
                           offline=True)
    url = entry.url(base_url)
    show = bars.callback(entry.relative_path)

    def on_progress(done: int, total: int | None) -> None:
        if flags.cancel.is_set():
            raise _Cancelled(entry.relative_path)
        show(done, total)

    def check(part: Path) -> None:
        try:
            check_content(entry.kind, part, shown_as=dest)
        except FileProblem as err:
            target = move_aside(part)
            raise _Corrupt(f"{err.problem}; moved aside to {target.name}") from None

    try:
        md5 = fetch_file(url, dest, policy=policy, expected_size=entry.size_bytes, expected_md5=entry.md5,
                         progress=on_progress, session=session, check=check)
    except _Corrupt as err:
        return FileOutcome(entry.relative_path, entry.kind, "corrupt", str(err))
    except OfflineError as err:
        flags.offline.set()
        return FileOutcome(entry.relative_path, entry.kind, "failed", str(err), offline=True)
    except (PermanentDownloadError, DownloadError, OSError) as err:
        return FileOutcome(entry.relative_path, entry.kind, "failed", str(err))
    finally:
        bars.close_file(entry.relative_path)
    record_checksum(root, entry.relative_path, md5)
    return FileOutcome(entry.relative_path, entry.kind, "downloaded", md5=md5)


class _Corrupt(DownloadError):
    """The downloaded file failed its content check and was moved aside."""


def verify_dataset(data_root: str | os.PathLike[str], *, only: str | None = None,
                   slides: Iterable[str] | None = None, progress: bool = True) -> DownloadReport:
    """Check the files already in ``data_root``: present, MD5 as recorded, and readable.

    A file whose MD5 differs from ``checksums.md5`` (or from the manifest, when it knows one) or that does not
    open is moved aside to ``<name>.corrupt``. A file without a recorded MD5 gets one recorded.

    Returns:
        The report (statuses ``verified``, ``missing``, ``corrupt``).
    """
    root = Path(data_root)
    slides = list(slides) if slides is not None else None
    entries = select_entries(only=only, slides=slides)
    refuse_synthetic_root(root)
    recorded = read_checksums(root)
    outcomes = tuple(_verify_one(e, root, recorded) for e in tqdm(entries, desc="verify", unit="file",
                                                                      disable=not progress))
    failed = [e for e, o in zip(entries, outcomes) if not o.complete]
    command = retry_command(root, failed, only=only, slides=slides) if failed else None
    return DownloadReport(root, outcomes, command, action="verify")


def _verify_one(entry: ManifestEntry, root: Path, recorded: dict[str, str]) -> FileOutcome:
    dest = entry.destination(root)
    if not dest.exists():
        part = dest.with_name(dest.name + ".part")
        size = part.stat().st_size if part.is_file() else 0
        note = f" ({size} bytes in {part.name}; a download resumes there)" if size else ""
        return FileOutcome(entry.relative_path, entry.kind, "missing", "not downloaded" + note)
    md5 = md5_of_file(dest)
    expected = entry.md5 or recorded.get(entry.relative_path)
    try:
        if expected is not None and md5 != expected:
            raise FileProblem(dest, f"MD5 {md5} differs from the recorded {expected}")
        check_content(entry.kind, dest)
    except FileProblem as err:
        target = move_aside(dest)
        return FileOutcome(entry.relative_path, entry.kind, "corrupt",
                           f"{err.problem}; moved aside to {target.name}", md5=md5)
    foreign = _foreign_database(dest) if expected is None and entry.kind == "database" else None
    if foreign:
        return FileOutcome(entry.relative_path, entry.kind, "failed",
                           f"{foreign}; left untouched (move it away and rerun ccmct setup)", md5=md5)
    note = "MD5 matches" if expected is not None else "no MD5 recorded before; recorded now"
    if expected is None:
        record_checksum(root, entry.relative_path, md5)
    return FileOutcome(entry.relative_path, entry.kind, "verified", note, md5=md5)


def retry_command(root: Path, failed: list[ManifestEntry], *, base_url: str | None = None,
                  only: str | None = None, slides: list[str] | None = None) -> str:
    """The ``ccmct setup`` command that fetches exactly what is still missing (complete files are skipped)."""
    words = ["ccmct", "setup", "--data-root", str(root)]
    kinds = {e.kind for e in failed}
    if kinds == {"database"}:
        words += ["--only", "databases"]
    elif kinds == {"slide"}:
        names = [e.name for e in failed]
        every_slide = len(names) == sum(e.kind == "slide" for e in manifest())
        words += ["--only", "slides"] + ([] if every_slide else ["--slides", *names])
    else:
        words += (["--only", only] if only else []) + (["--slides", *slides] if slides else [])
    if base_url:
        words += ["--base-url", base_url]
    return shlex.join(words)
