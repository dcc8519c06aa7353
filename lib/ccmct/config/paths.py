"""The data-root layout (identical for real and synthetic data) and the train/test split of a root.

::

    <root>/WSI/<name>.svs
    <root>/databases/MITOS_WSI_CCMCT_{MEL,HEAEL,ODAEL,Tumorzone}.sqlite
    <root>/databases/HighMCAreas.sqlite
    <root>/split.json            optional: {"train": [...], "test": [...]} (synthetic roots, subsets)

The split has one mechanism: a root's ``split.json`` when present, else the paper's 11 test slides.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ccmct.config.dataset import (
    DATABASE_FILES,
    HIGH_MC_AREAS_FILE,
    REAL_SLIDES,
    REAL_TEST_SLIDES,
    SPLIT_FILE,
)
from ccmct.errors import FileProblem

DATA_ROOT_ENV = "CCMCT_DATA_ROOT"


@dataclass(frozen=True)
class DataRoot:
    """A data root on disk.

    Args:
        path: the folder holding ``WSI/`` and ``databases/``.

    Example:
        >>> root = DataRoot("/data/ccmct")
        >>> root.database("ODAEL").name
        'MITOS_WSI_CCMCT_ODAEL.sqlite'
    """

    path: Path

    def __init__(self, path: str | os.PathLike[str]):
        object.__setattr__(self, "path", Path(path))

    @property
    def wsi_dir(self) -> Path:
        return self.path / "WSI"

    @property
    def databases_dir(self) -> Path:
        return self.path / "databases"

    def database(self, name: str) -> Path:
        """Path of a database by variant name (``MEL``, ``HEAEL``, ``ODAEL``, ``Tumorzone``)."""
        if name not in DATABASE_FILES:
            msg = f"unknown database {name!r}; expected one of {sorted(DATABASE_FILES)}"
            raise ValueError(msg)
        return self.databases_dir / DATABASE_FILES[name]

    @property
    def high_mc_areas(self) -> Path:
        return self.databases_dir / HIGH_MC_AREAS_FILE

    @property
    def split_file(self) -> Path:
        return self.path / SPLIT_FILE

    def slide_path(self, filename: str) -> Path:
        return self.wsi_dir / filename

    def split(self) -> dict[str, str]:
        """Slide file name -> 'train' | 'test' for this root (see module docstring)."""
        return load_split(self.split_file)

    def slides(self, split: str) -> dict[str, Path]:
        """Slide file name -> path (``WSI/<name>``) of the ``'train'`` or ``'test'`` slides, sorted by name.

        The one place "the slides of a split" is derived (this root's ``split.json`` or the paper's split);
        the paths need not exist (a data root holding only the databases still has its split).

        Raises:
            ValueError: ``split`` is neither ``'train'`` nor ``'test'``.
        """
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        return {name: self.slide_path(name) for name, s in sorted(self.split().items()) if s == split}

    def test_slides(self) -> frozenset[str]:
        return frozenset(self.slides("test"))

    def split_of(self, filename: str) -> str:
        """'train' or 'test' for a slide; slides outside the split file count as 'train'."""
        return self.split().get(filename, "train")


def load_split(split_file: Path) -> dict[str, str]:
    """Read a ``split.json``; without one, the paper's split of the 32 real slides.

    Raises:
        FileProblem: the file exists but is not ``{"train": [names], "test": [names]}``.
    """
    if not split_file.exists():
        return {s.filename: ("test" if s.filename in REAL_TEST_SLIDES else "train") for s in REAL_SLIDES}
    expected = 'not a split file {"train": [names], "test": [names]}'
    try:
        content = json.loads(split_file.read_text())
        train, test = content["train"], content["test"]
    except (ValueError, KeyError, TypeError) as err:
        raise FileProblem(split_file, f"{expected} ({err})") from err
    if not all(isinstance(part, list) and all(isinstance(n, str) for n in part) for part in (train, test)):
        raise FileProblem(split_file, f"{expected}: 'train' and 'test' must be lists of file names")
    both = sorted(set(train) & set(test))
    if both:
        raise FileProblem(split_file, f"slide(s) listed in both train and test: {', '.join(both[:3])}")
    split = {name: "train" for name in train}
    split.update({name: "test" for name in test})
    return split


def write_split(split_file: Path, train: list[str], test: list[str]) -> None:
    """Write a ``split.json`` atomically."""
    from ccmct.atomicio import atomic_write_json

    atomic_write_json(split_file, {"train": sorted(train), "test": sorted(test)})


def default_data_root() -> Path:
    """``$CCMCT_DATA_ROOT`` or ``./data``."""
    return Path(os.environ.get(DATA_ROOT_ENV, "data"))
