"""Post-download checks: does a file hold what its name promises?

A slide must open with OpenSlide (through :func:`ccmct.data.slides.open_slide`) and give one level-0 region;
a database must open as a SlideRunner database (:meth:`ccmct.data.sliderunner.SlideRunnerDB.open`: SQLite
header and the SlideRunner tables) with at least one slide in its ``Slides`` table. A file that fails is
moved aside to ``<name>.corrupt`` so that it never looks complete.
"""

from __future__ import annotations

import os
from pathlib import Path

from ccmct.errors import CcmctError, FileProblem

CORRUPT_SUFFIX = ".corrupt"
_REGION_PX = 256


def check_content(kind: str, path: Path, *, shown_as: Path | None = None) -> None:
    """Raise :class:`FileProblem` unless ``path`` is a readable slide / SlideRunner database.

    Args:
        kind: ``"slide"`` or ``"database"``.
        path: file to check (may be a ``.part`` file about to be renamed).
        shown_as: the path to name in error messages (default ``path``).
    """
    shown_as = shown_as or path
    try:
        if kind == "slide":
            _check_slide(path)
        elif kind == "database":
            _check_database(path)
        else:
            raise ValueError(f"check_content: kind must be 'slide' or 'database', got {kind!r}")
    except FileProblem as err:
        raise FileProblem(shown_as, err.problem) from None
    except CcmctError as err:
        raise FileProblem(shown_as, str(err)) from None


def _check_slide(path: Path) -> None:
    from ccmct.data.slides import open_slide

    with open_slide(path) as slide:
        width, height = slide.dimensions
        if width <= 0 or height <= 0:
            raise FileProblem(path, f"slide has an empty level 0 ({width}x{height} px)")
        size_wh = (min(_REGION_PX, width), min(_REGION_PX, height))
        slide.read_l0((width - size_wh[0]) // 2, (height - size_wh[1]) // 2, size_wh)


def _check_database(path: Path) -> None:
    from ccmct.data.sliderunner import SlideRunnerDB

    with SlideRunnerDB.open(path) as db:
        if db.slides().empty:
            raise FileProblem(path, "SlideRunner database without any slide (table Slides is empty)")
        db.classes()


def move_aside(path: Path) -> Path:
    """Rename ``path`` to ``<path without .part>.corrupt`` (replacing an older one); returns the new path."""
    name = path.name.removesuffix(".part")
    target = path.with_name(name + CORRUPT_SUFFIX)
    os.replace(path, target)
    return target
