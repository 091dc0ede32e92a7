"""A corpus of kernels written as a user would, each compared with its .py_func.

Every kernel runs on the stand-in at 1, 2, 3 and 4 chunks (forward and reverse order,
shared and plain memory): the answers must equal the plain Python function's on the same
numpy inputs (reductions of floats to 1e-12, since blocks add in another order than a
sequential loop; everything else exactly).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from jupyterlite_rayon.jit import jit, prange

RNG = np.random.default_rng(7)
LIMIT = 3  # a global constant: frozen into the compiled code, as numba does


# -- the corpus --------------------------------------------------------------------------
@jit
def energy(x):
    s = 0.0
    for i in prange(len(x)):
        s += x[i] * x[i]
    return s


@jit
def escape(out, x0, x1, y0, y1, max_iter):
    h, w = out.shape
    for j in prange(h):
        cy = y0 + j * (y1 - y0) / h
        for i in range(w):
            cx = x0 + i * (x1 - x0) / w
            zr = zi = 0.0
            k = 0
            while k < max_iter and zr * zr + zi * zi <= 4.0:
                zr, zi = zr * zr - zi * zi + cx, 2.0 * zr * zi + cy
                k += 1
            out[j, i] = k


@jit
def smooth3(a, out):
    n = len(a)
    for i in prange(1, n - 1):
        out[i] = (a[i - 1] + a[i] + a[i + 1]) / 3.0
    out[0] = a[0]
    out[n - 1] = a[n - 1]


@jit
def heat_step(u, v, alpha):
    ny, nx = u.shape
    for j in prange(1, ny - 1):
        for i in range(1, nx - 1):
            lap = u[j - 1, i] + u[j + 1, i] + u[j, i - 1] + u[j, i + 1] - 4.0 * u[j, i]
            v[j, i] = u[j, i] + alpha * lap


@jit
def matmul(a, b, c):
    m, k = a.shape
    n = b.shape[1]
    for i in prange(m):
        for j in range(n):
            acc = 0.0
            for p in range(k):
                acc += a[i, p] * b[p, j]
            c[i, j] = acc


@jit
def maximum(x):
    m = -math.inf
    for i in prange(x.size):
        m = max(m, x[i])
    return m


@jit
def minimum_int(x):
    m = x[0]
    for i in prange(len(x)):
        m = min(x[i], m)
    return m


@jit
def product(x):
    p = 1.0
    for i in prange(len(x)):
        p *= 1.0 + x[i] * 1e-3
    return p


@jit
def budget(x, start):
    left = start
    for i in prange(len(x)):
        left -= x[i]
    return left


@jit
def int_sum(x):
    s = 0
    for i in prange(len(x)):
        s += x[i]
    return s


@jit
def count_positive(x):
    c = 0
    for i in prange(len(x)):
        if x[i] > 0:
            c += 1
    return c


@jit
def first_above(x, t):
    for i in range(len(x)):
        if x[i] > t:
            return i
    return -1


@jit
def sum_until_negative(x):
    s = 0.0
    i = 0
    while True:
        if i >= len(x):
            break
        v = x[i]
        i += 1
        if v == 0.0:
            continue
        if v < 0.0:
            break
        s += v
    return s


@jit
def int_divmod(a, b, q, r):
    for i in prange(len(a)):
        q[i] = a[i] // b[i]
        r[i] = a[i] % b[i]


@jit
def float_divmod(a, b, q, r):
    for i in range(len(a)):
        q[i] = a[i] // b[i]
        r[i] = a[i] % b[i]


@jit
def f32_fma_ish(a, b, out):
    for i in prange(len(a)):
        out[i] = a[i] * b[i] + 0.1


@jit
def f32_recurrence(a, out):
    s = a[0]
    for i in range(len(a)):
        s = s * a[i] - a[i] / 3
        out[i] = s


@jit
def sq(x):
    return x * x


@jit
def norm2(a):
    s = 0.0
    for i in prange(len(a)):
        s += sq(a[i])
    return math.sqrt(s)


@jit
def scale_into(a, out, factor):
    for i in range(len(a)):
        out[i] = a[i] * factor
    return len(a)


@jit
def scale_twice(a, out):
    n = scale_into(a, out, 2.0)
    for i in range(n):
        out[i] = out[i] + sq(1.5)


@jit
def weighted3(a, w, out):
    ni, nj, nk = a.shape
    total = 0.0
    for i in prange(ni):
        for j in range(nj):
            for k in range(nk):
                out[i, j, k] = a[i, j, k] * w[k]
                total += a[i, j, k] * w[k]
    return total


@jit
def reverse_copy(a, out):
    n = len(a)
    for i in prange(n):
        out[i] = a[-i - 1]
    return a[-1] + a[-n]


@jit
def shape_info(a):
    return a.shape[0] * 100 + a.shape[1] * 10 + a.size + len(a) + a.ndim


@jit
def in_band(x, lo, hi):
    c = 0
    for i in prange(len(x)):
        if lo <= x[i] < hi:
            c += 1
    return c


@jit
def soft(x, out):
    for i in prange(len(x)):
        out[i] = x[i] if x[i] > 0 else -x[i] * 0.5


@jit
def reverse_in_place(a):
    n = len(a)
    for i in range(n // 2):
        a[i], a[n - 1 - i] = a[n - 1 - i], a[i]


@jit
def maths(x, out):
    for i in prange(len(x)):
        v = x[i]
        out[i, 0] = math.sin(v) + math.cos(v) + math.tan(v * 0.1)
        out[i, 1] = math.exp(-v) + math.log(1.0 + v) + math.log2(1.0 + v) + math.log10(2.0 + v)
        out[i, 2] = math.sqrt(v) + math.atan(v) + math.atan2(v, 2.0) + math.hypot(v, 3.0)
        out[i, 3] = math.sinh(v * 0.1) + math.cosh(v * 0.1) + math.tanh(v) + math.pow(v, 1.5)
        out[i, 4] = math.fabs(-v) + math.copysign(v, -1.0) + math.pi + math.e


@jit
def rounding(x, out):
    for i in range(len(x)):
        v = x[i]
        out[i, 0] = math.floor(v)
        out[i, 1] = math.ceil(v)
        out[i, 2] = math.trunc(v)
        out[i, 3] = int(v)
        out[i, 4] = 1 if math.isnan(v) or math.isinf(v) else 0
        out[i, 5] = abs(v)


@jit
def collatz_steps(n):
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


@jit
def stepped(n):
    s = 0
    for i in range(n - 1, -1, -2):
        s = s * 3 + i
    for j in range(2, n, 5):
        s -= j
    return s


@jit
def powers(x, out):
    for i in prange(len(x)):
        out[i, 0] = i**3
        out[i, 1] = x[i] ** 0.5
        out[i, 2] = (-1) ** i
        out[i, 3] = x[i] ** 2
        out[i, 4] = 2.0**-i


@jit
def logic_count(a, flag, t):
    c = 0
    for i in range(len(a)):
        ok = (a[i] > t and flag) or (not flag and a[i] < -t)
        if ok and not a[i] == 0:  # noqa: SIM201  (tests `not` precedence)
            c += 1
    return c


@jit
def cumsum32(a, out):
    s = 0
    for i in range(len(a)):
        s += a[i]
        out[i] = s


@jit
def histogram(x, counts, lo, hi):
    nb = len(counts)
    for i in range(len(x)):
        b = int((x[i] - lo) / (hi - lo) * nb)
        if 0 <= b < nb:
            counts[b] += 1


@jit
def nested_prange(a, out):
    n, m = a.shape
    for i in prange(n):
        for j in prange(m):
            out[i, j] = a[i, j] * (i + 1) - j


@jit
def strided_prange(a, out):
    for i in prange(1, len(a), 3):
        out[i] = a[i] * 2.0 + LIMIT


@jit
def extremes(a, b, c):
    return max(a, b, c) - min(a, b, c) + abs(a - b) + max(a, 2) + min(-1.5, c)


@jit
def wrap32(a, out):
    for i in range(len(a)):
        out[i] = a[i] * 65536 + a[i]


@jit
def to_bool_and_int(x, t):
    return bool(x > t) and int(x * 10.0) > 3


@jit
def lcg(n, seed):
    x = seed
    hits = 0
    for i in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0x7FFFFFFFFFFFFFFF
        if x % 100 < 37:
            hits += 1
    return hits


@jit
def mixed_promotion(a, k):
    s = 0
    for i in range(len(a)):
        s += a[i] / k
    t = k / 2
    return s + t + 7 // 2 + 7 % -3 + (-7) // 2


@jit
def row_max_2d(a, out):
    n, m = a.shape
    for i in prange(n):
        best = a[i, 0]
        for j in range(1, m):
            if a[i, j] > best:  # noqa: PLR1730  (written as a user would)
                best = a[i, j]
        out[i] = best


@jit
def uint_ops(a, out):
    for i in prange(len(a)):
        out[i] = a[i] * 3 + 1


@jit
def two_passes(a, out):
    n = len(a)
    for i in prange(n):
        t = a[i] * 2.0
        out[i] = t
    t = 0.0  # the names are reused after the loop: still private to its body
    for i in range(n):
        t += out[i]
    return t


# Reductions the vector pass runs in SIMD lanes (jit/vector.py): the corpus compares them with
# .py_func at a tolerance (floats are reassociated) and the thread-count tests bit for bit.
@jit
def dot2(a, b):
    s = 0.0
    for i in prange(len(a)):
        s += a[i] * b[i]  # b[i] is not proved by the loop: each block tests its range
    return s


@jit
def centered(x, m):
    s = 0.0
    t = 0.0
    for i in prange(len(x)):
        d = x[i] - m
        s += d**2 / 2.0
        t -= abs(d)
    return s + t


@jit
def neighbours(x):
    s = 0.0
    for i in prange(1, len(x) - 1):
        s += min(x[i - 1], x[i + 1]) + max(x[i], 0.5) + math.sqrt(abs(x[i]))
    return s


@jit
def f32_total(x):
    s = 0.0
    for i in prange(len(x)):
        s += float(x[i])  # float32 data, float64 lanes (numpy would keep a float32 sum)
    return s


@jit
def int_lanes(a, b, c):
    s = 0
    for i in prange(len(a)):
        s += a[i] * 3 - b[i] + c[i]
    return s


@jit
def wraps_first(x):
    s = 0.0
    for i in prange(len(x)):
        s += x[i - 1]  # x[-1] at i = 0: the first block runs in the scalar code
    return s


# -- inputs ------------------------------------------------------------------------------
def f64(*shape: int, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    return RNG.uniform(lo, hi, size=shape)


def i64(*shape: int, lo: int = -50, hi: int = 50) -> np.ndarray:
    return RNG.integers(lo, hi, size=shape, dtype=np.int64)


nonzero = i64(300)
nonzero[nonzero == 0] = 7
fnonzero = f64(300) * 5
fnonzero[::17] = -0.5

CASES: list[tuple[str, Callable[[], tuple[Any, ...]], bool]] = [
    ("energy", lambda: (f64(10000),), True),
    ("dot2", lambda: (f64(10007), f64(10007)), True),
    ("centered", lambda: (f64(9001), 0.25), True),
    ("neighbours", lambda: (f64(8195),), True),
    ("f32_total", lambda: (f64(5003).astype(np.float32),), True),
    (
        "int_lanes",
        lambda: (
            i64(9007, lo=-(2**62), hi=2**62),
            i64(9007).astype(np.int32),
            i64(9007, lo=0, hi=2**32 - 1).astype(np.uint32),
        ),
        False,
    ),
    ("wraps_first", lambda: (f64(4099),), True),
    ("escape", lambda: (np.zeros((30, 40), np.uint32), -2.0, 1.0, -1.2, 1.2, 80), False),
    ("smooth3", lambda: (f64(500), np.zeros(500)), False),
    ("heat_step", lambda: (f64(20, 30), np.zeros((20, 30)), 0.1), False),
    ("matmul", lambda: (f64(7, 5), f64(5, 6), np.zeros((7, 6))), False),
    ("maximum", lambda: (f64(9000),), False),
    ("minimum_int", lambda: (i64(9000, lo=-(10**12), hi=10**12),), False),
    ("product", lambda: (f64(5000),), True),
    ("budget", lambda: (f64(9000), 100.0), True),
    ("int_sum", lambda: (i64(20000, lo=-(2**62), hi=2**62),), False),
    ("count_positive", lambda: (f64(9001),), False),
    ("first_above", lambda: (np.linspace(0, 1, 101), 0.5), False),
    ("first_above", lambda: (np.linspace(0, 1, 101), 2.0), False),
    ("sum_until_negative", lambda: (np.array([1.0, 0.0, 2.5, 0.0, 3.0, -1.0, 9.0]),), False),
    (
        "int_divmod",
        lambda: (i64(300), nonzero, np.zeros(300, np.int64), np.zeros(300, np.int64)),
        False,
    ),
    ("float_divmod", lambda: (f64(300) * 10, fnonzero, np.zeros(300), np.zeros(300)), False),
    (
        "f32_fma_ish",
        lambda: (
            f64(999).astype(np.float32),
            f64(999).astype(np.float32),
            np.zeros(999, np.float32),
        ),
        False,
    ),
    (
        "f32_recurrence",
        lambda: (f64(200, lo=0.5, hi=1.5).astype(np.float32), np.zeros(200, np.float32)),
        False,
    ),
    ("norm2", lambda: (f64(5000),), True),
    ("scale_twice", lambda: (f64(50), np.zeros(50)), False),
    ("weighted3", lambda: (f64(4, 5, 6), f64(6), np.zeros((4, 5, 6))), True),
    ("reverse_copy", lambda: (f64(77), np.zeros(77)), False),
    ("shape_info", lambda: (np.zeros((3, 4)),), False),
    ("in_band", lambda: (f64(7000), -0.25, 0.5), False),
    ("soft", lambda: (f64(600), np.zeros(600)), False),
    ("reverse_in_place", lambda: (i64(33),), False),
    ("maths", lambda: (f64(200, lo=0.0, hi=4.0), np.zeros((200, 5))), False),
    (
        "rounding",
        lambda: (np.array([-2.5, -0.5, 0.0, 0.5, 1.5, 2.7, -3.2, 1e6, -1e-9]), np.zeros((9, 6))),
        False,
    ),
    ("collatz_steps", lambda: (27,), False),
    ("stepped", lambda: (40,), False),
    ("powers", lambda: (f64(40, lo=0.0, hi=3.0), np.zeros((40, 5))), False),
    ("logic_count", lambda: (f64(500), True, 0.3), False),
    ("logic_count", lambda: (f64(500), False, 0.3), False),
    ("cumsum32", lambda: (i64(500).astype(np.int32), np.zeros(500, np.int32)), False),
    ("histogram", lambda: (f64(3000), np.zeros(10, np.int64), -1.0, 1.0), False),
    ("nested_prange", lambda: (f64(9, 13), np.zeros((9, 13))), False),
    ("strided_prange", lambda: (f64(100), np.zeros(100)), False),
    ("extremes", lambda: (3, -2.5, 7.25), False),
    (
        "wrap32",
        lambda: (i64(100, lo=-40000, hi=40000).astype(np.int32), np.zeros(100, np.int32)),
        False,
    ),
    ("to_bool_and_int", lambda: (0.5, 0.1), False),
    ("to_bool_and_int", lambda: (0.2, 0.1), False),
    ("lcg", lambda: (5000, 12345), False),
    ("mixed_promotion", lambda: (i64(50), 4), False),
    ("row_max_2d", lambda: (f64(12, 31), np.zeros(12)), False),
    ("two_passes", lambda: (f64(300), np.zeros(300)), False),
    (
        "uint_ops",
        lambda: (
            RNG.integers(0, 2**30, 500, dtype=np.uint64).astype(np.uint32),
            np.zeros(500, np.uint32),
        ),
        False,
    ),
]


def _same(got: Any, want: Any, approx: bool) -> None:
    if isinstance(want, np.ndarray):
        assert got.dtype == want.dtype
        if approx:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        else:
            np.testing.assert_array_equal(got, want)
        return
    if isinstance(want, float) and math.isnan(want):
        assert math.isnan(got)
        return
    if approx:
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
    else:
        assert got == want
        assert type(got) is type(want) or isinstance(want, (int, float, np.generic))


def _wrapped(value: Any) -> Any:
    """py_func's int results wrapped to int64, as the compiled code and numpy give them."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value + (1 << 63)) % (1 << 64) - (1 << 63)
    if isinstance(value, np.generic):
        return value.item()
    return value


