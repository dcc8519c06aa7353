"""What the real data set consists of and where each file comes from: the download manifest.

One entry per file: the four SlideRunner databases (MEL, HEAEL, ODAEL, Tumorzone) and the 32 slides. The
figshare file ids come from :mod:`ccmct.config.dataset` (the single source of truth); this module only adds
the download location and the destination under the data root::

    <root>/databases/MITOS_WSI_CCMCT_{MEL,HEAEL,ODAEL,Tumorzone}.sqlite
    <root>/WSI/<20 hex>.svs
    <root>/checksums.md5            MD5 of every file the downloader fetched (``md5sum`` format)

Files come from figshare's ``ndownloader`` endpoint with the private-link token that the authors published
in their ``Setup.ipynb`` (the same token for every file of the data set). A mirror is used instead with a
base URL: ``<base_url>/<relative destination>``, e.g. ``<base_url>/WSI/be10fa37ad6e88e1f406.svs``.

Neither figshare nor the authors publish sizes or checksums, so :attr:`ManifestEntry.size_bytes` and
:attr:`ManifestEntry.md5` are ``None`` for now; the downloader records the MD5 it computed and
``ccmct setup --verify`` checks the files against that record.

Example:
    >>> entries = select_entries(only="databases")
    >>> [e.relative_path for e in entries][:1]
    ['databases/MITOS_WSI_CCMCT_MEL.sqlite']
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from ccmct.config.dataset import DATABASE_FIGSHARE_IDS, DATABASE_FILES, REAL_SLIDES
from ccmct.errors import CcmctError, FileProblem
from ccmct.atomicio import atomic_write_text

Kind = Literal["database", "slide"]
ONLY_CHOICES = ("databases", "slides")

FIGSHARE_DOWNLOAD_URL = "https://ndownloader.figshare.com/files/{file_id}?private_link={token}"
FIGSHARE_PRIVATE_LINK = "a82ddb634864c24f4aee"
"""The private-link token of the authors' figshare collection (their ``Setup.ipynb``, every file)."""
PRIVATE_LINK_ENV = "CCMCT_FIGSHARE_PRIVATE_LINK"
"""Environment variable that overrides :data:`FIGSHARE_PRIVATE_LINK` (should figshare ever issue a new one)."""

CHECKSUMS_FILE = "checksums.md5"
_MD5_LINE = re.compile(r"^([0-9a-fA-F]{32}) [ *](.+)$")


@dataclass(frozen=True)
class ManifestEntry:
    """One file of the data set.

    Attributes:
        kind: ``"database"`` or ``"slide"``.
        name: database variant (``"ODAEL"``, ...) or slide file name (``"be10fa37ad6e88e1f406.svs"``).
        relative_path: destination under the data root, with ``/`` separators.
        figshare_id: figshare file id.
        size_bytes: expected size in bytes, when known (None: not published).
        md5: expected MD5 (hex), when known (None: not published).
    """

    kind: Kind
    name: str
    relative_path: str
    figshare_id: int
    size_bytes: int | None = None
    md5: str | None = None

    def url(self, base_url: str | None = None) -> str:
        """Where to fetch this file: figshare, or ``<base_url>/<relative_path>`` for a mirror."""
        if base_url:
            return f"{base_url.rstrip('/')}/{urllib.parse.quote(self.relative_path)}"
        token = os.environ.get(PRIVATE_LINK_ENV) or FIGSHARE_PRIVATE_LINK
        return FIGSHARE_DOWNLOAD_URL.format(file_id=self.figshare_id, token=token)

    def destination(self, data_root: str | os.PathLike[str]) -> Path:
        """Absolute destination of this file under ``data_root``."""
        return Path(data_root).joinpath(*self.relative_path.split("/"))


def manifest() -> tuple[ManifestEntry, ...]:
    """All 36 files: the 4 databases (MEL, HEAEL, ODAEL, Tumorzone), then the 32 slides (Table 1 order)."""
    databases = tuple(
        ManifestEntry("database", variant, f"databases/{DATABASE_FILES[variant]}", DATABASE_FIGSHARE_IDS[variant])
        for variant in DATABASE_FILES
    )
    slides = tuple(ManifestEntry("slide", s.filename, f"WSI/{s.filename}", s.figshare_id) for s in REAL_SLIDES)
    return databases + slides


def select_entries(*, only: str | None = None, slides: Iterable[str] | None = None) -> tuple[ManifestEntry, ...]:
    """The manifest entries a command asked for.

    Args:
        only: ``"databases"``, ``"slides"`` or None (everything).
        slides: restrict the slides to these file names (with or without ``.svs``); databases are still
            included unless ``only="slides"``.

    Raises:
        CcmctError: unknown ``only`` value or slide name (the message lists what is accepted).
    """
    if only not in (None, *ONLY_CHOICES):
        raise CcmctError(f"--only must be one of {', '.join(ONLY_CHOICES)}, got {only!r}")
    entries = manifest()
    if only == "databases":
        return tuple(e for e in entries if e.kind == "database")
    if slides is not None:
        wanted = {_slide_filename(name) for name in slides}
        known = {e.name for e in entries if e.kind == "slide"}
        unknown = sorted(wanted - known)
        if unknown:
            raise CcmctError(f"unknown slide(s) {', '.join(unknown)}; the data set has: {', '.join(sorted(known))}")
        entries = tuple(e for e in entries if e.kind == "database" or e.name in wanted)
    if only == "slides":
        entries = tuple(e for e in entries if e.kind == "slide")
    return entries


def _slide_filename(name: str) -> str:
    name = Path(name).name
    return name if name.endswith(".svs") else f"{name}.svs"


# ---------------------------------------------------------------------------------------------- checksums
def md5_of_file(path: str | os.PathLike[str], *, chunk_bytes: int = 8 << 20) -> str:
    """MD5 (hex) of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def read_checksums(data_root: str | os.PathLike[str]) -> dict[str, str]:
    """``<root>/checksums.md5`` as {relative path: md5}; empty when the file does not exist.

    Raises:
        FileProblem: a line that is not ``<32 hex>  <relative path>``.
    """
    path = Path(data_root) / CHECKSUMS_FILE
    if not path.exists():
        return {}
    checksums = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        match = _MD5_LINE.match(line)
        if match is None:
            raise FileProblem(path, f"line {number} is not '<md5>  <relative path>' (md5sum format): {line!r}")
        checksums[match.group(2)] = match.group(1).lower()
    return checksums


_CHECKSUM_LOCK = threading.Lock()


def record_checksum(data_root: str | os.PathLike[str], relative_path: str, md5: str) -> None:
    """Add or replace one line of ``<root>/checksums.md5`` (atomic rewrite; safe across threads)."""
    path = Path(data_root) / CHECKSUMS_FILE
    with _CHECKSUM_LOCK:
        checksums = read_checksums(data_root)
        checksums[relative_path] = md5.lower()
        atomic_write_text(path, "".join(f"{value}  {key}\n" for key, value in sorted(checksums.items())))
