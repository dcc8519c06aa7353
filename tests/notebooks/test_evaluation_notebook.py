"""Evaluation.ipynb executes on the tiny synthetic root with result files fabricated from its ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import papermill
import pytest

from ccmct.config.paths import DataRoot
from ccmct.data.results import result_filename, write_results
from ccmct.evaluation import load_ground_truth
from ccmct.evaluation.tables import table4, table4_long

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "Evaluation.ipynb"
VARIANTS = ("MEL", "HEAEL", "ODAEL")


def _fabricate(gt: dict, rng, *, recall: float, n_fp: int) -> dict:
    """Jittered copies of a share of the GT (scores 0.5-1) + random false positives (0.3-0.8)."""
    out = {}
    for name, xy in gt.items():
        hits = xy[rng.random(len(xy)) < recall]
        hits = hits + rng.normal(0, 6, hits.shape)
        span = np.maximum(xy.max(0) if len(xy) else np.full(2, 2000.0), 500)
        false = rng.uniform(0, 1, (n_fp, 2)) * span
        centres = np.concatenate([hits, false])
        scores = np.concatenate([rng.uniform(0.5, 1, len(hits)), rng.uniform(0.3, 0.8, n_fp)])
        out[name] = np.column_stack([centres - 12, centres + 12, np.zeros(len(centres)), scores])
    return out


@pytest.fixture(scope="module")
def results_dir(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_results")
    root, rng = DataRoot(tiny_root), np.random.default_rng(0)
    split = root.split()
    for variant in VARIANTS:
        gt = load_ground_truth(root.database(variant))
        for part in ("train", "test"):
            part_gt = {k: v for k, v in gt.items() if split.get(k, "train") == part}
            write_results(out / result_filename(variant, part), _fabricate(part_gt, rng, recall=0.6, n_fp=15))
            write_results(out / result_filename(variant, part, stage=2),
                          _fabricate(part_gt, rng, recall=0.8, n_fp=4))
    return out


def test_notebook_is_committed_clean():
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)


def test_table4_on_fabricated_results(tiny_root, results_dir):
    long = table4_long(tiny_root, results_dir)
    assert set(long["stage"]) == {1, 2} and len(long) == 2 * 3 * 3
    pivot = table4(long)
    assert list(pivot.index) == list(VARIANTS) and pivot.shape == (3, 6)
    # the fabricated second stage (higher recall, fewer FPs) must beat the first on the same data
    for (stage, test), column in pivot.items():
        if stage == 2:
            assert (column > pivot[(1, test)]).all()
    assert (long["strict_f1"] <= long["f1"] + 1e-12).all()


def test_table4_intervals_contain_each_cell(tiny_root, results_dir):
    from ccmct.evaluation.tables import table4_intervals

    long = table4_long(tiny_root, results_dir, slide_counts=True)
    assert list(long.columns[:15]) == list(table4_long(tiny_root, results_dir).columns)
    with_ci = table4_intervals(long, n_resamples=300, seed=1)
    for name in ("f1", "precision", "recall", "strict_f1"):
        assert (with_ci[f"{name}_lo"] <= with_ci[name] + 1e-12).all()
        assert (with_ci[name] <= with_ci[f"{name}_hi"] + 1e-12).all()
    assert with_ci.equals(table4_intervals(long, n_resamples=300, seed=1))  # same seed, same intervals
    counts = long["slide_counts"].iloc[0]
    assert counts.tp.sum() == long["tp"].iloc[0] and len(counts) == len(DataRoot(tiny_root).test_slides())
    with pytest.raises(ValueError, match="slide_counts=True"):
        table4_intervals(table4_long(tiny_root, results_dir))


def test_notebook_executes(tiny_root, results_dir, authors_results_dir, tmp_path):
    authors = tmp_path / "authors"  # one real published file (the smallest full-WSI one) keeps this quick
    authors.mkdir()
    real = next(authors_results_dir.glob("RetinaNet-ODAEL-3WSI-*-val-*.p.bz2"))
    (authors / real.name).symlink_to(real)
    out = tmp_path / "Evaluation.out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False, cwd=str(tmp_path),
        parameters={"data_root": str(tiny_root), "results_dir": str(results_dir),
                    "authors_results_dir": str(authors)})
    text = "\n".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        for cell in json.loads(out.read_text())["cells"] for o in cell.get("outputs", []))
    assert "Pearson r" in text and "paper F1" in text
    assert "F1 95 % slide-bootstrap interval [" in text
    # the tiny slides fit inside one 10-HPF window: the flat hotspot map is refused and the reason printed
    from ccmct.evaluation import hpf_window_l0
    from ccmct.evaluation.mitotic_count import slide_sizes_l0

    window = hpf_window_l0(0.25)
    sizes = slide_sizes_l0(tiny_root, DataRoot(tiny_root).split())
    small = all(w <= window[0] and h <= window[1] for w, h in sizes.values())
    assert small == ("hotspot map not drawn" in text)
    assert "missing: the real ODAEL database" in text  # the tiny root lacks the real slides
    assert "missing: result file" in text  # the files not linked above
