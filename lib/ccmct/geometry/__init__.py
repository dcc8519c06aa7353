"""Pure geometry on level-0 point/box arrays (no I/O): distance NMS, box centres, tile grids.

It sits below both inference and evaluation so that both use one implementation.
"""

from ccmct.geometry.nms import box_centers, distance_nms, neighbor_pairs
from ccmct.geometry.tiles import TileGrid, keep_most_central, paper_stride_px, tile_origins_1d, tiles_touching_mask

__all__ = ["TileGrid", "box_centers", "distance_nms", "keep_most_central", "neighbor_pairs", "paper_stride_px",
           "tile_origins_1d", "tiles_touching_mask"]
