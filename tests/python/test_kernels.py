"""Every kernel against numpy (or an exact Python reference) on the real pool, with
Hypothesis choosing sizes (0, 1, primes, 2^k +- 1, random), dtypes, NaN/inf and thread
counts 1-4; deterministic kernels are checked bit for bit across thread counts."""

from __future__ import annotations

import math
import struct
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jupyterlite_rayon as jr

EXAMPLES = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
EDGE_SIZES = [0, 1, 2, 3, 5, 7, 13, 31, 127, 1021, 4095, 4096, 4097, 8191, 8193, 12289]
sizes = st.one_of(st.sampled_from(EDGE_SIZES), st.integers(0, 20_000))
threads = st.integers(1, 4)
seeds = st.integers(0, 2**32 - 1)
FLOATS = ["float64", "float32"]
INTS = ["int32", "int64", "uint32", "uint64"]
NUMERIC = [*FLOATS, *INTS]
SORTABLE = NUMERIC


@pytest.fixture(scope="module", autouse=True)
def _pool(pool: Any) -> Any:
    before = jr.current_num_threads()
    yield
    jr.set_num_threads(before)


def make(n: int, dtype: str, seed: int, specials: bool = False) -> np.ndarray:
    """Random data; specials puts NaN, +-inf, -0.0 and huge values into float arrays."""
    rng = np.random.default_rng(seed)
    if dtype in FLOATS:
        x = (rng.standard_normal(n) * 100).astype(dtype)
        if specials and n:
            picks = rng.integers(0, n, size=max(1, n // 50))
            values = np.array([np.nan, np.inf, -np.inf, -0.0, 1e30, -1e-30], dtype=dtype)
            x[picks] = rng.choice(values, size=picks.size)
        return x
    info = np.iinfo(dtype)
    wide = rng.integers(info.min, info.max, size=n, dtype=dtype, endpoint=True)
    small = rng.integers(-1000 if info.min else 0, 1000, size=n).astype(dtype)
    return wide if specials else small


def at(t: int, fn: Callable[[], Any]) -> Any:
    with jr.threadpool_limits(t):
        return fn()


def bits(value: Any) -> bytes:
    if isinstance(value, jr.PoolArray):
        return value.tobytes()
    if isinstance(value, float):
        return struct.pack("<d", value)
    return struct.pack("<Q", value % (1 << 64))  # int64 and uint64 results alike


def same_float(got: float, want: float) -> bool:
    return (math.isnan(got) and math.isnan(want)) or got == want


def sum_tolerance(x: np.ndarray) -> float:
    # dot: blocked (4096) then pairwise summation: error below ~4200 eps * sum|x|.
    mags = np.abs(x.astype(np.float64))
    return 4200 * np.finfo(np.float64).eps * float(mags.sum()) + 1e-300


def wrap64(v: int) -> int:
    return (v + (1 << 63)) % (1 << 64) - (1 << 63)


def wrapped(v: int, dtype: str) -> int:
    """v in numpy's fixed-width integer dtype (wrapping)."""
    bits = np.iinfo(dtype).bits
    if dtype.startswith("u"):
        return v % (1 << bits)
    return (v + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))


def numpy_or_error(fn: Callable[[], Any]) -> Any:
    """numpy's answer, or the exception numpy raises (OverflowError for a Python int out of
    a dtype's range): the pool must raise the same."""
    try:
        with np.errstate(all="ignore"):
            return fn()
    except (OverflowError, TypeError, ValueError) as exc:
        return exc


# -- reductions --------------------------------------------------------------------------
@EXAMPLES
@given(n=sizes, dtype=st.sampled_from(NUMERIC), seed=seeds, t=threads, specials=st.booleans())
def test_sum_and_mean(n: int, dtype: str, seed: int, t: int, specials: bool) -> None:
    x = make(n, dtype, seed, specials)
    got_sum, got_mean = at(t, lambda: (jr.sum(x), jr.mean(x)))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "Mean of empty slice"
        want_sum, want_mean = np.sum(x), np.mean(x)
    # numpy's value bit for bit: floats in numpy's pairwise order in the dtype (float32 in
    # float32), means divided as numpy divides, ints exact
    assert same_float(float(got_mean), float(want_mean))
    if dtype in FLOATS:
        assert same_float(got_sum, float(want_sum))
        assert math.isnan(got_sum) or math.copysign(1, got_sum) == math.copysign(1, want_sum)
    else:
        exact = sum(int(v) for v in x)
        # numpy sums int32/int64 as int64 and uint32/uint64 as uint64, wrapping
        assert got_sum == wrapped(exact, "uint64" if dtype.startswith("u") else "int64")
        assert got_sum == int(want_sum)
        assert isinstance(got_sum, int)


@EXAMPLES
@given(n=sizes, dtype=st.sampled_from(NUMERIC), seed=seeds, specials=st.booleans())
def test_deterministic_kernels_are_bit_identical_for_1_to_4_threads(
        n: int, dtype: str, seed: int, specials: bool) -> None:
    x = make(n, dtype, seed, specials)
    y = make(n, dtype, seed + 1, specials)

    def run() -> list[bytes]:
        span = (-1e19, 1e19) if specials else (-1000.0, 1000.0)
        counts, _ = jr.histogram(x, bins=17, range=span)
        return [bits(jr.sum(x)), bits(jr.mean(x)), bits(jr.dot(x, y)), bits(jr.cumsum(x)),
                counts.tobytes()]

    results = [at(t, run) for t in (1, 2, 3, 4)]
    assert results[1:] == results[:1] * 3


@EXAMPLES
@given(n=sizes, dtype=st.sampled_from(NUMERIC), seed=seeds, t=threads, specials=st.booleans())
def test_min_max(n: int, dtype: str, seed: int, t: int, specials: bool) -> None:
    x = make(n, dtype, seed, specials)
    if n == 0:
        with pytest.raises(ValueError, match="empty"):
            at(t, lambda: jr.min(x))
        with pytest.raises(ValueError, match="empty"):
            at(t, lambda: jr.max(x))
        return
    got_min, got_max = at(t, lambda: (jr.min(x), jr.max(x)))
    if dtype in FLOATS:
        assert same_float(got_min, float(np.min(x))) and same_float(got_max, float(np.max(x)))
    else:
        assert (got_min, got_max) == (int(x.min()), int(x.max()))


@EXAMPLES
@given(n=sizes, dtype=st.sampled_from(NUMERIC), seed=seeds, t=threads)
def test_dot(n: int, dtype: str, seed: int, t: int) -> None:
    x, y = make(n, dtype, seed), make(n, dtype, seed + 7)
    got = at(t, lambda: jr.dot(x, y))
    if dtype in FLOATS:
        products = x.astype(np.float64) * y.astype(np.float64)
        want = math.fsum(products.tolist())
        ulp = float(np.spacing(np.float32(abs(want)))) if dtype == "float32" else 0.0
        assert abs(got - want) <= sum_tolerance(products) * 2 + ulp
    else:
        exact = sum(int(a) * int(b) for a, b in zip(x, y, strict=True))
        assert got == wrapped(exact, dtype)  # numpy's dot keeps the dtype and wraps in it
        assert got == int(np.dot(x, y))


# -- element-wise ------------------------------------------------------------------------
UNARY = ["sqrt", "exp", "log", "sin", "cos", "abs", "negative"]


@EXAMPLES
@given(n=sizes, dtype=st.sampled_from(NUMERIC), seed=seeds, t=threads,
       specials=st.booleans(), op=st.sampled_from(UNARY))
def test_unary(n: int, dtype: str, seed: int, t: int, specials: bool, op: str) -> None:
    x = make(n, dtype, seed, specials)
    got = at(t, lambda: getattr(jr, op)(x)).to_numpy()
    with np.errstate(all="ignore"):
        want = getattr(np, "absolute" if op == "abs" else op)(x)
    assert got.dtype == want.dtype and got.shape == want.shape
    if op in ("abs", "negative", "sqrt"):
        assert np.array_equal(got, want, equal_nan=want.dtype.kind == "f")
    else:
        # exp/log/sin/cos: Zig's libm vs the platform's: a few ulp apart at most (absolute
        # for subnormal results, which carry fewer significant bits).
        rtol = 2e-6 if want.dtype == np.float32 else 4e-15
        tiny = float(np.finfo(want.dtype).tiny)
        assert np.allclose(got, want, rtol=rtol, atol=tiny, equal_nan=True)


BINARY = ["add", "subtract", "multiply", "divide", "minimum", "maximum", "power"]
INT_BINARY = ["add", "subtract", "multiply", "minimum", "maximum"]


@EXAMPLES
@given(n=sizes, dtype=st.sampled_from(NUMERIC), seed=seeds, t=threads,
       specials=st.booleans(), op=st.sampled_from(BINARY))
def test_binary_arrays(n: int, dtype: str, seed: int, t: int, specials: bool, op: str) -> None:
    if dtype not in FLOATS and op not in INT_BINARY:
        op = "add"
    x, y = make(n, dtype, seed, specials), make(n, dtype, seed + 3, specials)
    if op == "power" and dtype in FLOATS:
        x = np.abs(x)
        y = (y / 50).astype(dtype)
    got = at(t, lambda: getattr(jr, op)(x, y)).to_numpy()
    with np.errstate(all="ignore"):
        want = getattr(np, op)(x, y)
    assert got.dtype == want.dtype
    if op == "power":
        rtol = 1e-5 if dtype == "float32" else 1e-14
        assert np.allclose(got, want, rtol=rtol, atol=0, equal_nan=True)
    else:
        assert np.array_equal(got, want, equal_nan=dtype in FLOATS)


@EXAMPLES
@given(n=sizes, dtype=st.sampled_from(NUMERIC), seed=seeds, t=threads,
       op=st.sampled_from(INT_BINARY + ["divide"]), swap=st.booleans(),
       scalar=st.integers(-1000, 1000))
def test_binary_with_scalar(n: int, dtype: str, seed: int, t: int, op: str, swap: bool,
                            scalar: int) -> None:
    x = make(n, dtype, seed)
    s: float | int = scalar if dtype not in FLOATS else scalar / 8
    if op == "divide" and s == 0:
        s = 3
    args = (s, x) if swap else (x, s)
    want = numpy_or_error(lambda: getattr(np, op)(*args))
    if isinstance(want, Exception):  # a negative Python int with an unsigned array
        with pytest.raises(type(want)):
            at(t, lambda: getattr(jr, op)(*args))
        return
    got = at(t, lambda: getattr(jr, op)(*args)).to_numpy()
    assert got.dtype == want.dtype
    assert np.array_equal(got, want, equal_nan=True)


@EXAMPLES
@given(n=sizes, dtype=st.sampled_from(NUMERIC), seed=seeds, t=threads,
       specials=st.booleans(), lo=st.integers(-200, 0), width=st.integers(0, 300))
def test_clip(n: int, dtype: str, seed: int, t: int, specials: bool, lo: int,
              width: int) -> None:
    x = make(n, dtype, seed, specials)
    want = numpy_or_error(lambda: np.clip(x, lo, lo + width))
    if isinstance(want, Exception):  # hi below an unsigned dtype's range
        with pytest.raises(type(want)):
            at(t, lambda: jr.clip(x, lo, lo + width))
        return
    got = at(t, lambda: jr.clip(x, lo, lo + width)).to_numpy()
    assert got.dtype == x.dtype and np.array_equal(got, want, equal_nan=dtype in FLOATS)


@EXAMPLES
@given(n=sizes, dtype=st.sampled_from(NUMERIC), seed=seeds, t=threads, specials=st.booleans())
def test_cumsum(n: int, dtype: str, seed: int, t: int, specials: bool) -> None:
    x = make(n, dtype, seed, specials and dtype in FLOATS)
    got = at(t, lambda: jr.cumsum(x)).to_numpy()
    with np.errstate(all="ignore"):
        want = np.cumsum(x)  # int64 for signed input, uint64 for unsigned: numpy's dtype
    if dtype in FLOATS:
        # np.add.accumulate bit for bit: sequential in the dtype
        assert got.dtype == x.dtype
        assert got.tobytes() == want.tobytes()
    else:
        assert got.dtype == want.dtype == ("uint64" if dtype.startswith("u") else "int64")
        assert np.array_equal(got, want)


@EXAMPLES
@given(n=sizes, dtype=st.sampled_from(SORTABLE), seed=seeds, t=threads,
       specials=st.booleans(), dups=st.booleans())
def test_sort_and_argsort(n: int, dtype: str, seed: int, t: int, specials: bool,
                          dups: bool) -> None:
    x = make(n, dtype, seed, specials)
    if dups:  # many equal keys: stability matters
        x = (x % 7).astype(dtype) if dtype not in FLOATS else np.round(x / 50).astype(dtype)
    got, order = at(t, lambda: (jr.sort(x).to_numpy(), jr.argsort(x).to_numpy()))
    assert np.array_equal(got, np.sort(x, kind="stable"), equal_nan=dtype in FLOATS)
    assert order.dtype == np.int64
    assert np.array_equal(order, np.argsort(x, kind="stable"))


def radix_input(n: int, dtype: str, shape: str, seed: int) -> np.ndarray:
    """Inputs for the radix sort that numpy must agree with bit for bit."""
    rng = np.random.default_rng(seed)
    size = np.dtype(dtype).itemsize
    raw = rng.integers(0, 256, size=n * size, dtype=np.uint8).view(f"u{size}")
    if shape == "bits":  # any bit pattern: NaN of every sign and payload among the floats
        return raw.view(dtype)
    if shape == "top":  # only the top byte differs (for floats: +-0.0 among them)
        return (raw & np.array(0xFF << (8 * size - 8), raw.dtype)).view(dtype)
    if shape == "bottom":  # only the bottom byte differs (top byte 0xC0: negative floats, ints)
        low, top = np.array(0xFF, raw.dtype), np.array(0xC0 << (8 * size - 8), raw.dtype)
        return ((raw & low) | top).view(dtype)
    x = make(n, dtype, seed)
    if shape == "zeros" and dtype in FLOATS:  # signed zeros among values: input order kept
        x[rng.integers(0, n, size=n // 3)] = -0.0
        x[rng.integers(0, n, size=n // 3)] = 0.0
    return x


@pytest.mark.parametrize("dtype", SORTABLE)
@pytest.mark.parametrize("shape", ["bits", "top", "bottom", "zeros"])
@pytest.mark.parametrize("n", [1000, 3000, 5000, 200_003])
def test_sort_bit_for_bit_as_numpy(dtype: str, shape: str, n: int) -> None:
    """Around the radix sort's thresholds and over several of its chunks: np.sort's bytes
    (NaN payloads and the sign of zero included) and np.argsort's order, on 1 and 2 threads."""
    x = radix_input(n, dtype, shape, n)
    want, order = np.sort(x, kind="stable"), np.argsort(x, kind="stable")
    for t in (1, 2):
        got, got_order = at(t, lambda: (jr.sort(x).to_numpy(), jr.argsort(x).to_numpy()))
        assert got.tobytes() == want.tobytes()
        assert np.array_equal(got_order, order)


@EXAMPLES
@given(m=st.integers(0, 70), k=st.integers(0, 70), n=st.integers(0, 70),
       dtype=st.sampled_from(FLOATS), seed=seeds, t=threads)
def test_matmul(m: int, k: int, n: int, dtype: str, seed: int, t: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    got = at(t, lambda: jr.matmul(a, b)).to_numpy()
    want = a.astype(np.float64) @ b.astype(np.float64)
    assert got.shape == (m, n) and got.dtype == a.dtype
    tol = (1e-4 if dtype == "float32" else 1e-12) * (k + 1)
    assert np.allclose(got, want, rtol=tol, atol=tol)


def mandelbrot_reference(w: int, h: int, x0: float, x1: float, y0: float, y1: float,
                         max_iter: int) -> np.ndarray:
    """The exact formula of kernels/ABI.md, vectorised (numpy does no fused multiply-add)."""
    dx, dy = (x1 - x0) / w if w else 0.0, (y1 - y0) / h if h else 0.0
    cx = x0 + np.arange(w, dtype=np.float64) * dx
    cy = y0 + np.arange(h, dtype=np.float64) * dy
    cx, cy = np.broadcast_to(cx, (h, w)), np.broadcast_to(cy[:, None], (h, w))
    zr, zi = np.zeros((h, w)), np.zeros((h, w))
    out = np.zeros((h, w), dtype=np.uint32)
    active = np.ones((h, w), dtype=bool)
    for _ in range(max_iter):
        zr2, zi2 = zr * zr, zi * zi
        active &= ~(zr2 + zi2 > 4.0)
        if not active.any():
            break
        zi = np.where(active, (2.0 * zr) * zi + cy, zi)
        zr = np.where(active, (zr2 - zi2) + cx, zr)
        out += active
    return out


@EXAMPLES
@given(w=st.integers(0, 48), h=st.integers(0, 48), t=threads, max_iter=st.integers(0, 120),
       x0=st.floats(-2.5, 0.5), y0=st.floats(-1.5, 1.0), span=st.floats(0.01, 3.0))
def test_mandelbrot(w: int, h: int, t: int, max_iter: int, x0: float, y0: float,
                    span: float) -> None:
    got = at(t, lambda: jr.mandelbrot(w, h, x0, x0 + span, y0, y0 + span, max_iter))
    assert got.shape == (h, w) and got.dtype == "uint32"
    want = mandelbrot_reference(w, h, x0, x0 + span, y0, y0 + span, max_iter)
    assert np.array_equal(got.to_numpy(), want)


@EXAMPLES
@given(n=sizes, dtype=st.sampled_from(NUMERIC), seed=seeds, t=threads,
       bins=st.integers(1, 64), ranged=st.booleans(), specials=st.booleans())
def test_histogram(n: int, dtype: str, seed: int, t: int, bins: int, ranged: bool,
                   specials: bool) -> None:
    x = make(n, dtype, seed, specials and ranged)
    value_range = (-150.0, 220.5) if ranged else None
    counts, edges = at(t, lambda: jr.histogram(x, bins=bins, range=value_range))
    want_counts, want_edges = np.histogram(x, bins=bins, range=value_range)
    assert counts.dtype == "int64"
    assert counts.tolist() == want_counts.tolist()
    assert edges.dtype == want_edges.dtype
    assert edges.tobytes() == want_edges.tobytes()


def test_histogram_float32_own_range_counts_by_the_edges_it_returns() -> None:
    # issue 9 item 1: 3.0 went to bin 21, whose left edge is float32 3.0000002
    x = np.array([0, 3, 4], np.float32)
    counts, edges = jr.histogram(x, 28)
    want_counts, want_edges = np.histogram(x, 28)
    assert edges.tobytes() == want_edges.tobytes() and edges[21] == np.float32(3.0000002)
    assert counts.tolist() == want_counts.tolist() and counts[20] == 1 and counts[21] == 0


HIST_STARTS = [0.0, -1.3, 0.1, 3.0, 1e6, -(2.0**40), 2.0**62]
HIST_WIDTHS = [1e-4, 0.6, 1.0, 4.0, 7.3, 1000.0, 2.0**30]


def _near_edges(edges: np.ndarray, dtype: str, rng: np.random.Generator) -> np.ndarray:
    """Values on and right next to (np.nextafter, or +-1 for ints) a sample of the edges."""
    pick = edges[rng.integers(0, edges.size, size=min(edges.size, 300))]
    if dtype in FLOATS:
        e = pick.astype(dtype)
        return np.concatenate([e, np.nextafter(e, np.inf), np.nextafter(e, -np.inf)])
    info = np.iinfo(dtype)
    e = np.clip(np.floor(pick), info.min, info.max - 1).astype(dtype)
    return np.concatenate([e, e + 1, np.maximum(e, info.min + 1) - 1])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dtype=st.sampled_from(NUMERIC), bins=st.integers(1, 1000),
       start=st.sampled_from(HIST_STARTS), width=st.sampled_from(HIST_WIDTHS),
       auto=st.booleans(), seed=seeds, t=threads)
def test_histogram_counts_are_numpys_on_and_next_to_every_edge(
        dtype: str, bins: int, start: float, width: float, auto: bool, seed: int,
        t: int) -> None:
    rng = np.random.default_rng(seed)
    lo, hi = start, start + width
    if dtype not in FLOATS:
        info = np.iinfo(dtype)
        lo = float(np.clip(np.floor(lo), info.min, info.max))
        hi = float(np.clip(np.ceil(hi), info.min, info.max)) + 0.0  # -0.0 (unsigned): 0.0
    base = np.concatenate([[lo, hi], rng.uniform(lo, hi, 40)])
    base = base.astype(dtype) if dtype in FLOATS else np.round(base).astype(dtype)
    value_range = None if auto else (lo, hi)
    try:
        source = base if auto else np.empty(0, dtype)
        _, numpy_edges = np.histogram(source, bins=bins, range=value_range)
    except ValueError:  # too many bins for the range: the pool must refuse too
        with pytest.raises(ValueError, match="bins"):
            at(t, lambda: jr.histogram(base, bins=bins, range=value_range))
        return
    near = _near_edges(numpy_edges, dtype, rng)
    if auto:  # keep the data's own min and max, so the edges stay the same
        near = np.clip(near, base.min(), base.max())
    x = rng.permutation(np.concatenate([base, near.astype(dtype)]))
    want_counts, want_edges = np.histogram(x, bins=bins, range=value_range)
    counts, edges = at(t, lambda: jr.histogram(x, bins=bins, range=value_range))
    assert edges.dtype == want_edges.dtype
    assert edges.tobytes() == want_edges.tobytes()
    assert counts.tolist() == want_counts.tolist()


def pi_hits_reference(samples: int, seed: int) -> int:
    """SplitMix64 counter RNG of kernels/ABI.md in numpy uint64 (wrapping) arithmetic."""
    with np.errstate(over="ignore"):
        c = np.arange(2 * samples, dtype=np.uint64)
        z = np.uint64(seed % (1 << 64)) + (c + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    x, y = u[0::2], u[1::2]
    return int(np.count_nonzero(x * x + y * y < 1.0))


@EXAMPLES
@given(samples=st.integers(1, 30_000), seed=st.integers(-(2**63), 2**64 - 1), t=threads)
def test_monte_carlo_pi(samples: int, seed: int, t: int) -> None:
    got = at(t, lambda: jr.monte_carlo_pi(samples, seed))
    assert got == 4.0 * pi_hits_reference(samples, seed) / samples


def test_monte_carlo_pi_converges() -> None:
    assert abs(jr.monte_carlo_pi(2_000_000, seed=5) - math.pi) < 0.01


def test_fork_join_benchmarks_are_right() -> None:
    for t in (1, 2, 3, 4):
        assert at(t, lambda: jr.bench_fib(20)) == 6765
        assert at(t, lambda: jr.bench_for(0)) == 0
        assert at(t, lambda: jr.bench_for(1000)) >= 1


def test_kernels_accept_pool_arrays_without_copying() -> None:
    x = np.linspace(-3, 3, 10_001)
    a = jr.asarray(x)
    before = jr.pool_info()["bytes_in_use"]
    assert jr.sum(a) == pytest.approx(x.sum(), abs=1e-9)
    assert jr.pool_info()["bytes_in_use"] == before
    out = jr.sqrt(jr.abs(a))
    assert np.array_equal(out.to_numpy(), np.sqrt(np.abs(x)))


def test_uint32_reduces_as_numpy() -> None:
    u = np.array([2**32 - 1, 2**31, 0, 7, 2**31], np.uint32)
    assert jr.sum(u) == int(np.sum(u)) and isinstance(jr.sum(u), int)
    assert jr.min(u) == int(np.min(u)) and jr.max(u) == int(np.max(u))
    assert jr.mean(u) == float(np.mean(u))
    assert jr.dot(u, u) == int(np.dot(u, u))  # wraps at 32 bits, as numpy's
    image = jr.mandelbrot(64, 48, max_iter=50)
    assert jr.sum(image) == int(np.sum(image.to_numpy()))
    # issue 11 item 4: cumsum of uint32 is numpy's uint64, past 2**32 without wrapping
    big = np.full(5000, 2**32 - 1, np.uint32)
    got = jr.cumsum(big)
    assert got.dtype == "uint64" and np.array_equal(got.to_numpy(), np.cumsum(big))
    assert jr.sum(big) == int(np.sum(big)) == 5000 * (2**32 - 1)
    counts, edges = jr.histogram(image, 7)
    want_counts, want_edges = np.histogram(image.to_numpy(), 7)
    assert counts.tolist() == want_counts.tolist() and edges.tobytes() == want_edges.tobytes()


UINT64_EDGES = [0, 1, 2**53 - 1, 2**53 + 1, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1]


@pytest.mark.parametrize("t", [1, 2, 3, 4])
def test_uint64_values_above_int64_are_numpys_through_every_kernel(t: int) -> None:
    rng = np.random.default_rng(t)
    x = np.concatenate([np.array(UINT64_EDGES * 600, np.uint64),
                        rng.integers(0, 2**64 - 1, size=5000, dtype=np.uint64, endpoint=True)])
    x = rng.permutation(x)
    y = rng.permutation(x)
    with jr.threadpool_limits(t), np.errstate(all="ignore"):
        assert jr.sum(x) == int(np.sum(x)) and jr.dot(x, y) == int(np.dot(x, y))
        assert (jr.min(x), jr.max(x)) == (0, 2**64 - 1)
        assert jr.mean(x) == float(np.mean(x))
        for got, want in [
            (jr.cumsum(x), np.cumsum(x)),
            (jr.sort(x), np.sort(x, kind="stable")),
            (jr.argsort(x), np.argsort(x, kind="stable")),
            (jr.negative(x), np.negative(x)),
            (jr.abs(x), np.abs(x)),
            (jr.sqrt(x), np.sqrt(x)),
            (jr.minimum(x, y), np.minimum(x, y)),
            (jr.maximum(x, 2**63), np.maximum(x, 2**63)),
            (jr.add(x, y), x + y),
            (jr.multiply(x, 3), x * 3),
            (jr.subtract(5, x), 5 - x),
            (jr.add(x, 2**64 - 1), x + (2**64 - 1)),  # past 2**53: the scalar goes as an array
            (jr.divide(x, y), x / y),
            (jr.clip(x, 2**53 + 1, 2**63 + 1), np.clip(x, 2**53 + 1, 2**63 + 1)),
            (jr.clip(x, -1, 2**40), np.clip(x, -1, 2**40)),
            (jr.add(x, x.astype(np.int64)), x + x.astype(np.int64)),  # float64, as numpy
            (jr.add(x, np.uint32(7)), x + np.uint32(7)),
            (jr.asarray(x)[1::3], x[1::3]),
        ]:
            got_np = got.to_numpy()
            assert got_np.dtype == want.dtype
            assert np.array_equal(got_np, want, equal_nan=True)
        counts, edges = jr.histogram(x, 33)
        want_counts, want_edges = np.histogram(x, 33)
        assert counts.tolist() == want_counts.tolist() and edges.tobytes() == want_edges.tobytes()


# -- signed zeros: numpy's answers where numpy has one rule (sum +0.0, cumsum keeps -0.0, dot
# of one pair is its product); min/max follow IEEE 754-2019 minimum/maximum (-0.0 < +0.0),
# where numpy's answer depends on the order of equal zeros (kernels/ABI.md).
ZERO_SIZES = [1, 2, 7, 8, 9, 17, 4097, 100_003]


def _sign(v: float) -> float:
    return math.copysign(1.0, v)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n", ZERO_SIZES)
def test_signed_zeros_sum_cumsum_dot_are_numpys(dtype: str, n: int) -> None:
    rng = np.random.default_rng(n)
    ones = np.ones(n, dtype)
    for x in (np.full(n, -0.0, dtype), np.zeros(n, dtype),
              np.where(rng.random(n) < 0.5, -0.0, 0.0).astype(dtype)):
        for t in (1, 2, 3, 4):
            with jr.threadpool_limits(t):
                got_sum, got_dot, got_cumsum = jr.sum(x), jr.dot(x, ones), jr.cumsum(x)
            assert got_sum == 0 and _sign(got_sum) == _sign(float(np.sum(x)))
            assert got_dot == 0 and _sign(got_dot) == _sign(float(np.dot(x, ones)))
            assert got_cumsum.tobytes() == np.cumsum(x).tobytes()


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n", ZERO_SIZES)
def test_signed_zeros_min_is_minus_zero_max_plus_zero_whatever_the_order(
        dtype: str, n: int) -> None:
    rng = np.random.default_rng(n + 1)
    cases = [np.full(n, -0.0, dtype), np.zeros(n, dtype)]
    if n > 1:
        mixed = np.where(rng.random(n) < 0.5, -0.0, 0.0).astype(dtype)
        mixed[rng.integers(n)] = -0.0
        mixed[(np.flatnonzero(np.signbit(mixed))[0] + 1) % n] = 0.0
        cases += [mixed, mixed[::-1].copy()]
    for x in cases:
        has_minus, has_plus = bool(np.signbit(x).any()), bool((~np.signbit(x)).any())
        for t in (1, 2, 3, 4):
            with jr.threadpool_limits(t):
                lo, hi = jr.min(x), jr.max(x)
            assert lo == 0 and hi == 0
            assert math.copysign(1.0, lo) == (-1.0 if has_minus else 1.0)
            assert math.copysign(1.0, hi) == (1.0 if has_plus else -1.0)
    # zeros among other values give the ordinary answer
    x = np.array([0.0, -1.5, -0.0, 2.0], dtype)
    assert jr.min(x) == -1.5 and jr.max(x) == 2.0


# -- end signed zeros
