"""Tile-grid geometry: full coverage incl. the margins, tissue-tile selection, the tile-edge rule."""

from __future__ import annotations

import numpy as np
import pytest

from ccmct.geometry.tiles import (
    TileGrid,
    keep_most_central,
    paper_stride_px,
    tile_origins_1d,
    tiles_touching_mask,
)


def test_paper_stride_is_230_for_256_px_tiles():
    assert paper_stride_px(256) == 230


@pytest.mark.parametrize("length", [256, 257, 486, 700, 1000, 46_000, 80_123])
def test_origins_cover_the_whole_axis_with_the_last_tile_at_the_edge(length):
    origins = tile_origins_1d(length, tile_px=256, stride_px=230)
    assert origins[0] == 0
    assert origins[-1] == length - 256                      # right / bottom margin covered
    assert np.all(np.diff(origins[:-1]) == 230)             # the paper's stride until the last tile
    if len(origins) > 1:
        assert 0 < np.diff(origins)[-1] <= 230
    covered = np.zeros(length, bool)
    for o in origins:
        covered[o:o + 256] = True
    assert covered.all()


def test_authors_grid_leaves_a_margin_that_ours_covers():
    width = 1000
    authors_end = np.arange(0, width - 256, 230)[-1] + 256   # 690 + 256 = 946
    assert authors_end == 946
    assert tile_origins_1d(width, tile_px=256, stride_px=230)[-1] + 256 == width


def test_short_axis_gets_one_tile_and_bad_strides_are_rejected():
    assert tile_origins_1d(100, tile_px=256, stride_px=230).tolist() == [0]
    with pytest.raises(ValueError, match="stride_px"):
        tile_origins_1d(1000, tile_px=256, stride_px=300)
    with pytest.raises(ValueError, match="stride_px"):
        tile_origins_1d(1000, tile_px=256, stride_px=0)
    with pytest.raises(ValueError, match="positive"):
        tile_origins_1d(0, tile_px=256, stride_px=230)


def test_grid_origins_are_raster_order():
    grid = TileGrid.covering((1000, 600), tile_px=256, stride_px=230)
    origins = grid.origins_l0()
    assert len(grid) == len(origins) == 5 * 3
    assert origins[:6].tolist() == [[0, 0], [230, 0], [460, 0], [690, 0], [744, 0], [0, 230]]
    assert origins[-1].tolist() == [744, 344]


def test_tiles_touching_mask_selects_exactly_the_tiles_over_tissue():
    grid = TileGrid.covering((1000, 600), tile_px=256, stride_px=230)
    mask = np.zeros((60, 100), bool)                 # 10 px per mask pixel
    mask[5, 50] = True                               # level 0 [500, 510) x [50, 60)
    selected = tiles_touching_mask(grid, mask, margin_px=0)
    hits = grid.origins_l0()[selected].tolist()
    assert hits == [[460, 0]]                        # only the tile [460, 716) x [0, 256) holds it
    with_margin = grid.origins_l0()[tiles_touching_mask(grid, mask, margin_px=1)].tolist()
    assert with_margin == [[460, 0]]
    edge = np.zeros((60, 100), bool)
    edge[5, 46] = True                               # [460, 470): also touches the tile ending at 486
    assert grid.origins_l0()[tiles_touching_mask(grid, edge, margin_px=0)].tolist() == [[230, 0], [460, 0]]
    assert not tiles_touching_mask(grid, np.zeros((60, 100), bool)).any()


def _grid():
    return TileGrid.covering((1100, 900), tile_px=256, stride_px=230)


def _tile_id(grid, x0, y0):
    return int(np.flatnonzero(grid.xs_l0 == x0)[0] + grid.n_cols * np.flatnonzero(grid.ys_l0 == y0)[0])


def test_detection_at_the_edge_is_dropped_when_a_neighbour_sees_it_centrally():
    grid = _grid()
    processed = np.ones(len(grid), bool)
    # a cell centred 3 px inside the left edge of tile x=230 is 23 px inside tile x=0
    keep = keep_most_central(np.array([[233.0, 100.0], [233.0, 100.0]]),
                             np.array([_tile_id(grid, 230, 0), _tile_id(grid, 0, 0)]), grid, processed,
                             tolerance_px=13)
    assert keep.tolist() == [False, True]


def test_overlap_middle_is_kept_by_both_tiles():
    grid = _grid()
    processed = np.ones(len(grid), bool)
    centres = np.array([[243.0, 100.0], [241.0, 100.0], [245.0, 100.0]])
    for tile in (_tile_id(grid, 0, 0), _tile_id(grid, 230, 0)):
        assert keep_most_central(centres, np.full(3, tile), grid, processed, tolerance_px=13).all()


def test_edge_detection_is_kept_when_the_better_tile_was_not_processed():
    grid = _grid()
    processed = np.ones(len(grid), bool)
    processed[_tile_id(grid, 0, 0)] = False
    keep = keep_most_central(np.array([[233.0, 100.0]]), np.array([_tile_id(grid, 230, 0)]), grid, processed,
                             tolerance_px=13)
    assert keep.tolist() == [True]


def test_corner_of_four_tiles_keeps_the_most_central_one():
    grid = _grid()
    processed = np.ones(len(grid), bool)
    centre = np.array([[232.0, 252.0]])                   # 2 px into x-tile 230, 4 px from the end of y-tile 0
    tiles = {(x, y): _tile_id(grid, x, y) for x in (0, 230) for y in (0, 230)}
    kept = {k for k, t in tiles.items() if keep_most_central(centre, np.array([t]), grid, processed,
                                                              tolerance_px=13)[0]}
    assert kept == {(0, 230)}                             # x margin 24 (tile 0), y margin 22 (tile 230)


def test_a_point_seen_by_every_covering_tile_is_never_dropped_by_all(rng=np.random.default_rng(1)):
    grid = _grid()
    processed = rng.random(len(grid)) < 0.7
    origins = grid.origins_l0()
    for tolerance in (0.0, 13.0):
        for centre in rng.uniform([0, 0], [1100, 900], size=(400, 2)):
            inside = np.all((origins <= centre) & (centre < origins + 256), axis=1) & processed
            tiles = np.flatnonzero(inside)
            if len(tiles) == 0:
                continue
            keep = keep_most_central(np.repeat(centre[None], len(tiles), 0), tiles, grid, processed,
                                     tolerance_px=tolerance)
            assert keep.any(), (centre, tiles)


def test_keep_most_central_handles_no_detections_and_rejects_negative_tolerance():
    grid = _grid()
    assert keep_most_central(np.zeros((0, 2)), np.zeros(0, int), grid, np.ones(len(grid), bool),
                             tolerance_px=13).shape == (0,)
    with pytest.raises(ValueError, match="tolerance_px"):
        keep_most_central(np.zeros((1, 2)), np.zeros(1, int), grid, np.ones(len(grid), bool), tolerance_px=-1)
