"""What the emitted code does per iteration: bounds proved once per loop, chunked polls.

Each kernel is compared with .py_func at every stand-in configuration, and the module text
is read to see that a check was dropped only where the enclosing loop proves it.
"""

from __future__ import annotations

import numpy as np
import pytest

from jupyterlite_rayon.jit import jit, prange


def _index_checks(fn) -> int:
    """Bounds checks in the first compiled module (each one records E_INDEX = -9)."""
    return fn.inspect_wasm().count("i32.const -9\n")


def copy_len(a, b):
    for i in range(len(a)):
        b[i] = a[i]


def copy_shape_alias(a, b):
    (n,) = a.shape
    for i in range(n):
        b[i] = 2.0 * a[i]


def stencil(u, v):
    ny, nx = u.shape
    for j in prange(1, ny - 1):
        for i in range(1, nx - 1):
            v[j, i] = u[j - 1, i] + u[j + 1, i] + u[j, i - 1] + u[j, i + 1] - 4.0 * u[j, i]


def reaches_past(a, out):
    for i in range(1, len(a) - 1):
        out[i] = a[i + 2]


def reaches_before(a, out):
    for i in range(1, len(a)):
        out[i] = a[i - 2]


def other_array(a, b):
    for i in range(len(a)):
        b[i] = a[i]


def var_rebound(a, out):
    for i in range(len(a)):
        i = i + 1  # the loop variable changes: nothing is proved
        out[i - 1] = a[i]


def length_reassigned(a, out):
    n = len(a)
    n = n + 1
    for i in range(n):
        out[i] = a[i]


def test_loop_over_its_length_drops_the_check(host) -> None:
    a = np.arange(10.0)
    for fn in (copy_len, copy_shape_alias):
        f = jit(fn)
        b = np.zeros(10)
        f(a, b)
        want = np.zeros(10)
        fn(a, want)
        np.testing.assert_array_equal(b, want)
        assert _index_checks(f) == 1  # b[i] keeps its check: the loop runs over len(a)


def test_stencil_neighbours_are_proved(host) -> None:
    u = np.random.default_rng(3).uniform(0, 1, (7, 9))
    f = jit(stencil)
    v, want = np.zeros_like(u), np.zeros_like(u)
    f(u, v)
    stencil(u, want)
    np.testing.assert_array_equal(v, want)
    assert _index_checks(f) == 2  # v[j, i]: v is another array; every read of u is proved


@pytest.mark.parametrize(
    ("fn", "text"),
    [
        (reaches_past, "index 10 is out of bounds"),
        (other_array, "index 5 is out of bounds"),
        (length_reassigned, "index 10 is out of bounds"),
    ],
)
def test_unproved_indices_keep_their_check(host, fn, text) -> None:
    f = jit(fn)
    out = np.zeros(5 if fn is other_array else 10)
    with pytest.raises(IndexError, match=text):
        f(np.arange(10.0), out)
    assert _index_checks(f) >= 1


def test_negative_offset_before_the_start_wraps_as_python(host) -> None:
    # i - 2 at i = 1 is -1: Python reads the last element; the check stays and wraps.
    f = jit(reaches_before)
    a = np.arange(8.0)
    out, want = np.zeros(8), np.zeros(8)
    f(a, out)
    reaches_before(a, want)
    np.testing.assert_array_equal(out, want)
    assert _index_checks(f) >= 1


def test_a_rebound_loop_variable_proves_nothing(host) -> None:
    f = jit(var_rebound)
    a = np.arange(6.0)
    out = np.zeros(6)
    with pytest.raises(IndexError):
        var_rebound(a, out.copy())
    with pytest.raises(IndexError, match="index 6 is out of bounds"):
        f(a, out)


def long_nest(a, reps):
    s = 0.0
    for r in range(reps):
        for i in range(len(a)):
            for k in range(3):
                s += a[i] * k
    return s


def test_nested_short_loops_poll_about_every_1024_iterations(host) -> None:
    # 3 * 100 * 200 = 60000 innermost iterations: polls come from the shared budget, not per
    # loop entry (which would be 20000 + 200 polls) and not never.
    f = jit(long_nest)
    a = np.arange(100.0)
    assert f(a, 200) == long_nest(a, 200)
    polls = host.polls  # the stand-in counts the polls of its last call
    total = 200 * (1 + 100 * (1 + 3))
    assert total / 1024 - 2 <= polls <= 2 * total / 1024 + 4


# -- SIMD reductions ---------------------------------------------------------------------
VECTOR_CASES = {
    "energy": lambda n: (_f64(n),),
    "dot2": lambda n: (_f64(n), _f64(n)),
    "centered": lambda n: (_f64(n), 0.25),
    "neighbours": lambda n: (_f64(n + 2),),
    "f32_total": lambda n: (_f64(n).astype(np.float32),),
    "int_lanes": lambda n: (
        np.arange(n, dtype=np.int64) * (2**61 + 12345),
        np.arange(n, dtype=np.int32) - 7,
        np.arange(n, dtype=np.uint32) * 3_000_000,
    ),
    "wraps_first": lambda n: (_f64(n),),
}
SIZES = [1, 15, 16, 17, 4095, 4096, 4097, 3 * 4096 + 21]


def _f64(n: int) -> np.ndarray:
    return np.random.default_rng(n).uniform(-1.0, 1.0, n)


