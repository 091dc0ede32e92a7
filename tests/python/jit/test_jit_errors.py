"""Every error of the jit: clear, pointing at the user's line, and the pool usable after."""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import pytest

from jupyterlite_rayon.errors import PoolMemoryError
from jupyterlite_rayon.jit import JitError, jit, prange


def _line_of(fn: Any, text: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    for k, line in enumerate(lines):
        if text in line:
            return first + k
    raise AssertionError(text)


@jit
def square(x):
    return x * x


def _pool_still_works() -> None:
    assert square(7) == 49


# -- compile-time errors -----------------------------------------------------------------
def comprehension(a):
    squares = [a[i] * a[i] for i in range(len(a))]
    return squares


def with_try(a):
    try:
        return a[0]
    except IndexError:
        return 0.0


def changes_type(n):
    x = True
    for i in range(n):
        x = 1.5
    return x


def shared_write(a):
    last = 0
    for i in prange(len(a)):
        last = i
    return last


def mixed_reduction(a):
    s = 1.0
    for i in prange(len(a)):
        s += a[i]
        s *= 2.0
    return s


def returns_in_prange(a):
    for i in prange(len(a)):
        if a[i] > 0:
            return i
    return -1


def calls_print(a):
    print(a[0])


@jit
def recursive(n):
    return n if n < 2 else recursive(n - 1)


def slices(a):
    return a[1:3]


def array_arith(a, b):
    return a + b


@pytest.mark.parametrize(
    "fn,text,construct,advice",
    [
        (comprehension, "squares = [", "ListComp", "write a for loop"),
        (with_try, "try:", "Try", "check the condition"),
        (changes_type, "x = 1.5", "type change", "keeps one type"),
        (shared_write, "last = i", "shared write", "not a reduction"),
        (mixed_reduction, "s += a[i]", "mixed reduction", "one kind of update"),
        (returns_in_prange, "return i", "return in prange", "reduction variable"),
        (calls_print, "print(a[0])", "call to print", "@jr.jit"),
        (recursive, "return n if", "recursion", "write a loop"),
        (slices, "a[1:3]", "Slice", "one element at a time"),
        (array_arith, "a + b", "array operation", "loop over the elements"),
    ],
)
def test_compile_errors_name_function_file_line_and_fix(
    st_host: Any, fn: Any, text: str, construct: str, advice: str
) -> None:
    args = [np.arange(4.0)] * (2 if fn is array_arith else 1)
    if fn in (changes_type, recursive):
        args = [3]
    jitted = fn if hasattr(fn, "py_func") else jit(fn)
    fn = getattr(fn, "py_func", fn)
    with pytest.raises(JitError) as info:
        jitted(*args)
    err = info.value
    assert isinstance(err, TypeError)
    assert err.function == fn.__name__
    assert err.filename == __file__
    assert err.line == _line_of(fn, text), str(err)
    assert err.construct == construct
    msg = str(err)
    assert fn.__name__ in msg and f"line {err.line}" in msg and advice in msg
    assert text in msg  # the source line is quoted
    _pool_still_works()


def test_type_change_names_both_lines(st_host: Any) -> None:
    with pytest.raises(JitError, match=r"bool at line \d+ but float64 here"):
        jit(changes_type)(2)


def test_unknown_jit_option_is_refused() -> None:
    with pytest.raises(TypeError, match="unknown option 'bogus'"):
        jit(bogus=True)


# -- run-time errors ---------------------------------------------------------------------
@jit
def get(a, i):
    return a[i]


@jit
def get2(a, i, j):
    return a[i, j]


@jit
def body_index(a, out, shift):
    for i in prange(len(a)):
        out[i] = a[i + shift]


def test_index_error_names_array_and_index(host: Any) -> None:
    a = np.arange(10.0)
    assert get(a, -10) == 0.0
    with pytest.raises(IndexError) as info:
        get(a, 10)
    msg = str(info.value)
    assert "index 10 is out of bounds for axis 0 with size 10" in msg
    assert "array 'a'" in msg and f"line {_line_of(get.py_func, 'return a[i]')}" in msg
    with pytest.raises(IndexError, match="index -11 is out of bounds"):
        get(a, -11)
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 1 with size 3"):
        get2(np.zeros((2, 3)), 1, 5)
    _pool_still_works()


def test_index_error_inside_a_prange_body(host: Any) -> None:
    out = np.zeros(100)
    with pytest.raises(IndexError, match=r"index 10\d is out of bounds .*array 'a'"):
        body_index(np.arange(100.0), out, 5)
    body_index(np.arange(100.0), out, 0)  # the pool runs the next call
    np.testing.assert_array_equal(out, np.arange(100.0))


def test_boundscheck_false_drops_the_checks(st_host: Any) -> None:
    fast = jit(boundscheck=False)(get.py_func)
    assert fast(np.arange(5.0), 3) == 3.0
    assert fast(np.arange(5.0), -1) == 4.0  # negative indices still wrap
    get(np.arange(5.0), 0)
    assert "call $rec" in get.inspect_wasm()  # the checked build records index errors
    assert "call $rec" not in fast.inspect_wasm()


@jit
def int_div(a, b):
    return a // b


@jit
def int_mod(a, b):
    return a % b


@jit
def true_div(a, b):
    return a / b


@jit
def div_in_body(a, out, d):
    for i in prange(len(a)):
        out[i] = a[i] % d


def test_zero_division(host: Any) -> None:
    for fn, args in (
        (int_div, (1, 0)),
        (int_mod, (1, 0)),
        (true_div, (1.0, 0.0)),
        (true_div, (3, 0)),
        (int_div, (2.5, 0.0)),
        (int_mod, (2.5, 0.0)),
    ):
        with pytest.raises(ZeroDivisionError, match="by zero") as info:
            fn(*args)
        with pytest.raises(ZeroDivisionError):
            fn.py_func(*args)
        assert f"line {_line_of(fn.py_func, 'return a')}" in str(info.value)
    with pytest.raises(ZeroDivisionError, match="integer modulo by zero"):
        div_in_body(np.arange(50), np.zeros(50, np.int64), 0)
    _pool_still_works()


@jit
def negative_power(a, b):
    return a**b


@jit
def var_step(n, step):
    s = 0
    for i in range(0, n, step):
        s += i
    return s


def test_value_errors(st_host: Any) -> None:
    assert negative_power(3, 4) == 81
    with pytest.raises(ValueError, match="negative integer power"):
        negative_power(3, -1)
    assert var_step(10, 3) == var_step.py_func(10, 3)
    assert var_step(10, -3) == 0
    with pytest.raises(ValueError, match="must not be zero"):
        var_step(10, 0)


def test_wrong_argument_type_lists_signatures(st_host: Any) -> None:
    assert get(np.arange(3.0), 1) == 1.0
    with pytest.raises(TypeError) as info:
        get("abc", 1)
    msg = str(info.value)
    assert "argument 'a'" in msg and "a str" in msg
    assert "(float64[:], int64)" in msg
    with pytest.raises(TypeError, match="dtype complex128"):
        get(np.zeros(3, complex), 0)
    with pytest.raises(TypeError, match="4-D array"):
        get(np.zeros((1, 1, 1, 1)), 0)
    with pytest.raises(TypeError, match="missing a required argument"):
        get(np.zeros(3))


def test_writing_a_list_argument_is_refused(st_host: Any) -> None:
    with pytest.raises(TypeError, match="pass a numpy array or a PoolArray"):
        body_index([1.0, 2.0], [0.0, 0.0], 0)
    ro = np.zeros(2)
    ro.flags.writeable = False
    with pytest.raises(TypeError, match="read-only"):
        body_index(np.zeros(2), ro, 0)


@jit
def spin(n):
    k = 0
    while k < n or n < 0:
        k += 1
    return k


@jit
def spin_parallel(a, n):
    s = 0
    for i in prange(len(a)):
        k = 0
        while k < n:
            k += 1
        s += k
    return s


def test_interrupt_stops_a_long_while_loop(host: Any) -> None:
    host.cancel_after = 5  # the host says "cancel" at the 5th poll (every 1024 iterations)
    with pytest.raises(KeyboardInterrupt, match="interrupted"):
        spin(-1)  # would never end
    assert host.polls == 5
    with pytest.raises(KeyboardInterrupt):
        spin_parallel(np.zeros(8), 10**12)
    host.cancel_after = None
    assert spin(10_000) == 10_000  # the pool runs the next call
    assert spin_parallel(np.zeros(8), 3000) == 24000


def test_out_of_memory_for_reduction_partials(st_host: Any, monkeypatch: Any) -> None:
    real = st_host.alloc
    calls = {"n": 0}

    def alloc(nbytes: int, zero: bool) -> int:
        calls["n"] += 1
        return 0 if calls["n"] > 1 and nbytes == 8 * 3 else real(nbytes, zero)

    @jit
    def total(a):
        s = 0.0
        for i in prange(len(a)):
            s += a[i]
        return s

    a = st_host.pool_array(np.ones(3 * 4096))
    assert total(a) == 3 * 4096
    monkeypatch.setattr(st_host, "alloc", alloc)
    with pytest.raises(PoolMemoryError, match="ran out of memory"):
        total(a)
    monkeypatch.undo()
    assert total(a) == 3 * 4096


def test_errors_in_a_called_function_propagate(host: Any) -> None:
    @jit
    def outer(a, i):
        return get(a, i) + 1.0

    assert outer(np.arange(4.0), 2) == 3.0
    with pytest.raises(IndexError, match="in jitted function 'get'"):
        outer(np.arange(4.0), 9)


def test_math_domain_gives_nan_like_numba(st_host: Any) -> None:
    @jit
    def root(x):
        return math.sqrt(x)

    assert math.isnan(root(-1.0))
