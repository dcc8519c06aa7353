import torch

from ccmct.models.box_coder import decode, encode


def test_hand_made_case():
    anchor = torch.tensor([[100.0, 100.0, 150.0, 150.0]])            # centre 125, side 50
    gt = torch.tensor([[110.0, 95.0, 170.0, 145.0]])                 # centre (140, 120), 60 x 50
    t = encode(gt, anchor)
    expected = torch.tensor([[10 * 15 / 50, 10 * -5 / 50, 5 * torch.log(torch.tensor(1.2)), 0.0]])
    assert torch.allclose(t, expected, atol=1e-6)


def test_round_trip_random():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(500, 2, generator=g) * 256
    wh = 10 + torch.rand(500, 2, generator=g) * 80
    gt = torch.cat([xy, xy + wh], 1)
    axy = torch.rand(500, 2, generator=g) * 256
    anchors = torch.cat([axy, axy + 50], 1)
    assert torch.allclose(decode(encode(gt, anchors), anchors), gt, atol=1e-3)


def test_decode_keeps_boxes_outside_the_tile_and_is_finite():
    anchors = torch.tensor([[0.0, 0.0, 40.0, 40.0]])
    boxes = decode(torch.tensor([[-10.0, -10.0, 100.0, 100.0]]), anchors)
    assert torch.isfinite(boxes).all()
    assert boxes[0, 0] < 0  # not clipped: the centre stays where the network put it
