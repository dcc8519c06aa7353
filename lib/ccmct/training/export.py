"""Export of a trained detector: the model directory plus ``training.json`` (schedule, history, figures)."""

from __future__ import annotations

import json
from pathlib import Path

from ccmct.models.io import save_model_dir
from ccmct.atomicio import atomic_write_json

__all__ = ["SUMMARY_FILE", "export_detector", "read_summary"]

SUMMARY_FILE = "training.json"


def export_detector(out_dir: Path, model, config, summary: dict) -> Path:
    """Write ``weights.pt`` + ``config.json`` (:func:`ccmct.models.io.save_model_dir`) and ``training.json``."""
    out_dir = Path(out_dir)
    save_model_dir(out_dir, model, config)
    atomic_write_json(out_dir / SUMMARY_FILE, summary)
    return out_dir


def read_summary(out_dir: Path) -> dict | None:
    """``training.json`` of a finished run, or None."""
    path = Path(out_dir) / SUMMARY_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
