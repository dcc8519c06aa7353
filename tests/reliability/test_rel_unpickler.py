"""Category 5: the safe unpickler admits numbers only; no object array comes out by any path."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from battery import _huge_array, _object_array_reduce, _object_array_setstate, _os_system, _Reduce, cases_of
from clitools import explain

from ccmct.data._safe_pickle import UnsafePickleError, assert_numbers_only, safe_load


@pytest.mark.parametrize("case", cases_of("unpickler"), ids=lambda c: c.name)
def test_case(case, battery_outcome):
    outcome = battery_outcome(case)
    assert outcome.passed, explain(outcome)


def test_the_attacks_work_on_a_plain_unpickler_and_fail_on_ours():
    plain = pickle.loads(_object_array_setstate())["s.svs"]
    assert plain.dtype == object and plain[0] is print  # what an unrestricted load would hand out
    assert pickle.loads(_object_array_reduce())["s.svs"].dtype == object
    for payload, message in [(_object_array_reduce(), "not a plain numeric dtype"),
                             (_object_array_setstate(), "not a plain numeric dtype"),
                             (_os_system(), "asks for posix.system|asks for os.system"),
                             (_huge_array(), "larger than")]:
        with pytest.raises(UnsafePickleError, match=message):
            safe_load(io.BytesIO(payload))


@pytest.mark.parametrize("dtype", ["U4", "S4", "V8", [("a", "f8")], "M8[s]"])
def test_only_numeric_dtypes(dtype):
    payload = pickle.dumps({"s": np.zeros(2, dtype=dtype)}, protocol=2)
    with pytest.raises(UnsafePickleError):
        safe_load(io.BytesIO(payload))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numeric_arrays_of_every_protocol_still_load(protocol):
    data = {"s.svs": [np.array([1.0, 2, 3, 4, 0, 0.5]), np.arange(6, dtype=np.float32)],
            "t.svs": np.ones((3, 6), dtype=np.int64), "u.svs": []}
    loaded = safe_load(io.BytesIO(pickle.dumps(data, protocol=protocol)))
    np.testing.assert_array_equal(loaded["s.svs"][1], data["s.svs"][1])
    assert loaded["t.svs"].dtype == np.int64 and loaded["u.svs"] == []


def test_the_final_walk_refuses_anything_but_numbers():
    assert_numbers_only({"a": [np.zeros(2), 1.5, "x"], "b": (np.float32(1),)})
    for bad in [{"a": np.array([None])}, {"a": [object()]}, {"a": {1, 2}}, np.array(["x"])]:
        with pytest.raises(UnsafePickleError):
            assert_numbers_only(bad)


def test_ndarray_stand_in_takes_no_extra_arguments():
    payload = pickle.dumps({"s": _Reduce(np.ndarray, ((2,), "f8", b"\x00" * 16))}, protocol=2)
    with pytest.raises(UnsafePickleError, match="shape and a dtype only"):
        safe_load(io.BytesIO(payload))
