import pytest
import torch

from ccmct.models.anchors import make_anchors


def test_shape_and_order():
    anchors = make_anchors(256, 16, (40.0, 50.0, 60.0))
    assert anchors.shape == (768, 4)
    # entry (row 2, col 5, size 1): centre (5.5*16, 2.5*16), side 50
    a = anchors[(2 * 16 + 5) * 3 + 1]
    assert torch.allclose(a, torch.tensor([88 - 25, 40 - 25, 88 + 25, 40 + 25.0]))
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    assert centres.min() == 8 and centres.max() == 248


def test_every_position_has_a_positive_anchor():
    """A 50 px GT square anywhere in the tile overlaps some 50 px anchor at IoU >= 0.5."""
    from torchvision.ops import box_iou

    from ccmct.models.retinanet import DetectorConfig

    cfg = DetectorConfig()
    anchors = cfg.anchors()
    grid = torch.arange(25.0, 232.0, 1.7)
    cy, cx = torch.meshgrid(grid, grid, indexing="ij")
    half = cfg.gt_box_px / 2
    gt = torch.stack([cx - half, cy - half, cx + half, cy + half], -1).reshape(-1, 4)
    assert box_iou(gt, anchors).max(dim=1).values.min() >= cfg.match_iou_pos


@pytest.mark.parametrize("tile,stride,sizes", [(250, 16, (50.0,)), (256, 16, ()), (256, 16, (0.0,))])
def test_bad_arguments(tile, stride, sizes):
    with pytest.raises(ValueError, match="tile_px|sizes_px"):
        make_anchors(tile, stride, sizes)
