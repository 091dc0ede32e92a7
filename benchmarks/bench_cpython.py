"""Per kernel: numpy (one thread) vs the pool on wasmtime at 1 and 2 threads, in one run.

    python benchmarks/bench_cpython.py [--size N] [--threads 1,2] [--repeat R]

Prints wall time (best of R) and cpu/wall for each, as a table. The machine may be shared:
read speedups together with cpu/wall (2.0 means two cores were really busy).
"""

from __future__ import annotations

import os

# numpy's BLAS must use one thread, so that "numpy" means one core (set before importing it).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from affinity import pin_pool_threads, placement

import jupyterlite_rayon as jr


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Best wall time of `repeat` runs, and cpu/wall of that run."""
    best, ratio = float("inf"), 0.0
    for _ in range(repeat):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = fn()
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        if isinstance(result, jr.PoolArray):
            result.close()
        if wall < best:
            best, ratio = wall, cpu / wall if wall > 0 else 0.0
    return best, ratio


def cases(n: int) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n)
    y = rng.standard_normal(n)
    px, py = jr.asarray(x), jr.asarray(y)  # resident in pool memory, like a notebook would
    side = int(np.sqrt(n // 8)) or 1
    a = rng.standard_normal((side, side))
    pa = jr.asarray(a)
    img = int(np.sqrt(n // 16)) or 1
    return [
        ("sum", lambda: x.sum(), lambda: jr.sum(px)),
        ("dot", lambda: x @ y, lambda: jr.dot(px, py)),
        ("sqrt", lambda: np.sqrt(x), lambda: jr.sqrt(px)),
        ("exp", lambda: np.exp(x), lambda: jr.exp(px)),
        ("sin", lambda: np.sin(x), lambda: jr.sin(px)),
        ("add", lambda: x + y, lambda: jr.add(px, py)),
        ("clip", lambda: np.clip(x, -1, 1), lambda: jr.clip(px, -1, 1)),
        ("cumsum", lambda: np.cumsum(x), lambda: jr.cumsum(px)),
        ("sort", lambda: np.sort(x, kind="stable"), lambda: jr.sort(px)),
        ("argsort", lambda: np.argsort(x, kind="stable"), lambda: jr.argsort(px)),
        ("histogram", lambda: np.histogram(x, 64, (-4, 4)),
         lambda: jr.histogram(px, 64, (-4, 4))[0]),
        (f"matmul {side}x{side}", lambda: a @ a, lambda: jr.matmul(pa, pa)),
        (f"mandelbrot {img}x{img}", lambda: _numpy_mandelbrot(img),
         lambda: jr.mandelbrot(img, img, max_iter=64)),
        ("pi", lambda: _numpy_pi(n // 4), lambda: jr.monte_carlo_pi(n // 4)),
    ]


def _numpy_mandelbrot(side: int, max_iter: int = 64) -> np.ndarray:
    cx = np.linspace(-2.0, 1.0, side, endpoint=False)[None, :]
    cy = np.linspace(-1.5, 1.5, side, endpoint=False)[:, None]
    zr = np.zeros((side, side))
    zi = np.zeros((side, side))
    out = np.zeros((side, side), dtype=np.uint32)
    for _ in range(max_iter):
        zr2, zi2 = zr * zr, zi * zi
        active = zr2 + zi2 <= 4.0
        zi = np.where(active, 2.0 * zr * zi + cy, zi)
        zr = np.where(active, zr2 - zi2 + cx, zr)
        out += active
    return out


def _numpy_pi(samples: int) -> float:
    u = np.random.default_rng(0).random((samples, 2))
    return 4.0 * np.count_nonzero((u * u).sum(axis=1) < 1.0) / samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2_000_000, help="elements per array")
    parser.add_argument(
        "--pin", action="store_true", help="one pool thread per core (see affinity.py)"
    )
    parser.add_argument("--threads", default="1,2", help="pool thread counts, e.g. 1,2,4")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best)")
    args = parser.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    jr.init_thread_pool(max(counts))
    print(f"n = {args.size:,}; wasmtime pool, threads {counts}; numpy on one thread; "
          f"best of {args.repeat}; cores: {os.cpu_count()}, load {os.getloadavg()[0]:.2f}; "
          f"{placement(args.pin)}")
    head = f"{'kernel':22} {'numpy ms':>9} {'cpu/w':>5}"
    for t in counts:
        head += f" {f'pool@{t} ms':>11} {'cpu/w':>5}"
    if len(counts) > 1:
        head += f" {f'{counts[-1]}/{counts[0]}x':>7}"
    print(head)
    print("-" * len(head))
    for name, ref, pooled in cases(args.size):
        with np.errstate(all="ignore"):  # sqrt/log of negative inputs: NaN, as in the pool
            wall, ratio = timed(ref, args.repeat)
        line = f"{name:22} {wall * 1e3:9.2f} {ratio:5.2f}"
        walls = []
        for t in counts:
            with jr.threadpool_limits(t):
                if args.pin:
                    pin_pool_threads()  # a resize starts new helper threads
                wall_t, ratio_t = timed(pooled, args.repeat)
            walls.append(wall_t)
            line += f" {wall_t * 1e3:11.2f} {ratio_t:5.2f}"
        if len(counts) > 1:
            line += f" {walls[0] / walls[-1]:7.2f}"
        print(line, flush=True)
    # The per-call cost of the Python -> pool round trip, for small inputs.
    tiny = jr.asarray(np.ones(8))
    wall, _ = timed(lambda: [jr.sum(tiny) for _ in range(1000)], 1)
    print(f"\nper-call overhead (sum of 8 elements, resident): {wall * 1e3:.1f} us")

    def sqrt_loop() -> None:
        for _ in range(1000):
            jr.sqrt(tiny)  # each output dropped: its block serves the next (cells.Kept)

    wall, _ = timed(sqrt_loop, 1)
    print(f"per-call overhead (sqrt of 8 elements, resident, output dropped): {wall * 1e3:.1f} us")
    wall, _ = timed(lambda: [jr.sqrt(tiny) for _ in range(1000)], 1)
    print(f"per-call overhead (sqrt of 8 elements, resident, outputs kept): {wall * 1e3:.1f} us")


if __name__ == "__main__":
    main()
