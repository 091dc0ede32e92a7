"""`jr.load_module` in a real JupyterLite page (Chromium, offline): a user's own wasi-threads
module, built from tests/fixtures/foreign_psum.zig as the CPython tests build it, runs on
browser workers with the same Python API as in CPython (backends/foreign_pyodide.py).

Isolated site: threads (parallel_sum on 2 threads equals the pure-Python sum), fd_write to the
cell, traps as WasmTrap, proc_exit as ProcExit (in the caller and in a helper), arrays in the
module's own memory, and a module loaded again after each fault. Plain site: the clear message
that a threaded module needs cross-origin isolation, with the fix for the page's host.
The module's bytes go into the kernel as base64 in a cell (no file system or fetch needed).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from page_names import BRIDGE_SOURCE, PLUGIN_ID
from timed_interrupt import JS_CELL_PRINTED, JS_TIMED_INTERRUPT, TIMED_CELL

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "foreign_psum.zig"


def _python_conftest() -> Any:
    """tests/python/conftest.py, for its ZIG_FLAGS (one place for how the fixture is built)."""
    spec = importlib.util.spec_from_file_location(
        "jr_python_conftest", ROOT / "tests" / "python" / "conftest.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fixture_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    flags = _python_conftest().ZIG_FLAGS
    key = hashlib.sha256(FIXTURE.read_bytes() + " ".join(flags).encode()).hexdigest()[:16]
    out = tmp_path_factory.mktemp("foreign") / f"foreign_psum-{key}.wasm"
    subprocess.run(
        [sys.executable, "-m", "ziglang", "build-exe", str(FIXTURE), *flags, f"-femit-bin={out}"],
        check=True,
        cwd=out.parent,
        timeout=300,
    )
    return out.read_bytes()


def run(kernel: Any, code: str, timeout: float = 120) -> dict[str, Any]:
    r: dict[str, Any] = kernel.execute(code, timeout=timeout)
    assert r["status"] == "ok", f"cell failed: {r.get('error')}\n{r.get('stderr')}\n{code[:300]}"
    return r


def fails(kernel: Any, code: str, timeout: float = 120) -> dict[str, Any]:
    r: dict[str, Any] = kernel.execute(code, timeout=timeout)
    assert r["status"] == "error", f"cell did not fail: {r}"
    return r["error"]  # type: ignore[no-any-return]


def last_json(r: dict[str, Any]) -> Any:
    lines = [line for line in r["stdout"].splitlines() if line.strip()]
    assert lines, f"no output: {r}"
    return json.loads(lines[-1])


def define_bytes(kernel: Any, wasm: bytes) -> None:
    encoded = base64.b64encode(wasm).decode("ascii")
    run(
        kernel,
        f"import base64, json, math, random, array, time\nimport jupyterlite_rayon as jr\n"
        f"WASM = base64.b64decode('{encoded}')\nprint(len(WASM))",
    )


@pytest.fixture(scope="module")
def coi(kernel_coi: Any, fixture_wasm: bytes) -> Any:
    assert kernel_coi.isolated
    define_bytes(kernel_coi, fixture_wasm)
    # Default helpers: one per core (navigator.hardwareConcurrency), at least 1 here.
    run(kernel_coi, "mod = await jr.load_module(WASM)\nprint(repr(mod))")
    return kernel_coi


def test_load_module_must_be_awaited_in_the_page(coi: Any) -> None:
    err = fails(coi, "pending = jr.load_module(WASM, threads=1)\npending.add_i64(1, 2)")
    assert err["ename"] == "ForeignModuleError"
    assert "await jupyterlite_rayon.load_module" in err["evalue"]


def test_exports_and_scalars(coi: Any) -> None:
    r = run(
        coi,
        "print(json.dumps([sorted(set(mod.exports) & {'parallel_sum', 'malloc', 'hello'}),"
        " mod.add_i64(2, 3), mod.add_i64(2**63 - 1, 1), 'wasi_thread_start' in mod.exports]))",
    )
    assert last_json(r) == [["hello", "malloc", "parallel_sum"], 5, -(2**63), False]


def test_parallel_sum_on_two_threads_equals_the_reference(coi: Any) -> None:
    r = run(
        coi,
        """
