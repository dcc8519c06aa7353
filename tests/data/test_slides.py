"""Slide access through OpenSlide: real vendor fixtures, broken files, written slides, the per-process cache."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from ccmct.data import slides as slides_module
from ccmct.data.slides import cached_slide, open_slide, tissue_mask
from ccmct.data.svs_writer import write_svs
from ccmct.errors import SlideError


@pytest.fixture(scope="module")
def tissue_slide(tmp_path_factory):
    """A 1024 x 768 white slide with a pink 'tissue' disc of radius 250 px centred at (400, 380)."""
    yy, xx = np.mgrid[0:768, 0:1024]
    image = np.full((768, 1024, 3), 245, np.uint8)
    disc = (xx - 400) ** 2 + (yy - 380) ** 2 < 250 ** 2
    image[disc] = (200, 120, 170)
    path = write_svs(tmp_path_factory.mktemp("slides") / "tissue.svs", image, mpp=0.25, compression="zlib")
    return path, image, disc


def test_real_aperio_fixture(openslide_fixtures):
    with open_slide(openslide_fixtures / "small.svs") as slide:
        assert slide.vendor == "aperio"
        assert slide.mpp == pytest.approx(0.499)
        assert slide.dimensions == (16, 16) and slide.level_count == 1
        patch = slide.read_l0(0, 0, (16, 16))
    assert patch.shape == (16, 16, 3) and patch.dtype == np.uint8
    assert 0 < patch.mean() < 255


def test_generic_tiff_has_no_usable_mpp_unless_overridden(openslide_fixtures):
    with open_slide(openslide_fixtures / "boxes.tiff") as slide:
        assert slide.vendor == "generic-tiff" and slide.level_count == 4
        with pytest.raises(SlideError, match=r"boxes\.tiff: .*mpp.*pass an explicit mpp \(--mpp\)"):
            slide.mpp
        level1 = slide.read_region(0, 0, slide.level_dimensions[1], level=1)
        assert level1.shape == (125, 150, 3)
    with open_slide(openslide_fixtures / "boxes.tiff", mpp=0.5) as slide:
        assert slide.mpp == 0.5


def test_unreadable_slide_raises_and_the_handle_is_never_reused(openslide_fixtures):
    path = openslide_fixtures / "unreadable.svs"
    slide = open_slide(path)  # the header is valid: opening works, reading the tile data fails
    with pytest.raises(SlideError, match=r"unreadable\.svs: OpenSlide cannot read it \(Bogus marker length\)"):
        slide.read_l0(0, 0, (16, 16))
    with pytest.raises(SlideError, match=r"unreadable\.svs: an earlier read failed .*the handle is closed"):
        slide.read_l0(0, 0, (4, 4))
    with pytest.raises(SlideError, match="earlier read failed"):
        slide.thumbnail(8)
    assert "closed" in repr(slide)

    cached = cached_slide(path)
    with pytest.raises(SlideError, match="Bogus marker length"):
        cached.read_l0(0, 0, (16, 16))
    again = cached_slide(path)  # a poisoned handle leaves the cache: a fresh one, failing clearly again
    assert again is not cached
    with pytest.raises(SlideError, match="Bogus marker length"):
        again.read_l0(0, 0, (16, 16))


def test_unopenable_and_missing_files(openslide_fixtures, tmp_path):
    with pytest.raises(SlideError, match=r"unopenable\.tiff: OpenSlide cannot open it \(Unsupported TIFF compression"):
        open_slide(openslide_fixtures / "unopenable.tiff")
    with pytest.raises(SlideError, match=r"nope\.svs: slide file does not exist"):
        open_slide(tmp_path / "nope.svs")
    (tmp_path / "text.svs").write_text("not a slide")
    with pytest.raises(SlideError, match=r"text\.svs: OpenSlide cannot open it"):
        open_slide(tmp_path / "text.svs")


def test_written_slide_reads_exactly_and_outside_is_white(tissue_slide):
    path, image, _ = tissue_slide
    with open_slide(path) as slide:
        assert slide.vendor == "aperio" and slide.mpp == pytest.approx(0.25)
        np.testing.assert_array_equal(slide.read_l0(100, 200, (300, 150)), image[200:350, 100:400])
        corner = slide.read_l0(-10, -20, (30, 40))  # partly left of and above the slide
        np.testing.assert_array_equal(corner[20:, 10:], image[:20, :20])
        assert (corner[:20] == 255).all() and (corner[:, :10] == 255).all()
        assert (slide.read_l0(5000, 5000, (8, 8)) == 255).all()


def test_thumbnail_and_tissue_mask(tissue_slide):
    path, _, disc = tissue_slide
    with open_slide(path) as slide:
        thumb = slide.thumbnail(256)
    assert thumb.dtype == np.uint8 and max(thumb.shape[:2]) == 256 and thumb.shape[2] == 3
    mask = tissue_mask(thumb)
    small_disc = disc[::4, ::4][: mask.shape[0], : mask.shape[1]]
    iou = (mask & small_disc).sum() / (mask | small_disc).sum()
    assert iou > 0.95
    assert not tissue_mask(np.full((32, 32, 3), 250, np.uint8)).any()  # blank glass: no tissue
    assert tissue_mask(thumb, min_saturation=0.99).sum() == 0


def _misses_in_child(path, queue):
    before = slides_module._cached_slide.cache_info().misses
    first = cached_slide(path)
    second = cached_slide(path)
    queue.put((slides_module._cached_slide.cache_info().misses - before, first is second))


def test_cached_slide_one_handle_per_process(tissue_slide):
    path = tissue_slide[0]
    parent = cached_slide(path)
    assert cached_slide(str(path)) is parent  # same file, same process: reused
    assert cached_slide(path, mpp=0.3) is not parent and cached_slide(path, mpp=0.3).mpp == 0.3
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_misses_in_child, args=(path, queue))
    child.start()
    misses, reused = queue.get(timeout=60)
    child.join(timeout=60)
    assert misses == 1 and reused  # the child opened its own handle once, then reused it
