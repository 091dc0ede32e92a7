"""jr.sum, jr.mean and jr.cumsum give numpy's value bit for bit (`==`, or both NaN, and the
same sign of zero): float sums in numpy's pairwise order in the dtype, means divided as numpy
divides, int means summed in float64 through numpy's 8192-element buffer, float cumsum in order.
Inputs: every dtype, 0-d to 4-D, C and F order, steps, transposes, reversed axes, empty arrays,
NaN, inf, signed zeros and float32 sums that overflow. Also run on the st build
(test_st_build.py), without the thread-count tests (it has one thread)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import jupyterlite_rayon as jr
from jupyterlite_rayon import numpy_order

FLOATS = ["float64", "float32"]
INTS = ["int32", "int64", "uint32", "uint64"]
SIZES = [
    0,
    1,
    7,
    8,
    9,
    127,
    128,
    129,
    255,
    256,
    257,
    4095,
    4097,
    8191,
    8192,
    8193,
    32769,
    65537,
    100_003,
    1_000_000,
]


def spread(shape: Any, dtype: str, seed: int) -> np.ndarray:
    """Values whose sum's rounding shows any change of order: magnitudes over 1e-6..1e6 of
    both signs (floats); for ints, values whose float64 conversion rounds (int64, uint64)."""
    rng = np.random.default_rng(seed)
    if dtype in FLOATS:
        return (rng.standard_normal(shape) * 10.0 ** rng.uniform(-6, 6, shape)).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def numpy_value(fn: Callable[[Any], Any], x: Any) -> Any:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow, "Mean of empty slice"
        return fn(x)


def assert_same(got: Any, want: Any) -> None:
    """numpy's value exactly: equal (with the same sign of zero), or both NaN."""
    got, want = float(got), float(want)
    if math.isnan(want) or math.isnan(got):
        assert math.isnan(got) and math.isnan(want), (got, want)
        return
    assert got == want, (got, want)
    assert math.copysign(1, got) == math.copysign(1, want), (got, want)


def check_sum_and_mean(x: Any) -> None:
    assert_same(jr.sum(x), numpy_value(np.sum, x))
    assert_same(jr.mean(x), numpy_value(np.mean, x))


@pytest.mark.parametrize("dtype", FLOATS + INTS)
@pytest.mark.parametrize("n", SIZES)
def test_1d_sum_and_mean_are_numpys(dtype: str, n: int) -> None:
    x = spread(n, dtype, n)
    check_sum_and_mean(x)
    if dtype in INTS:
        assert jr.sum(x) == int(np.sum(x))


@pytest.mark.parametrize("t", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", FLOATS + ["int64", "uint64"])
def test_thread_counts_give_numpys_value(dtype: str, t: int) -> None:
    for n in (4097, 65537, 300_007, 1_000_000):
        x = spread(n, dtype, n + t)
        with jr.threadpool_limits(t):
            check_sum_and_mean(x)
            if dtype in FLOATS:
                assert jr.cumsum(x).tobytes() == np.cumsum(x).tobytes()


@pytest.mark.parametrize("dtype", FLOATS)
def test_specials_nan_inf_and_float32_overflow(dtype: str) -> None:
    rng = np.random.default_rng(3)
    for n in (5, 9, 200, 4097, 100_003):
        for special in (np.nan, np.inf, -np.inf):
            x = spread(n, dtype, n)
            x[rng.integers(0, n, size=3)] = special
            check_sum_and_mean(x)
            assert jr.cumsum(x).tobytes() == np.cumsum(x).tobytes()
    # float32 partial sums beyond its range are inf in numpy (a float64 total would be finite,
    # and here even cancel to about 0)
    for n in (4, 9, 130, 100_000):
        big = np.full(n, 3e38, np.float32)
        big[n // 2 :] = -3e38
        check_sum_and_mean(big)
        assert jr.cumsum(big).tobytes() == numpy_value(np.cumsum, big).tobytes()
        assert math.isinf(jr.sum(np.full(n, 3e38, np.float32)))
    # 2**24 + 1 is no float32: numpy's float32 sum stays at 2**24
    assert (
        jr.sum(np.array([2.0**24, 1, 1, 1], np.float32))
        == 2.0**24
        == np.sum(np.array([2.0**24, 1, 1, 1], np.float32))
    )


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 129, 4097, 40_000])
def test_signed_zeros(dtype: str, n: int) -> None:
    rng = np.random.default_rng(n)
    for x in (
        np.full(n, -0.0, dtype),
        np.zeros(n, dtype),
        np.where(rng.random(n) < 0.5, -0.0, 0.0).astype(dtype),
    ):
        assert np.signbit(jr.sum(x)) == np.signbit(np.sum(x))  # numpy: +0.0
        assert np.signbit(jr.mean(x)) == np.signbit(np.mean(x))
        assert jr.cumsum(x).tobytes() == np.cumsum(x).tobytes()  # -0.0 runs stay -0.0


