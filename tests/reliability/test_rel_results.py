"""Category 4 (result-file part): boxes outside their slide, scores outside [0, 1], non-finite values."""

from __future__ import annotations

import numpy as np
import pytest
from battery import cases_of
from clitools import explain

from ccmct.data.results import check_within_slides, read_results, write_results
from ccmct.errors import ResultsError


@pytest.mark.parametrize("case", cases_of("results"), ids=lambda c: c.name)
def test_case(case, battery_outcome):
    outcome = battery_outcome(case)
    assert outcome.passed, explain(outcome)


@pytest.mark.parametrize("row, message", [
    ([10, 10, 60, 60, 0, np.nan], "non-finite"),
    ([10, 10, np.inf, 60, 0, 0.5], "non-finite"),
    ([10, 10, 60, 60, 0, 1.0001], "score outside"),
    ([10, 10, 60, 60, 0, -1e-9], "score outside"),
    ([10, 60, 60, 10, 0, 0.5], "y2 < y1"),
])
def test_the_writer_refuses_what_the_reader_would_refuse(tmp_path, row, message):
    good = np.array([[0, 0, 50, 50, 0, 0.0], [5, 5, 55, 55, 0, 1.0]])
    out = tmp_path / "r.npz"
    with pytest.raises(ResultsError, match=message):
        write_results(out, {"s.svs": np.vstack([good, row])})
    assert not out.exists()
    write_results(out, {"s.svs": good})
    np.testing.assert_array_equal(read_results(out)["s.svs"], good)


def test_box_centres_must_lie_on_their_slide(tmp_path):
    boxes = np.array([[-20, -20, 30, 30, 0, 0.5],  # centre (5, 5): the box reaches past the edge, allowed
                      [980, 700, 1030, 750, 0, 0.5]])  # centre (1005, 725): off a 1000 px wide slide
    results = {"a.svs": boxes, "b.svs": boxes}
    check_within_slides("r.npz", results, {"a.svs": (2000, 1000)})  # b.svs not available: not checked
    with pytest.raises(ResultsError, match=r"r\.npz: slide 'b\.svs': 1 detection\(s\) with a box centre outside "
                                           r"the slide \(1000 x 800 px\), first row 1"):
        check_within_slides("r.npz", results, {"a.svs": (2000, 1000), "b.svs": (1000, 800)})


def test_the_authors_files_pass_every_check(authors_results_dir):
    files = sorted(authors_results_dir.glob("*.p.bz2"))
    assert len(files) == 16
    for path in files[:4]:
        results = read_results(path)
        assert results and all(b.shape[1] == 6 for b in results.values())


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b.svs", "..", ""])
def test_slide_names_are_plain_file_names(tmp_path, name):
    import bz2
    import pickle

    path = tmp_path / "r.p.bz2"
    path.write_bytes(bz2.compress(pickle.dumps({name: [np.array([1.0, 1, 50, 50, 0, 0.5])]})))
    with pytest.raises(ResultsError, match="is not a plain file name"):
        read_results(path)
