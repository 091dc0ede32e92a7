"""Every kind of bad input raises its specific exception with a message that says what to do,
and the next call on the same pool (or module) is correct."""

from __future__ import annotations

import array
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import wasmtime

import jupyterlite_rayon as jr
from jupyterlite_rayon.foreign import ForeignModule

CHECK = np.arange(4097, dtype=np.float64) * 0.5


@jr.jit
def _sum_loop(x: Any) -> Any:
    s = 0
    for i in range(x.shape[0]):
        s += x[i]
    return s


@pytest.fixture(autouse=True)
def pool_still_works(pool: Any) -> Iterator[None]:
    threads = jr.current_num_threads()
    yield
    # After every bad input: same thread count and right answers.
    assert jr.current_num_threads() == threads
    assert jr.sum(CHECK) == CHECK.sum()
    assert np.array_equal(jr.sqrt(CHECK).to_numpy(), np.sqrt(CHECK))


@pytest.fixture(scope="module")
def fmod(foreign_wasm: Any) -> Iterator[ForeignModule]:
    mod = jr.load_module(foreign_wasm, threads=2)
    yield mod
    mod.close()


def module_still_works(mod: ForeignModule) -> None:
    x = mod.asarray(CHECK)
    assert mod.parallel_sum(x, len(x), 3) == CHECK.sum()
    x.close()


@pytest.mark.parametrize("bad", [
    np.ones(5, dtype=np.float16), np.ones(5, dtype=bool), np.ones(5, dtype=np.complex128),
    np.ones(5, dtype=np.int16), np.array(["a", "b"]), "text", object(), 3.5,
    memoryview(b"abc"), array.array("h", [1, 2]),
])
def test_unsupported_dtypes_and_types_raise_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="float64|buffer|dtype"):
        jr.sum(bad)


@pytest.mark.parametrize("call", [
    lambda: jr.cumsum(np.ones(3, dtype=np.float16)),  # a dtype the pool lacks
    lambda: jr.matmul(np.ones((2, 2), np.int64), np.ones((2, 2), np.int64)),
    lambda: jr.add(np.ones(3, np.uint64), np.complex64(3)),  # complex128: the pool lacks it
    lambda: jr.matmul(np.ones((2, 2), np.uint64), np.ones((2, 2), np.uint64)),
    lambda: jr.power(np.arange(3, dtype=np.uint64), 2),  # integer power: floats only
    lambda: _sum_loop(np.arange(3, dtype=np.uint64)),  # the jit takes no uint64 arrays yet
    lambda: jr.dot(np.ones((2, 2), np.int32), np.ones((2, 2), np.int64)),  # int matrix product
    lambda: jr.power(np.arange(3), 2),
    lambda: jr.asarray([1, "x"]),
    lambda: jr.mandelbrot("10", 10),  # type: ignore[arg-type]
    lambda: jr.monte_carlo_pi(10, seed=1.5),  # type: ignore[arg-type]
    lambda: jr.set_num_threads(1.5),  # type: ignore[arg-type]
    lambda: jr.set_num_threads(True),
])
def test_wrong_types_raise_type_error_saying_what_to_use(call: Any) -> None:
    with pytest.raises(TypeError) as info:
        call()
    assert len(str(info.value)) > 20


@pytest.mark.parametrize("call, says", [
    (lambda: jr.add(np.ones(3, np.uint64), -1), "out of bounds for uint64"),
    (lambda: jr.maximum(-5, np.ones(3, np.uint64)), "out of bounds for uint64"),
    (lambda: jr.add(np.ones(3, np.uint64), 2**64), "out of bounds for uint64"),
    (lambda: jr.clip(np.ones(3, np.uint64), 0, -1), "out of bounds for uint64"),
    (lambda: jr.asarray([2**64]), "does not fit in uint64"),
    (lambda: jr.asarray([-1], "uint64"), "does not fit in uint64"),
])
def test_uint64_overflow_is_numpys_overflow_error(call: Any, says: str) -> None:
    with pytest.raises(OverflowError, match=says):
        call()


