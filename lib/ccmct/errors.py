"""The project's exceptions. Each names the file and what is wrong with it.

The CLI turns any :class:`CcmctError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

from pathlib import Path


class CcmctError(Exception):
    """Base class of every error ccmct raises on bad input."""


class FileProblem(CcmctError):
    """A problem with one file: ``"<path>: <problem>"``.

    Args:
        path: the file concerned.
        problem: what is wrong, in words a user can act on.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DatabaseError(FileProblem):
    """A SlideRunner database that cannot be read or has wrong content."""


class SlideError(FileProblem):
    """A slide that OpenSlide cannot open or read."""


class ResultsError(FileProblem):
    """A result file (detections) that cannot be read safely."""


class ModelError(FileProblem):
    """A model directory that is missing files or comes from an incompatible version."""


class DownloadError(CcmctError):
    """A download that failed after its retries."""
