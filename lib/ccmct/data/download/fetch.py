"""Fetch one file over HTTP(S): resume, retry, refuse what is not the file, rename into place.

The bytes go to ``<dest>.part``. A rerun (or the next attempt) asks for the rest with an HTTP ``Range``
header; a server that ignores it (``200`` with the whole body) restarts the file cleanly. Connection errors,
time-outs, ``5xx``, ``429`` and ``202`` are retried with exponential back-off (honouring ``Retry-After``); an
attempt that brought new bytes does not count against the retry budget. ``401/403/404/410`` fail at once.
An HTML page, an empty body or a body shorter than ``Content-Length`` is never accepted as the file.

Example:
    >>> md5 = fetch_file("https://example.org/a.sqlite", Path("data/a.sqlite"))   # doctest: +SKIP
"""

from __future__ import annotations

import email.utils
import errno
import hashlib
import logging
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

from ccmct.errors import DownloadError

logger = logging.getLogger(__name__)

_PERMANENT_STATUS = {
    401: "the server asks for a login (private link token wrong or expired?)",
    403: "access forbidden (private link token wrong or expired, or the mirror denies access)",
    404: "not found on the server (wrong --base-url, or the file moved)",
    410: "gone from the server",
}
_HTML_PREFIXES = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try.

    Attributes:
        attempts: consecutive failed attempts (without new bytes) before a file is given up.
        backoff_s: wait before the first retry, seconds; doubles with each further retry.
        max_backoff_s: upper bound of one wait (also caps ``Retry-After``), seconds.
        timeout_s: connect and read time-out of one request, seconds.
        chunk_bytes: read size, bytes (at most this much is lost when a connection resets).
    """

    attempts: int = 8
    backoff_s: float = 2.0
    max_backoff_s: float = 120.0
    timeout_s: float = 60.0
    chunk_bytes: int = 64 << 10  # benchmarks/download.py: ~110 MiB/s here vs ~130 MiB/s at 1 MiB; less lost on reset

    def delay_s(self, retry: int, retry_after_s: float | None = None) -> float:
        """Wait before retry number ``retry`` (0-based), seconds."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_backoff_s)
        return min(self.backoff_s * 2**retry, self.max_backoff_s)


class PermanentDownloadError(DownloadError):
    """The server answered in a way that retrying cannot fix (404, 403, HTML page, wrong checksum)."""


