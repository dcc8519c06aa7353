"""Category 3: options validated at the boundary, the same way in every command; strict JSON everywhere."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
from battery import cases_of
from clitools import explain

from ccmct import jsonable
from ccmct.cli.common import count, device, positive_float, probability, probability_below_one


@pytest.mark.parametrize("case", cases_of("options"), ids=lambda c: c.name)
def test_case(case, battery_outcome):
    outcome = battery_outcome(case)
    assert outcome.passed, explain(outcome)


@pytest.mark.parametrize("parse, good, bad", [
    (probability, ["0", "1", "0.5", "1e-3"], ["-0.1", "1.01", "nan", "inf", "-inf", "x", ""]),
    (probability_below_one, ["0", "0.5", "0.985"], ["0.99", "0.995", "1", "1.0", "nan", "2"]),
    (positive_float, ["25", "1e-6"], ["0", "-1", "nan", "inf", "1e400", "x"]),
    (count(1), ["1", "64"], ["0", "-3", "1.5", "x", ""]),
    (count(0), ["0", "2"], ["-1", "two"]),
    (device, ["cpu"], ["gpu", "cuda:x", "CPU", ""]),
])
def test_shared_option_types(parse, good, bad):
    for text in good:
        value = parse(text)
        assert not isinstance(value, float) or math.isfinite(value)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_cuda_is_refused_on_a_machine_without_one():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(argparse.ArgumentTypeError, match="no CUDA GPU"):
        device("cuda")


def test_strict_json_turns_non_finite_numbers_into_null():
    document = {"f1": float("nan"), "curve": [[0.5, np.float64("inf")], [0.6, -math.inf]], "n": np.int64(3),
                "a": np.array([1.0, np.nan]), 2: np.float32(0.5)}
    text = jsonable.dumps(document)
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard constant {c}")) == {
        "f1": None, "curve": [[0.5, None], [0.6, None]], "n": 3, "a": [1.0, None], "2": 0.5}