out = []
for n in (0, 1, 7, 1023, 4097, 65537):
    rnd = random.Random(n)
    values = array.array("d", (float(rnd.randrange(-1000, 1000)) for _ in range(n)))
    x = mod.asarray(values)
    out.append([mod.parallel_sum(x, n, t) == math.fsum(values) for t in (1, 2)])
    x.close()
print(json.dumps(out))
""",
    )
    assert last_json(r) == [[True, True]] * 6


def test_arrays_live_in_the_module_memory(coi: Any) -> None:
    r = run(
        coi,
        """
values = array.array("d", [0.5 * i for i in range(1001)])
x = mod.asarray(values)
out = mod.empty(len(values))
mod.scale(x, out, len(values), 4.0)
z = mod.zeros(17, "int32")
print(json.dumps([out.tolist() == [v * 4.0 for v in values], z.tolist() == [0] * 17,
                  mod.memory_bytes >= 1 << 20]))
""",
    )
    assert last_json(r) == [True, True, True]


def test_fd_write_goes_to_the_cell(coi: Any) -> None:
    r = run(coi, "mod.hello()")
    assert r["stdout"] == "hello from wasm\n"
    assert r["stderr"] == "a warning from wasm\n"


def test_a_trap_is_wasm_trap_and_the_module_keeps_working(coi: Any) -> None:
    run(coi, "boom = await jr.load_module(WASM, threads=1)")
    for _ in range(2):
        err = fails(coi, "boom.boom()")
        assert err["ename"] == "WasmTrap", err
        assert "boom trapped" in err["evalue"] and "unreachable" in err["evalue"], err
        assert "keeps working" in err["evalue"], err
        # The caller got a fresh instance on the same memory; its helper still serves spawns.
        assert last_json(run(coi, PARALLEL_SUM.format(mod="boom", threads=2))) == [True, True]


def test_proc_exit_is_proc_exit_with_the_code(coi: Any) -> None:
    run(coi, "ex = await jr.load_module(WASM, threads=1)")
    err = fails(coi, "try:\n    ex.quit(3)\nexcept jr.ProcExit as e:\n    print(e.code)\n    raise")
    assert err["ename"] == "ProcExit" and "proc_exit(3)" in err["evalue"], err
    assert last_json(run(coi, "print(ex.add_i64(2, 2))")) == 4


# -- interrupts: the Interrupt button, through the interrupt buffer pool calls use -----------

# Loose for a shared machine: the host looks at the buffer every 10 ms (measured: ~20 ms).
LANDS_WITHIN_S = 0.3
PARALLEL_SUM = """
values = array.array("d", (float(i % 1000) for i in range(20001)))
x = {mod}.asarray(values)
print(json.dumps([{mod}.parallel_sum(x, len(values), t) == math.fsum(values)
                  for t in (1, {threads})]))
x.close()
"""


def interrupt_timed(kernel: Any, statement: str) -> dict[str, Any]:
    """Run `statement` in a cell, press Interrupt once it runs; the error reply with
    `landed_s`, from the page's store to KeyboardInterrupt in the kernel."""
    pending = kernel.execute_async(TIMED_CELL.format(body="    " + statement))
    kernel.page.wait_for_function(JS_CELL_PRINTED, arg="running", polling=50, timeout=120_000)
    time.sleep(0.5)  # well inside the call
    got = kernel.page.evaluate(JS_TIMED_INTERRUPT)
    r: dict[str, Any] = pending.result(timeout=60)
    assert got["buffers"] == 1, f"the page knows no interrupt buffer of this kernel: {got}"
    assert r["status"] == "error" and r["error"]["ename"] == "KeyboardInterrupt", r
    lines = [line for line in r["stdout"].splitlines() if line.startswith("{")]
    landed = json.loads(lines[-1])
    r["landed_s"] = (landed["landed"] - got["sent"]) / 1000
    r["message"] = landed["message"]
    print(f"{statement}: the interrupt landed after {r['landed_s'] * 1000:.1f} ms")
    return r


