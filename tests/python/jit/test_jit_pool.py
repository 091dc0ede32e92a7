"""The jit on the REAL pool (wasmtime, real threads): the corpus at 1, 2, 3 and 4 threads and
in the single-thread build, compared with .py_func; modules loaded by every thread (also by
threads a resize adds); reductions bit-identical across thread counts and builds; Ctrl-C of a
jitted `while` loop; `%%parallel --sweep` over a cell that calls a jitted function.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_jit_corpus as corpus

import jupyterlite_rayon as jr
from jupyterlite_rayon import abi
from jupyterlite_rayon.backends import jit_host
from jupyterlite_rayon.jit import runtime

HERE = Path(__file__).resolve().parent
# Kernels calling exp, log, sin, ... : the pool's own Zig math (the same jr.exp uses) is
# within 3 ulp of CPython's libm but not always bit-equal to it (docs/jit.md).
LIBM = {"maths"}


@pytest.fixture
def on_pool() -> Iterator[Any]:
    """Jitted calls go to the real pool (what `import jupyterlite_rayon` sets up)."""
    before = runtime.host_factory()
    runtime.set_host(jit_host.current)
    backend = jr.get_backend()
    threads = jr.current_num_threads()
    yield backend
    jr.set_num_threads(threads)
    runtime.set_host(before)


def check_case(name: str) -> None:
    """One corpus kernel against its py_func on the current host (as test_jit_corpus does)."""
    _, make, approx = next(c for c in corpus.CASES if c[0] == name)
    fn = getattr(corpus, name)
    args = make()
    mine = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    theirs = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    got = fn(*mine)
    want = corpus._wrapped(fn.py_func(*theirs))
    if name in LIBM:
        for g, w in zip([got, *mine], [want, *theirs], strict=True):
            if isinstance(w, np.ndarray):
                np.testing.assert_allclose(g, w, rtol=1e-14, atol=1e-14)
        return
    corpus._same(got, want, approx)
    for g, w in zip(mine, theirs, strict=True):
        if isinstance(w, np.ndarray):
            corpus._same(g, w, approx)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("threads", [1, 2, 3, 4])
@pytest.mark.parametrize("name", [c[0] for c in corpus.CASES])
def test_corpus_on_the_pool(on_pool: Any, name: str, threads: int) -> None:
    jr.set_num_threads(threads)
    check_case(name)


def sample() -> np.ndarray:
    """The same 300001 floats in every process (the corpus' own RNG advances per call)."""
    return np.random.default_rng(11).uniform(-1.0, 1.0, 300_001)


def _records(backend: Any) -> list[tuple[int, int]]:
    """(state, jit_modules) of every thread record."""
    out = []
    base = backend.counters_address + abi.THREAD_RECORDS_OFFSET
    for i in range(jr.current_num_threads()):
        raw = backend.read(base + i * abi.THREAD_RECORD_BYTES, 8)
        out.append(struct.unpack("<II", raw))
    return out


def _registered(backend: Any) -> int:
    address = backend.wasm.call_direct("jr_jit_modules") & 0xFFFFFFFF
    return int(struct.unpack("<I", backend.read(address, 4))[0])


def test_every_thread_loads_new_modules_also_after_a_resize(on_pool: Any) -> None:
    backend = on_pool

    @jr.jit
    def fill(out, v):
        for i in jr.prange(len(out)):
            out[i] = v * i

    jr.set_num_threads(1)
    out = jr.zeros(400_000)
    fill(out, 2.0)  # registered and loaded on one thread
    jr.set_num_threads(4)  # three threads that never saw it
    for _ in range(20):  # enough chunks that every helper takes some
        fill(out, 3.0)
    np.testing.assert_array_equal(out.to_numpy(), 3.0 * np.arange(400_000))
    count = _registered(backend)
    loaded = [m for _, m in _records(backend)]
    assert loaded[0] == count  # the caller has every module
    assert all(m <= count for m in loaded)
    assert sum(1 for m in loaded if m == count) >= 2  # helpers loaded it when they ran a chunk


def test_reductions_are_bit_identical_for_any_thread_count(on_pool: Any) -> None:
    x = sample()
    results = set()
    for threads in (1, 2, 3, 4):
        jr.set_num_threads(threads)
        results.add(vector_sums(x))
    assert len(results) == 1


def vector_sums(x: np.ndarray) -> tuple[Any, ...]:
    """Reductions of the scalar code and of the SIMD lanes (jit/vector.py), one sample."""
    ints = (x * 2**40).astype(np.int64)
    return (
        corpus.energy(x),
        corpus.product(x),
        corpus.budget(x, 1.0),
        corpus.norm2(x),
        corpus.dot2(x, x[::-1].copy()),
        corpus.centered(x, 0.125),
        corpus.neighbours(x),
        corpus.int_lanes(ints, ints.astype(np.int32), ints.astype(np.uint32)),
    )


def test_pool_arrays_are_used_in_place_and_counted(on_pool: Any) -> None:
    a = jr.asarray(np.arange(10.0))
    out = jr.zeros(10)
    calls = jr.pool_info()["calls"]
    corpus.smooth3(a, out)
    want = np.zeros(10)
    corpus.smooth3.py_func(np.arange(10.0), want)
    np.testing.assert_array_equal(out.to_numpy(), want)
    assert jr.pool_info()["calls"] == calls + 1
    assert jr.last_run() is not None and jr.last_run()["name"] == "smooth3"  # type: ignore[index]


def test_errors_on_the_pool_leave_it_working(on_pool: Any) -> None:
    @jr.jit
    def at(x, i):
        return x[i]

    @jr.jit
    def div(a, b):
        return a // b

    with pytest.raises(IndexError, match="out of bounds"):
        at(np.arange(3.0), 7)
    with pytest.raises(ZeroDivisionError):
        div(1, 0)
    assert at(np.arange(3.0), -1) == 2.0
    assert jr.sum([1.0, 2.0]) == 3.0


@jr.jit
def spin(n):
    k = 0
    while k < n:
        k += 1
    return k


@pytest.mark.timeout(120)  # a lost interrupt fails here instead of hanging the run
def test_ctrl_c_stops_a_jitted_while_loop_within_a_bound(on_pool: Any) -> None:
    assert spin(10) == 10  # compiled and loaded before the clock starts
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt, match="interrupted"):
            spin(1 << 62)  # centuries without the interrupt
    finally:
        timer.cancel()
    assert time.perf_counter() - start < 0.3 + 0.5
    assert spin(1000) == 1000  # the pool runs the next call
    assert jr.sum([1, 2, 3]) == 6