@pytest.mark.parametrize("call", [
    lambda: jr.add(np.ones(3), np.ones(4)),
    lambda: jr.dot(np.ones(5), np.ones(6)),
    lambda: jr.maximum(np.ones((2, 3)), np.ones((3, 2))),
    lambda: jr.matmul(np.ones((2, 3)), np.ones((4, 2))),
    lambda: jr.matmul(np.ones(3), np.ones(3)),
    lambda: jr.sort(np.ones((2, 2))),
    lambda: jr.cumsum(np.ones((2, 2))),
    lambda: jr.asarray([[1.0, 2.0], [3.0]]),
    lambda: jr.asarray(np.ones((2, 2, 2))),
    lambda: jr.empty((2, 2, 2)),
    lambda: jr.empty(-1),
])
def test_shape_mismatches_raise_value_error(call: Any) -> None:
    with pytest.raises(ValueError, match="shape|1-D|2-D|rows|align|dimensions"):
        call()


@pytest.mark.parametrize("call", [
    lambda: jr.histogram(CHECK, bins=0),
    lambda: jr.histogram(CHECK, range=(5.0, 1.0)),
    lambda: jr.histogram(CHECK, range=(0.0, float("nan"))),
    lambda: jr.histogram(np.array([1.0, np.nan])),
    lambda: jr.histogram(np.array([-1e308, 1e308])),
    lambda: jr.histogram(np.array([-9_000_000_000_000_000_000])),  # +-0.5 lost in rounding
    lambda: jr.mandelbrot(-1, 10),
    lambda: jr.mandelbrot(10, 10, max_iter=-5),
    lambda: jr.monte_carlo_pi(0),
    lambda: jr.clip(CHECK, None, None),
])
def test_bad_arguments_raise_value_error(call: Any) -> None:
    with pytest.raises(ValueError):
        call()


def test_non_contiguous_buffers_are_copied_not_misread() -> None:
    x = np.arange(1001, dtype=np.float64)
    assert jr.sum(x[::7]) == x[::7].sum()
    assert jr.max(x[::-3]) == x[::-3].max()
    view = memoryview(array.array("d", x.tolist()))[::5]
    assert jr.sum(view) == x[::5].sum()
    m = x[:1000].reshape(40, 25)
    assert np.allclose(jr.matmul(m.T, m).to_numpy(), m.T @ m)
    with pytest.raises(TypeError, match="format"):
        jr.sum(memoryview(array.array("h", range(10)))[::2])


def test_zero_length_arrays() -> None:
    empty = np.array([], dtype=np.float64)
    assert jr.sum(empty) == 0.0
    assert np.isnan(jr.mean(empty))
    for reduction in (jr.min, jr.max):
        with pytest.raises(ValueError, match="empty"):
            reduction(empty)
    assert jr.sort(empty).tolist() == [] and jr.argsort(empty).tolist() == []
    assert jr.cumsum(empty).tolist() == []
    assert jr.sqrt(empty).shape == (0,)
    assert jr.dot(empty, empty) == 0.0
    counts, edges = jr.histogram(empty, bins=4)
    assert counts.tolist() == [0, 0, 0, 0] and edges.tolist() == np.histogram(empty, 4)[1].tolist()
    assert jr.matmul(np.ones((0, 3)), np.ones((3, 0))).shape == (0, 0)
    assert jr.matmul(np.ones((2, 0)), np.ones((0, 3))).tolist() == [[0.0] * 3] * 2
    assert jr.mandelbrot(0, 0).shape == (0, 0)
    assert jr.zeros(0).tolist() == []


@pytest.mark.parametrize("n", [0, -1, -100])
def test_thread_counts_below_one_raise_value_error(n: int) -> None:
    with pytest.raises(ValueError, match="between 1 and"):
        jr.set_num_threads(n)
    with pytest.raises(ValueError, match="between 1 and"):
        jr.init_thread_pool(n)
    with pytest.raises(ValueError, match="between 1 and"), jr.threadpool_limits(n):
        pass


def test_too_many_threads_raise_value_error() -> None:
    with pytest.raises(ValueError, match="most threads the pool's build can run") as info:
        jr.set_num_threads(jr.max_threads() + 1)
    assert "JUPYTERLITE_RAYON" not in str(info.value)  # no setting the reader may lack


