"""ccmct.atomicio: a file appears complete or not at all; a failed write leaves the old file and no debris."""

import json
import stat

import numpy as np
import pytest
import torch

from ccmct.atomicio import (FILE_MODE, atomic_path, atomic_write, atomic_write_bytes, atomic_write_json,
                            atomic_write_text)


def _debris(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_bytes_text_json_written_with_file_mode_and_folders_created(tmp_path):
    target = tmp_path / "a" / "b" / "x.bin"
    assert atomic_write_bytes(target, b"\x00\x01") == target
    assert target.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(target.stat().st_mode) == FILE_MODE
    atomic_write_text(tmp_path / "t.txt", "µm/px")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "µm/px"
    atomic_write_json(tmp_path / "d.json", {"f1": float("nan"), "n": np.int64(3), "a": np.arange(2)})
    text = (tmp_path / "d.json").read_text()
    assert "NaN" not in text
    assert json.loads(text) == {"f1": None, "n": 3, "a": [0, 1]}
    assert _debris(tmp_path) == []


def test_failed_write_keeps_old_content_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "keep.json"
    target.write_text("old")

    def boom(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, boom)
    with pytest.raises(TypeError):  # strict JSON refuses what it cannot encode before touching the target
        atomic_write_json(target, {"x": object()})
    assert target.read_text() == "old"
    assert _debris(tmp_path) == []


def test_atomic_path_for_path_writers_and_interrupted_block(tmp_path):
    target = tmp_path / "w.pt"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target and not target.exists()
        torch.save({"w": torch.ones(2)}, tmp)
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(2))
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            torch.save({"w": torch.zeros(2)}, tmp)
            raise KeyboardInterrupt
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(2))
    assert _debris(tmp_path) == []


def test_concurrent_writers_get_distinct_temp_names(tmp_path):
    target = tmp_path / "r.npz"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second
        np.savez(first, a=np.ones(1))
        np.savez(second, a=np.zeros(1))
    with np.load(target) as data:  # the block that closed last wins, whole
        assert data["a"].tolist() == [1.0]