@pytest.fixture(scope="module")
def pool(coi: Any) -> Any:
    """A pool beside the modules: interrupts of foreign calls must leave it working."""
    assert coi.page.evaluate(BRIDGE_SOURCE) == PLUGIN_ID
    run(coi, "await jr.init_thread_pool(2)\nprint(jr.current_num_threads())")
    return coi


def pool_and_kernel_work(kernel: Any) -> None:
    r = run(kernel, "print(json.dumps([jr.sum([1.0, 2.0, 3.5]), sum(range(10))]))")
    assert last_json(r) == [6.5, 45]


def test_interrupt_stops_a_caller_that_loops_forever(pool: Any) -> None:
    run(pool, "spinner = await jr.load_module(WASM, threads=2)")
    r = interrupt_timed(pool, "spinner.spin(10**15)")  # hours without the interrupt
    assert r["landed_s"] < LANDS_WITHIN_S, f"took {r['landed_s']:.3f} s to land"
    assert "module.spin was interrupted; the module keeps working" in r["message"], r["message"]
    r = run(pool, "print(json.dumps([spinner.spin(1000), spinner.add_i64(1, 2)]))")
    assert last_json(r) == [1000, 3]
    assert last_json(run(pool, PARALLEL_SUM.format(mod="spinner", threads=3))) == [True, True]
    pool_and_kernel_work(pool)
    # Interrupted again, with a call right after it in the same cell: it waits for the new
    # caller worker, which starts asynchronously.
    pending = pool.execute_async(
        """
print("running", flush=True)
try:
    spinner.spin(10**15)
except KeyboardInterrupt:
    print(json.dumps([spinner.add_i64(2, 3), spinner._engine.live_workers()]))
"""
    )
    pool.page.wait_for_function(JS_CELL_PRINTED, arg="running", polling=50, timeout=120_000)
    time.sleep(0.5)
    pool.page.evaluate(JS_TIMED_INTERRUPT)
    r = pending.result(timeout=60)
    assert r["status"] == "ok", r
    assert last_json(r) == [5, 3]  # two helpers and one caller, not one more per interrupt


def test_interrupt_stops_a_caller_that_joins_a_helper_looping_forever(pool: Any) -> None:
    run(pool, "joiner = await jr.load_module(WASM, threads=2)")
    # The caller waits in join(): no loop of its own; the helper spins until close().
    r = interrupt_timed(pool, "joiner.loop_in_joined_helper()")
    assert r["landed_s"] < LANDS_WITHIN_S, f"took {r['landed_s']:.3f} s to land"
    assert "was interrupted; the module keeps working" in r["message"], r["message"]
    r = run(
        pool,
        """
first = joiner.looping_spins()
time.sleep(0.05)
print(json.dumps([joiner.add_i64(1, 2), joiner.looping_spins() > first]))
""",
    )
    assert last_json(r) == [3, True]  # the module answers; its looping helper runs on
    # One helper loops, the other serves parallel_sum's spawn.
    assert last_json(run(pool, PARALLEL_SUM.format(mod="joiner", threads=2))) == [True, True]
    pool_and_kernel_work(pool)
    stopped_by_close(pool, "joiner")


MEMORY_CHANGES = """
import js
def snapshot():
    return bytes(js.Uint8Array.new({mod}._engine._host.memory.buffer).slice().to_py())
before = snapshot()
time.sleep(0.2)
print(json.dumps(snapshot() != before))
"""


def stopped_by_close(kernel: Any, name: str) -> None:
    """close() terminates every worker of module `name`, also helpers that loop forever."""
    # A looping helper changes the memory (its counter) while nothing else runs.
    assert last_json(run(kernel, "import time\n" + MEMORY_CHANGES.format(mod=name))) is True
    run(kernel, f"{name}.close()")
    # Chromium lets a terminated worker that runs script go on for 2 s, timed on the event loop
    # of the kernel's worker (Blink's kForcibleTerminationDelay): let that loop run.
    run(kernel, "import asyncio\nawait asyncio.sleep(3)")
    r = run(kernel, MEMORY_CHANGES.format(mod=name) + f"print({name}._engine.live_workers())")
    assert r["stdout"].split() == ["false", "0"], r["stdout"]
    err = fails(kernel, f"{name}.add_i64(1, 2)")
    assert err["ename"] == "PoolError" and "is closed" in err["evalue"], err


