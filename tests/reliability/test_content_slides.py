"""Category 4, slides: a slide that cannot be read where the boxes lie fails the second stage for that slide
(never scores from blank patches); a slide whose µm/px is missing or far from the models' ~0.25 is warned
about with the figure (docs/reliability.md)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from clitools import explain
from content_cases import boxes_around, cases_named, corrupt_level0, rescaled_slide, results_on

from ccmct.config.paths import DataRoot
from ccmct.data.results import read_metadata, read_results
from ccmct.data.slide_checks import check_mpp
from ccmct.data.slides import open_slide
from ccmct.errors import SlideError
from ccmct.inference.second_stage import classify_results


@pytest.mark.parametrize("case", cases_named("classify-"), ids=lambda c: c.name)
def test_case(case, battery_outcome):
    outcome = battery_outcome(case)
    assert outcome.passed, explain(outcome)


def _slides(tiny_root):
    split = DataRoot(tiny_root).split()
    return sorted(n for n, s in split.items() if s == "test")[0], sorted(n for n, s in split.items() if s == "train")[0]


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "reader-process"])
def test_unreadable_slide_is_left_out_and_named_the_others_are_scored(tiny_root, classifier_dir, tmp_path, workers):
    good, bad = _slides(tiny_root)
    wsi = tmp_path / "WSI"
    wsi.mkdir()
    os.symlink(tiny_root / "WSI" / good, wsi / good)
    shutil.copyfile(tiny_root / "WSI" / bad, wsi / bad)
    corrupt_level0(wsi / bad)
    results = results_on(tmp_path / "RetinaNet-ODAEL-test.npz",
                         {good: boxes_around([[400, 400], [900, 700]]), bad: boxes_around([[600, 500]])})
    out = tmp_path / "2nd.npz"
    with pytest.raises(SlideError, match=rf"{bad}: cannot be read where the boxes lie .*1 of 2 slide\(s\) failed"):
        classify_results(classifier_dir, results, wsi, out, num_workers=workers, progress=False)
    rescored = read_results(out)
    assert list(rescored) == [good] and len(rescored[good]) == 2  # no row for the unreadable slide
    assert 0 <= rescored[good][:, 5].min() and rescored[good][:, 5].max() <= 1
    meta = read_metadata(out)
    assert meta["pending"] == [] and list(meta["failed"]) == [bad] and "cannot be read" in meta["failed"][bad]

    # repaired slide: the rerun keeps the finished slide and scores the one that failed
    shutil.copyfile(tiny_root / "WSI" / bad, wsi / bad)
    classify_results(classifier_dir, results, wsi, out, num_workers=0, progress=False)
    again = read_results(out)
    assert list(again) == [good, bad] and read_metadata(out)["failed"] == {}
    np.testing.assert_array_equal(again[good], rescored[good])


def test_mpp_far_from_the_models_is_warned_with_the_figure(tiny_root, tmp_path):
    good, _ = _slides(tiny_root)
    with open_slide(tiny_root / "WSI" / good) as slide:
        assert check_mpp(slide) is None  # the synthetic 0.25 µm/px
    rescaled_slide(tiny_root / "WSI" / good, tmp_path / "x20.svs", mpp=0.5)
    with open_slide(tmp_path / "x20.svs") as slide, pytest.warns(UserWarning, match=r"0\.5 µm/px, 2\.00x"):
        assert "x20.svs" in check_mpp(slide)
    with open_slide(tmp_path / "x20.svs", mpp=0.26) as slide:  # an explicit override within tolerance
        assert check_mpp(slide) is None


def test_a_slide_without_mpp_is_warned_about(openslide_fixtures):
    with open_slide(openslide_fixtures / "boxes.tiff") as slide:  # generic TIFF: no microscope resolution
        with pytest.warns(UserWarning, match=r"boxes\.tiff: no usable µm/px .* assume ~0\.25 µm/px"):
            check_mpp(slide)
