"""ccmct.config.units: physical sizes in µm, converted to level-0 px in one place; the constants derive from it."""

import pytest

from ccmct.config import dataset, units
from ccmct.config.units import CELL_PATCH_UM, DETECTION_RADIUS_UM, GT_BOX_UM, PAPER_MPP, TILE_UM, px, um
from ccmct.models.retinanet import DetectorConfig
from ccmct.sampling.cells import PATCH_SIZE_PX


def test_paper_pixel_sizes_come_from_the_micrometre_facts():
    assert (px(DETECTION_RADIUS_UM), px(GT_BOX_UM), px(CELL_PATCH_UM), px(TILE_UM)) == (25.0, 50.0, 128.0, 256.0)
    assert dataset.DETECTION_RADIUS_L0 == 25.0 and dataset.PAPER_MPP is units.PAPER_MPP
    assert PATCH_SIZE_PX == 128
    config = DetectorConfig()
    assert (config.tile_px, config.gt_box_px, config.mpp) == (256, 50.0, PAPER_MPP)


def test_another_resolution_gives_the_same_physical_size():
    assert px(DETECTION_RADIUS_UM, 0.5) == 12.5 and px(TILE_UM, 0.5) == 128.0
    assert um(px(GT_BOX_UM, 0.2533), 0.2533) == pytest.approx(GT_BOX_UM)


@pytest.mark.parametrize("mpp", [0, -0.25, float("nan"), float("inf")])
def test_non_positive_or_non_finite_mpp_is_refused(mpp):
    with pytest.raises(ValueError, match="µm/px must be a positive number"):
        px(10, mpp)
    with pytest.raises(ValueError, match="mpp"):
        DetectorConfig(mpp=mpp if mpp else 0)
