"""The pool inside a real JupyterLite Pyodide kernel, driven through the page (Chromium).

Isolated site ("coi"): the threaded build on 2 threads; plain site: the single-thread fallback
with one warning. Every result is compared in the kernel with a pure-Python reference (numpy is
not available offline in Pyodide), over sizes 0, 1, primes and 2^k +- 1, at 1 and 2 threads.
Fixtures (`kernel_coi`, `kernel_plain`) come from tests/browser/conftest.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kernel_sources import REF_MANDELBROT
from page_names import BRIDGE_SOURCE, PLUGIN_ID

from jupyterlite_rayon.abi import COUNTERS_MAGIC

# An interrupt must land in a running pool call well within this (0.24 s measured here; the
# bound leaves room for a loaded CI machine). The caller polls every 16 tasks (ABI.md).
INTERRUPT_LANDS_WITHIN_S = 5.0

# Pure-Python references, defined once per kernel. They follow kernels/ABI.md exactly.
REFERENCES = (
    r"""
import array, json, math, random
import jupyterlite_rayon as jr

SIZES = [0, 1, 2, 3, 7, 31, 32, 33, 97, 127, 128, 129, 4095, 4096, 4097, 8191, 8193, 65537]

"""
    + REF_MANDELBROT
    + r'''
def ref_edges(bins, lo, hi):
    # numpy.linspace(lo, hi, bins + 1)
    step = (hi - lo) / bins
    edges = [i * step + lo for i in range(bins + 1)]
    edges[-1] = hi
    return edges

def ref_histogram(xs, bins, lo, hi):
    # numpy.histogram's uniform-bin rule, edge corrections included
    edges = ref_edges(bins, lo, hi)
    counts = [0] * bins
    norm = bins / (hi - lo)
    for x in xs:
        if not (lo <= x <= hi):
            continue
        i = int((x - lo) * norm)
        if i == bins:
            i -= 1
        if x < edges[i]:
            i -= 1
        elif x >= edges[i + 1] and i != bins - 1:
            i += 1
        counts[i] += 1
    return counts

def flat(rows):
    return [v for row in rows for v in row]

def floats(n, seed):
    rnd = random.Random(seed)
    return array.array("d", (rnd.uniform(-1000.0, 1000.0) for _ in range(n)))

def ints(n, seed):
    rnd = random.Random(seed)
    return array.array("q", (rnd.randrange(-10**6, 10**6) for _ in range(n)))

def uints(n, seed, typecode, top):
    # near the top of the type, so that sums pass 2**32 (uint32) or wrap at 2**64 (uint64)
    rnd = random.Random(seed)
    return array.array(typecode, (rnd.randrange(top - 2**30, top) for _ in range(n)))

def check_unsigned(n):
    """numpy's answers for uint32 and uint64 (sums and cumsum are uint64, wrapping at 2**64;
    comparisons unsigned); returns what failed."""
    bad = []
    xu, xq = uints(n, n + 2, "I", 2**32), uints(n, n + 3, "Q", 2**64)
    if jr.sum(xu) != sum(xu) or jr.sum(xq) != sum(xq) % 2**64:
        bad.append(("sum unsigned", n))
    running, expected = 0, []
    for v in xu:
        running += v
        expected.append(running)
    cs = jr.cumsum(xu)
    if str(cs.dtype) != "uint64" or cs.tolist() != expected:
        bad.append(("cumsum uint32 -> uint64", n, str(cs.dtype)))
    if n and (jr.min(xq) != min(xq) or jr.max(xu) != max(xu)):
        bad.append(("min/max unsigned", n))
    if jr.sort(xq).tolist() != sorted(xq):
        bad.append(("sort uint64", n))
    return bad

def check_all(threads):
    """Every kernel family against its reference at `threads` threads; returns what failed."""
    bad = []
    with jr.threadpool_limits(threads):
        for n in SIZES:
            xf, xi = floats(n, n), ints(n, n + 1)
            # Copies in and out: small ones go through strings, large ones through views.
            if jr.asarray(xf).tolist() != list(xf) or jr.asarray(xi).tobytes() != xi.tobytes():
                bad.append(("round trip", n))
            if jr.sum(xi) != sum(xi):
                bad.append(("sum int64", n))
            if not math.isclose(jr.sum(xf), math.fsum(xf), rel_tol=1e-12, abs_tol=1e-6):
                bad.append(("sum float64", n, jr.sum(xf), math.fsum(xf)))
            if n and (jr.min(xf) != min(xf) or jr.max(xi) != max(xi)):
                bad.append(("min/max", n))
            if jr.sort(xf).tolist() != sorted(xf):
                bad.append(("sort float64", n))
            if jr.sort(xi).tolist() != sorted(xi):
                bad.append(("sort int64", n))
            counts, edges = jr.histogram(xf, bins=13, range=(-900.0, 900.0))
            if counts.tolist() != ref_histogram(xf, 13, -900.0, 900.0):
                bad.append(("histogram", n))
            if edges.tolist() != ref_edges(13, -900.0, 900.0):  # a pool array, as numpy
                bad.append(("histogram edges", n))
            squares = jr.multiply(xf, xf).tolist()
            if squares != [v * v for v in xf]:
                bad.append(("multiply", n))
            bad += check_unsigned(n)
        for w, h, it in [(1, 1, 50), (31, 17, 100), (64, 33, 200), (97, 5, 80)]:
            got = jr.mandelbrot(w, h, -2.0, 1.0, -1.5, 1.5, it)
            ref = ref_mandelbrot(w, h, -2.0, 1.0, -1.5, 1.5, it)
            if got.shape != (h, w) or flat(got.tolist()) != ref:
                bad.append(("mandelbrot", w, h, it))
            if jr.sum(got) != sum(ref):  # a uint32 image sums as numpy's uint64
                bad.append(("sum of mandelbrot", w, h, it))
    return bad
'''
)


def run(kernel: Any, code: str, timeout: float = 180) -> dict[str, Any]:
    """Execute code; fail with the kernel's own error text if it raised."""
    r = kernel.execute(code, timeout=timeout)
    assert r["status"] == "ok", f"cell failed: {r.get('error')}\n{r.get('stderr')}\n{code}"
    return r


