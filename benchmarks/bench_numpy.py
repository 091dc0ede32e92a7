"""The kernels beside numpy where they used to fall off a cliff (issue 9 item 14), in one run.

    python benchmarks/bench_numpy.py [--repeat R] [--threads 1,2]

Cases: sorting presorted, reversed and constant input of 2*10^6 (random input for scale),
histograms with many bins on little data, and matrix-vector products (matmul (m,k) @ (k,1) and
jr.dot of 2-D with 1-D). numpy runs on one thread (its BLAS too) and sorts with
kind="stable", the pool's order. Each wall time is the best of R runs, with that run's
cpu/wall beside it (2.0: two cores were busy; on a shared machine a neighbour may hold one).
The last columns are numpy's time over the pool's: above 1.0 the pool is faster.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are dropped in this process before numpy loads: they
slow a current numpy's BLAS (they are set on some machines for old OpenBLAS builds).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # numpy means one core; set before numpy loads
_DROPPED = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if os.environ.pop(v, None)]

import argparse
import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from affinity import pin_pool_threads, placement

import jupyterlite_rayon as jr

Case = tuple[str, Callable[[], Any], Callable[[], Any]]


def _close(result: Any) -> None:
    for r in result if isinstance(result, tuple) else (result,):
        if isinstance(r, jr.PoolArray):
            r.close()


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Best wall time of `repeat` runs, and the cpu/wall of that run."""
    best, ratio = float("inf"), 0.0
    for _ in range(repeat):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = fn()
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        _close(result)
        if wall < best:
            best, ratio = wall, cpu / wall if wall > 0 else 0.0
    return best, ratio


def sort_cases(n: int) -> list[Case]:
    rng = np.random.default_rng(0)
    inputs = {
        "presorted": np.arange(n, dtype=np.float64),
        "reversed": np.arange(n, dtype=np.float64)[::-1].copy(),
        "constant": np.full(n, 3.5),
        "random": rng.standard_normal(n),
    }
    out: list[Case] = []
    # resident in pool memory, as a notebook would hold it
    pooled = {name: jr.asarray(x) for name, x in inputs.items()}
    for name, x in inputs.items():
        np_sort = functools.partial(np.sort, x, kind="stable")
        out.append((f"sort {name} 2e6", np_sort, functools.partial(jr.sort, pooled[name])))
    for name, x in inputs.items():
        px = pooled[name]
        np_argsort = functools.partial(np.argsort, x, kind="stable")
        out.append((f"argsort {name} 2e6", np_argsort, functools.partial(jr.argsort, px)))
    return out


def histogram_cases() -> list[Case]:
    rng = np.random.default_rng(1)
    out: list[Case] = []
    for n, bins, given in (
        (1_000, 100_000, True),
        (1_000, 100_000, False),
        (1_000, 1_000_000, True),
        (10_000, 10_000, True),
    ):
        x = rng.standard_normal(n)
        px = jr.asarray(x)
        span = (-4.0, 4.0) if given else None
        label = f"histogram n={n:,} bins={bins:,}{'' if given else ' auto'}"
        out.append(
            (
                label,
                functools.partial(np.histogram, x, bins, span),
                functools.partial(jr.histogram, px, bins, span),
            )
        )
    return out


def matvec_cases() -> list[Case]:
    rng = np.random.default_rng(2)
    out: list[Case] = []
    for m, k, dtype in (
        (2000, 2000, "float64"),
        (4000, 4000, "float64"),
        (2000, 2000, "float32"),
        (4000, 4000, "float32"),
        (16_000, 300, "float64"),  # short rows, more than L3 holds
        (100_000, 20, "float64"),
        (20, 100_000, "float64"),
    ):
        a = rng.standard_normal((m, k)).astype(dtype)
        col = rng.standard_normal((k, 1)).astype(dtype)
        vec = col[:, 0].copy()
        pa, pcol, pvec = jr.asarray(a), jr.asarray(col), jr.asarray(vec)
        label = f"{m}x{k} {dtype[5:]}"
        out.append(
            (
                f"matmul {label} @ {k}x1",
                functools.partial(np.matmul, a, col),
                functools.partial(jr.matmul, pa, pcol),
            )
        )
        if dtype == "float64":
            out.append(
                (
                    f"dot {label} . {k}",
                    functools.partial(np.dot, a, vec),
                    functools.partial(jr.dot, pa, pvec),
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (best)")
    parser.add_argument(
        "--pin", action="store_true", help="one pool thread per core (see affinity.py)"
    )
    parser.add_argument("--threads", default="1,2", help="pool thread counts, e.g. 1,2")
    args = parser.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    jr.init_thread_pool(max(counts))
    dropped = f"; dropped {', '.join(_DROPPED)}" if _DROPPED else ""
    print(
        f"numpy {np.__version__} on one thread{dropped}; wasmtime pool at {counts} threads; "
        f"best of {args.repeat}; cores {os.cpu_count()}, load {os.getloadavg()[0]:.2f}; "
        f"{placement(args.pin)}"
    )
    head = f"{'case':34} {'numpy ms':>9} {'cpu/w':>5}"
    for t in counts:
        head += f" {f'pool@{t} ms':>10} {'cpu/w':>5}"
    for t in counts:
        head += f" {f'np/@{t}':>7}"
    print(head)
    print("-" * len(head))
    for name, ref, pooled in [*sort_cases(2_000_000), *histogram_cases(), *matvec_cases()]:
        wall, ratio = timed(ref, args.repeat)
        line = f"{name:34} {wall * 1e3:9.3f} {ratio:5.2f}"
        walls = []
        for t in counts:
            with jr.threadpool_limits(t):
                if args.pin:
                    pin_pool_threads()  # a resize starts new helper threads
                wall_t, ratio_t = timed(pooled, args.repeat)
            walls.append(wall_t)
            line += f" {wall_t * 1e3:10.3f} {ratio_t:5.2f}"
        for w in walls:
            line += f" {wall / w:7.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
