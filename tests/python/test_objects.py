"""put/get: values, zero-copy numpy arrays and buffers, and what cannot be stored."""

import numpy as np
import pytest

import atoll
from conftest import WAIT


@atoll.remote
def total(a):
    return float(a.sum())


@atoll.remote
def double(a):
    return a * 2


def test_put_get_plain_values():
    for v in [1, "s", None, [1, {"a": (2, 3)}], 2.5, {1, 2}]:
        assert atoll.get(atoll.put(v), timeout=WAIT) == v


def test_large_array_is_read_back_without_a_copy():
    arr = np.arange(1 << 20, dtype=np.float64)
    ref = atoll.put(arr)
    a = atoll.get(ref, timeout=WAIT)
    b = atoll.get(ref, timeout=WAIT)
    assert np.array_equal(a, arr)
    assert a.ctypes.data == b.ctypes.data  # both views of the stored block
    assert a.ctypes.data % 64 == 0
    assert not a.flags.writeable  # objects are immutable
    arr[0] = -1  # the caller's array is not the stored one
    assert atoll.get(ref, timeout=WAIT)[0] == 0


def test_arrays_as_arguments_and_results():
    arr = np.ones((256, 256), dtype=np.float32)
    assert atoll.get(total.remote(arr), timeout=WAIT) == 256 * 256
    assert atoll.get(total.remote(atoll.put(arr)), timeout=WAIT) == 256 * 256
    out = atoll.get(double.remote(arr), timeout=WAIT)
    assert out.shape == (256, 256) and out.dtype == np.float32 and float(out[3, 4]) == 2.0
    fortran = np.asfortranarray(np.arange(12).reshape(3, 4))
    assert np.array_equal(atoll.get(atoll.put(fortran), timeout=WAIT), fortran)
    several = {"a": np.zeros(10), "b": np.arange(5)}
    back = atoll.get(atoll.put(several), timeout=WAIT)
    assert np.array_equal(back["b"], np.arange(5)) and back["a"].shape == (10,)


def test_bytes_bytearray_and_memoryview():
    big = bytes(range(256)) * 1024
    assert atoll.get(atoll.put(big), timeout=WAIT) == big
    assert atoll.get(atoll.put(bytearray(big)), timeout=WAIT) == bytearray(big)
    view = atoll.get(atoll.put(memoryview(big)), timeout=WAIT)
    assert isinstance(view, memoryview) and view.readonly and view.tobytes() == big
    assert atoll.get(atoll.put(b"small"), timeout=WAIT) == b"small"
    assert atoll.get(double.remote(big[:10]), timeout=WAIT) == big[:10] * 2


def test_refs_inside_stored_values_are_refused():
    ref = atoll.put(1)
    with pytest.raises(atoll.SerializationError, match="not supported yet"):
        atoll.put([ref])
    with pytest.raises(TypeError):
        atoll.put(ref)


def test_wrong_arguments_to_get():
    with pytest.raises(TypeError):
        atoll.get(3)
    with pytest.raises(TypeError):
        atoll.get([atoll.put(1), 2])


def test_stats_count_objects():
    refs = [atoll.put(i) for i in range(3)]
    assert atoll.stats()["objects"] >= 3
    del refs