def error_name(r: dict[str, Any]) -> str:
    """The exception's class name (pyodide-kernel reports "<class 'pkg.mod.Name'>")."""
    err = r.get("error") or {}
    name = str(err.get("ename", "")) if isinstance(err, dict) else str(err)
    if name.startswith("<class '") and name.endswith("'>"):
        name = name[len("<class '") : -2]
    return name.rsplit(".", 1)[-1]


def error_text(r: dict[str, Any]) -> str:
    err = r.get("error") or {}
    if isinstance(err, dict):
        return f"{err.get('ename', '')}: {err.get('evalue', '')}"
    return str(err)


def last_json(r: dict[str, Any]) -> Any:
    lines = [line for line in r["stdout"].splitlines() if line.strip()]
    assert lines, f"no output: {r}"
    return json.loads(lines[-1])


# ---------------------------------------------------------------------------------------------
# The isolated site: threads


@pytest.fixture(scope="module")
def coi(kernel_coi: Any) -> Any:
    """The isolated kernel; the labextension's interrupt bridge is the one active on the page."""
    source = kernel_coi.page.evaluate(BRIDGE_SOURCE)
    assert source == PLUGIN_ID, f"the active interrupt bridge is {source!r}, not the labextension's"
    return kernel_coi


def test_call_before_init_says_what_to_do(coi: Any) -> None:
    r = coi.execute("import array, jupyterlite_rayon as jr\njr.sum(array.array('d', [1.0, 2.0]))")
    assert r["status"] == "error"
    assert error_name(r) == "PoolNotStarted", error_text(r)
    assert "await jupyterlite_rayon.init_thread_pool()" in error_text(r)


