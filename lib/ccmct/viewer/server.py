"""``ccmct view --serve``: the site's pages over HTTP on 127.0.0.1, Deep Zoom tiles rendered on demand.

A standard-library ``ThreadingHTTPServer``. Requests for ``/tiles/<stem>_files/<level>/<col>_<row>.jpeg``
are answered from the file on disk when a static build wrote it, else rendered from the slide with
openslide's ``DeepZoomGenerator`` (a pool of slide handles, each used by one request thread at a time)
and kept in an LRU cache of encoded tiles; everything else is served from the site folder. So a 100k x 80k px slide needs no tile folder.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from functools import lru_cache, partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ccmct.errors import CcmctError, FileProblem
from ccmct.viewer import tiles as tiles_mod
from ccmct.viewer.site import MANIFEST

TILE_CACHE = 4096
"""Encoded tiles kept in memory (about 10-20 kB each: ~40-80 MB)."""
_TILE_URL = re.compile(r"^/tiles/([A-Za-z0-9._-]+)_files/(\d+)/(\d+)_(\d+)\.jpeg$")


class TileRenderer:
    """Deep Zoom tiles of the site's slides, rendered on demand.

    Thread-safe: ``ThreadingHTTPServer`` answers each request in its own thread, so slide handles are
    kept in a pool per slide; a rendering thread takes one (opening a new one only when all are busy) and
    gives it back, so every handle is used by one thread at a time and handles are not reopened per tile.
    Encoded tiles are kept in an LRU cache (``tile``).
    """

    def __init__(self, slides: dict[str, Path], cache_size: int = TILE_CACHE):
        self.slides = slides
        self._pools: dict[str, queue.LifoQueue] = {stem: queue.LifoQueue() for stem in slides}
        self.opened = 0
        self._lock = threading.Lock()
        self.tile = lru_cache(maxsize=cache_size)(self._render)

    def _acquire(self, stem: str):
        from ccmct.data.slides import open_slide

        try:
            return self._pools[stem].get_nowait()
        except queue.Empty:
            with self._lock:
                self.opened += 1
            return open_slide(self.slides[stem]).deep_zoom(tile_size=tiles_mod.TILE_PX,
                                                           overlap=tiles_mod.OVERLAP_PX)

    def _render(self, stem: str, level: int, col: int, row: int) -> bytes | None:
        """JPEG bytes of one tile, or None when the address is outside the pyramid."""
        if stem not in self.slides:
            return None
        dz = self._acquire(stem)
        try:
            if not 0 <= level < dz.level_count:
                return None
            cols, rows = dz.level_tiles[level]
            if not (0 <= col < cols and 0 <= row < rows):
                return None
            return tiles_mod.encode_tile(dz.get_tile(level, (col, row)))
        except CcmctError:
            dz = None  # a handle that failed is closed for good: do not return it to the pool
            raise
        finally:
            if dz is not None:
                self._pools[stem].put(dz)


def read_manifest(site: Path) -> dict:
    path = Path(site) / MANIFEST
    if not path.exists():
        raise FileProblem(site, f"not a ccmct view site (no {MANIFEST}); build it with ccmct view first")
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise FileProblem(path, f"unreadable site manifest ({err})") from err


class _Handler(SimpleHTTPRequestHandler):
    renderer: TileRenderer

    def do_GET(self):  # noqa: N802 - http.server's name
        match = _TILE_URL.match(self.path.split("?", 1)[0])
        if match and not (Path(self.directory) / self.path.lstrip("/").split("?", 1)[0]).exists():
            stem, level, col, row = match.group(1), *map(int, match.groups()[1:])
            try:
                data = self.renderer.tile(stem, level, col, row)
            except CcmctError as err:
                self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR, str(err))
                return
            if data is None:
                self.send_error(HTTPStatus.NOT_FOUND, "no such tile")
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "max-age=3600")
            self.end_headers()
            self.wfile.write(data)
            return
        super().do_GET()

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        pass


def make_server(site: Path, *, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server for a built site (``port=0``: any free port; ``server.server_address`` tells which)."""
    site = Path(site).resolve()
    manifest = read_manifest(site)
    slides = {s["stem"]: Path(s["path"]) for s in manifest["slides"]}
    missing = [p for p in slides.values() if not p.exists()]
    if missing:
        raise FileProblem(missing[0], "slide of the site is missing; rebuild the site with ccmct view")
    renderer = TileRenderer(slides)
    handler = type("Handler", (_Handler,), {"renderer": renderer})
    server = ThreadingHTTPServer((host, port), partial(handler, directory=str(site)))
    server.daemon_threads = True
    server.renderer = renderer
    return server


def serve(site: Path, *, host: str = "127.0.0.1", port: int = 8000, announce=print) -> None:
    """Serve ``site`` until interrupted; ``announce`` gets the index URL once the socket listens."""
    server = make_server(site, host=host, port=port)
    address, real_port = server.server_address[:2]
    announce(f"serving http://{address}:{real_port}/index.html (Ctrl+C stops)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
