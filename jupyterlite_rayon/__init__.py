"""jupyterlite-rayon: a multi-threaded WebAssembly pool for notebooks.

    import jupyterlite_rayon as jr
    await jr.init_thread_pool(4)          # JupyterLite; in CPython it starts synchronously
    x = jr.asarray(array.array("d", range(10)))
    jr.sum(x), jr.sqrt(x).tolist()

The same code runs in JupyterLite (Pyodide, browser Workers) and in CPython (wasmtime).
See docs/api.md for the whole API.
"""

from __future__ import annotations

from typing import Any

from . import dtypes, errors
from .array import PoolArray, asarray, empty, frombuffer, zeros
from .backends import jit_host
from .errors import (
    ForeignModuleError,
    PoolError,
    PoolMemoryError,
    PoolNotStarted,
    ProcExit,
    WasmTrap,
)
from .jit import JitError, jit, njit, prange
from .jit import runtime as jit_runtime
from .kernels import (
    abs,
    add,
    argsort,
    bench_fib,
    bench_for,
    clip,
    cos,
    cumsum,
    divide,
    dot,
    exp,
    histogram,
    log,
    mandelbrot,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    monte_carlo_pi,
    multiply,
    negative,
    power,
    sin,
    sort,
    sqrt,
    subtract,
    sum,
)
from .notebook.live import widget  # imports ipywidgets only when a widget is made
from .pool import (
    cpu_count,
    current_num_threads,
    get_backend,
    init_thread_pool,
    last_run,
    max_threads,
    on_run,
    pool_info,
    remove_run_hook,
    set_num_threads,
    shutdown,
    threadpool_limits,
)

__version__ = "0.1.0"

# Jitted functions run on the pool the rest of the API uses.
jit_runtime.set_host(jit_host.current)


def load_module(source: Any, **options: Any) -> Any:
    """Load a bring-your-own wasi-threads module (see jupyterlite_rayon.foreign)."""
    from .foreign import load_module as _load

    return _load(source, **options)


def load_ipython_extension(ip: Any) -> None:
    """`%load_ext jupyterlite_rayon`: registers the %parallel / %%parallel magics."""
    from .notebook import magics

    magics.load_ipython_extension(ip)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyterlite-rayon"}]


__all__ = [
    "ForeignModuleError",
    "JitError",
    "PoolArray",
    "PoolError",
    "PoolMemoryError",
    "PoolNotStarted",
    "ProcExit",
    "WasmTrap",
    "abs",
    "add",
    "argsort",
    "asarray",
    "bench_fib",
    "bench_for",
    "clip",
    "cos",
    "cpu_count",
    "cumsum",
    "current_num_threads",
    "divide",
    "dot",
    "dtypes",
    "empty",
    "errors",
    "exp",
    "frombuffer",
    "get_backend",
    "histogram",
    "init_thread_pool",
    "jit",
    "last_run",
    "load_ipython_extension",
    "load_module",
    "log",
    "mandelbrot",
    "matmul",
    "max",
    "max_threads",
    "maximum",
    "mean",
    "min",
    "minimum",
    "monte_carlo_pi",
    "multiply",
    "negative",
    "njit",
    "on_run",
    "pool_info",
    "power",
    "prange",
    "remove_run_hook",
    "set_num_threads",
    "shutdown",
    "sin",
    "sort",
    "sqrt",
    "subtract",
    "sum",
    "threadpool_limits",
    "widget",
    "zeros",
]
