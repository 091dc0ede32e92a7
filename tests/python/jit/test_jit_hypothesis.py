"""Random arithmetic expressions and random loop nests, compiled and compared with Python.

Integers are compared with a reference evaluator that wraps every result to int64, as numpy
and the compiled code do; floats with Python's own evaluation (IEEE doubles in both).
"""

from __future__ import annotations

import itertools
import linecache
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyterlite_rayon.jit import jit, prange

_counter = itertools.count()
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
SMALL = st.integers(-(1 << 20), 1 << 20)


def define(source: str, name: str = "f") -> Any:
    """A jitted function from source text (registered in linecache so it can be read)."""
    filename = f"/jit-hypothesis/case_{next(_counter)}.py"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"prange": prange, "math": math}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102  (generated test code)
    return jit(namespace[name])


def wrap(v: int) -> int:
    return (v + (1 << 63)) % (1 << 64) - (1 << 63)


# -- integer expressions -----------------------------------------------------------------
def int_exprs() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.sampled_from(["a", "b", "c"]),
        st.integers(-9, 9).map(str),
        st.sampled_from(["9223372036854775807", "(-9223372036854775807 - 1)"]),
    )

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.tuples(st.sampled_from(["+", "-", "*", "//", "%"]), children, children),
            st.tuples(st.just("neg"), children),
            st.tuples(st.sampled_from(["abs"]), children),
            st.tuples(st.sampled_from(["min", "max"]), children, children),
            st.tuples(st.just("if"), children, children, children),
        )

    return st.recursive(leaves, extend, max_leaves=8)


def int_source(e: Any) -> str:
    if isinstance(e, str):
        return e
    op = e[0]
    if op == "neg":
        return f"(-{int_source(e[1])})"
    if op == "abs":
        return f"abs({int_source(e[1])})"
    if op in ("min", "max"):
        return f"{op}({int_source(e[1])}, {int_source(e[2])})"
    if op == "if":
        return f"({int_source(e[2])} if {int_source(e[1])} > 0 else {int_source(e[3])})"
    return f"({int_source(e[1])} {op} {int_source(e[2])})"


def int_eval(e: Any, env: dict[str, int]) -> int:
    """Python's meaning with every intermediate wrapped to int64."""
    if isinstance(e, str):
        return wrap(eval(e, {}, env))
    op = e[0]
    if op == "neg":
        return wrap(-int_eval(e[1], env))
    if op == "abs":
        return wrap(abs(int_eval(e[1], env)))
    if op == "if":
        return int_eval(e[2], env) if int_eval(e[1], env) > 0 else int_eval(e[3], env)
    x, y = int_eval(e[1], env), int_eval(e[2], env)
    if op == "min":
        return min(x, y)
    if op == "max":
        return max(x, y)
    if op in ("//", "%") and y == 0:
        raise ZeroDivisionError
    return wrap(
        {
            "+": x + y,
            "-": x - y,
            "*": x * y,
            "//": x // y if op == "//" else 0,
            "%": x % y if op == "%" else 0,
        }[op]
    )


@SETTINGS
@given(int_exprs(), st.one_of(INT64, SMALL), st.one_of(INT64, SMALL), SMALL)
def test_random_int_expressions(st_host: Any, expr: Any, a: int, b: int, c: int) -> None:
    fn = define(f"def f(a, b, c):\n    return {int_source(expr)}\n")
    try:
        want: Any = int_eval(expr, {"a": a, "b": b, "c": c})
    except ZeroDivisionError:
        want = ZeroDivisionError
    try:
        got: Any = fn(a, b, c)
    except ZeroDivisionError:
        got = ZeroDivisionError
    assert got == want, int_source(expr)


# -- float expressions -------------------------------------------------------------------
def float_exprs() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.sampled_from(["x", "y"]),
        st.sampled_from(["0.5", "-2.0", "3.25", "1e300", "-0.0", "7.0"]),
    )

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.tuples(st.sampled_from(["+", "-", "*", "/", "//", "%"]), children, children),
            st.tuples(st.sampled_from(["neg", "abs"]), children),
            st.tuples(st.sampled_from(["min", "max"]), children, children),
        )

    return st.recursive(leaves, extend, max_leaves=6)


def float_source(e: Any) -> str:
    if isinstance(e, str):
        return e
    op = e[0]
    if op == "neg":
        return f"(-{float_source(e[1])})"
    if op in ("abs", "min", "max"):
        return f"{op}({', '.join(float_source(x) for x in e[1:])})"
    return f"({float_source(e[1])} {op} {float_source(e[2])})"


FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.floats(-100, 100),
    st.sampled_from([0.0, -0.0, 1.0, -3.0]),
)


def _outcome(fn: Any, *args: float) -> Any:
    try:
        v = fn(*args)
    except ZeroDivisionError:
        return "ZeroDivisionError"
    return "nan" if math.isnan(v) else (v, math.copysign(1.0, v))


@SETTINGS
@given(float_exprs(), FLOATS, FLOATS)
def test_random_float_expressions(st_host: Any, expr: Any, x: float, y: float) -> None:
    fn = define(f"def f(x, y):\n    return {float_source(expr)}\n")
    assert _outcome(fn, x, y) == _outcome(fn.py_func, x, y), float_source(expr)


# -- loop nests --------------------------------------------------------------------------
@st.composite
def loop_nests(draw: Any) -> str:
    depth = draw(st.integers(1, 3))
    names = ["i", "j", "k"][:depth]
    lines = ["def f(n):", "    s = 1"]
    indent = "    "
    for d, v in enumerate(names):
        start = draw(st.integers(-5, 5))
        stop = draw(st.sampled_from(["n", "n // 2", "-n", "3", str(draw(st.integers(-6, 9)))]))
        step = draw(st.sampled_from(["1", "2", "-1", "-3", "3"]))
        if draw(st.booleans()) and d == 0 and step in ("1", "2", "3"):
            kind = "prange"
        else:
            kind = "range"
        lines.append(f"{indent}for {v} in {kind}({start}, {stop}, {step}):")
        indent += "    "
        if kind == "range" and draw(st.booleans()):
            lines.append(f"{indent}if ({' + '.join(names[: d + 1])}) % 4 == 1:")
            lines.append(f"{indent}    {draw(st.sampled_from(['continue', 'break']))}")
    term = " + ".join(f"{v} * {p}" for v, p in zip(names, (7, 11, 13), strict=False))
    if "prange" in "\n".join(lines):
        lines.append(f"{indent}s += {term} + 1")
    else:
        lines.append(f"{indent}s = (s * 31 + {term}) % 1000003")
    if draw(st.booleans()):
        lines += ["    w = 0", "    while w * w < n * 3:", "        w += 1", "    s += w"]
    lines.append("    return s")
    return "\n".join(lines) + "\n"


@SETTINGS
@given(loop_nests(), st.integers(0, 12))
def test_random_loop_nests(st_host: Any, source: str, n: int) -> None:
    fn = define(source)
    assert fn(n) == fn.py_func(n), source