def layouts(shape: tuple[int, ...], dtype: str, seed: int) -> list[tuple[str, np.ndarray]]:
    base = spread(shape, dtype, seed)
    nd = len(shape)
    last = (slice(None),) * (nd - 1)
    out = [("C", base), ("F", np.asfortranarray(base)), ("T", base.T)]
    out.append(("step", base[last + (slice(None, None, 2),)]))
    out.append(("outer step", base[::3]))
    out.append(
        ("outer step, inner cut", base[(slice(None, None, 2),) + last[1:] + (slice(1, None),)])
    )
    out.append(("F step", np.asfortranarray(base)[::2]))
    out.append(("step T", base[last + (slice(1, None, 3),)].T))
    out.append(("reversed", base[::-1]))
    out.append(("inner reversed", base[last + (slice(None, None, -1),)]))
    out.append(("all reversed", base[(slice(None, None, -1),) * nd]))
    out.append(("every other", base[(slice(None, None, 2),) * nd]))
    if nd >= 3:
        out.append(("middle reversed", base[:, ::-1]))
        out.append(("middle step", base[::2, ::2]))
    return out


SHAPES = [
    (300, 301),
    (50, 1000),
    (7, 9000),
    (3, 30_000),
    (100, 100),
    (20, 30, 40),
    (7, 30, 39),
    (10, 300, 50),
    (40, 50, 60),
    (5, 7, 300, 50),
    (2, 3, 4, 2500),
    (9, 1, 13, 1),
    (1, 40_000),
    (4, 3, 9000),
]


