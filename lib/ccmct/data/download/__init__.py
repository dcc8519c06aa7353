"""Resumable, verified download of the real MITOS_WSI_CCMCT data set (4 databases, 32 slides, ~37 GB).

- :mod:`.fetch`: one file over HTTP(S) with Range resume, retries with back-off, refusal of HTML pages,
  empty or short bodies, and an atomic rename when complete.
- :mod:`.checks`: post-download checks (slides open with OpenSlide, databases are SlideRunner databases);
  a file that fails is moved aside to ``<name>.corrupt``.
- :mod:`.runner`: the whole data set (or a part) in parallel with progress bars, the report, ``--verify``.

What to download comes from :mod:`ccmct.data.manifest`. The command line is ``ccmct setup`` (docs/download.md).

Example:
    >>> from ccmct.data.download import download_dataset
    >>> report = download_dataset("data", only="databases")     # doctest: +SKIP
    >>> report.ok                                                # doctest: +SKIP
    True
"""

from ccmct.data.download.checks import CORRUPT_SUFFIX, check_content, move_aside
from ccmct.data.download.fetch import OfflineError, PermanentDownloadError, RetryPolicy, fetch_file
from ccmct.data.download.runner import (
    DownloadReport,
    FileOutcome,
    download_dataset,
    retry_command,
    verify_dataset,
)

__all__ = [
    "CORRUPT_SUFFIX",
    "DownloadReport",
    "FileOutcome",
    "OfflineError",
    "PermanentDownloadError",
    "RetryPolicy",
    "check_content",
    "download_dataset",
    "fetch_file",
    "move_aside",
    "retry_command",
    "verify_dataset",
]
