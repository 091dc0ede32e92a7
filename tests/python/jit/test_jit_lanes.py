"""jit/lanes.py: escape-time loops run several iterations at once, pixel-exact.

Each kernel is compared with .py_func (exact equality, ints and floats) at every stand-in
configuration; the module text shows whether the lane loop was used (v128.any_true is its
exit test) and, for the shapes that must stay scalar, that it was not.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import test_jit_corpus as corpus

from jupyterlite_rayon.jit import jit, lanes, prange
from jupyterlite_rayon.jit.lower import POLL_EVERY
from jupyterlite_rayon.jit.typeinfer import ArrayType


def _lanes_used(f: Any) -> bool:
    return "v128.any_true" in f.inspect_wasm()


# The Mandelbrot, as the corpus has it (plain Python here: each test jits its own).
escape = corpus.escape.py_func


def escape_prange(out, x0, x1, cy, max_iter):
    # the prange loop itself is the lane loop
    w = len(out)
    for i in prange(w):
        cx = x0 + i * (x1 - x0) / w
        zr = zi = 0.0
        k = 0
        while k < max_iter:
            zr2 = zr * zr
            zi2 = zi * zi
            if zr2 + zi2 > 4.0:
                break
            zi = 2.0 * zr * zi + cy
            zr = zr2 - zi2 + cx
            k += 1
        out[i] = k


def orbit_total(out, c0, max_iter):
    # S2 holds a store and a reduction: both run per lane, in order
    total = 0
    for i in prange(len(out)):
        x = c0 + 0.013 * i
        k = 0
        while k < max_iter and x * x <= 4.0:
            x = x * x - 1.9
            k += 1
        out[i] = x
        total += k
    return total


def count_then_break(out, c, max_iter):
    # the increment comes before the break: a lane that breaks has counted that pass
    for i in range(len(out)):
        x = c * i
        k = 0
        while k < max_iter:
            x = x * x + 0.26
            k += 1
            if x > 2.0:
                break
        out[i] = k


def uneven_start(out, max_iter):
    # k starts at a different value in each lane: no shared pass count, lane compares
    for i in range(len(out)):
        k = i % 7
        x = 0.1 + 0.003 * i
        while k < max_iter and x < 50.0:
            x = x * 1.07 + 0.01
            k += 1
        out[i] = k


def newton_sqrt(out, a0, tol):
    # Newton's iteration for sqrt(a): divisions by a constant only, an abs in the test
    for i in range(len(out)):
        a = a0 + i
        x = a
        it = 0
        while abs(x * x - a) > tol and it < 60:
            x = 0.5 * (x + a / 2.0) + 0.25 * x - 0.25 * x
            it += 1
        out[i] = x + it


def carried_by_s2(out, max_iter):
    # S2 writes s, which the next iteration's S1 reads: must stay scalar
    s = 0.5
    for i in range(len(out)):
        x = s
        k = 0
        while k < max_iter and x < 10.0:
            x = x * 1.5
            k += 1
        out[i] = k
        s = s + 0.25


def breaks_in_s2(out, max_iter):
    for i in range(len(out)):
        x = 0.01 * i
        k = 0
        while k < max_iter and x < 1.0:
            x = x + 0.05
            k += 1
        if k > 15:
            break
        out[i] = k


@pytest.mark.parametrize("w", [1, 2, 3, 5, 6, 7, 8, 11, 12, 13, 17, 80])
def test_mandelbrot_every_width_is_pixel_exact(host: Any, w: int) -> None:
    f = jit(escape)
    out, want = np.zeros((3, w), np.uint32), np.zeros((3, w), np.uint32)
    f(out, -2.0, 1.0, -1.2, 1.2, 120)
    escape(want, -2.0, 1.0, -1.2, 1.2, 120)
    np.testing.assert_array_equal(out, want)
    assert _lanes_used(f)


@pytest.mark.parametrize("w", [1, 5, 6, 9, 64, 301])
def test_a_prange_loop_runs_in_lanes(host: Any, w: int) -> None:
    f = jit(escape_prange)
    out, want = np.zeros(w, np.int64), np.zeros(w, np.int64)
    f(out, -2.0, 0.6, 0.35, 200)
    escape_prange(want, -2.0, 0.6, 0.35, 200)
    np.testing.assert_array_equal(out, want)
    assert _lanes_used(f)


@pytest.mark.parametrize("n", [1, 7, 13, 5000, 9000])
def test_stores_and_a_reduction_after_the_while(host: Any, n: int) -> None:
    f = jit(orbit_total)
    out, want = np.zeros(n), np.zeros(n)
    assert f(out, -2.1, 40) == orbit_total(want, -2.1, 40)
    np.testing.assert_array_equal(out, want)
    assert _lanes_used(f)


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (count_then_break, (0.031, 90)),
        (uneven_start, (70,)),
        (newton_sqrt, (2.0, 1e-9)),
    ],
)
def test_other_while_shapes_in_lanes(host: Any, fn: Any, args: tuple[Any, ...]) -> None:
    f = jit(fn)
    for n in (1, 6, 23):
        dtype = np.float64 if fn is newton_sqrt else np.int64
        out, want = np.zeros(n, dtype), np.zeros(n, dtype)
        f(out, *args)
        fn(want, *args)
        np.testing.assert_array_equal(out, want)
    assert _lanes_used(f)


def test_the_counter_is_one_scalar_compare() -> None:
    # escape's `k < max_iter` is decided by the pass count: no i64x2 compare in the module
    grid = ArrayType("uint32", 2)
    text = jit(escape).compile((grid, "f64", "f64", "f64", "f64", "i64"), False).text()
    assert "i64x2.lt_s" not in text and "f64x2.le" in text
    text = jit(uneven_start).compile((ArrayType("int64", 1), "i64"), False).text()
    assert "i64x2.lt_s" in text  # lanes start at different k: compared in lanes


@pytest.mark.parametrize("fn", [carried_by_s2, breaks_in_s2])
def test_shapes_that_must_stay_scalar(host: Any, fn: Any) -> None:
    f = jit(fn)
    out, want = np.zeros(40, np.int64), np.zeros(40, np.int64)
    f(out, 200)
    fn(want, 200)
    np.testing.assert_array_equal(out, want)
    assert not _lanes_used(f)


def test_interrupt_stops_a_lane_loop(host: Any) -> None:
    f = jit(escape)
    host.cancel_after = 3  # the third poll (every 1024 passes of the lane loop) cancels
    with pytest.raises(KeyboardInterrupt):
        f(np.zeros((2, 12), np.uint32), -0.1, 0.1, -0.1, 0.1, 2**62)  # inside the set
    host.cancel_after = None
    out, want = np.zeros((2, 12), np.uint32), np.zeros((2, 12), np.uint32)
    f(out, -2.0, 1.0, -1.2, 1.2, 50)  # the pool runs the next call
    escape(want, -2.0, 1.0, -1.2, 1.2, 50)
    np.testing.assert_array_equal(out, want)


# -- several passes per test for a live lane (lanes.PASSES) -------------------------------
# Lane i stops after a chosen number of passes (x counts down from (i * 5 + phase) % 13), so
# within one set of lanes some stop at every position of a block of PASSES passes, some run
# into the counter's limit, and the limit itself ends blocks at every position (max_iter).
def finish_at(out, phase, max_iter):
    for i in range(len(out)):
        x = float((i * 5 + phase) % 13)
        y = 0.25
        k = 0
        while k < max_iter and x > 0.0:
            x = x - 1.0
            y = y * 1.5 + x
            k += 1
        out[i] = k + 1000.0 * y  # y: a stopped lane's value stays as it was


def finish_at_le(out, phase, max_iter):
    # `<=`: one more pass allowed than `<`
    for i in range(len(out)):
        x = float((i * 5 + phase) % 13)
        k = 1
        while k <= max_iter and x > 0.0:
            x = x - 1.0
            k += 1
        out[i] = k


def finish_by_break(out, phase, max_iter):
    # the counter's test and a break in the body; the increment comes before the break
    for i in range(len(out)):
        x = float((i * 5 + phase) % 13)
        k = 0
        while k < max_iter:
            k += 1
            x = x - 1.0
            if x < 0.0:
                break
        out[i] = k + 100.0 * x


def finish_no_counter(out, phase):
    # no `k < n` conjunct: only the lanes' own test, every pass, in every lane
    for i in range(len(out)):
        x = float((i * 5 + phase) % 13)
        k = 0
        while x > 0.0:
            x = x - 1.0
            k += 1
        out[i] = k


def near_the_top(out, limit):
    # k starts 6 below the largest int64: `limit - passes` is small, and for a limit far
    # below the start (down to -2**63) it does not fit in int64
    for i in range(len(out)):
        x = float(i % 13)
        k = 9223372036854775801
        while k < limit and x > 0.0:
            x = x - 1.0
            k += 1
        out[i] = k - 9223372036854775801


_BLOCK_CASES = [
    (fn, phase, n)
    for fn in (finish_at, finish_at_le, finish_by_break)
    for phase in (0, 3)
    for n in (8, 23)
]


@pytest.mark.parametrize(("fn", "phase", "n"), _BLOCK_CASES)
def test_a_block_of_passes_ends_at_every_position(host: Any, fn: Any, phase: int, n: int) -> None:
    f = jit(fn)
    for max_iter in range(15):
        out, want = np.zeros(n), np.zeros(n)
        f(out, phase, max_iter)
        fn(want, phase, max_iter)
        np.testing.assert_array_equal(out, want, err_msg=f"max_iter={max_iter}")
    assert _lanes_used(f)


@pytest.mark.parametrize("n", [1, 8, 9, 23, 64])
def test_lanes_that_stop_mid_block_without_a_counter(host: Any, n: int) -> None:
    f = jit(finish_no_counter)
    for phase in range(13):
        out, want = np.zeros(n, np.int64), np.zeros(n, np.int64)
        f(out, phase)
        finish_no_counter(want, phase)
        np.testing.assert_array_equal(out, want)
    assert _lanes_used(f)


@pytest.mark.parametrize(
    "limit",
    [-(2**63), -1, 0, 9223372036854775800, 9223372036854775801, 9223372036854775802]
    + [9223372036854775801 + d for d in range(2, 7)],
)
def test_the_pass_count_never_runs_past_the_limit(host: Any, limit: int) -> None:
    f = jit(near_the_top)
    out, want = np.zeros(16, np.int64), np.zeros(16, np.int64)
    f(out, limit)
    near_the_top(want, limit)
    np.testing.assert_array_equal(out, want)
    assert _lanes_used(f)


def test_the_module_tests_for_a_live_lane_once_per_block() -> None:
    # one any_true per block of PASSES passes and one in the single-pass tail, per emitter
    # (groups and pairs): the body is emitted PASSES + 1 times in each
    text = jit(finish_no_counter).compile((ArrayType("int64", 1), "i64"), False).text()
    assert lanes.PASSES > 1 and text.count("v128.any_true") == 2  # no counter: no tail
    text = jit(finish_at).compile((ArrayType("float64", 1), "i64", "i64"), False).text()
    assert text.count("v128.any_true") == 4


def spin_rows(out, n):
    # a scalar while (it writes memory) nested in a loop whose first chunk spends the whole
    # poll budget (1024 rows): the while starts with the budget at 0
    for j in range(len(out)):
        k = 0
        while k < n:
            out[j] += 1.0
            k += 1


def test_a_loop_entered_with_the_budget_spent_still_polls(st_host: Any) -> None:
    f = jit(spin_rows)
    out = np.zeros(1024)
    st_host.cancel_after = 2  # the poll after the first 1024 passes of row 0 cancels
    with pytest.raises(KeyboardInterrupt):
        f(out, 2**40)
    # Polled within one budget of passes (a count from 0 down to 0 through 2**32 used to
    # run first).
    assert 0 < out[0] <= 2 * POLL_EVERY and out[1] == 0


def test_lane_loops_entered_with_the_budget_spent_poll_per_budget(st_host: Any) -> None:
    # escape's prange chunk of 1024 rows spends the budget before the first row's lanes
    f = jit(escape)
    out = np.zeros((1024, 8), np.uint32)
    f(out, -0.1, 0.1, -0.1, 0.1, 3000)  # every pixel inside the set: 3000 passes a row
    assert st_host.polls >= 1024 * 3000 // (POLL_EVERY + lanes.PASSES)


# -- division and modulo by constant powers of two (lower.py) -----------------------------
def pow2_int(x, out):
    for i in range(len(x)):
        out[i] = x[i] // 8 + 1000 * (x[i] % 16) + 10**6 * (x[i] // 1) + 10**7 * (x[i] % 1)


def pow2_float(x, out):
    for i in range(len(x)):
        out[i] = x[i] / 4.0 + x[i] / 0.5 - x[i] / -2.0 + x[i] / 9.094947017729282e-13  # 2**-40


def pow2_f32(x, out):
    for i in range(len(x)):
        out[i] = x[i] / 8.0 - x[i] / 0.125


def test_floor_division_and_modulo_by_powers_of_two_are_exact(host: Any) -> None:
    f = jit(pow2_int)
    x = np.array([-(2**40) - 3, -17, -16, -9, -8, -1, 0, 1, 7, 8, 15, 16, 2**40 + 5], np.int64)
    out, want = np.zeros_like(x), np.zeros_like(x)
    f(x, out)
    pow2_int(x, want)
    np.testing.assert_array_equal(out, want)
    text = f.inspect_wasm()
    assert "i64.shr_s" in text and "i64.div_s" not in text and "i64.rem_s" not in text


def test_division_by_powers_of_two_is_the_same_float(host: Any) -> None:
    tiny = math.ldexp(1.0, -1074)
    x = np.array([1.0, -3.3, 1e-310, tiny, 3 * tiny, 1.7e308, -0.0, math.inf, 1 / 3], np.float64)
    f = jit(pow2_float)
    out, want = np.zeros_like(x), np.zeros_like(x)
    f(x, out)
    with np.errstate(over="ignore"):  # 1.7e308 / 2**-40 is inf, in both
        pow2_float(x, want)
    np.testing.assert_array_equal(out, want)
    assert "f64.div" not in f.inspect_wasm()
    g = jit(pow2_f32)
    x32 = np.array([1.0, -3.3, 1e-40, 3.4e38, 1 / 3], np.float32)
    o32, w32 = np.zeros_like(x32), np.zeros_like(x32)
    g(x32, o32)
    with np.errstate(over="ignore"):
        for i in range(len(x32)):  # numpy's float32 arithmetic, as the float32 types promise
            w32[i] = x32[i] / np.float32(8.0) - x32[i] / np.float32(0.125)
    np.testing.assert_array_equal(o32, w32)
