"""``ccmct evaluate`` in-process: JSON keys per design.md, --optimize curve, both result formats, errors."""

from __future__ import annotations

import json

import pytest

from ccmct.cli import main
from ccmct.data.results import write_results


@pytest.fixture()
def evaluate_case(tmp_path, gt_db_writer, results_fabricator):
    import numpy as np

    rng = np.random.default_rng(3)
    gt = {f"s{i}.svs": rng.uniform(0, 3000, (n, 2)).round() for i, n in enumerate((25, 40))}
    results = results_fabricator(gt, rng)
    db = gt_db_writer(tmp_path / "gt.sqlite", gt)
    return db, write_results(tmp_path / "r.npz", results), write_results(tmp_path / "r.p.bz2", results)


def _run(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_keys_and_both_formats_agree(capsys, evaluate_case):
    db, npz, pbz2 = evaluate_case
    code, out, _ = _run(capsys, ["evaluate", "--db", str(db), "--results", str(npz), "--threshold", "0.6", "--json"])
    assert code == 0
    doc = json.loads(out)
    assert {"f1", "tp", "fp", "fn", "threshold", "matching", "per_slide"} <= set(doc)
    assert doc["threshold"] == 0.6 and doc["matching"] == "paper" and 0 < doc["f1"] <= 1
    assert set(doc["per_slide"]["s0.svs"]) >= {"f1", "tp", "fp", "fn", "n_detections"}
    _, out2, _ = _run(capsys, ["evaluate", "--db", str(db), "--results", str(pbz2), "--threshold", "0.6", "--json"])
    assert json.loads(out2)["per_slide"] == doc["per_slide"]


def test_optimize_strict_and_table_output(capsys, evaluate_case):
    db, npz, _ = evaluate_case
    code, out, _ = _run(capsys, ["evaluate", "--db", str(db), "--results", str(npz), "--optimize",
                                 "--min-threshold", "0.4", "--matching", "strict", "--radius", "30", "--json"])
    doc = json.loads(out)
    assert code == 0 and doc["matching"] == "strict" and doc["radius_l0"] == 30
    curve = doc["curve"]
    assert curve[0][0] == pytest.approx(0.4) and curve[-1][0] == pytest.approx(0.98)
    best = max(f for _, f in curve)
    assert doc["f1"] == pytest.approx(best)
    assert doc["threshold"] == pytest.approx(next(t for t, f in curve if f == best))
    code, out, _ = _run(capsys, ["evaluate", "--db", str(db), "--results", str(npz), "--threshold", "0.5"])
    assert code == 0 and "overall (micro)" in out and "s1.svs" in out


def test_bad_input_is_one_line_exit_2(capsys, tmp_path, evaluate_case):
    db, npz, _ = evaluate_case
    code, _, err = _run(capsys, ["evaluate", "--db", str(db), "--results", str(tmp_path / "no.npz"),
                                 "--threshold", "0.5"])
    assert code == 2 and "no.npz" in err and "not found" in err
    other = write_results(tmp_path / "other.npz", {"zzz.svs": [[0, 0, 10, 10, 0, 0.9]]})
    code, _, err = _run(capsys, ["evaluate", "--db", str(db), "--results", str(other), "--threshold", "0.5"])
    assert code == 2 and "gt.sqlite" in err and "not in this database" in err


def test_optimize_on_an_authors_file(capsys, tmp_path, authors_results_dir, gt_db_writer):
    """The authors' 3-WSI pickle against a database with generated mitoses on its three (real) slide names."""
    import numpy as np

    from ccmct.data.results import read_results
    from ccmct.evaluation import f1_scores

    results_file = next(authors_results_dir.glob("RetinaNet-ODAEL-3WSI-*-val-*.p.bz2"))
    results = read_results(results_file)
    rng = np.random.default_rng(0)
    gt = {}
    for name, boxes in results.items():
        confident = boxes[(boxes[:, 5] > 0.7) & (rng.random(len(boxes)) < 0.5)]
        gt[name] = ((confident[:, :2] + confident[:, 2:4]) / 2 + rng.normal(0, 8, (len(confident), 2))).round()
    db = gt_db_writer(tmp_path / "odael_like.sqlite", gt)
    code, out, _ = _run(capsys, ["evaluate", "--db", str(db), "--results", str(results_file), "--optimize",
                                 "--min-threshold", "0.2", "--json"])
    doc = json.loads(out)
    assert code == 0 and set(doc["per_slide"]) == set(results)
    assert len(doc["curve"]) == 79 and doc["threshold"] >= 0.6  # the GT came from detections > 0.7
    direct = f1_scores(db, results, threshold=doc["threshold"])
    assert (doc["tp"], doc["fp"], doc["fn"]) == (direct.counts.tp, direct.counts.fp, direct.counts.fn)
    assert sum(s["tp"] + s["fn"] for s in doc["per_slide"].values()) == sum(len(g) for g in gt.values())
