"""PoolArray on the real pool: every input kind, every dtype, round trips, indexing,
lifetime (close, context manager, GC) and operators, against numpy."""

from __future__ import annotations

import array
import gc
from typing import Any

import numpy as np
import pytest

import jupyterlite_rayon as jr

SIZES = [0, 1, 2, 3, 5, 7, 13, 127, 1023, 1024, 1025, 4093, 4096, 4097]
DTYPES = ["float64", "float32", "int32", "int64", "uint32", "uint64"]
ARRAY_CODES = {"float64": "d", "float32": "f", "int32": "i", "int64": "q", "uint32": "I",
               "uint64": "Q"}


@pytest.fixture(autouse=True)
def _pool(pool: Any) -> None:
    pass


def sample(n: int, dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + n)
    if dtype.startswith("float"):
        return (rng.standard_normal(n) * 1000).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=n, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_numpy_round_trip(n: int, dtype: str) -> None:
    x = sample(n, dtype)
    a = jr.asarray(x)
    assert (a.shape, a.dtype, a.size, a.nbytes, len(a)) == ((n,), dtype, n, x.nbytes, n)
    back = a.to_numpy()
    assert back.dtype == x.dtype and np.array_equal(back, x)
    assert a.tobytes() == x.tobytes()
    assert a.tolist() == x.tolist()
    assert np.array_equal(np.asarray(a), x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_array_array_and_memoryview_inputs(dtype: str) -> None:
    x = sample(101, dtype)
    src = array.array(ARRAY_CODES[dtype], x.tolist())
    for obj in (src, memoryview(src)):
        a = jr.asarray(obj)
        assert a.dtype == dtype and a.tolist() == x.tolist()


def test_raw_bytes_are_read_by_frombuffer_as_numpy_does() -> None:
    x = np.arange(9, dtype=np.float64)
    assert jr.frombuffer(x.tobytes(), "float64").tolist() == x.tolist()
    assert jr.frombuffer(bytearray(x.tobytes()), "int64").tolist() == x.view(np.int64).tolist()
    with pytest.raises(ValueError, match="whole number"):
        jr.frombuffer(b"12345", dtype="float64")
    with pytest.raises(TypeError, match="frombuffer"):
        jr.asarray(x.tobytes(), dtype="float64")  # bytes are not numbers: numpy agrees


@pytest.mark.parametrize("code", ["b", "B", "h", "H", "e", "?"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_buffers_of_dtypes_the_pool_lacks_convert_by_value_whatever_the_container(
    code: str, dtype: str
) -> None:
    values = [0, 1, 2, 3, 100, 127] if code != "?" else [0, 1, 1, 0]
    ref = np.asarray(np.array(values, dtype=code), dtype=dtype)
    np_src = np.array(values, dtype=code)
    containers: list[object] = [np_src, memoryview(np_src)]
    if code != "e":
        containers.append(array.array(code if code != "?" else "b", values))
    if code == "B":
        containers.append(bytearray(values))
    for obj in containers:
        got = jr.asarray(obj, dtype)
        assert got.dtype == dtype and got.tolist() == ref.tolist(), type(obj)
    with pytest.raises(TypeError, match="dtype="):
        jr.asarray(memoryview(np_src))


def test_lists_infer_int64_or_float64_and_2d() -> None:
    assert jr.asarray([1, 2, 3]).dtype == "int64"
    assert jr.asarray([1, 2.5]).dtype == "float64"
    m = jr.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert m.shape == (2, 3) and m.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert jr.asarray([], "float32").shape == (0,)
    assert jr.asarray([1, 2], dtype="uint32").tolist() == [1, 2]
    assert jr.asarray([1, 2**64 - 1], dtype="uint64").tolist() == [1, 2**64 - 1]
    with pytest.raises(OverflowError):
        jr.asarray([-1], dtype="uint32")
    with pytest.raises(OverflowError):
        jr.asarray([-1], dtype="uint64")
    with pytest.raises(OverflowError):
        jr.asarray([2**63], dtype="int64")


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs_are_copied_in_order(dtype: str) -> None:
    x = sample(1000, dtype)
    strided = x[::3]
    assert not strided.flags.c_contiguous
    assert np.array_equal(jr.asarray(strided).to_numpy(), strided)
    assert np.array_equal(jr.asarray(x[::-1]).to_numpy(), x[::-1])
    view = memoryview(array.array(ARRAY_CODES[dtype], x.tolist()))[1::7]
    assert not view.c_contiguous
    assert jr.asarray(view).tolist() == x[1::7].tolist()
    m = x[:600].reshape(20, 30).T  # a transposed (Fortran-order) 2-D view
    assert np.array_equal(jr.asarray(m).to_numpy(), m)


def test_dtype_conversion_on_request() -> None:
    x = np.arange(10, dtype=np.int32)
    a = jr.asarray(x, dtype="float64")
    assert a.dtype == "float64" and a.tolist() == [float(v) for v in range(10)]
    b = jr.asarray(a, "int64")
    assert b.dtype == "int64" and b.tolist() == list(range(10))
    assert jr.asarray(a) is a  # same dtype, same pool: no copy
    f16 = np.ones(4, dtype=np.float16)
    assert jr.asarray(f16, "float32").tolist() == [1.0] * 4


def test_indexing_copies_out() -> None:
    x = np.arange(20, dtype=np.float64) * 1.5
    a = jr.asarray(x)
    assert a[0] == 0.0 and a[-1] == x[-1] and a[7] == x[7]
    assert isinstance(a[3], float)
    for key in (slice(2, 9), slice(None, None, 3), slice(15, 3, -2), slice(30, 40)):
        part = a[key]
        assert isinstance(part, jr.PoolArray)
        assert part.tolist() == x[key].tolist()
    with pytest.raises(IndexError):
        a[20]
    with pytest.raises(IndexError):
        a[-21]
    with pytest.raises(TypeError):
        a["1"]  # type: ignore[index]
    u = jr.asarray(np.array([1, 2**63, 2**64 - 1], np.uint64))
    assert u[2] == 2**64 - 1 and u[-2] == 2**63 and isinstance(u[0], int)
    assert u[::-1].tolist() == [2**64 - 1, 2**63, 1] and u[1:].dtype == "uint64"
    assert jr.frombuffer(np.array([2**64 - 1], np.uint64).tobytes(), "uint64").tolist() == [
        2**64 - 1
    ]
    m = jr.asarray(np.arange(12, dtype=np.int32).reshape(3, 4))
    assert m[1].tolist() == [4, 5, 6, 7]
    assert m[1:].shape == (2, 4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 17, 4097])
def test_empty_and_zeros(n: int, dtype: str) -> None:
    z = jr.zeros(n, dtype)
    assert z.shape == (n,) and z.dtype == dtype and z.tolist() == [0] * n
    e = jr.empty((2, n), dtype)
    assert e.shape == (2, n) and e.size == 2 * n


def test_close_is_idempotent_and_use_after_close_raises() -> None:
    before = jr.pool_info()["bytes_in_use"]
    a = jr.asarray(np.arange(1000.0))
    assert jr.pool_info()["bytes_in_use"] > before
    a.close()
    a.close()
    assert a.closed
    assert jr.pool_info()["bytes_in_use"] == before
    for use in (
        lambda: a.tolist(),
        lambda: a.ptr,
        lambda: jr.sum(a),
        lambda: a[0],
        lambda: a + 1.0,
        lambda: a.to_numpy(),
    ):
        with pytest.raises(ValueError, match="closed"):
            use()
    assert "closed" in repr(a)


def test_context_manager_and_garbage_collection_free_memory() -> None:
    before = jr.pool_info()["bytes_in_use"]
    with jr.zeros(5000) as z:
        assert jr.pool_info()["bytes_in_use"] > before
        assert not z.closed
    assert z.closed and jr.pool_info()["bytes_in_use"] == before
    arrays = [jr.asarray(np.arange(n, dtype=np.float64)) for n in SIZES]
    assert jr.pool_info()["bytes_in_use"] > before
    del arrays
    gc.collect()
    jr.sum([0.0])
    assert jr.pool_info()["bytes_in_use"] == before


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_operators_match_numpy(dtype: str) -> None:
    x = (np.arange(1, 258) * 0.75).astype(dtype)
    y = (np.arange(257, 0, -1) * 0.5).astype(dtype)
    a, b = jr.asarray(x), jr.asarray(y)
    with np.errstate(all="ignore"):
        exact = [
            (a + b, x + y),
            (a - b, x - y),
            (a * b, x * y),
            (a / b, x / y),
            (a + 2.0, x + 2.0),
            (3.0 - a, 3.0 - x),
            (2.0 * a, 2.0 * x),
            (1.0 / a, 1.0 / x),
            (-a, -x),
            (abs(-a), np.abs(-x)),
        ]
        powered, want_power = a**b, x**y
    for got, want in exact:  # IEEE basic operations are correctly rounded everywhere
        assert got.dtype == dtype
        assert np.array_equal(got.to_numpy(), want)
    # pow comes from different libm code than numpy's: a few ulp apart.
    assert np.allclose(powered.to_numpy(), want_power, rtol=1e-6 if dtype == "float32" else 1e-14)


def test_integer_operators_follow_numpy_types() -> None:
    x = np.arange(-50, 51, dtype=np.int64)
    a = jr.asarray(x)
    assert (a + 3).dtype == "int64" and (a + 3).tolist() == (x + 3).tolist()
    assert (a * a).tolist() == (x * x).tolist()
    half = a / 2
    assert half.dtype == "float64" and half.tolist() == (x / 2).tolist()
    assert (a + 0.5).tolist() == (x + 0.5).tolist()
    with pytest.raises(TypeError, match="float"):
        a**2


def test_repr_shows_values() -> None:
    assert "1.5" in repr(jr.asarray([1.5, 2.5]))
    assert "..." in repr(jr.asarray(np.arange(100.0)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "key",
    [
        slice(None, None, 2),
        slice(None, None, -1),
        slice(None, None, -3),
        slice(5, 1, -2),
        slice(1, None, 7),
        slice(-4, None),
        slice(100, 200, 3),
        slice(3, 3),
    ],
    ids=repr,
)
def test_slices_with_steps_equal_numpy(dtype: str, key: slice) -> None:
    x = sample(101, dtype)
    got = jr.asarray(x)[key]
    assert got.dtype == dtype and got.tolist() == x[key].tolist()
    m = sample(30, dtype).reshape(6, 5)
    assert jr.asarray(m)[key].tolist() == m[key].tolist()


@pytest.mark.parametrize(
    "values",
    [[1, 2, 3], [1, 2.5], [True, 2], [0.5] * 5, [[1, 2], [3, 4]], [[1.0, 2], [3, 4]], [],
     [2**63], [2**64 - 1, 2**63 + 5], [[2**63, 2**63], [2**64 - 1, 2**63]],  # uint64
     [1, 2**63], [-1, 2**64 - 1], [2**63, 0.5], [-(2**63), 2**63 - 1]],  # float64, int64
    ids=repr,
)
def test_lists_infer_numpys_dtype(values: list[object]) -> None:
    want = np.asarray(values)
    got = jr.asarray(values)
    assert got.dtype == want.dtype.name
    assert got.tolist() == want.tolist()


def test_ints_beyond_uint64_are_refused_as_numpy_has_no_integer_dtype_for_them() -> None:
    assert np.asarray([2**64]).dtype == object
    with pytest.raises(OverflowError, match="uint64"):
        jr.asarray([2**64])
    with pytest.raises(OverflowError, match="uint64"):
        jr.asarray([2**64], "uint64")
    assert jr.asarray([2**64], "float64").tolist() == [2.0**64]


@pytest.mark.parametrize("src", DTYPES)
@pytest.mark.parametrize("dst", DTYPES)
def test_astype_converts_as_numpy_and_always_copies(src: str, dst: str) -> None:
    x = sample(50, src)
    if src.startswith("float") and not dst.startswith("float"):
        x = np.round(np.abs(x) / 10).astype(src)  # in range of every integer dtype
    elif not src.startswith("float") and dst != src:
        x = (x % 1000).astype(src) if src.startswith("u") else (np.abs(x) % 1000).astype(src)
    a = jr.asarray(x)
    b = a.astype(dst)
    assert b is not a and b.dtype == dst
    assert np.array_equal(b.to_numpy(), x.astype(dst))
