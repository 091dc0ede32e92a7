"""load_module on a real wasi-threads module built from tests/fixtures/foreign_psum.zig with
Zig (std.Thread on wasm32-wasi): threads, WASI output, clocks, random, proc_exit, traps,
interrupts and arrays in the module's own memory."""

from __future__ import annotations

import array
import asyncio
import math
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

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
    assert {"parallel_sum", "scale", "malloc", "free", "boom", "quit", "hello"} <= set(mod.exports)
    assert "wasi_thread_start" not in mod.exports
    assert "parallel_sum" in dir(mod) and "parallel_sum" in repr(mod)


@pytest.mark.parametrize("threads", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("n", SIZES)
def test_parallel_sum_with_std_thread_matches_python(
    mod: ForeignModule, n: int, threads: int
) -> None:
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


def test_fd_write_goes_to_python_stdout_and_stderr(
    mod: ForeignModule, capsys: pytest.CaptureFixture[str]
) -> None:
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


# -- misbehaving helper threads: each is an exception on the call or the next, never a hang --

T = TypeVar("T")


def within(seconds: float, fn: Callable[[], T]) -> T:
    """fn() on a watchdog thread: its result or exception, or a failure if it hangs."""
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001 -- handed to the test thread
            outcome.append((False, exc))

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if not outcome:
        pytest.fail(f"the call hung for more than {seconds} s")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def still_works(mod: ForeignModule) -> None:
    values = np.arange(5001, dtype=np.float64)
    x = mod.asarray(values)
    assert within(10, lambda: mod.parallel_sum(x, len(values), 3)) == values.sum()
    x.close()


def test_a_helper_that_traps_while_joined_raises_instead_of_hanging(mod: ForeignModule) -> None:
    for _ in range(3):
        with pytest.raises(jr.WasmTrap) as info:
            within(10, mod.trap_in_joined_helper)
        message = str(info.value)
        assert re.search(r"trap_in_joined_helper: thread \d+ trapped: .*unreachable", message)
        assert "during the call" in message and "keeps working" in message
        still_works(mod)


def test_proc_exit_in_a_joined_helper_raises_proc_exit_naming_the_thread(
    mod: ForeignModule,
) -> None:
    with pytest.raises(jr.ProcExit) as info:
        within(10, lambda: mod.exit_in_joined_helper(9))
    assert info.value.code == 9
    assert re.search(r"thread \d+ called proc_exit\(9\) \(during the call\)", str(info.value))
    still_works(mod)


def raise_on_the_next_call(mod: ForeignModule) -> BaseException:
    """The helper faults a moment after release_helper() returned; the next call raises it."""
    time.sleep(1.0)  # the helper faults 200 ms after release_helper() (the fixture waits)
    try:
        within(10, lambda: mod.add_i64(1, 2))
    except (jr.WasmTrap, jr.ProcExit) as exc:
        return exc
    pytest.fail("the helper's fault was not raised by the next call")


def test_a_helper_trap_after_the_call_returned_is_raised_by_the_next_call(
    mod: ForeignModule,
) -> None:
    assert mod.trap_in_helper_later() == 0
    mod.release_helper()  # the helper traps after this call returned
    exc = raise_on_the_next_call(mod)
    assert isinstance(exc, jr.WasmTrap)
    assert re.search(r"add_i64: thread \d+ trapped: .*unreachable", str(exc))
    assert "after an earlier call returned (add_i64 did not run)" in str(exc)
    assert mod.add_i64(1, 2) == 3  # reported once; the module keeps working
    still_works(mod)


def test_a_helper_proc_exit_after_the_call_returned_is_raised_by_the_next_call(
    mod: ForeignModule,
) -> None:
    assert mod.exit_in_helper_later(4) == 0
    mod.release_helper()
    exc = raise_on_the_next_call(mod)
    assert isinstance(exc, jr.ProcExit) and exc.code == 4
    assert re.search(r"thread \d+ called proc_exit\(4\) \(after an earlier call", str(exc))
    assert mod.add_i64(2, 2) == 4
    still_works(mod)


def cpu_seconds_over(seconds: float) -> float:
    before = time.process_time()
    time.sleep(seconds)
    return time.process_time() - before


def test_close_stops_a_helper_that_loops_forever(foreign_wasm: Path) -> None:
    m = jr.load_module(foreign_wasm, threads=1)
    assert m.spawn_looping_helper() == 0
    assert m.spawn_looping_helper() == 0  # a second one, on a helper started on demand
    first = m.looping_spins()
    deadline = time.monotonic() + 10
    while m.looping_spins() == first and time.monotonic() < deadline:
        time.sleep(0.01)
    assert m.looping_spins() > first  # they do spin (a count, not CPU time: robust under load)
    started = time.monotonic()
    m.close()
    assert time.monotonic() - started < 3
    assert m._engine.threads_alive() == []  # type: ignore[attr-defined]
    assert cpu_seconds_over(0.5) < 0.2
    with pytest.raises(jr.PoolError, match="closed"):
        m.add_i64(1, 2)


def test_ctrl_c_stops_a_call_that_joins_a_looping_helper(foreign_wasm: Path) -> None:
    m = jr.load_module(foreign_wasm, threads=1)
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            m.loop_in_joined_helper()  # the caller waits in join(): no loop of its own
    finally:
        timer.cancel()
    assert time.monotonic() - started < 2  # before the 2 s grace: the wake-up reached it
    assert "was interrupted; the module keeps working" in str(info.value)
    assert m.add_i64(1, 2) == 3
    still_works(m)
    m.close()  # also stops the helper that still loops
    assert m._engine.threads_alive() == []  # type: ignore[attr-defined]


def test_close_during_a_call_ends_the_call(foreign_wasm: Path) -> None:
    m = jr.load_module(foreign_wasm, threads=1)
    closer = threading.Timer(0.2, m.close)
    closer.start()
    with pytest.raises(jr.PoolError, match="closed"):
        within(10, lambda: m.spin(10**15))
    closer.join(10)
    assert not closer.is_alive()
    assert m._engine.threads_alive() == []  # type: ignore[attr-defined]


def test_an_interrupt_of_one_module_leaves_another_running(foreign_wasm: Path) -> None:
    a = jr.load_module(foreign_wasm, threads=0)
    b = jr.load_module(foreign_wasm, threads=0)
    iterations = 3 * 10**8  # about a second of spinning
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(b.spin(iterations)))
    worker.start()
    time.sleep(0.1)
    timer = threading.Timer(0.1, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            a.spin(10**15)
    finally:
        timer.cancel()
    worker.join(30)
    assert result == [iterations]  # b's epoch callback let it run on
    a.close()
    b.close()


def test_await_load_module_works_in_cpython_too(foreign_wasm: Path) -> None:
    async def load() -> ForeignModule:
        return await jr.load_module(foreign_wasm, threads=0)  # type: ignore[no-any-return]

    m = asyncio.run(load())
    assert m.add_i64(3, 4) == 7
    m.close()
