"""Deep Zoom tiles from OpenSlide's own test slides (real Aperio SVS and generic TIFF files)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from ccmct.data.slides import open_slide
from ccmct.errors import SlideError
from ccmct.viewer import tiles as tiles_mod


def test_pyramid_of_a_real_tiff(openslide_fixtures, tmp_path):
    marker = tiles_mod.write_pyramid(openslide_fixtures / "boxes.tiff", tmp_path, "boxes", progress=False)
    # 300 x 250 px: Deep Zoom levels 0..9 (1 px .. full size), the full level in 2 x 1 tiles of 254 px
    assert marker["levels"] == 10 and marker["tiles"] == 11
    with Image.open(tmp_path / "tiles" / "boxes_files" / "9" / "1_0.jpeg") as tile:
        assert tile.size == (300 - 254 + 1, 250)
    with open_slide(openslide_fixtures / "boxes.tiff") as slide:
        assert slide.deep_zoom().level_dimensions[9] == (300, 250)
    assert json.loads((tmp_path / "tiles" / "boxes.complete.json").read_text())["regions"] is None


def test_unreadable_slide_tile_is_a_slide_error(openslide_fixtures, tmp_path):
    with open_slide(openslide_fixtures / "unreadable.svs") as slide:
        deep_zoom = slide.deep_zoom()
        with pytest.raises(SlideError, match="unreadable.svs"):
            deep_zoom.get_tile(deep_zoom.level_count - 1, (0, 0))
    with pytest.raises(SlideError):
        tiles_mod.write_pyramid(openslide_fixtures / "unreadable.svs", tmp_path, "bad", progress=False)
    assert not (tmp_path / "tiles" / "bad.complete.json").exists()  # never marked complete
