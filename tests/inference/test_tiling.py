"""Tile planning (tissue mask) and the tile DataLoader with reader processes."""

from __future__ import annotations

import numpy as np
import pytest
from spot_slides import render_slide

from ccmct.inference.tiling import TileDataset, plan_tiles, tile_loader


def test_plan_skips_only_the_tile_on_bare_glass(spot_slide):
    plan = plan_tiles(spot_slide, tile_px=256, stride_px=230)
    assert plan.n_total == 20 and plan.n_selected == 19
    skipped = plan.grid.origins_l0()[~plan.selected].tolist()
    assert skipped == [[844, 0]]
    every = plan_tiles(spot_slide, tile_px=256, stride_px=230, all_tiles=True)
    assert every.n_selected == 20


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_returns_exact_pixels_in_order(spot_slide, workers):
    image = render_slide()
    origins = np.array([[844, 644], [0, 0], [230, 460], [844, 0], [690, 230]])
    loader = tile_loader(TileDataset(spot_slide, origins, 256), batch_size=2, workers=workers)
    seen = []
    for tiles, index, errors in loader:
        assert errors == [] and str(tiles.dtype) == "torch.uint8" and tiles.shape[1:] == (256, 256, 3)
        for tile, i in zip(tiles.numpy(), index.tolist()):
            x, y = origins[i]
            np.testing.assert_array_equal(tile, image[y:y + 256, x:x + 256])
            seen.append(i)
    assert seen == list(range(len(origins)))


def test_tiles_past_the_slide_edge_read_white(spot_slide):
    tile, _, error = TileDataset(spot_slide, np.array([[1000, 800]]), 256)[0]
    assert error == ""
    assert np.all(tile[100:, :] == 255) and np.all(tile[:, 100:] == 255)
    np.testing.assert_array_equal(tile[:100, :100], render_slide()[800:900, 1000:1100])


def test_read_errors_travel_as_text(openslide_fixtures):
    tile, index, error = TileDataset(openslide_fixtures / "unreadable.svs", np.array([[0, 0]]), 256)[0]
    assert index == 0 and "Bogus marker" in error
    assert np.all(tile == 255)


def test_bad_loader_arguments_are_rejected(spot_slide):
    with pytest.raises(ValueError, match="batch_size"):
        tile_loader(TileDataset(spot_slide, np.zeros((1, 2)), 256), batch_size=0, workers=0)
