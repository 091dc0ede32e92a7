"""Every array-array and array-scalar operation gives numpy's dtype and values (NEP 50), or
refuses with the error numpy raises; never a different silent answer."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import jupyterlite_rayon as jr

DTYPES = ["float64", "float32", "int32", "int64", "uint32", "uint64"]
OPS: dict[str, Callable[[Any, Any], Any]] = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "divide": np.divide,
    "minimum": np.minimum,
    "maximum": np.maximum,
}
SCALARS: list[Any] = [
    0,
    3,
    -7,
    2**31 - 1,
    2**31,
    2**40,
    2**53 + 1,
    2**62,
    -(2**63),
    2**63,
    2**64 - 1,
    2**64,
    2.5,
    -0.0,
    1e300,
    float("nan"),
    float("inf"),
    True,
    np.float64(1.5),
    np.float32(2.5),
    np.int64(3),
    np.int32(-4),
    np.uint32(5),
    np.uint64(7),
    np.uint64(2**64 - 1),
    np.int8(-1),
    np.uint8(200),
    np.int16(7),
    np.float16(0.5),
]


def values(dtype: str) -> np.ndarray:
    if dtype.startswith("float"):
        return np.array([0.0, -0.0, 1.5, -2.25, 1e6, np.nan, np.inf, -3.0], dtype=dtype)
    info = np.iinfo(dtype)
    return np.array([0, 1, -1 if info.min < 0 else 2, 7, info.max, info.min, 12345, 3], dtype=dtype)


def numpy_result(fn: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn()
        except (OverflowError, TypeError, ValueError) as exc:
            return exc


def check(want: Any, got_fn: Callable[[], Any]) -> None:
    if isinstance(want, Exception):
        with pytest.raises(type(want)):
            got_fn()
        return
    got = got_fn().to_numpy()
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert np.array_equal(got, want, equal_nan=True), (got, want)


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("a, b", list(itertools.product(DTYPES, DTYPES)))
def test_array_with_array(op: str, a: str, b: str) -> None:
    x, y = values(a), values(b)
    want = numpy_result(lambda: OPS[op](x, y))
    check(want, lambda: getattr(jr, op)(x, y))


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
def test_array_with_scalar_either_side(op: str, dtype: str, scalar: Any) -> None:
    x = values(dtype)
    fn = getattr(jr, op)
    for left in (True, False):

        def want_fn(left: bool = left) -> Any:
            return OPS[op](x, scalar) if left else OPS[op](scalar, x)

        def got_fn(left: bool = left) -> Any:
            return fn(x, scalar) if left else fn(scalar, x)

        want = numpy_result(want_fn)
        if isinstance(want, np.ndarray) and want.dtype.name not in DTYPES:
            with pytest.raises(TypeError, match="does not have"):
                got_fn()
            continue
        check(want, got_fn)


@pytest.mark.parametrize("dtype", DTYPES)
def test_operators_promote_as_the_functions(dtype: str) -> None:
    x = values(dtype)
    a = jr.asarray(x)
    for scalar in (2, 2.5, np.float32(2)):
        pairs = [(a + scalar, x + scalar), (a - scalar, x - scalar)]
        if not isinstance(scalar, np.generic):  # a numpy scalar on the left: numpy computes
            pairs += [(scalar * a, scalar * x), (scalar - a, scalar - x)]
        for got, want in pairs:
            assert isinstance(got, jr.PoolArray) and got.dtype == want.dtype.name
            assert np.array_equal(got.to_numpy(), want, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "lo, hi",
    [
        (0, 5),
        (-1, 2**63 + 3),
        (2**63, 2**64 + 5),
        (3, -1),
        (np.uint64(2), np.uint64(2**63)),
        (0.5, 2.5),
        (0.0, 2.0),
        (-(2**40), 2**40),
        (2**53 + 1, 2**60),
        (None, 3),
        (np.float64(0.5), None),
        (np.int64(1), np.int64(4)),
        (-1.5, float("inf")),
    ],
)
def test_clip_follows_numpy(dtype: str, lo: Any, hi: Any) -> None:
    x = values(dtype)
    if dtype == "int64":
        x = np.concatenate([x, np.array([2**53 + 1, 2**60 + 1, 2**53], np.int64)])
    if dtype == "uint64":
        x = np.concatenate([x, np.array([2**53 + 1, 2**63 + 1, 2**63, 2**64 - 2], np.uint64)])
    want = numpy_result(lambda: np.clip(x, lo, hi))
    check(want, lambda: jr.clip(x, lo, hi))


def test_the_break_test_examples() -> None:
    got = jr.add(np.array([2**31 - 1], np.int32), 2.0)
    assert got.dtype == "float64" and got.tolist() == [2147483649.0]
    got = jr.add(np.array([1, 2], np.int64), 2**60)
    assert got.tolist() == [2**60 + 1, 2**60 + 2]
    got = jr.clip(np.array([1, 2, 3], np.int32), 1.5, 2.5)
    assert got.dtype == "float64" and got.tolist() == [1.5, 2.0, 2.5]
    big = np.array([2**60 + 3, 5], np.int64)
    assert jr.clip(big, 0, 2**60 + 1).tolist() == [2**60 + 1, 5]


def test_numpy_scalars_and_dtype_spellings_are_accepted() -> None:
    assert jr.mandelbrot(np.int64(4), np.int32(3), max_iter=np.int64(10)).shape == (3, 4)
    assert jr.monte_carlo_pi(np.int64(1000), seed=np.int64(3)) == jr.monte_carlo_pi(1000, seed=3)
    for spelling in ("f8", "<f8", "d", np.float64, np.dtype("float64"), float):
        assert jr.asarray([1, 2], spelling).dtype == "float64", spelling
    others: list[tuple[Any, str]] = [("f4", "float32"), ("i4", "int32"), ("i8", "int64"),
                                     ("u4", "uint32"), ("u8", "uint64"), ("<u8", "uint64"),
                                     (np.uint64, "uint64"), (np.dtype("uint64"), "uint64")]
    for other, name in others:
        assert jr.asarray([1, 2], other).dtype == name


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
@pytest.mark.parametrize("op", list(OPS))
def test_thread_counts_shapes_and_strides_give_numpys_answer(threads: int, op: str) -> None:
    previous = jr.set_num_threads(threads)
    try:
        rng = np.random.default_rng(threads)
        for a, b in (("float64", "int32"), ("float32", "float32"), ("int64", "uint32"),
                     ("uint64", "uint32"), ("uint64", "int64")):
            base = rng.integers(-50, 50, size=(40, 30)).astype(a)
            other = rng.integers(1, 50, size=(40, 30)).astype(b)
            for x, y in (
                (base, other),  # 2-D
                (base[::2, ::3], other[1::2, ::3]),  # strided: copied in C order
                (base.T, other.T),  # transposed
                (base[:, 0], other[:, 0]),  # a column: a strided 1-D view
                (base.ravel()[:4097], other.ravel()[:4097]),  # past one 4096 block
            ):
                check(
                    numpy_result(lambda x=x, y=y: OPS[op](x, y)),
                    lambda x=x, y=y: getattr(jr, op)(x, y),
                )
            zero_d = np.array(3, dtype=b)  # a 0-d array is as strongly typed as a scalar
            check(
                numpy_result(lambda x=base, z=zero_d: OPS[op](x, z)),
                lambda x=base, z=zero_d: getattr(jr, op)(x, z),
            )
    finally:
        jr.set_num_threads(previous)


def test_three_dimensional_input_is_refused_clearly() -> None:
    cube = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        jr.add(cube, 1.0)
