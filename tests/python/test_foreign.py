"""load_module on a real wasi-threads module built from tests/fixtures/foreign_psum.zig with
Zig (std.Thread on wasm32-wasi): threads, WASI output, clocks, random, proc_exit, traps,
interrupts and arrays in the module's own memory."""

from __future__ import annotations

import array
import math
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import jupyterlite_rayon as jr
from jupyterlite_rayon.backends.wasi import ENOSYS
from jupyterlite_rayon.foreign import ForeignModule

SIZES = [0, 1, 2, 3, 7, 31, 1023, 1024, 1025, 4097, 65_537]


@pytest.fixture(scope="module")
def mod(foreign_wasm: Path) -> Iterator[ForeignModule]:
    module = jr.load_module(foreign_wasm, threads=2)
    yield module
    module.close()


def test_exports_are_listed(mod: ForeignModule) -> None:
    assert {"parallel_sum", "scale", "malloc", "free", "boom", "quit", "hello"} <= set(
        mod.exports)
    assert "wasi_thread_start" not in mod.exports
    assert "parallel_sum" in dir(mod) and "parallel_sum" in repr(mod)


@pytest.mark.parametrize("threads", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("n", SIZES)
def test_parallel_sum_with_std_thread_matches_python(mod: ForeignModule, n: int,
                                                     threads: int) -> None:
    values = np.random.default_rng(n).integers(-1000, 1000, size=n).astype(np.float64)
    x = mod.asarray(values)
    # Integer-valued doubles: every partial sum is exact, so any split gives the same total.
    assert mod.parallel_sum(x, n, threads) == math.fsum(values.tolist())
    x.close()


def test_arrays_live_in_the_module_memory(mod: ForeignModule) -> None:
    values = array.array("d", [0.5 * i for i in range(1001)])
    x = mod.asarray(values)
    out = mod.empty(len(values))
    assert mod.scale(x, out, len(values), 4.0) is None
    assert out.tolist() == [v * 4.0 for v in values]
    mod.scale(out, out, len(values), 0.25)  # in place
    assert out.tolist() == values.tolist()
    z = mod.zeros(17, "int32")
    assert z.tolist() == [0] * 17
    assert np.array_equal(mod.asarray(np.arange(9, dtype=np.int64)).to_numpy(), np.arange(9))
    for a in (x, out, z):
        a.close()
        a.close()
    with pytest.raises(ValueError, match="closed"):
        mod.scale(x, out, 1, 1.0)


def test_integer_and_float_results(mod: ForeignModule) -> None:
    assert mod.add_i64(2, 3) == 5
    assert mod.add_i64(2**63 - 1, 1) == -(2**63)  # i64 wraps
    assert mod.add_i64(-5, True) == -4


def test_fd_write_goes_to_python_stdout_and_stderr(mod: ForeignModule,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    mod.hello()
    captured = capsys.readouterr()
    assert captured.out == "hello from wasm\n"
    assert captured.err == "a warning from wasm\n"


def test_output_callbacks(foreign_wasm: Path) -> None:
    out: list[str] = []
    err: list[str] = []
    with jr.load_module(foreign_wasm, threads=0, stdout=out.append, stderr=err.append) as m:
        m.hello()
        m.hello()
    assert out == ["hello from wasm\n"] * 2 and err == ["a warning from wasm\n"] * 2


def test_clock_random_and_unsupported_wasi(mod: ForeignModule) -> None:
    t0 = mod.now_ns()
    t1 = mod.now_ns()
    assert 0 < t0 <= t1
    buf = mod.zeros(64, "uint32")
    assert mod.fill_random(buf, 256) == 0
    words = buf.tolist()
    assert len(set(words)) > 32  # 64 random 32-bit words: duplicates are vanishingly rare
    assert mod.try_unsupported() == ENOSYS


@pytest.mark.parametrize("code", [0, 3, 255])
def test_proc_exit_raises_proc_exit_with_the_code(mod: ForeignModule, code: int) -> None:
    with pytest.raises(jr.ProcExit) as info:
        mod.quit(code)
    assert info.value.code == code
    assert mod.add_i64(1, 1) == 2


def test_traps_then_threads_still_work(mod: ForeignModule) -> None:
    values = np.arange(10_001, dtype=np.float64)
    x = mod.asarray(values)
    for _ in range(5):
        with pytest.raises(jr.WasmTrap):
            mod.boom()
        assert mod.parallel_sum(x, len(values), 4) == values.sum()


def test_ctrl_c_interrupts_a_long_foreign_call(mod: ForeignModule) -> None:
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            mod.spin(10**15)  # hours of work without the interrupt
    finally:
        timer.cancel()
    assert mod.spin(1000) == 1000
    values = np.arange(4097, dtype=np.float64)
    assert mod.parallel_sum(mod.asarray(values), len(values), 3) == values.sum()


def test_two_modules_are_independent(foreign_wasm: Path, mod: ForeignModule) -> None:
    other = jr.load_module(foreign_wasm.read_bytes(), threads=1)
    a = other.asarray([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="lives in"):
        mod.parallel_sum(a, 3, 1)
    assert other.parallel_sum(a, 3, 2) == 6.0
    other.close()
    with pytest.raises(jr.PoolError, match="closed"):
        other.add_i64(1, 2)