@pytest.mark.filterwarnings("ignore:overflow encountered")  # numpy wraps int64 as we do
@pytest.mark.parametrize("name,make,approx", CASES, ids=[c[0] for c in CASES])
def test_kernel_matches_py_func(
    host: Any, name: str, make: Callable[[], tuple[Any, ...]], approx: bool
) -> None:
    fn = globals()[name]
    args = make()
    mine = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    theirs = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    got = fn(*mine)
    want = _wrapped(fn.py_func(*theirs))
    _same(got, want, approx)
    for g, w in zip(mine, theirs, strict=True):
        if isinstance(w, np.ndarray):
            _same(g, w, approx)


def test_corpus_size() -> None:
    assert len({name for name, _, _ in CASES}) >= 30


def test_reductions_are_bit_identical_for_any_chunking() -> None:
    from jit_conftest import CONFIGS, make_host

    from jupyterlite_rayon.jit import runtime

    x = f64(50_001)
    results = set()
    before = runtime.host_factory()
    for config in CONFIGS:
        runtime.set_host(make_host(*config))
        try:
            results.add((energy(x), product(x), budget(x, 1.0), norm2(x)))
        finally:
            runtime.set_host(before)
    assert len(results) == 1


def _block_partial(values: list[float]) -> float:
    """A block's partial as documented: lanes over whole steps, a fixed tree, then the rest."""
    from jupyterlite_rayon.jit.vector import ACC, LANES

    whole = len(values) - len(values) % LANES
    lanes = [0.0] * LANES
    for i in range(whole):
        lanes[i % LANES] += values[i]
    accs = [(lanes[2 * u], lanes[2 * u + 1]) for u in range(ACC)]
    while len(accs) > 1:
        accs = [(a[0] + b[0], a[1] + b[1]) for a, b in zip(accs[::2], accs[1::2], strict=True)]
    s = accs[0][0] + accs[0][1]
    for v in values[whole:]:
        s += v
    return s


