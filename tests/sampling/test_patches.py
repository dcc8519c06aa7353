"""Statistical properties of the 50/40/10 sampler, on slides described by arrays (no pixels read)."""

from pathlib import Path

import numpy as np
import pytest

from ccmct.config.dataset import AMBIGUOUS, LOOKALIKE
from ccmct.sampling.patches import (CASE_MITOSIS, CASE_NEGATIVE, CASE_RANDOM, PatchSampler, SlideCells,
                                    negative_class, origin_range)

TILE, BOX = 256, 50


def _slide(seed, width=3000, height=2000, n_mf=60, n_neg=80, tissue=True):
    rng = np.random.default_rng(seed)
    corners = np.stack(np.meshgrid(np.arange(0, width, 100.0), np.arange(0, height, 100.0)), -1).reshape(-1, 2)
    corners = corners[corners[:, 0] < width / 2] if tissue else np.zeros((0, 2))   # tissue on the left only
    return SlideCells(filename=f"s{seed}.svs", path=Path(f"/nonexistent/s{seed}.svs"), width=width, height=height,
                      mitoses_xy=rng.uniform((0, 0), (width, height), (n_mf, 2)),
                      negatives_xy=rng.uniform((0, 0), (width, height), (n_neg, 2)),
                      tissue_xy=corners, tissue_cell_wh=(100.0, 100.0))


SLIDES = [_slide(0), _slide(1, width=1500, height=5000, n_mf=3), _slide(2, n_neg=0, tissue=False)]


@pytest.fixture(scope="module", params=["train", "valid"])
def drawn(request):
    sampler = PatchSampler(SLIDES, half=request.param, tile_px=TILE, box_px=BOX)
    return sampler, sampler.draw(20000, np.random.default_rng(0))


def test_case_proportions(drawn):
    _, specs = drawn
    freq = np.bincount(specs.case, minlength=3) / len(specs)
    # binomial sd at n = 20000 is <= 0.0036; 5 sd
    assert freq == pytest.approx([0.5, 0.4, 0.1], abs=0.018)


def test_patches_inside_slide_and_own_half(drawn):
    sampler, specs = drawn
    for i, slide in enumerate(SLIDES):
        sel = specs.slide_index == i
        x, y = specs.x_l0[sel], specs.y_l0[sel]
        assert (x >= 0).all() and (x + TILE <= slide.width).all()
        assert (y >= 0).all() and (y + TILE <= slide.height).all()
        if sampler.half == "train":
            assert (y + TILE <= slide.height / 2).all()        # never straddles the boundary
        else:
            assert (y >= slide.height / 2).all()


@pytest.mark.parametrize("case", [CASE_MITOSIS, CASE_NEGATIVE])
def test_chosen_cell_fully_inside_at_random_offset(drawn, case):
    sampler, specs = drawn
    sel = specs.case == case
    cells = specs.cell_xy_l0[sel]
    offsets = cells - np.stack([specs.x_l0[sel], specs.y_l0[sel]], 1)
    # the chosen cell is a real cell of that class on that slide
    for i in np.flatnonzero(sel)[:300]:
        slide = SLIDES[specs.slide_index[i]]
        xy = slide.mitoses_xy if case == CASE_MITOSIS else slide.negatives_xy
        assert np.isclose(xy, specs.cell_xy_l0[i]).all(axis=1).any()
    # never cut off (§8 #9): the whole 50 px box lies inside the patch
    assert (offsets >= BOX / 2).all() and (offsets <= TILE - BOX / 2).all()
    # away from slide edges and the half boundary the offset is uniform on [25, 231] per axis
    slide_h = np.array([s.height for s in SLIDES])[specs.slide_index[sel]]
    slide_w = np.array([s.width for s in SLIDES])[specs.slide_index[sel]]
    far = ((cells[:, 0] > TILE) & (cells[:, 0] < slide_w - TILE) & (cells[:, 1] > TILE)
           & (cells[:, 1] < slide_h - TILE) & (np.abs(cells[:, 1] - slide_h / 2) > TILE))
    free = offsets[far]
    assert len(free) > 1000
    width = TILE - BOX
    assert free.mean(axis=0) == pytest.approx([TILE / 2, TILE / 2], abs=3)
    assert free.std(axis=0) == pytest.approx([width / 12 ** 0.5] * 2, rel=0.05)
    hist = np.histogram(free[:, 0], bins=4, range=(BOX / 2, TILE - BOX / 2))[0] / len(free)
    assert hist == pytest.approx([0.25] * 4, abs=0.04)


