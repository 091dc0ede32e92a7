"""Benchmarks of the @jit compiler in CPython: compile time, re-call cost, call overhead.

    python benchmarks/bench_jit.py

Prints a table. Compile time is the compiler's own work (Python source -> wasm bytes:
parse, IR, types, prange pass, lowering, encoding), not the engine's compile of the bytes.
Calls run on the sequential stand-in of the pool used by the jit tests
(tests/python/jit/jit_standin.py) until the pool side of the jit ABI exists.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python" / "jit"))

from jit_standin import StandIn

from jupyterlite_rayon.jit import dispatch, jit, prange, runtime
from jupyterlite_rayon.jit.typeinfer import ArrayType


def heat_and_stats(u, v, alpha, steps):  # 30 lines: the size the target is stated for
    ny, nx = u.shape
    total = 0.0
    hottest = -1e300
    for step in range(steps):
        for j in prange(1, ny - 1):
            for i in range(1, nx - 1):
                c = u[j, i]
                lap = u[j - 1, i] + u[j + 1, i] + u[j, i - 1] + u[j, i + 1] - 4.0 * c
                nv = c + alpha * lap
                if nv < 0.0:
                    nv = 0.0
                elif nv > 1000.0:
                    nv = 1000.0
                v[j, i] = nv
        for j in range(ny):
            for i in range(nx):
                u[j, i] = v[j, i]
    for j in prange(ny):
        for i in range(nx):
            total += u[j, i]
            hottest = max(hottest, u[j, i])
    mean = total / (nx * ny)
    spread = hottest - mean
    k = 0
    while k < 10 and spread > 1.0:
        spread = spread / 2
        k += 1
    return mean + k
    # (30 lines including the def)


def escape(out, x0, x1, y0, y1, max_iter):
    h, w = out.shape
    for j in prange(h):
        cy = y0 + j * (y1 - y0) / h
        for i in range(w):
            cx = x0 + i * (x1 - x0) / w
            zr = zi = 0.0
            k = 0
            while k < max_iter and zr * zr + zi * zi <= 4.0:
                zr, zi = zr * zr - zi * zi + cx, 2.0 * zr * zi + cy
                k += 1
            out[j, i] = k


def add_into(a, b):
    b[0] = a[0] + b[0]


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    rows = []
    grid = ArrayType("float64", 2)
    types = (grid, grid, "f64", "i64")

    def compile_once() -> None:
        jit(heat_and_stats).compile(types, True)

    compile_once()  # warm imports
    rows.append(
        (
            "compile a 30-line kernel (source -> wasm bytes)",
            f"{_median_ms(compile_once, 30):.1f} ms",
            "< 50 ms",
        )
    )

    host = StandIn(shared=False, pieces=1)
    runtime.set_host(host)
    f = jit(heat_and_stats)
    u = np.random.default_rng(1).uniform(0, 100, (40, 50))
    f(u.copy(), np.zeros_like(u), 0.1, 2)
    before = dispatch.compile_count
    f(u.copy(), np.zeros_like(u), 0.1, 2)
    rows.append(
        (
            "modules compiled by a second call, same signature",
            str(dispatch.compile_count - before),
            "0",
        )
    )

    a = host.pool_array(np.ones(4))
    b = host.pool_array(np.ones(4))
    g = jit(add_into)
    g(a, b)
    calls = 2000
    t0 = time.perf_counter()
    for _ in range(calls):
        g(a, b)
    rows.append(
        (
            "call overhead, two PoolArrays (stand-in host)",
            f"{(time.perf_counter() - t0) / calls * 1e6:.0f} us",
            "",
        )
    )

    m = jit(escape)
    img = np.zeros((120, 160), np.uint32)
    m(img, -2.0, 1.0, -1.2, 1.2, 100)
    t_jit = _median_ms(lambda: m(img, -2.0, 1.0, -1.2, 1.2, 100), 5)
    t_py = _median_ms(lambda: m.py_func(img, -2.0, 1.0, -1.2, 1.2, 100), 1)
    rows.append(("Mandelbrot 160x120x100, 1 thread: jit", f"{t_jit:.1f} ms", ""))
    rows.append(("  .py_func (plain CPython)", f"{t_py:.0f} ms", ""))
    rows.append(("  speedup over .py_func", f"{t_py / t_jit:.0f}x", ">= 100x"))
    runtime.set_host(None)

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>10}  target")
    print("-" * (width + 22))
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>10}  {target}")


if __name__ == "__main__":
    main()
