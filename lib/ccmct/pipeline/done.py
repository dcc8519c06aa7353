"""Is a step done? A model directory complete, a result file with nothing pending or failed."""

from __future__ import annotations

from pathlib import Path

from ccmct.config.paths import DataRoot
from ccmct.types import VARIANTS


def data_ready(root: DataRoot) -> bool:
    """A (synthetic) data root with its split file and the three label databases."""
    return root.split_file.exists() and all(root.database(v).exists() for v in VARIANTS)


def model_ready(model_dir: Path) -> bool:
    """A model directory is complete: ``config.json`` is written last, after ``weights.pt``."""
    return (model_dir / "config.json").exists() and (model_dir / "weights.pt").exists()


def unfinished_slides(path: Path) -> dict[str, str]:
    """Slides a result file does not hold although its step meant to: ``{slide: reason}`` from its metadata
    (``pending``: an interrupted second stage; ``failed``: an unreadable slide in inference, also when the
    second stage re-scored a first-stage file with failed slides). Empty for a complete file."""
    from ccmct.data.results import read_metadata

    try:
        meta = read_metadata(path)
    except Exception as err:  # noqa: BLE001 - an unreadable result file is an unfinished step
        return {"*": f"unreadable result file ({err})"}
    out = {name: "pending (interrupted run)" for name in meta.get("pending") or []}
    for source in (meta, meta.get("stage1") or {}):
        out.update({name: f"failed: {reason}" for name, reason in (source.get("failed") or {}).items()})
    return out


def result_ready(path: Path) -> bool:
    """A result file exists and its metadata lists no pending or failed slides."""
    return path.exists() and not unfinished_slides(path)


def made_by(path: Path, model_dir: Path) -> bool:
    """A first-stage result file is complete and was made by the model now in ``model_dir`` (the runner records
    the model's fingerprint): a detector trained again makes its results stale."""
    from ccmct.data.results import read_metadata
    from ccmct.models.io import model_fingerprint

    if not result_ready(path) or not model_ready(model_dir):
        return False
    return read_metadata(path).get("model") == model_fingerprint(model_dir)


def rescored_ready(rescored: Path, source: Path, combine: str = "replace", classifier_dir: Path | None = None) -> bool:
    """A second-stage file is complete, was made from the current first-stage file (a first stage rerun,
    e.g. after a failed slide, makes the re-scoring stale), combines the scores as the preset says (a file
    scored ``replace`` is stale for a ``geometric_mean`` preset and the reverse) and, given ``classifier_dir``,
    by the classifier now there (one trained again makes it stale)."""
    from ccmct.data.results import read_metadata
    from ccmct.models.io import model_fingerprint

    if not result_ready(rescored) or not source.exists():
        return False
    meta = read_metadata(rescored)
    if classifier_dir is not None and not (model_ready(classifier_dir) and meta.get("classifier_fingerprint")
                                           == model_fingerprint(classifier_dir)):
        return False
    return meta.get("stage1") == read_metadata(source) and meta.get("combine", "replace") == combine


def fast_ready(path: Path, candidate_dir: Path, classifier_dir: Path) -> bool:
    """A fast-mode result file is complete and was made by the current candidate model and classifier (a model
    trained again, e.g. a deleted classifier, makes it stale; the runner records both models' fingerprints)."""
    from ccmct.data.results import read_metadata
    from ccmct.models.io import model_fingerprint

    if not result_ready(path) or not (model_ready(candidate_dir) and model_ready(classifier_dir)):
        return False
    made_by = read_metadata(path).get("model")
    return made_by == {"candidate": model_fingerprint(candidate_dir), "classifier": model_fingerprint(classifier_dir)}