def test_closed_arrays_raise_value_error() -> None:
    a = jr.asarray(CHECK)
    a.close()
    for call in (lambda: jr.sum(a), lambda: jr.add(a, a), lambda: a.tolist(), lambda: a[1:3],
                 lambda: jr.asarray(a)):
        with pytest.raises(ValueError, match="closed"):
            call()


def test_more_memory_than_the_maximum_raises_memory_error() -> None:
    before = jr.pool_info()["bytes_in_use"]
    with pytest.raises(jr.PoolMemoryError, match="maximum") as info:
        jr.empty(2**28 - 1)  # just under 2 GiB, more than the pool can still grow
    assert isinstance(info.value, MemoryError)
    with pytest.raises(MemoryError):
        jr.zeros(2**29)  # 4 GiB: more than a 32-bit memory
    assert jr.pool_info()["bytes_in_use"] == before


def test_foreign_missing_export(fmod: ForeignModule) -> None:
    with pytest.raises(AttributeError, match="parallel_sum"):
        fmod.no_such_function()
    module_still_works(fmod)


def test_foreign_wrong_arguments(fmod: ForeignModule) -> None:
    x = fmod.asarray(CHECK)
    with pytest.raises(TypeError, match="takes 3 arguments"):
        fmod.parallel_sum(x, len(x))
    with pytest.raises(TypeError, match="expected an int"):
        fmod.parallel_sum(x, 1.5, 2)
    with pytest.raises(TypeError, match="lives in"):
        fmod.parallel_sum(jr.asarray(CHECK), len(CHECK), 2)  # a pool array, not the module's
    with pytest.raises(OverflowError):
        fmod.add_i64(2**64, 1)
    module_still_works(fmod)


def test_foreign_trap_raises_wasm_trap_and_the_module_keeps_working(fmod: ForeignModule) -> None:
    for _ in range(3):
        with pytest.raises(jr.WasmTrap, match="unreachable"):
            fmod.boom()
        with pytest.raises(jr.WasmTrap, match="out of bounds"):
            fmod.read_at(0xFFFFFFF0)
        module_still_works(fmod)


def test_foreign_memory_over_the_maximum(fmod: ForeignModule) -> None:
    with pytest.raises(jr.PoolMemoryError, match="maximum") as info:
        fmod.empty(fmod.max_memory_bytes // 8)
    assert isinstance(info.value, MemoryError)
    module_still_works(fmod)


WRONG_IMPORTS = {
    "an unknown import": (('(module (import "env" "memory" (memory 1 1 shared))'
                          ' (import "env" "mystery" (func)))'), "env.mystery"),
    "an unshared memory": ('(module (import "env" "memory" (memory 1 1)))', "shared"),
    "no imported memory": ('(module (memory (export "memory") 1))', "env.memory"),
    "spawn without start": (('(module (import "env" "memory" (memory 1 1 shared))'
                            ' (import "wasi" "thread-spawn" (func (param i32) (result i32))))'),
                            "wasi_thread_start"),
    "a wrong WASI signature": (('(module (import "env" "memory" (memory 1 1 shared))'
                               ' (import "wasi_snapshot_preview1" "fd_write" (func)))'),
                               "signature"),
}


@pytest.mark.parametrize("case", sorted(WRONG_IMPORTS))
def test_wrong_imports_raise_foreign_module_error(case: str) -> None:
    wat, expected = WRONG_IMPORTS[case]
    with pytest.raises(jr.ForeignModuleError, match=expected):
        jr.load_module(wasmtime.wat2wasm(wat))


def test_not_a_wasm_module() -> None:
    with pytest.raises(jr.ForeignModuleError, match="not a wasm module"):
        jr.load_module(b"hello world")
    with pytest.raises(jr.ForeignModuleError, match="cannot compile"):
        jr.load_module(b"\0asm\x01\0\0\0\xff\xff")
    with pytest.raises(FileNotFoundError):
        jr.load_module("/nonexistent/module.wasm")