def test_close_stops_helpers_that_loop_forever(pool: Any) -> None:
    run(
        pool,
        # One looping helper: each spins a core of a shared machine until it is stopped.
        "looping = await jr.load_module(WASM, threads=1)\nprint(looping.spawn_looping_helper())",
    )
    stopped_by_close(pool, "looping")
    pool_and_kernel_work(pool)


# -- helper faults: each an exception, never a hang -----------------------------------------


def test_a_helper_that_traps_while_joined_raises_at_once(pool: Any) -> None:
    run(pool, "joined = await jr.load_module(WASM, threads=1)")
    r = run(
        pool,
        """
import time
t = time.monotonic()
try:
    joined.trap_in_joined_helper()  # join() would wait forever
except jr.WasmTrap as e:
    print(json.dumps([time.monotonic() - t, str(e)]))
""",
        timeout=60,
    )
    took, message = last_json(r)
    assert took < 2.0, f"the fault took {took:.2f} s to be raised"
    assert "trap_in_joined_helper: a helper thread trapped" in message, message
    assert "unreachable" in message and "(during the call)" in message, message
    assert "load it again" in message, message
    err = fails(pool, "joined.add_i64(1, 2)")
    assert err["ename"] == "ForeignModuleError" and "load the module again" in err["evalue"]
    assert last_json(run(pool, "print(joined._engine.live_workers())")) == 0
    r = run(pool, "joined = await jr.load_module(WASM, threads=1)\nprint(joined.add_i64(1, 2))")
    assert last_json(r) == 3
    pool_and_kernel_work(pool)


def test_proc_exit_in_a_joined_helper_is_proc_exit_with_its_code(pool: Any) -> None:
    run(pool, "joined = await jr.load_module(WASM, threads=1)")
    err = fails(pool, "joined.exit_in_joined_helper(9)", timeout=60)
    assert err["ename"] == "ProcExit", err
    assert "a helper thread called proc_exit(9) (during the call)" in err["evalue"], err
    assert last_json(run(pool, "print(joined._engine.live_workers())")) == 0


@pytest.mark.parametrize(
    ("start", "raised"),
    [
        ("trap_in_helper_later()", "a helper thread trapped: RuntimeError: unreachable"),
        ("exit_in_helper_later(4)", "a helper thread called proc_exit(4)"),
    ],
)
def test_a_helper_fault_after_the_call_is_raised_by_the_next_call(
    coi: Any, start: str, raised: str
) -> None:
    run(coi, f"late = await jr.load_module(WASM, threads=2)\nprint(late.{start})")
    run(coi, "late.release_helper()\nimport time\ntime.sleep(0.5)")  # it faults after 200 ms
    err = fails(coi, "late.add_i64(1, 2)")
    assert err["ename"] == ("ProcExit" if "exit" in start else "WasmTrap"), err
    assert raised in err["evalue"], err
    assert "add_i64 did not run" in err["evalue"] and "load it again" in err["evalue"]
    err = fails(coi, "late.add_i64(1, 2)")
    assert err["ename"] == "ForeignModuleError" and "load the module again" in err["evalue"]


def test_close_then_calls_say_closed(coi: Any) -> None:
    run(coi, "c = await jr.load_module(WASM, threads=1)\nc.close()")
    err = fails(coi, "c.add_i64(1, 2)")
    assert "closed" in err["evalue"]


def test_plain_page_says_a_threaded_module_needs_isolation(
    kernel_plain: Any, fixture_wasm: bytes
) -> None:
    assert not kernel_plain.isolated
    define_bytes(kernel_plain, fixture_wasm)
    err = fails(kernel_plain, "mod = await jr.load_module(WASM)")
    assert err["ename"] == "ForeignModuleError", err
    text = err["evalue"]
    assert "cross-origin isolated" in text and "To fix:" in text
    # 127.0.0.1 is `jupyter lite serve`'s host: the fix names its server option.
    assert "jupyter_server" in text, text