@pytest.mark.parametrize("dtype", FLOATS + ["int64", "uint64", "int32"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_nd_arrays_in_any_layout_are_numpys(shape: tuple[int, ...], dtype: str) -> None:
    for name, x in layouts(shape, dtype, sum(shape)):
        assert_same(jr.mean(x), numpy_value(np.mean, x))
        if dtype in FLOATS:
            assert_same(jr.sum(x), numpy_value(np.sum, x))
        else:
            assert jr.sum(x) == int(np.sum(x)), name


@pytest.mark.parametrize("dtype", FLOATS + ["int64"])
def test_broadcast_arrays_are_numpys(dtype: str) -> None:
    row, col = spread(1000, dtype, 1), spread((100, 1), dtype, 2)
    for x in (
        np.broadcast_to(row, (100, 1000)),
        np.broadcast_to(col, (100, 1000)),
        np.broadcast_to(row[::-3], (7, 20, 334)),
        np.broadcast_to(col, (3, 100, 50)),
        np.broadcast_to(col[:, :, None], (100, 20, 9)).transpose(2, 0, 1),
    ):
        check_sum_and_mean(x)


def test_0d_empty_and_scalars() -> None:
    for dtype in FLOATS + INTS:
        zero_d = np.array(spread(1, dtype, 1)[0])
        check_sum_and_mean(zero_d)
        check_sum_and_mean(zero_d[()])  # a numpy scalar
        for shape in [(0,), (0, 5), (5, 0), (2, 0, 3)]:
            empty = np.zeros(shape, dtype)
            assert jr.sum(empty) == 0 and not np.signbit(jr.sum(empty))
            assert math.isnan(jr.mean(empty)) and math.isnan(numpy_value(np.mean, empty))
    assert_same(jr.sum(np.array(-0.0)), np.sum(np.array(-0.0)))  # +0.0


def test_byte_swapped_and_misaligned_arrays_sum_through_numpys_buffer() -> None:
    for dtype in FLOATS + ["int64"]:
        for n in (8193, 100_003):
            x = spread(n, dtype, n)
            check_sum_and_mean(x.astype(x.dtype.newbyteorder(">")))
            raw = np.zeros(n * x.itemsize + 1, np.uint8)
            odd = np.ndarray((n,), x.dtype, raw[1:].data)
            odd[:] = x
            assert not odd.flags.aligned
            check_sum_and_mean(odd)


def test_pool_arrays_and_lists_are_summed_in_c_order() -> None:
    m = spread((300, 301), "float64", 5)
    check_sum_and_mean(m)
    assert_same(jr.sum(jr.asarray(m)), np.sum(m))
    assert_same(jr.mean(jr.asarray(m.astype(np.float32))), np.mean(m.astype(np.float32)))
    values = m[0].tolist()
    assert_same(jr.sum(values), np.sum(values))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n", SIZES)
def test_float_cumsum_is_numpys_sequential_sum(dtype: str, n: int) -> None:
    x = spread(n, dtype, n + 1)
    got = jr.cumsum(x)
    assert got.dtype == dtype
    assert got.tobytes() == np.cumsum(x).tobytes()
    strided = spread(3 * n, dtype, n)[::-3]
    assert jr.cumsum(strided).tobytes() == np.cumsum(strided).tobytes()


def test_int_mean_buffers_are_what_numpy_sums() -> None:
    """The 8192-element buffer matters: these values give another mean summed in one piece."""
    x = (np.int64(1) << 60) + np.arange(8193, dtype=np.int64) * 1_000_003
    as_float = x.astype(np.float64)
    one_piece = float(np.sum(as_float)) / x.size
    buffered = float(np.sum(as_float[:8192]) + np.sum(as_float[8192:])) / x.size
    assert one_piece != buffered
    assert jr.mean(x) == buffered == np.mean(x)


def test_iteration_order_pieces() -> None:
    """numpy's chunks for a stepped 2-D array: 54 rows of 151 fill the 8192-element buffer."""
    m = np.zeros((300, 301))[:, ::2]
    flat, pieces = numpy_order.iteration_order(m, casting=False)
    assert flat.shape == (300 * 151,)
    assert pieces == [54 * 151] * 5 + [300 * 151 - 5 * 54 * 151]
    # one run (C, F, 1-D steps): the kernel's own rule, no pieces
    for one_run in (np.zeros((30, 40)), np.zeros((30, 40), order="F"), np.zeros(100)[::3]):
        assert numpy_order.iteration_order(one_run, casting=False)[1] is None
    # runs longer than the buffer: whole runs, or buffers within each run when casting
    long_rows = np.zeros((3, 30_000))[:, 5:]
    assert numpy_order.iteration_order(long_rows, casting=False)[1] == [29_995] * 3
    assert numpy_order.iteration_order(long_rows, casting=True)[1] == [8192, 8192, 8192, 5419] * 3


@pytest.mark.parametrize("size", [1008, 4096, 20_000])
def test_numpys_buffer_size_is_followed(size: int) -> None:
    """np.setbufsize changes numpy's pieces (int means, stepped and reversed arrays)."""
    before = np.getbufsize()
    np.setbufsize(size)
    try:
        check_sum_and_mean(spread(100_000, "int64", 1))
        check_sum_and_mean(spread((300, 301), "float64", 2)[:, ::2])
        check_sum_and_mean(spread((40, 50, 60), "float32", 3)[:, ::-1])
        check_sum_and_mean(spread((40, 50, 60), "uint64", 4)[::2, :, 1:])
    finally:
        np.setbufsize(before)
