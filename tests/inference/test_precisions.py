"""Whole-slide inference in both CPU precisions (float32 and bfloat16 autocast; ``cpu_precision`` fixture of
tests/conftest.py): the planted spots come back in both, exactly in float32, within bf16's rounding otherwise."""

from __future__ import annotations

import numpy as np
import torch
from spot_slides import PLANTED_XY, SPOT_PX

from ccmct.inference.detector import InferenceOptions, WholeSlideDetector
from ccmct.precision import autocast_dtype


def _sorted_centres(boxes: np.ndarray) -> np.ndarray:
    centres = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    return centres[np.lexsort((centres[:, 1], centres[:, 0]))]


def test_planted_spots_in_both_precisions(spot_detector_model, spot_config, spot_slide, cpu_precision):
    assert autocast_dtype("cpu") == (torch.bfloat16 if cpu_precision == "bfloat16" else None)
    result = WholeSlideDetector(spot_detector_model, spot_config, device="cpu",
                                options=InferenceOptions(batch_size=4, workers=0)).detect(spot_slide)
    expected = np.array(sorted(PLANTED_XY.values()), np.float64)
    expected = expected[np.lexsort((expected[:, 1], expected[:, 0]))]
    assert len(result.boxes) == len(expected)
    tolerance = 1e-3 if cpu_precision == "float32" else 2.0  # bf16 keeps 8 significant bits
    np.testing.assert_allclose(_sorted_centres(result.boxes), expected, atol=tolerance)
    np.testing.assert_allclose(result.boxes[:, 2:4] - result.boxes[:, 0:2], SPOT_PX, atol=2 * tolerance)
    np.testing.assert_allclose(result.boxes[:, 5], 0.9, atol=1e-6 if cpu_precision == "float32" else 5e-3)
    assert result.boxes.dtype == np.float64
