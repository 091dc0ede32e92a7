"""The dispatcher (one module per signature), the emitted modules and the wasm encoder."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import wasmtime

from jupyterlite_rayon.jit import dispatch, jit, njit, prange
from jupyterlite_rayon.jit.wasm import sleb, uleb


@jit
def axpy(a, x, y):
    for i in prange(len(x)):
        y[i] = a * x[i] + y[i]


@jit
def total(x):
    s = 0.0
    for i in prange(len(x)):
        s += x[i]
    return s


def test_second_call_compiles_nothing(st_host: Any) -> None:
    f = jit(total.py_func)
    x = np.ones(10)
    before = dispatch.compile_count
    assert f(x) == 10.0
    assert f.compile_count == 1 and dispatch.compile_count == before + 1
    loaded = st_host.loaded
    assert f(np.ones(20)) == 20.0  # same signature: nothing compiled, nothing loaded
    assert f.compile_count == 1 and dispatch.compile_count == before + 1
    assert st_host.loaded == loaded
    assert f(np.ones(3, np.float32)) == 3.0  # a new signature compiles one more module
    assert f.compile_count == 2
    assert f.signatures == [("float64[:]",), ("float32[:]",)]


def test_py_func_options_and_keywords(st_host: Any) -> None:
    def add(a, b=2.5):
        return a + b

    for deco in (
        jit,
        njit,
        jit(nopython=True, parallel=True, fastmath=True, cache=True, nogil=True),
        jit(boundscheck=False),
        jit("float64(float64)"),
    ):
        f = deco(add)
        assert f.py_func is add and f.__name__ == "add"
        assert f(1.0) == 3.5 and f(1, b=2) == 3 and f(b=1.0, a=2) == 3.0


def test_signatures_and_inspect_wasm(st_host: Any) -> None:
    y = np.zeros(4)
    axpy(2.0, np.arange(4.0), y)
    assert axpy.signatures == [("float64", "float64[:]", "float64[:]")]
    text = axpy.inspect_wasm()
    assert text.startswith("(module")
    assert '(import "env" "memory" (memory 64 32768))' in text
    assert '(import "pool" "jr_jit_for"' in text and "(func $main" in text
    assert "(func $body_0" in text and "func $main $body_0" in text  # the element order
    assert axpy.inspect_wasm(("float64", "float64[:]", "float64[:]")) == text
    with pytest.raises(ValueError, match="no compiled signature"):
        axpy.inspect_wasm(("int64",))
    with pytest.raises(ValueError, match="not been compiled"):
        jit(total.py_func).inspect_wasm()


def test_modules_import_only_what_they_use() -> None:
    from jupyterlite_rayon.jit.typeinfer import ArrayType

    vec = ArrayType("float64", 1)
    imports = jit(total.py_func).compile((vec,), False).lowered.imports
    assert imports[:3] == ["env.memory", "env.table", "env.table_base"]
    assert sorted(imports[3:]) == [
        "pool.jr_alloc",
        "pool.jr_free",
        "pool.jr_jit_for",
        "pool.jr_jit_poll",
    ]

    @jit
    def plain(n):
        return n * 2

    assert plain.compile(("i64",), False).lowered.imports == [
        "env.memory",
        "env.table",
        "env.table_base",
    ]


@pytest.mark.parametrize("shared", [False, True])
def test_emitted_modules_validate(shared: bool) -> None:
    import test_jit_corpus as corpus
    from test_jit_corpus import CASES

    from jupyterlite_rayon.jit import runtime

    cfg = wasmtime.Config()
    cfg.wasm_threads = True
    engine = wasmtime.Engine(cfg)

    class Types:
        shared = False
        arena = None

    host: Any = Types()
    host.shared = shared
    for name, make, _ in CASES:
        fn = getattr(corpus, name)
        types = tuple(runtime.classify(a, host).ty for a in make() if not isinstance(a, list))
        wasm = fn.compile(types, shared).wasm
        wasmtime.Module.validate(engine, wasm)
        memory = next(i for i in wasmtime.Module(engine, wasm).imports if i.name == "memory")
        assert memory.type.limits.min == 64 and memory.type.limits.max == 32768
        assert memory.type.is_shared == shared


def test_leb128() -> None:
    assert uleb(0) == b"\x00" and uleb(127) == b"\x7f" and uleb(128) == b"\x80\x01"
    assert uleb(624485) == b"\xe5\x8e\x26"
    assert sleb(-1) == b"\x7f" and sleb(63) == b"\x3f" and sleb(64) == b"\xc0\x00"
    assert sleb(-123456) == b"\xc0\xbb\x78"
    assert sleb(-(1 << 63)) == b"\x80" * 9 + b"\x7f"
