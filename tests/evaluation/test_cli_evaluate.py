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


def test_ci_adds_intervals_reproducibly_for_both_matchings(capsys, evaluate_case):
    db, npz, _ = evaluate_case
    base = ["evaluate", "--db", str(db), "--results", str(npz), "--json", "--ci", "--bootstrap", "300"]
    for matching in ("paper", "strict"):
        code, out, _ = _run(capsys, base + ["--threshold", "0.6", "--matching", matching, "--seed", "4"])
        doc = json.loads(out)
        assert code == 0 and doc["ci"]["n_slides"] == 2 and doc["ci"]["n_resamples"] == 300
        assert doc["ci"]["seed"] == 4 and doc["ci"]["threshold_held_fixed"] is False
        for name in ("f1", "precision", "recall"):
            lo, hi = doc[f"{name}_ci"]
            assert lo <= doc[name] <= hi
        _, again, _ = _run(capsys, base + ["--threshold", "0.6", "--matching", matching, "--seed", "4"])
        assert json.loads(again)["f1_ci"] == doc["f1_ci"]
    code, out, _ = _run(capsys, base + ["--optimize", "--ci-level", "0.8"])
    doc = json.loads(out)
    assert code == 0 and doc["ci"]["threshold_held_fixed"] is True and doc["ci"]["level"] == 0.8
    code, out, _ = _run(capsys, ["evaluate", "--db", str(db), "--results", str(npz), "--optimize", "--ci"])
    assert code == 0 and "95% interval (slide bootstrap, percentile, 2 slides" in out and "held fixed" in out


def test_compare_identical_and_better_files(capsys, tmp_path, evaluate_case):
    import numpy as np

    from ccmct.data.results import read_results, write_results

    db, npz, pbz2 = evaluate_case
    code, out, _ = _run(capsys, ["evaluate", "--db", str(db), "--results", str(npz), "--compare", str(pbz2),
                                 "--optimize", "--json"])
    doc = json.loads(out)["compare"]
    assert code == 0 and doc["delta_f1"] == 0 and doc["delta_f1_ci"] == [0, 0] and doc["a_wins"] == 0
    # B = A without its best-scored true detections on every slide: A must win
    worse = {name: boxes[np.argsort(-boxes[:, 5])][5:] for name, boxes in read_results(npz).items()}
    worse_file = write_results(tmp_path / "worse.npz", worse)
    code, out, _ = _run(capsys, ["evaluate", "--db", str(db), "--results", str(npz), "--compare", str(worse_file),
                                 "--threshold", "0.5", "--json", "--seed", "2"])
    full = json.loads(out)
    doc = full["compare"]
    assert code == 0 and doc["threshold"] == 0.5 and doc["f1"] < full["f1"]
    assert doc["delta_f1"] == pytest.approx(full["f1"] - doc["f1"]) and doc["delta_f1_ci"][0] > 0
    assert doc["a_wins"] == 1.0 and doc["n_slides"] == 2
    code, out, _ = _run(capsys, ["evaluate", "--db", str(db), "--results", str(npz), "--compare", str(worse_file),
                                 "--threshold", "0.5"])
    assert code == 0 and "delta F1" in out and "better in 100.0% of 2000 resamples" in out


def test_interval_options_are_checked(capsys, tmp_path, evaluate_case):
    from ccmct.data.results import write_results

    db, npz, _ = evaluate_case
    base = ["evaluate", "--db", str(db), "--results", str(npz), "--threshold", "0.5"]
    code, _, err = _run(capsys, base + ["--seed", "3"])
    assert code == 2 and "--seed need --ci or --compare" in err
    with pytest.raises(SystemExit) as exit_info:
        main(base + ["--ci", "--ci-level", "95"])
    assert exit_info.value.code == 2 and "(0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(base + ["--ci", "--bootstrap", "0"])
    capsys.readouterr()
    one = write_results(tmp_path / "one.npz", {"s0.svs": [[0, 0, 10, 10, 0, 0.9]]})
    code, _, err = _run(capsys, base + ["--compare", str(one)])
    assert code == 2 and "one.npz" in err and "same slides" in err
