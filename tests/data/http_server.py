"""A real HTTP server on 127.0.0.1 that serves a folder and misbehaves on request (for download tests).

Files are served from ``root`` at ``/<relative path>`` with ``Range: bytes=N-`` support (``206``, ``416``).
Per path, a queue of :class:`Fault` s decides how the next requests are answered; each fault applies to
``times`` requests (None: to every request). Every request is logged as a :class:`Request`.

Faults (``kind``):
    ``status``        answer ``status`` (500, 429, 404, 403 ...) with a short body; ``retry_after`` for 429.
    ``drop``          send headers and about half of the body, then reset the connection (TCP RST).
    ``short``         announce the full ``Content-Length``, send half of the body, close cleanly.
    ``ignore_range``  answer ``200`` with the whole body even when a Range was asked.
    ``html``          ``200`` with ``Content-Type: text/html`` and an error page.
    ``html_body``     ``200`` with ``application/octet-stream`` but an HTML body.
    ``empty``         ``200`` with ``Content-Length: 0``.
    ``stall``         send half of the body, then wait ``stall_s`` seconds (longer than the client's timeout).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>Error</title></head><body>Something went wrong</body></html>\n"


@dataclass
class Fault:
    kind: str
    times: int | None = 1
    status: int = 500
    retry_after: str | None = None
    stall_s: float = 2.0


@dataclass(frozen=True)
class Request:
    path: str
    range: str | None
    status: int


class FaultyServer:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.log: list[Request] = []
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> "FaultyServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def add_fault(self, path: str, fault: Fault) -> None:
        """Queue ``fault`` for requests of ``/<path>`` (faults apply in the order added)."""
        with self._lock:
            self._faults["/" + path.lstrip("/")].append(fault)

    def reset(self) -> None:
        """Forget faults and the request log."""
        with self._lock:
            self._faults.clear()
            self.log.clear()

    def requests_for(self, path: str) -> list[Request]:
        return [r for r in self.log if r.path == "/" + path.lstrip("/")]

    def next_fault(self, path: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(path)
            if not queue:
                return None
            fault = queue[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    queue.popleft()
            return fault

    def record(self, path: str, range_header: str | None, status: int) -> None:
        with self._lock:
            self.log.append(Request(path, range_header, status))


def _make_handler(server: FaultyServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = unquote(urlsplit(self.path).path)
            range_header = self.headers.get("Range")
            file = server.root / path.lstrip("/")
            fault = server.next_fault(path)
            if fault is not None and fault.kind in ("status", "html", "html_body", "empty"):
                return self._simple(path, range_header, fault)
            if not file.is_file():
                return self._reply(path, range_header, 404, b"not found", "text/plain")
            data = file.read_bytes()
            start = 0
            if range_header and not (fault and fault.kind == "ignore_range"):
                start = int(range_header.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    return self._reply(path, range_header, 416, b"", "text/plain",
                                       {"Content-Range": f"bytes */{len(data)}"})
            self._send_body(path, range_header, data, start, fault)

        def _simple(self, path: str, range_header: str | None, fault: Fault) -> None:
            if fault.kind == "status":
                extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return self._reply(path, range_header, fault.status, b"error", "text/plain", extra)
            if fault.kind == "empty":
                return self._reply(path, range_header, 200, b"", "application/octet-stream")
            content_type = "text/html; charset=utf-8" if fault.kind == "html" else "application/octet-stream"
            return self._reply(path, range_header, 200, HTML_PAGE, content_type)

        def _reply(self, path, range_header, status, body, content_type, extra=None) -> None:
            server.record(path, range_header, status)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _send_body(self, path, range_header, data, start, fault) -> None:
            status = 206 if start else 200
            server.record(path, range_header, status)
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            body = data[start:]
            if fault is None or fault.kind == "ignore_range":
                self.wfile.write(body)
                return
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if fault.kind == "stall":
                time.sleep(fault.stall_s)
            elif fault.kind == "drop":  # abortive close: the client sees a connection reset
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True

    return Handler


# ---------------------------------------------------------------------------------------------- mirror content
SERVED_SLIDE = "be10fa37ad6e88e1f406.svs"
"""A real slide name of the data set; the file served under it is a small slide written by svs_writer."""
CORRUPT_SLIDE = "f3741e764d39ccc4d114.svs"
"""Served as OpenSlide's ``unreadable.svs`` test file (it opens, but its tile data is corrupt)."""


def small_database(path: Path, slide_names: list[str], *, seed: int, spots_per_slide: int = 300) -> None:
    """A small SlideRunner database with random spot annotations of every cell class."""
    import numpy as np

    from ccmct.config.dataset import CELL_CLASS_NAMES
    from ccmct.data.sliderunner import SlideRunnerDB

    rng = np.random.default_rng(seed)
    with SlideRunnerDB.create(path) as db:
        for class_id, name in CELL_CLASS_NAMES.items():
            db.add_class(name, uid=class_id)
        person = db.add_person("expert")
        for name in slide_names:
            uid = db.add_slide(name, 2000, 1500)
            xy = rng.integers(0, 1500, size=(spots_per_slide, 2))
            classes = rng.choice(list(CELL_CLASS_NAMES), size=len(xy))
            db.add_spots(uid, xy, classes, [[(person, int(c))] for c in classes])


def build_mirror(root: Path, *, tumorzone_db: Path, unreadable_svs: Path | None = None) -> Path:
    """Lay out a data-set-shaped folder: MEL/HEAEL/ODAEL (small, generated), the real Tumorzone database,
    and, when ``unreadable_svs`` is given, two slides (a valid one written by svs_writer and a corrupt one)."""
    import shutil

    import numpy as np

    from ccmct.config.dataset import DATABASE_FILES
    from ccmct.data.svs_writer import write_svs

    databases = root / "databases"
    databases.mkdir(parents=True, exist_ok=True)
    for seed, variant in enumerate(("MEL", "HEAEL", "ODAEL")):
        small_database(databases / DATABASE_FILES[variant], [SERVED_SLIDE, CORRUPT_SLIDE], seed=seed)
    shutil.copyfile(tumorzone_db, databases / DATABASE_FILES["Tumorzone"])
    if unreadable_svs is not None:
        image = np.random.default_rng(0).integers(0, 255, size=(384, 512, 3), dtype=np.uint8)
        write_svs(root / "WSI" / SERVED_SLIDE, image, mpp=0.25, compression="jpeg")
        shutil.copyfile(unreadable_svs, root / "WSI" / CORRUPT_SLIDE)
    return root