@pytest.mark.parametrize("name", sorted(VECTOR_CASES))
def test_vector_reductions_run_in_lanes(st_host, name: str) -> None:
    import test_jit_corpus as corpus

    f = getattr(corpus, name)
    f(*VECTOR_CASES[name](40))
    text = f.inspect_wasm()
    assert ("i64x2.add" if name == "int_lanes" else "f64x2.add") in text


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", sorted(VECTOR_CASES))
def test_vector_reductions_every_tail_and_chunking(name: str, n: int) -> None:
    """Against .py_func (ints exactly, floats at a tolerance); bit-identical across chunkings."""
    import test_jit_corpus as corpus
    from jit_conftest import CONFIGS, make_host

    from jupyterlite_rayon.jit import runtime

    f = getattr(corpus, name)
    args = VECTOR_CASES[name](n)
    want = f.py_func(*args)
    results = set()
    before = runtime.host_factory()
    for config in CONFIGS:
        runtime.set_host(make_host(*config))
        try:
            results.add(f(*args))
        finally:
            runtime.set_host(before)
    assert len(results) == 1
    got = results.pop()
    if name == "int_lanes":
        assert got == int(want)
    else:
        assert got == pytest.approx(float(want), rel=1e-12, abs=1e-12)


def test_vector_reduction_index_error_is_raised_by_the_scalar_code(host) -> None:
    import test_jit_corpus as corpus

    a, b = _f64(5000), _f64(4999)
    with pytest.raises(IndexError, match="index 4999 is out of bounds for axis 0 with size 4999"):
        corpus.dot2(a, b)
    assert corpus.dot2(a[:4999], b) == pytest.approx(float(a[:4999] @ b), rel=1e-12)


def uses_the_index(x):
    s = 0.0
    for i in prange(len(x)):
        s += x[i] * i
    return s


def product_of(x):
    p = 1.0
    for i in prange(len(x)):
        p *= x[i]
    return p


def divides(x, d):
    s = 0.0
    for i in prange(len(x)):
        s += x[i] / d  # d may be zero: ZeroDivisionError must come from the scalar code
    return s


@pytest.mark.parametrize("fn", [uses_the_index, product_of, divides])
def test_reductions_that_do_not_qualify_stay_scalar(st_host, fn) -> None:
    f = jit(fn)
    x = _f64(100) + 2.0
    args = (x,) if fn is not divides else (x, 4.0)
    assert f(*args) == pytest.approx(fn(*args), rel=1e-12)
    assert "x2." not in f.inspect_wasm()
    if fn is divides:
        with pytest.raises(ZeroDivisionError):
            f(x, 0.0)


# -- escape-time iterations in lanes (more in test_jit_lanes.py) --------------------------
def escape_break(out, x0, x1, y0, y1, max_iter):
    h, w = out.shape
    for j in prange(h):
        cy = y0 + j * (y1 - y0) / h
        for i in range(w):
            cx = x0 + i * (x1 - x0) / w
            zr = zi = 0.0
            k = 0
            while k < max_iter:
                zr2, zi2 = zr * zr, zi * zi
                if zr2 + zi2 > 4.0:
                    break
                zi = (2.0 * zr) * zi + cy
                zr = (zr2 - zi2) + cx
                k += 1
            out[j, i] = k


def final_modulus(out, c, max_iter):
    # zr, zi are read after the while (S2): their lanes are masked at escape
    n = len(out)
    for i in range(n):
        zr = c + 0.001 * i
        zi = 0.5 - 0.002 * i
        k = 0
        while k < max_iter and not zr * zr + zi * zi > 16.0:
            zr, zi = zr * zr - zi * zi + c, 2.0 * zr * zi - 0.25
            k += 1
        out[i] = zr * zr + zi * zi + k


def divides_in_setup(out, d):
    for i in range(len(out)):
        x = 1.0 / d  # d may be 0: the error must come before out[i] is written, as in Python
        k = 0
        while k < 3 and x > 0.0:
            x = x - 1.0
            k += 1
        out[i] = k


def _lanes_used(f) -> bool:
    return "v128.any_true" in f.inspect_wasm()


@pytest.mark.parametrize("fn", [escape_break, "escape"])
@pytest.mark.parametrize(("h", "w", "it"), [(1, 1, 50), (3, 7, 80), (4, 8, 300), (5, 9, 0)])
def test_escape_loops_run_in_lanes_pixel_exact(host, fn, h, w, it) -> None:
    import test_jit_corpus as corpus

    f = corpus.escape if fn == "escape" else jit(fn)
    out = np.zeros((h, w), np.uint32)
    want = np.zeros((h, w), np.uint32)
    f(out, -2.0, 1.0, -1.2, 1.2, it)
    f.py_func(want, -2.0, 1.0, -1.2, 1.2, it)
    np.testing.assert_array_equal(out, want)
    assert _lanes_used(f)


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_values_read_after_the_while_are_the_escaping_lanes(host, n) -> None:
    f = jit(final_modulus)
    out, want = np.zeros(n), np.zeros(n)
    f(out, -0.7, 60)
    final_modulus(want, -0.7, 60)
    np.testing.assert_array_equal(out, want)
    assert _lanes_used(f)


def test_a_setup_that_can_raise_stays_scalar(host) -> None:
    f = jit(divides_in_setup)
    out = np.zeros(6)
    f(out, 0.5)
    want = np.zeros(6)
    divides_in_setup(want, 0.5)
    np.testing.assert_array_equal(out, want)
    assert not _lanes_used(f)
    with pytest.raises(ZeroDivisionError):
        f(np.zeros(6), 0.0)