def test_cells_from_own_half_only(drawn):
    sampler, specs = drawn
    for case in (CASE_MITOSIS, CASE_NEGATIVE):
        for i in np.flatnonzero(specs.case == case)[:500]:
            slide = SLIDES[specs.slide_index[i]]
            centre_y = specs.y_l0[i] + TILE / 2
            assert (centre_y < slide.height / 2) == (sampler.half == "train")


def test_slides_uniform_per_case_and_missing_negatives(drawn):
    _, specs = drawn
    neg_slides = np.bincount(specs.slide_index[specs.case == CASE_NEGATIVE], minlength=3)
    assert neg_slides[2] == 0                               # slide 2 has no negative cells
    mf_slides = np.bincount(specs.slide_index[specs.case == CASE_MITOSIS], minlength=3)
    present = mf_slides > 0
    assert (mf_slides[present] / mf_slides[present].sum()) == pytest.approx(1 / present.sum(), abs=0.03)


def test_random_positions_on_tissue(drawn):
    _, specs = drawn
    sel = (specs.case == CASE_RANDOM) & (specs.slide_index == 0)
    centre_x = specs.x_l0[sel] + TILE / 2
    assert len(centre_x) > 100 and (centre_x <= SLIDES[0].width / 2 + 1).all()  # tissue is the left half
    sel = (specs.case == CASE_RANDOM) & (specs.slide_index == 2)                  # no tissue: whole half
    assert (specs.x_l0[sel] + TILE / 2 > SLIDES[2].width / 2).any()


def test_targets_are_mitoses_with_centre_in_patch(drawn):
    sampler, specs = drawn
    for i in range(200):
        s, x, y, case = specs[i]
        boxes = sampler.targets(s, x, y)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        assert ((centres >= 0) & (centres < TILE)).all()
        assert np.allclose(boxes[:, 2:] - boxes[:, :2], BOX)
        rel = SLIDES[s].mitoses_xy - (x, y)
        assert len(boxes) == int(((rel >= 0) & (rel < TILE)).all(axis=1).sum())
        if case == CASE_MITOSIS:
            assert len(boxes) >= 1


def test_seeded_and_different_per_epoch():
    sampler = PatchSampler(SLIDES, half="train", tile_px=TILE, box_px=BOX)
    a = sampler.draw(100, np.random.default_rng([0, 1]))
    b = sampler.draw(100, np.random.default_rng([0, 1]))
    c = sampler.draw(100, np.random.default_rng([0, 2]))
    assert np.array_equal(a.x_l0, b.x_l0) and not np.array_equal(a.x_l0, c.x_l0)


def test_case_without_candidates_becomes_random():
    slides = [_slide(5, n_neg=0)]
    specs = PatchSampler(slides, half="train", tile_px=TILE, box_px=BOX).draw(1000, np.random.default_rng(0))
    assert set(np.unique(specs.case)) == {CASE_MITOSIS, CASE_RANDOM}


def test_errors_and_helpers():
    with pytest.raises(ValueError, match="probabilities"):
        PatchSampler(SLIDES, half="train", tile_px=TILE, box_px=BOX, probabilities=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="tall enough"):
        PatchSampler([_slide(0, height=400)], half="train", tile_px=TILE, box_px=BOX)
    with pytest.raises(ValueError, match="half"):
        origin_range(1000, TILE, "test")
    assert origin_range(1001, TILE, "train") == (0, 244) and origin_range(1001, TILE, "valid") == (501, 745)
    assert negative_class("MEL") == AMBIGUOUS and negative_class("ODAEL") == LOOKALIKE
