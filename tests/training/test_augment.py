import numpy as np
import pytest

from ccmct.training.augment import StainJitter, augment_patch, dihedral

S = 64


def _marked(box):
    image = np.zeros((S, S, 3), np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = 255
    return image


def _bbox_of_marker(image):
    rows, cols = np.nonzero(image[..., 0])
    return [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


@pytest.mark.parametrize("k", range(4))
@pytest.mark.parametrize("flip", [False, True])
def test_boxes_follow_the_pixels(k, flip):
    box = (5, 10, 25, 40)
    image, boxes = dihedral(_marked(box), np.array([box], np.float32), k_rot90=k, flip_x=flip)
    assert image.flags.c_contiguous
    assert boxes[0].tolist() == _bbox_of_marker(image)


def test_dihedral_needs_square():
    with pytest.raises(ValueError, match="square"):
        dihedral(np.zeros((10, 12, 3), np.uint8), np.zeros((0, 4)), k_rot90=1, flip_x=False)


def test_stain_jitter_is_mild_and_monotone():
    rng = np.random.default_rng(0)
    for _ in range(20):
        lut = StainJitter().lut(rng).astype(int)
        assert (np.diff(lut, axis=1) >= 0).all()               # order of intensities kept
        assert np.abs(lut - np.arange(256)).max() <= 40         # mild
    assert (StainJitter(scale=0, shift=0).lut(rng) == np.arange(256)).all()


def test_augment_patch_is_seeded_and_keeps_empty_boxes():
    image = np.random.default_rng(1).integers(0, 256, (S, S, 3), dtype=np.uint8)
    a, ba = augment_patch(image, np.zeros((0, 4), np.float32), np.random.default_rng(5))
    b, bb = augment_patch(image, np.zeros((0, 4), np.float32), np.random.default_rng(5))
    assert np.array_equal(a, b) and ba.shape == (0, 4)
    assert a.shape == image.shape and a.dtype == np.uint8
