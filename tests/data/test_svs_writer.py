"""Aperio-style SVS writer: OpenSlide reads the files as vendor aperio with MPP, levels and exact pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ccmct.data.slides import open_slide
from ccmct.data.svs_writer import write_svs


@pytest.fixture(scope="module")
def image():
    """A 2200 x 1300 px image (not a multiple of the tile size) with structure at every scale."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1300, 0:2200]
    base = np.stack([(xx // 7) % 256, (yy // 5) % 256, (xx + yy) % 256], axis=2)
    return (base ^ rng.integers(0, 8, base.shape)).astype(np.uint8)


@pytest.fixture(scope="module")
def zlib_slide(tmp_path_factory, image):
    return write_svs(tmp_path_factory.mktemp("svs") / "exact.svs", image, mpp=0.2533, compression="zlib")


def test_openslide_reads_aperio_with_mpp_and_exact_pixels(zlib_slide, image):
    with open_slide(zlib_slide) as slide:
        assert slide.vendor == "aperio"
        assert slide.mpp == pytest.approx(0.2533)
        assert slide.properties["aperio.AppMag"] == "40"
        assert slide.dimensions == (2200, 1300)
        np.testing.assert_array_equal(slide.read_l0(0, 0, (2200, 1300)), image)
        np.testing.assert_array_equal(slide.read_l0(1999, 1100, (201, 200)), image[1100:1300, 1999:2200])


def test_pyramid_levels_are_4x_reductions(zlib_slide, image):
    with open_slide(zlib_slide) as slide:
        assert slide.level_dimensions == ((2200, 1300), (550, 325))
        assert slide.level_downsamples == pytest.approx((1.0, 4.0))
        reduced = slide.read_region(0, 0, (550, 325), level=1)
    expected = np.asarray(Image.fromarray(image).reduce(4))
    np.testing.assert_array_equal(reduced, expected)


def test_strip_renderer_and_jpeg(tmp_path, image):
    calls = []

    def render(y0, height):
        calls.append((y0, height))
        return image[y0:y0 + height]

    path = write_svs(tmp_path / "jpeg.svs", render, size_wh=(2200, 1300), mpp=0.25, tile=256, quality=95)
    assert calls[0] == (0, 256) and calls[-1] == (1280, 20)  # streamed one tile row at a time
    with open_slide(path) as slide:
        assert slide.vendor == "aperio" and slide.mpp == pytest.approx(0.25)
        smooth = slide.read_l0(0, 0, (512, 512)).astype(int)
    assert np.abs(smooth - image[:512, :512].astype(int)).mean() < 6  # lossy but faithful
    assert list(tmp_path.iterdir()) == [path]


def test_large_levels_get_a_deeper_pyramid(tmp_path):
    path = write_svs(tmp_path / "big.svs", lambda y0, h: np.full((h, 8192, 3), 230, np.uint8),
                     size_wh=(8192, 2048), compression="jpeg")
    with open_slide(path) as slide:
        assert slide.level_dimensions == ((8192, 2048), (2048, 512), (512, 128))


def test_bad_arguments_and_atomicity(tmp_path, image):
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        write_svs(tmp_path / "a.svs", image.astype(np.float32))
    with pytest.raises(ValueError, match="multiple of 16"):
        write_svs(tmp_path / "a.svs", image, tile=100)
    with pytest.raises(ValueError, match="compression"):
        write_svs(tmp_path / "a.svs", image, compression="lzw")
    with pytest.raises(ValueError, match="size_wh is required"):
        write_svs(tmp_path / "a.svs", lambda y0, h: image[y0:y0 + h])
    with pytest.raises(ValueError, match="renderer returned"):
        write_svs(tmp_path / "a.svs", lambda y0, h: image[y0:y0 + h, :100], size_wh=(2200, 1300))

    def failing(y0, height):
        if y0 >= 512:
            raise RuntimeError("renderer died")
        return image[y0:y0 + height]

    with pytest.raises(RuntimeError, match="renderer died"):
        write_svs(tmp_path / "a.svs", failing, size_wh=(2200, 1300))
    assert list(tmp_path.iterdir()) == []  # neither a half-written slide nor a temporary file