def test_sweep_over_a_cell_calling_a_jitted_function(on_pool: Any, ip: Any) -> None:
    from IPython.utils.capture import capture_output

    img = np.zeros((120, 160), np.uint32)
    ip.user_ns.update(escape=corpus.escape, img=img)
    cell = "escape(img, -2.0, 1.0, -1.2, 1.2, 200)"
    ip.run_cell(cell)  # compiled before the sweep times it
    with capture_output() as io:
        result = ip.run_cell(f"%%parallel --sweep 1,2\n{cell}")
    assert result.success, result.error_in_exec
    text = io.outputs[-1].data["text/plain"]
    lines = text.strip().splitlines()
    assert lines[0].startswith("%%parallel sweep")
    rows = [line.split() for line in lines[2:4]]
    assert [r[0] for r in rows] == ["1", "2"], text
    assert all(int(r[5]) >= 1 for r in rows), text  # each count ran the jitted call on the pool
    want = np.zeros_like(img)
    corpus.escape.py_func(want, -2.0, 1.0, -1.2, 1.2, 200)
    np.testing.assert_array_equal(img, want)


ST_PROGRAM = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import jupyterlite_rayon as jr
    import test_jit_corpus as corpus
    from test_jit_pool import check_case, sample, vector_sums

    assert not jr.get_backend().threaded
    failures = {}
    for name, _, _ in corpus.CASES:
        try:
            check_case(name)
        except Exception as exc:
            failures[name] = repr(exc)
    x = sample()
    sums = [float(v).hex() if isinstance(v, float) else str(v) for v in vector_sums(x)]
    print(json.dumps({"failures": failures, "sums": sums}))
""")


def test_corpus_on_the_single_thread_build(on_pool: Any) -> None:
    env = {**os.environ, "JUPYTERLITE_RAYON_BUILD": "st"}
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", ST_PROGRAM, str(HERE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,  # the assertion shows stderr
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["failures"] == {}
    x = sample()
    jr.set_num_threads(3)
    mt = [float(v).hex() if isinstance(v, float) else str(v) for v in vector_sums(x)]
    assert got["sums"] == mt  # bit-identical to the threaded build
