"""Other readers agree with ours: OpenSlide, tiffslide and tifffile see the same pyramid in a written .svs.

The page layout follows real Aperio files (issue 14 item 8): level 0 tiled, a stripped thumbnail, the reduced
levels tiled, then label and macro; subfile types as in the real Aperio fixture ``small.svs``.
"""

from __future__ import annotations

import numpy as np
import openslide
import pytest
import tifffile

from ccmct.data.svs_writer import SUBFILE_LABEL, SUBFILE_LEVEL, SUBFILE_MACRO, write_svs

tiffslide = pytest.importorskip("tiffslide", reason="tiffslide is a test dependency (requirements-dev.txt)")


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([(xx // 7) % 256, (yy // 5) % 256, (xx + yy) % 256], axis=2)
    return (base ^ rng.integers(0, 8, base.shape)).astype(np.uint8)


@pytest.fixture(scope="module", params=[("zlib", 2200, 1300), ("jpeg", 2200, 1300), ("jpeg", 8300, 2100)],
                ids=["zlib-2-levels", "jpeg-2-levels", "jpeg-3-levels"])
def written(request, tmp_path_factory):
    compression, width, height = request.param
    path = tmp_path_factory.mktemp("readers") / "slide.svs"
    image = _image(height, width)
    return write_svs(path, lambda y0, h: image[y0:y0 + h], size_wh=(width, height), mpp=0.2533,
                     compression=compression), image


def _rgb(pil_image) -> np.ndarray:
    return np.asarray(pil_image.convert("RGB"))


def test_page_layout_is_aperio_like_the_real_fixture(written, openslide_fixtures):
    path, image = written
    with tifffile.TiffFile(openslide_fixtures / "small.svs") as real:
        real_kinds = [(p.is_tiled, p.subfiletype) for p in real.pages]
    with tifffile.TiffFile(path) as tif:
        pages = list(tif.pages)
        kinds = [(p.is_tiled, p.subfiletype) for p in pages]
        descriptions = [p.description for p in pages]
    # the real fixture holds level 0 and the thumbnail: ours starts exactly like it
    assert real_kinds == [(True, 0), (False, 0)] and kinds[:2] == real_kinds
    assert all(d.startswith("Aperio Image Library") for d in descriptions)
    levels = kinds[2:-2]
    assert levels and all(k == (True, SUBFILE_LEVEL) for k in levels)
    assert kinds[-2:] == [(False, SUBFILE_LABEL), (False, SUBFILE_MACRO)]
    assert "label" in descriptions[-2].splitlines()[-1] and "macro" in descriptions[-1].splitlines()[-1]
    assert max(pages[1].shape[:2]) <= 1024 and pages[0].shape[:2] == image.shape[:2]


def test_three_readers_see_the_same_pyramid(written):
    path, image = written
    osr, tsr = openslide.OpenSlide(str(path)), tiffslide.TiffSlide(str(path))
    try:
        assert osr.properties["openslide.vendor"] == "aperio"
        assert float(osr.properties["openslide.mpp-x"]) == pytest.approx(0.2533)
        assert float(tsr.properties["tiffslide.mpp-x"]) == pytest.approx(0.2533)
        with tifffile.TiffFile(path) as tif:
            names = [s.name for s in tif.series]
            tf_levels = [level.asarray() for level in tif.series[0].levels]
            tf_assoc = {s.name.lower(): s.asarray() for s in tif.series[1:]}
        assert names == ["Baseline", "Thumbnail", "Label", "Macro"]
        expected_levels = 3 if image.shape[1] > 8000 else 2
        assert osr.level_count == tsr.level_count == len(tf_levels) == expected_levels
        assert tuple(osr.level_dimensions) == tuple(tsr.level_dimensions) == tuple(
            (a.shape[1], a.shape[0]) for a in tf_levels)
        assert tuple(osr.level_downsamples) == pytest.approx(tuple(tsr.level_downsamples))
        for level, expected in enumerate(tf_levels):
            w, h = osr.level_dimensions[level]
            from_osr = _rgb(osr.read_region((0, 0), level, (w, h)))
            from_tsr = _rgb(tsr.read_region((0, 0), level, (w, h)))
            np.testing.assert_array_equal(from_osr, expected)
            np.testing.assert_array_equal(from_tsr, expected)
        assert set(osr.associated_images) == set(tsr.associated_images) == {"thumbnail", "label", "macro"}
        for name in ("thumbnail", "label", "macro"):
            np.testing.assert_array_equal(_rgb(osr.associated_images[name]), tf_assoc[name])
            np.testing.assert_array_equal(_rgb(tsr.associated_images[name]), tf_assoc[name])
    finally:
        osr.close()
        tsr.close()


def test_zlib_level0_is_the_image_in_every_reader(tmp_path):
    image = _image(700, 900, seed=1)
    path = write_svs(tmp_path / "exact.svs", image, mpp=0.25, compression="zlib")
    with tifffile.TiffFile(path) as tif:
        np.testing.assert_array_equal(tif.series[0].levels[0].asarray(), image)
    with tiffslide.TiffSlide(str(path)) as tsr:
        np.testing.assert_array_equal(_rgb(tsr.read_region((0, 0), 0, (900, 700))), image)
    osr = openslide.OpenSlide(str(path))
    np.testing.assert_array_equal(_rgb(osr.read_region((0, 0), 0, (900, 700))), image)
    osr.close()
