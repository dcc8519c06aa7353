"""Whole-slide detection geometry with a hand-set detector (no training): planted spots come back exactly."""

from __future__ import annotations

import numpy as np
import pytest
from spot_slides import DECOY_XY, PLANTED_XY, SLIDE_WH, SPOT_PX

from ccmct.errors import SlideError
from ccmct.inference.detector import InferenceOptions, WholeSlideDetector


def _centres(boxes: np.ndarray) -> np.ndarray:
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
    return centres[np.lexsort((centres[:, 1], centres[:, 0]))]


def _expected(points) -> np.ndarray:
    points = np.array(sorted(points), np.float64)
    return points[np.lexsort((points[:, 1], points[:, 0]))]


def test_planted_spots_come_back_exactly_in_level0_coordinates(spot_detector_model, spot_config, spot_slide):
    detector = WholeSlideDetector(spot_detector_model, spot_config,
                                  options=InferenceOptions(batch_size=4, workers=2))
    result = detector.detect(spot_slide)
    assert result.tiles_total == 20
    assert result.tiles_processed == 19                    # the tile on bare glass is skipped
    np.testing.assert_allclose(_centres(result.boxes), _expected(PLANTED_XY.values()), atol=1e-3)
    sides = result.boxes[:, 2:4] - result.boxes[:, 0:2]
    np.testing.assert_allclose(sides, SPOT_PX, atol=1e-3)  # the whole spot, not a cut one
    assert np.all(result.boxes[:, 4] == 0)
    np.testing.assert_allclose(result.boxes[:, 5], 0.9, atol=1e-6)
    assert np.all(np.diff(result.boxes[:, 5]) <= 0)


def test_margins_the_authors_grid_skipped_are_found(spot_detector_model, spot_config, spot_slide):
    width, height = SLIDE_WH
    authors_end_x = np.arange(0, width - 256, 230)[-1] + 256
    authors_end_y = np.arange(0, height - 256, 230)[-1] + 256
    in_margin = [xy for xy in PLANTED_XY.values() if xy[0] > authors_end_x or xy[1] > authors_end_y]
    assert len(in_margin) >= 3
    result = WholeSlideDetector(spot_detector_model, spot_config, options=InferenceOptions(workers=0)).detect(
        spot_slide)
    found = {tuple(np.round(c).astype(int)) for c in _centres(result.boxes)}
    assert set(in_margin) <= found


def test_all_tiles_processes_background_too(spot_detector_model, spot_config, spot_slide):
    detector = WholeSlideDetector(spot_detector_model, spot_config,
                                  options=InferenceOptions(workers=0, all_tiles=True))
    result = detector.detect(spot_slide)
    assert result.tiles_processed == result.tiles_total == 20
    np.testing.assert_allclose(_centres(result.boxes), _expected([*PLANTED_XY.values(), DECOY_XY]), atol=1e-3)


def test_tile_edge_rule_removes_cut_copies_that_distance_nms_would_otherwise_need(
        spot_detector_model, spot_config, spot_slide):
    # radius 0.5 px: distance NMS merges only copies of the same box, so what remains shows the edge rule
    exact = WholeSlideDetector(spot_detector_model, spot_config,
                               options=InferenceOptions(workers=0, radius_l0=0.5)).detect(spot_slide)
    np.testing.assert_allclose(_centres(exact.boxes), _expected(PLANTED_XY.values()), atol=1e-3)
    no_rule = WholeSlideDetector(spot_detector_model, spot_config,
                                 options=InferenceOptions(workers=0, radius_l0=0.5, edge_tolerance_px=1e9))
    centres = _centres(no_rule.detect(spot_slide).boxes)
    assert len(centres) > len(PLANTED_XY)                  # half spots at tile edges, centres shifted 3 px
    shifted = {tuple(np.round(c).astype(int)) for c in centres} - set(PLANTED_XY.values())
    assert (233, 400) in shifted and (253, 600) in shifted


def test_model_config_drives_tile_size_and_stride(spot_detector_model, spot_config):
    detector = WholeSlideDetector(spot_detector_model, spot_config)
    assert detector.stride_px == 230 and detector.edge_tolerance_px == 13
    assert detector.settings()["tile_px"] == spot_config.tile_px == 256
    assert detector.settings()["score_threshold"] == spot_config.score_threshold


def test_missing_slide_is_a_slide_error(spot_detector_model, spot_config, tmp_path):
    detector = WholeSlideDetector(spot_detector_model, spot_config)
    with pytest.raises(SlideError, match="does not exist"):
        detector.detect(tmp_path / "nope.svs")


@pytest.mark.parametrize("all_tiles", [False, True])
def test_corrupt_slide_is_a_slide_error_naming_the_file(spot_detector_model, spot_config, openslide_fixtures,
                                                       all_tiles):
    # all_tiles: the thumbnail is not read, so the reader worker process meets the corrupt data
    detector = WholeSlideDetector(spot_detector_model, spot_config,
                                  options=InferenceOptions(workers=1, all_tiles=all_tiles))
    with pytest.raises(SlideError, match="unreadable.svs.*Bogus marker"):
        detector.detect(openslide_fixtures / "unreadable.svs")