class OfflineError(DownloadError):
    """The host name cannot be resolved or the network is unreachable: this machine looks offline."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after_s: float | None = None):
        super().__init__(reason)
        self.retry_after_s = retry_after_s


ProgressCallback = Callable[[int, "int | None"], None]
"""``progress(bytes_in_file, total_bytes_or_None)``: absolute numbers, called when a response starts and after
every chunk (``bytes_in_file`` drops back to 0 when the file restarts)."""


class _PartFile:
    """The growing ``<dest>.part``, with an MD5 kept in step with its bytes."""

    def __init__(self, path: Path):
        self.path = path
        self.digest = hashlib.md5(usedforsecurity=False)
        self.size = 0
        if path.exists():
            with open(path, "rb") as handle:
                while chunk := handle.read(8 << 20):
                    self.digest.update(chunk)
                    self.size += len(chunk)

    def restart(self) -> None:
        self.path.write_bytes(b"")
        self.digest = hashlib.md5(usedforsecurity=False)
        self.size = 0


def fetch_file(url: str, dest: Path, *, policy: RetryPolicy = RetryPolicy(), expected_size: int | None = None,
               expected_md5: str | None = None, progress: ProgressCallback | None = None,
               session: requests.Session | None = None, check: Callable[[Path], None] | None = None) -> str:
    """Download ``url`` to ``dest``, resuming from ``<dest>.part``; returns the MD5 (hex) of the file.

    Args:
        url: the file's URL.
        dest: final path; it appears only when the file is complete and passed every check.
        policy: retries, back-off and time-outs.
        expected_size: bytes the file must have, when known.
        expected_md5: MD5 the file must have, when known.
        progress: called with (bytes in the file so far, total bytes or None); see :data:`ProgressCallback`.
        session: a ``requests.Session`` to reuse (one per thread).
        check: called with the complete ``.part`` path before the rename; raises to refuse the file.

    Raises:
        PermanentDownloadError: 401/403/404/410, an HTML page, a size or checksum mismatch.
        OfflineError: DNS failure or unreachable network.
        DownloadError: still failing after ``policy.attempts`` attempts without progress.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _PartFile(dest.with_name(dest.name + ".part"))
    session = session or requests.Session()
    failures = 0
    while True:
        size_before = part.size
        try:
            total = _attempt(session, url, part, policy, progress)
            break
        except _Retryable as err:
            failures = 0 if part.size > size_before else failures + 1
            if failures >= policy.attempts:
                kept = (f"{part.size} bytes kept in {part.path} for the next run"
                        if part.size > 0 and part.path.is_file() else "nothing received, no partial file kept")
                raise DownloadError(f"{url}: gave up after {policy.attempts} attempts without progress "
                                    f"({err}); {kept}") from None
            delay_s = policy.delay_s(max(failures - 1, 0), err.retry_after_s)
            logger.warning("%s: %s; retrying in %.1f s (%d of %d attempts without progress used)",
                           dest.name, err, delay_s, failures, policy.attempts)
            time.sleep(delay_s)
    return _finish(part, dest, url, total=total, expected_size=expected_size, expected_md5=expected_md5,
                   check=check)


def _attempt(session: requests.Session, url: str, part: _PartFile, policy: RetryPolicy,
             progress: ProgressCallback | None) -> int | None:
    """One request; appends to ``part``. Returns the total size (None if the server did not say)."""
    headers = {"Accept-Encoding": "identity"}  # the bytes as stored: Content-Length and MD5 refer to them
    if part.size:
        headers["Range"] = f"bytes={part.size}-"
    try:
        with session.get(url, headers=headers, stream=True, timeout=policy.timeout_s) as response:
            total, restart = _accept(response, url, part)
            if progress:
                progress(0 if restart else part.size, total)
            if total is not None and part.size == total and not restart:
                return total
            _stream(response, url, part, total, policy, progress, restart=restart)
    except requests.RequestException as err:
        _raise_if_offline(err, url)
        raise _Retryable(f"{type(err).__name__}: {_short(err)}") from None
    _check_length(part, total, url)
    return total


def _accept(response: requests.Response, url: str, part: _PartFile) -> tuple[int | None, bool]:
    """Check status and headers. Returns (total size or None, whether the body is the whole file again)."""
    status = response.status_code
    if status in _PERMANENT_STATUS:
        raise PermanentDownloadError(f"{url}: HTTP {status}: {_PERMANENT_STATUS[status]}")
    if status == 429:
        raise _Retryable("HTTP 429 Too Many Requests", _retry_after_s(response))
    if status >= 500:
        raise _Retryable(f"HTTP {status} {response.reason}")
    if status == 416:  # asked beyond the end: complete if the server's size equals ours, else start over
        total = _total_from_content_range(response.headers.get("Content-Range", ""))
        if total is not None and total == part.size:
            return total, False
        part.restart()
        raise _Retryable("HTTP 416 (local partial file does not match the server's file; restarting)", 0.0)
    if status == 202:  # "accepted": the file is being prepared, ask again later
        raise _Retryable("HTTP 202 (the server is preparing the file)", _retry_after_s(response))
    if status not in (200, 206):
        raise PermanentDownloadError(f"{url}: unexpected HTTP {status} {response.reason}")
    _refuse_html_header(response, url)
    if status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != part.size:
            part.restart()
            raise _Retryable("HTTP 206 for a different range than asked; restarting the file", 0.0)
        return (None if match.group(3) == "*" else int(match.group(3))), False
    length = response.headers.get("Content-Length")
    total = int(length) if length is not None and length.isdigit() else None
    if total == 0:
        raise _Retryable("the server sent an empty body (0 bytes)")
    return total, part.size > 0  # 200 although we asked for a range: the whole file comes again


