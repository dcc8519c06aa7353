"""Result files: our npz format, the authors' .p.bz2 pickles (safe reading), naming."""

from __future__ import annotations

import bz2
import pickle

import numpy as np
import pytest

from ccmct.config.dataset import WSI_SUBSETS
from ccmct.data._safe_pickle import safe_load
from ccmct.data.results import read_metadata, read_results, result_filename, write_results
from ccmct.errors import ResultsError
from ccmct.geometry import distance_nms


def _random_results(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i, n in enumerate((5, 0, 17)):
        xy = rng.uniform(0, 5000, (n, 2))
        out[f"slide{i}.svs"] = np.column_stack([xy - 13, xy + 13, np.zeros(n), rng.uniform(0.3, 1, n)])
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        assert b[name].dtype == np.float64 and b[name].shape == a[name].reshape(-1, 6).shape
        np.testing.assert_array_equal(a[name].reshape(-1, 6), b[name])


@pytest.mark.parametrize("suffix", [".npz", ".p.bz2"])
def test_round_trip_keeps_slides_values_and_empty_slides(tmp_path, suffix):
    results = _random_results()
    path = write_results(tmp_path / f"r{suffix}", results)
    _assert_same(results, read_results(path))
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_ours_to_authors_and_back(tmp_path):
    results = _random_results(1)
    ours = write_results(tmp_path / "a.npz", results, metadata={"model": "m", "threshold": 0.5})
    theirs = write_results(tmp_path / "a.p.bz2", read_results(ours))
    back = write_results(tmp_path / "b.npz", read_results(theirs))
    _assert_same(results, read_results(back))
    assert read_metadata(ours) == {"model": "m", "threshold": 0.5}
    # the authors' layout: a plain dict of lists of 6-element arrays (as their code indexes it)
    with bz2.open(theirs) as handle:
        raw = safe_load(handle)
    assert isinstance(raw["slide0.svs"], list) and raw["slide0.svs"][0].shape == (6,)


@pytest.fixture(scope="module")
def authors_results(authors_results_dir) -> dict[str, dict[str, np.ndarray]]:
    """Every published result file, read once: file name -> results."""
    return {path.name: read_results(path) for path in sorted(authors_results_dir.glob("*.p.bz2"))}


def test_every_authors_file_loads_with_per_slide_counts(authors_results):
    assert len(authors_results) == 16
    for name, results in authors_results.items():
        counts = {name: len(boxes) for name, boxes in results.items()}
        assert sum(counts.values()) > 0, name
        for boxes in results.values():
            assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
            assert np.all((boxes[:, 5] >= 0) & (boxes[:, 5] <= 1)) and np.all(boxes[:, 4] == 0)
            if not name.startswith("2ndstage_"):
                assert boxes[:, 5].min() >= 0.3  # the authors' detect threshold
    six = next(r for n, r in authors_results.items() if n.startswith("RetinaNet-ODAEL-6WSI-"))
    assert set(six) == set(WSI_SUBSETS[6])
    hpf = authors_results["RetinaNet-ODAEL-10HPF-export.pth-CCMCT_ODAEL_10HPF-inference_results_boxes.p.bz2"]
    assert len(hpf) == 11 and all(name.endswith(".tiff") for name in hpf)


def test_second_stage_files_hold_exactly_the_nms_survivors_of_stage_one(authors_results):
    """the authors' `2nd_stage/Inference-CellClassifier.py`; docs/second_stage.md: decoded torch scores aside, the boxes equal distance_nms(stage-1 boxes)."""
    pairs = 0
    for second in [n for n in authors_results if n.startswith("2ndstage_")]:
        stage1, stage2 = authors_results[second.removeprefix("2ndstage_")], authors_results[second]
        assert set(stage1) == set(stage2)
        for name, boxes in stage1.items():
            kept = boxes[distance_nms(boxes[:, :4], boxes[:, 5])]
            expected = kept[np.lexsort(kept[:, :4].T[::-1])][:, :4]
            got = stage2[name][np.lexsort(stage2[name][:, :4].T[::-1])][:, :4]
            np.testing.assert_array_equal(expected, got)
        pairs += 1
    assert pairs == 7


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_pickles_of_every_protocol_load(tmp_path, protocol):
    row = np.array([10.0, 20.0, 60.0, 70.0, 0.0, 0.25])
    data = {"a.svs": [row, row + [1, 1, 1, 1, 0, 0.5]], "b.svs": np.asfortranarray(np.ones((2, 6)))}
    path = tmp_path / "p.p.bz2"
    with bz2.open(path, "wb") as handle:
        pickle.dump(data, handle, protocol=protocol)
    got = read_results(path)
    np.testing.assert_array_equal(got["a.svs"], np.stack(data["a.svs"]))
    np.testing.assert_array_equal(got["b.svs"], data["b.svs"])


def test_torch_tensors_decode_without_torch_code(tmp_path):
    import torch
    probs = torch.tensor([[0.1, 0.7, 0.2], [0.25, 0.5, 0.25]])
    rows = [[np.float64(10), np.float64(20), np.float64(36), np.float64(46), np.float64(0), probs[0, 1]],
            [np.float64(5), np.float64(6), np.float64(7), np.float64(8), np.float64(0), probs[1][2]]]
    path = tmp_path / "2ndstage_x.p.bz2"
    with bz2.open(path, "wb") as handle:
        pickle.dump({"s.svs": rows, "empty.svs": []}, handle, protocol=2)
    got = read_results(path)
    np.testing.assert_allclose(got["s.svs"][:, 5], [0.7, 0.25], rtol=1e-7)
    assert got["s.svs"][0, :4].tolist() == [10, 20, 36, 46] and got["empty.svs"].shape == (0, 6)


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.target}",)


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.p.bz2"
    with bz2.open(path, "wb") as handle:
        pickle.dump({"s.svs": [_Evil(marker)]}, handle)
    with pytest.raises(ResultsError, match=r"evil\.p\.bz2.*refused.*system"):
        read_results(path)
    assert not marker.exists()


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(ResultsError, match="not found"):
        read_results(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ResultsError, match=r"junk\.npz.*not a ccmct result file"):
        read_results(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ResultsError, match="not a ccmct result file"):
        read_results(tmp_path / "other.npz")
    with bz2.open(tmp_path / "list.p.bz2", "wb") as handle:
        pickle.dump([1, 2], handle)
    with pytest.raises(ResultsError, match="expected a dict"):
        read_results(tmp_path / "list.p.bz2")
    with pytest.raises(ResultsError, match="expected N x 6"):
        write_results(tmp_path / "w.npz", {"s.svs": np.zeros((3, 4))})


def test_result_filename():
    assert result_filename("ODAEL", "train") == "RetinaNet-ODAEL-train.npz"
    assert result_filename("MEL", "test", stage=2) == "2ndstage_RetinaNet-MEL-test.npz"
    with pytest.raises(ValueError, match="split"):
        result_filename("MEL", "val")