def test_threaded_pool_starts_with_two_threads(coi: Any) -> None:
    r = run(
        coi,
        REFERENCES
        + """
await jr.init_thread_pool(2)
info = jr.pool_info()
print(json.dumps({k: info[k] for k in ("backend", "build", "threads", "isolated", "started")}))
""",
    )
    assert last_json(r) == {
        "backend": "pyodide",
        "build": "mt",
        "threads": 2,
        "isolated": True,
        "started": True,
    }
    assert "single-thread" not in r["stderr"]


@pytest.mark.parametrize("threads", [1, 2])
def test_results_match_pure_python(coi: Any, threads: int) -> None:
    r = run(coi, f"print(json.dumps(check_all({threads})))", timeout=600)
    assert last_json(r) == []


def test_results_identical_across_thread_counts(coi: Any) -> None:
    # Reductions are blocked deterministically (ABI.md): 1 and 2 threads agree bit for bit.
    r = run(
        coi,
        """
xs = floats(1_000_003, 7)
a = jr.asarray(xs)
with jr.threadpool_limits(1):
    one = (jr.sum(a), jr.mean(a), jr.cumsum(a).tolist()[-1])
with jr.threadpool_limits(2):
    two = (jr.sum(a), jr.mean(a), jr.cumsum(a).tolist()[-1])
print(json.dumps([one == two, math.isclose(one[0], math.fsum(xs), rel_tol=1e-9)]))
""",
    )
    assert last_json(r) == [True, True]


def test_js_typed_arrays_and_memoryviews_are_accepted(coi: Any) -> None:
    r = run(
        coi,
        """
import js
from pyodide.ffi import to_js
xs = floats(10007, 11)
typed = js.Float64Array.new(to_js(list(xs)))
view = memoryview(xs)[::1]
print(json.dumps([jr.sum(typed) == jr.sum(xs), jr.asarray(typed).tolist() == list(xs),
                  jr.sort(view).tolist() == sorted(xs)]))
""",
    )
    assert last_json(r) == [True, True, True]


def test_status_counters_show_both_threads_working(coi: Any) -> None:
    r = run(
        coi,
        """
import time
before = jr.pool_info()
img = jr.mandelbrot(400, 300, max_iter=500)
after = jr.pool_info()
# A helper searches for work some 50 us after its last task before it sleeps (busy until then).
start = time.monotonic()
while jr.pool_info()["busy"] and time.monotonic() - start < 2.0:
    pass
print(json.dumps({"calls": after["calls"] - before["calls"],
                  "tasks": [a["tasks"] - b["tasks"]
                            for a, b in zip(after["per_thread"], before["per_thread"])],
                  "per_thread": len(after["per_thread"]),
                  "busy_after": jr.pool_info()["busy"], "memory": after["memory_bytes"] > 0}))
""",
    )
    got = last_json(r)
    assert got["calls"] == 1, got
    # Both threads ran some of the call's tasks (the helper stole work from the caller).
    assert len(got["tasks"]) == 2 and all(t > 0 for t in got["tasks"]), got
    # ... and every thread went to sleep once the call was over (within 2 s).
    assert got["per_thread"] == 2 and got["busy_after"] == 0 and got["memory"]