def _stream(response: requests.Response, url: str, part: _PartFile, total: int | None, policy: RetryPolicy,
            progress: ProgressCallback | None, *, restart: bool) -> None:
    """Append the body to ``part``; with ``restart`` the part is emptied once the first chunk looks right."""
    first = part.size == 0 or restart
    handle = None
    try:
        for chunk in response.iter_content(policy.chunk_bytes):
            if not chunk:
                continue
            if first:
                _refuse_html_body(chunk, url)
                if restart:
                    part.restart()
                first = False
            handle = handle or open(part.path, "ab")  # noqa: SIM115 - closed in finally
            handle.write(chunk)
            part.digest.update(chunk)
            part.size += len(chunk)
            if progress:
                progress(part.size, total)
    finally:
        if handle is not None:
            handle.close()


def _check_length(part: _PartFile, total: int | None, url: str) -> None:
    if part.size == 0:
        raise _Retryable("the server sent an empty body (0 bytes)")
    if total is not None and part.size < total:
        raise _Retryable(f"connection closed after {part.size} of {total} bytes")
    if total is not None and part.size > total:
        part.restart()
        raise _Retryable(f"received {part.size} bytes but the server announced {total}; restarting", 0.0)


def _finish(part: _PartFile, dest: Path, url: str, *, total: int | None, expected_size: int | None,
            expected_md5: str | None, check: Callable[[Path], None] | None) -> str:
    md5 = part.digest.hexdigest()
    problem = None
    if expected_size is not None and part.size != expected_size:
        problem = f"has {part.size} bytes, expected {expected_size}"
    elif expected_md5 is not None and md5 != expected_md5.lower():
        problem = f"MD5 {md5} differs from the expected {expected_md5}"
    if problem:
        part.path.unlink(missing_ok=True)
        raise PermanentDownloadError(f"{url}: the downloaded file {problem}; removed {part.path}")
    if check is not None:
        check(part.path)
    os.replace(part.path, dest)
    return md5


def _refuse_html_header(response: requests.Response, url: str) -> None:
    content_type = response.headers.get("Content-Type", "").lower()
    if content_type.startswith(("text/html", "application/xhtml")):
        raise PermanentDownloadError(f"{url}: the server sent a web page ({content_type}) instead of the data "
                                     "file (an error or login page; is the link or --base-url right?)")


def _refuse_html_body(chunk: bytes, url: str) -> None:
    head = chunk[:64].lstrip().lower()
    if head.startswith(_HTML_PREFIXES):
        raise PermanentDownloadError(f"{url}: the body is a web page (starts with {chunk[:15]!r}), not the data "
                                     "file (an error or login page; is the link or --base-url right?)")


def _retry_after_s(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _total_from_content_range(value: str) -> int | None:
    match = re.match(r"bytes\s+\*/(\d+)", value)
    return int(match.group(1)) if match else None


def _raise_if_offline(err: BaseException, url: str) -> None:
    """Walk the exception chain for a DNS failure or an unreachable network."""
    seen = set()
    stack = [err]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        unreachable = isinstance(current, OSError) and current.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
        if isinstance(current, socket.gaierror) or unreachable:
            host = requests.utils.urlparse(url).hostname
            raise OfflineError(f"{url}: cannot reach {host} ({current}); this machine looks offline") from None
        stack.extend([current.__cause__, current.__context__, *[a for a in current.args
                                                                 if isinstance(a, BaseException)]])
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)


def _short(err: BaseException) -> str:
    text = str(err)
    return text if len(text) < 200 else text[:197] + "..."