def test_reduction_combines_blocks_pairwise(st_host: Any) -> None:
    """The sum is the fixed tree of 4096-element block sums, whatever the chunks."""
    x = f64(3 * 4096 + 21)
    squares = [float(v * v) for v in x]
    blocks = [_block_partial(squares[b * 4096 : (b + 1) * 4096]) for b in range(4)]
    level = blocks
    while len(level) > 1:
        nxt = [level[2 * i] + level[2 * i + 1] for i in range(len(level) // 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    assert energy(x) == 0.0 + level[0]


def test_pool_arrays_are_used_in_place(host: Any) -> None:
    a = host.pool_array(np.arange(10.0))
    out = host.pool_array(np.zeros(10))
    smooth3(a, out)
    want = np.zeros(10)
    smooth3.py_func(np.arange(10.0), want)
    np.testing.assert_array_equal(out.to_numpy(), want)


def test_non_contiguous_numpy_arrays_are_copied_in_and_back(host: Any) -> None:
    base = np.zeros((6, 8))
    view = base[::2, 1::2]  # strided: copied in, written back through numpy
    src = f64(3, 4)
    v = np.zeros((3, 4))
    heat_step(src, view, 0.5)
    heat_step.py_func(src, v, 0.5)
    np.testing.assert_array_equal(view, v)
    assert base[::2, 1::2].sum() == v.sum()


def test_buffers_and_lists_as_inputs(host: Any) -> None:
    import array

    assert energy(array.array("d", [1.0, 2.0, 3.0])) == 14.0
    assert int_sum([1, 2, 3, -4]) == 2
    buf = array.array("d", [0.0] * 5)
    smooth3(array.array("d", [1.0, 2.0, 3.0, 4.0, 5.0]), buf)
    assert list(buf) == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_float32_scalar_argument_keeps_float32(host: Any) -> None:
    x = np.float32(1.1)

    got = sq(x)
    assert got == float(np.float32(x) * np.float32(x))