def test_page_sees_the_pool_counters_and_interrupt_buffer(coi: Any) -> None:
    """The labextension's bridge got both announcements, and its decoder (abi.ts offsets) reads
    the same counters as the kernel's pool_info, field for field."""
    page = coi.page
    r = run(
        coi,
        """
_ = jr.mandelbrot(64, 48, max_iter=100)
info = jr.pool_info()
info["bytes_in_use"] += info.pop("bytes_kept")  # the counters block counts both
print(json.dumps({k: info[k] for k in ("threads", "busy", "calls", "bytes_in_use",
                                       "per_thread", "build")}))
""",
    )
    want = last_json(r)
    got = page.evaluate("""() => {
      const b = window.__jrInterruptBridge;
      return {source: b.source, buffers: b.buffers.size, readings: b.read()};
    }""")
    assert got["source"] == PLUGIN_ID and got["buffers"] == 1, got
    assert len(got["readings"]) == 1 and "counters" in got["readings"][0], got
    counters = got["readings"][0]["counters"]
    seen = {k: counters[k] for k in ("threads", "busy", "calls", "bytes_in_use")}
    seen["build"] = "mt" if counters["threaded"] else "st"
    # pool_info's per-thread fields, as the page decoded them (the page has them all).
    seen["per_thread"] = [
        {k: page_thread[k] for k in kernel_thread}
        for page_thread, kernel_thread in zip(counters["per_thread"], want["per_thread"])
    ]
    assert len(counters["per_thread"]) == len(want["per_thread"])
    assert seen == want
    assert counters["magic"] == COUNTERS_MAGIC and counters["in_call"] == 0


def test_init_twice_resizes(coi: Any) -> None:
    r = run(
        coi,
        """
await jr.init_thread_pool(1)
a = jr.current_num_threads()
await jr.init_thread_pool(2)
b = jr.current_num_threads()
print(json.dumps([a, b, jr.sum(ints(4097, 3)) == sum(ints(4097, 3))]))
""",
    )
    assert last_json(r) == [1, 2, True]


def test_shutdown_then_a_new_pool(coi: Any) -> None:
    r = run(
        coi,
        """
old = jr.asarray(ints(10, 1))
jr.shutdown()
try:
    jr.sum(ints(3, 1))
    first = "no error"
except Exception as e:
    first = type(e).__name__
await jr.init_thread_pool(2)
info = jr.pool_info()
print(json.dumps([first, info["build"], info["threads"], info["calls"],
                  jr.sum(ints(8193, 4)) == sum(ints(8193, 4))]))
""",
    )
    # A fresh pool: its counters start from zero.
    assert last_json(r) == ["PoolNotStarted", "mt", 2, 0, True]


@pytest.mark.parametrize(
    "code, ename, hint",
    [
        ("jr.sum('not numbers')", "TypeError", ""),
        ("jr.histogram(floats(10, 1), bins=0)", "ValueError", "bins"),
        ("jr.histogram(floats(10, 1), bins=4, range=(2.0, 1.0))", "ValueError", ""),
        ("jr.histogram(floats(10, 1), bins=4, range=(0.0, math.inf))", "ValueError", ""),
        ("jr.set_num_threads(0)", "ValueError", ""),
        ("jr.min(array.array('d'))", "ValueError", "empty"),
        ("jr.add(floats(3, 1), floats(4, 1))", "ValueError", ""),
        ("jr.mandelbrot(-1, 4)", "ValueError", ""),
        ("jr.empty(2**40)", "MemoryError", ""),
    ],
)
def test_bad_input_is_a_clear_error_and_the_pool_keeps_working(
    coi: Any, code: str, ename: str, hint: str
) -> None:
    r = coi.execute(f"""
try:
    {code}
except Exception as e:
    print(json.dumps([type(e).__name__, [c.__name__ for c in type(e).__mro__], str(e)]))
""")
    name, mro, message = last_json(r)
    assert ename in mro, (name, message)
    assert hint in message
    after = run(coi, "print(json.dumps(jr.sum(ints(4099, 5)) == sum(ints(4099, 5))))")
    assert last_json(after) is True


def test_interrupt_cancels_a_long_call_and_the_pool_keeps_working(coi: Any) -> None:
    run(coi, "backend = jr.get_backend(); before = backend.interrupted_calls")
    # Far more work than the time before the interrupt (minutes on this machine).
    pending = coi.execute_async(
        "print('call starts', flush=True)\nnever = jr.mandelbrot(3000, 2000, max_iter=20000)"
    )
    # Interrupt only once the cell runs: an interrupt that arrives before it would be taken by
    # Python at the cell's first line, and prove nothing about the pool.
    coi.page.wait_for_function(
        """() => { const nb = window.__jrPanel.content;
          const cell = nb.widgets[nb.widgets.length - 1];
          return JSON.stringify(cell.model.outputs.toJSON()).includes('call starts'); }""",
        polling=100,
        timeout=120_000,
    )
    time.sleep(1.0)
    sent = time.monotonic()
    coi.interrupt()
    r = pending.result(timeout=300)
    landed = time.monotonic() - sent
    print(f"interrupt landed after {landed:.2f} s")
    assert r["status"] == "error" and error_name(r) == "KeyboardInterrupt", r
    assert landed < INTERRUPT_LANDS_WITHIN_S, f"the interrupt took {landed:.2f} s to land"
    after = run(
        coi,
        """
info = jr.pool_info()
print(json.dumps([backend.interrupted_calls - before, "never" in globals(), info["busy"],
                  jr.sum(ints(65537, 9)) == sum(ints(65537, 9)),
                  flat(jr.mandelbrot(31, 17, max_iter=100).tolist())
                  == ref_mandelbrot(31, 17, -2.0, 1.0, -1.5, 1.5, 100)]))
""",
    )
    # The KeyboardInterrupt came from the cancelled pool call, not after it finished.
    assert last_json(after) == [1, False, 0, True, True]


def test_an_interrupt_while_idle_does_not_stop_the_next_cell(coi: Any) -> None:
    coi.interrupt()
    r = run(
        coi, "print(json.dumps([sum(range(300_000)), jr.sum(ints(4097, 6)) == sum(ints(4097, 6))]))"
    )
    assert last_json(r) == [sum(range(300_000)), True]


# ---------------------------------------------------------------------------------------------
# The plain site: the single-thread fallback


def test_plain_site_falls_back_with_one_warning(kernel_plain: Any) -> None:
    r = run(
        kernel_plain,
        REFERENCES
        + """
await jr.init_thread_pool(2)
info = jr.pool_info()
print(json.dumps({"build": info["build"], "threads": info["threads"],
                  "isolated": info["isolated"], "fix": info["isolation"]["fix"]}))
""",
    )
    got = last_json(r)
    assert got["build"] == "st" and got["threads"] == 1 and got["isolated"] is False
    # The notebook shows the warning, and it names the fix for this host (127.0.0.1: the
    # `jupyter lite serve` advice).
    assert r["stderr"].count("runs single-threaded") == 1, r["stderr"]
    assert "jupyter_server" in r["stderr"] and "jupyter_server" in got["fix"]
    # A second pool in the same kernel, and init twice: no second warning.
    again = run(
        kernel_plain,
        """
jr.shutdown()
await jr.init_thread_pool(1)
print(json.dumps([jr.pool_info()["build"], await jr.init_thread_pool(2),
                  jr.current_num_threads()]))
""",
    )
    # Asking again for threads keeps the one thread (the warning already said why).
    assert last_json(again) == ["st", 1, 1]
    assert "single-threaded" not in again["stderr"]


def test_plain_site_gives_the_same_results(kernel_plain: Any) -> None:
    r = run(kernel_plain, "print(json.dumps(check_all(1)))", timeout=600)
    assert last_json(r) == []
    r = kernel_plain.execute("jr.set_num_threads(2)")
    assert r["status"] == "error" and error_name(r) == "ValueError", error_text(r)
    assert "single-thread build" in error_text(r) and "jupyter_server" in error_text(r)
    after = run(kernel_plain, "print(json.dumps(jr.sum(ints(4097, 2)) == sum(ints(4097, 2))))")
    assert last_json(after) is True
