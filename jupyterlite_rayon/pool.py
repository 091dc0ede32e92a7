"""The live pool: start it, size it, read its counters, time its calls.

One pool per interpreter. In CPython (wasmtime) it starts synchronously, lazily on the first
kernel call; in Pyodide it must be started with `await init_thread_pool()`.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Self, TypeVar

from . import abi, backends, counters
from .backends.base import Backend
from .cells import Cells, Kept
from .errors import PoolNotStarted

_lock = threading.RLock()
_backend: Backend | None = None
_scratch = 0  # 16 bytes of pool memory for scalar results, allocated once per pool
_hooks: list[Callable[[str, float], Any]] = []
_last_run: dict[str, Any] | None = None

F = TypeVar("F", bound=Callable[..., Any])


class _Done:
    """An already-completed awaitable, so `await init_thread_pool()` works in CPython too."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, int]:
        return self.value
        yield  # makes this a generator

    def __repr__(self) -> str:
        return f"<thread pool started: {self.value} threads>"


def _check_type(n: object, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what}: the thread count must be an int, got {type(n).__name__}")
    return n


def check_count(n: object, what: str) -> int:
    """The one check of a requested thread count against what this pool may have."""
    n = _check_type(n, what)
    top = max_threads()
    if not 1 <= n <= top:
        backend = _backend
        if backend is not None and not backend.threaded:
            # More cores will not help here: the page lacks shared memory.
            iso = backend.isolation()
            raise ValueError(
                f"{what}({n}): this pool runs the single-thread build, so it has "
                f"exactly 1 thread ({iso.get('reason') or 'no shared memory'}). "
                f"{iso.get('fix') or ''}".rstrip()
            )
        raise ValueError(
            f"{what}({n}): the thread count must be between 1 and {top}, the "
            "most threads the pool's build can run"
        )
    _say_if_oversubscribed(n)
    return n


# The thread count after pool.py's last start or resize (every resize goes through here).
_known_threads = [0]


def _install(backend: Backend) -> int:
    global _backend, _scratch
    _backend = backend
    _scratch = backend.alloc(16, True)
    backend.cells = Cells(backend)
    backend.kept = Kept()
    _known_threads[0] = current_num_threads()
    return _known_threads[0]


def init_thread_pool(n: int | None = None) -> Awaitable[int]:
    """Start the pool with n threads (None: all cores), or resize the running pool.

    CPython: starts now and returns a completed awaitable (await it or not). Pyodide:
    returns an awaitable that must be awaited before any kernel call.
    """
    backend = _backend
    if backend is not None and not backend.threaded:
        # The single-thread fallback already warned once and said how to fix the page;
        # asking again for threads keeps the one thread, like the first start did.
        if n is not None:
            _check_type(n, "init_thread_pool")
        return _Done(1)
    count = default_threads() if n is None else check_count(n, "init_thread_pool")
    if backend is not None:
        if backend.asynchronous:
            return _resize_async(backend, count)
        backend.set_threads(count)
        _known_threads[0] = current_num_threads()
        return _Done(count)
    engine = backends.backend_class()
    if engine.asynchronous:
        return _start_async(engine, count)
    with _lock:
        if _backend is None:
            return _Done(_install(engine.start(count)))
    return init_thread_pool(n)  # another thread started it meanwhile: resize that one


async def _start_async(engine: type[Backend], n: int) -> int:
    backend = await engine.start_async(n)
    with _lock:
        if _backend is not None:  # two concurrent starts: keep the first
            backend.close()
            return current_num_threads()
        return _install(backend)


async def _resize_async(backend: Backend, n: int) -> int:
    await backend.resize(n)
    _known_threads[0] = current_num_threads()
    return _known_threads[0]


def running_backend() -> Backend | None:
    """The running backend, or None (never starts one)."""
    return _backend


def get_backend() -> Backend:
    """The running backend; CPython starts a pool with all cores on first use."""
    backend = _backend
    if backend is not None:
        return backend
    if backends.IN_BROWSER:
        raise PoolNotStarted(
            "the thread pool is not running; run `await jupyterlite_rayon.init_thread_pool()` first"
        )
    init_thread_pool()
    assert _backend is not None
    return _backend


def scratch() -> int:
    """Address of 16 bytes of pool memory for a kernel's scalar result (one call at a time)."""
    get_backend()
    return _scratch


def shutdown() -> None:
    """Stop the pool and free its memory; arrays of this pool become unusable."""
    global _backend, _scratch
    _known_threads[0] = 0
    with _lock:
        backend, _backend, _scratch = _backend, None, 0
    if backend is not None:
        backend.close()


def current_num_threads() -> int:
    """Threads in the pool, the caller included (0 before a pool runs in Pyodide)."""
    backend = _backend
    if backend is None:
        if backends.IN_BROWSER:
            return 0
        backend = get_backend()
    return counters.header_field(backend, "threads")


def set_num_threads(n: int) -> int:
    """Resize the running pool to n threads; returns the previous count."""
    n = check_count(n, "set_num_threads")
    backend = get_backend()
    previous = current_num_threads()
    if n != previous:
        try:
            backend.set_threads(n)
        finally:
            _known_threads[0] = current_num_threads()
    return previous


def max_threads() -> int:
    """The most threads the pool may have: the build's cap (64 threaded, 1 single-thread).

    More threads than cores is allowed, as in rayon and threadpoolctl: they share the cores
    (a notebook written on an 8-core machine still runs on a 2-core one), and the pool says so
    once. `cpu_count()` is the cores; a pool started without a count uses them all.
    """
    backend = _backend
    return abi.MAX_THREADS if backend is None else max(1, backend.build_max_threads)


def cpu_count() -> int:
    """The cores this interpreter is offered (os.cpu_count, navigator.hardwareConcurrency)."""
    backend = _backend
    return max(1, backend.cpu_count() if backend is not None else backends.cpu_count())


def default_threads() -> int:
    """A pool started without a count gets one thread per core (capped by the build)."""
    return min(cpu_count(), max_threads())


_warned_oversubscribed = False


def _say_if_oversubscribed(n: int) -> None:
    global _warned_oversubscribed
    cores = cpu_count()
    if n > cores and not _warned_oversubscribed:
        _warned_oversubscribed = True
        import warnings

        warnings.warn(
            f"jupyterlite_rayon: {n} threads on {cores} cores: the threads share the cores, so "
            f"results are the same and speedups stop at about {cores}x (said once)",
            RuntimeWarning,
            stacklevel=4,  # the user's call: _say <- check_count <- the API function <- user
        )


class threadpool_limits:
    """Run a block (or a decorated function) with n threads, then restore the previous count.

        with jr.threadpool_limits(2): ...
        @jr.threadpool_limits(1)
        def f(): ...

    The pool is one per process, so limits from several Python threads share it: the newest
    active limit holds, and when the last one ends the count from before the first is back,
    whatever order they end in.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._tokens: list[object] = []

    def __enter__(self) -> Self:
        n = check_count(self.n, "threadpool_limits")
        token = object()
        with _limits_lock:
            if not _limits:
                _limits_base[0] = current_num_threads()
            _limits.append((token, n))
            _apply_limits()
        self._tokens.append(token)
        return self

    def __exit__(self, *exc: object) -> None:
        token = self._tokens.pop()
        with _limits_lock:
            _limits[:] = [(t, n) for t, n in _limits if t is not token]
            _apply_limits()

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with threadpool_limits(self.n):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


# Active limits (token, n), oldest first, and the count from before the first of them.
_limits: list[tuple[object, int]] = []
_limits_base = [0]
_limits_lock = threading.RLock()


def _apply_limits() -> None:
    want = _limits[-1][1] if _limits else _limits_base[0]
    if want and current_num_threads() != want:
        set_num_threads(want)


def _forget_pool_in_child() -> None:
    """After os.fork() the child has none of the parent's threads: its pool starts anew."""
    global _backend, _scratch, _lock, _limits_lock
    _backend, _scratch = None, 0
    _known_threads[0] = 0
    _lock, _limits_lock = threading.RLock(), threading.RLock()
    _limits.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def pool_info() -> dict[str, Any]:
    """The pool's state from its counters block: never blocks, never calls into the pool."""
    backend = _backend
    if backend is None:
        return {
            "backend": backends.backend_name(),
            "build": None,
            "threads": 0,
            "max_threads": max_threads(),
            "busy": 0,
            "tasks": 0,
            "steals": 0,
            "bytes_in_use": 0,
            "bytes_kept": 0,
            "memory_bytes": 0,
            "calls": 0,
            "per_thread": [],
            "isolated": None,
            "isolation": {},
            "started": False,
        }
    c = backend.counters()
    kept = backend.kept.block_bytes(backend) if backend.kept is not None else 0
    isolation = backend.isolation()
    return {
        "backend": backend.name,
        "build": "mt" if c.threaded else "st",
        "threads": c.threads,
        "max_threads": min(max_threads(), c.max_threads),
        "cores": cpu_count(),
        "busy": c.busy,
        "tasks": c.tasks,
        "steals": c.steals,
        # What arrays hold: the small freed blocks kept for reuse are counted apart.
        "bytes_in_use": c.bytes_in_use - kept,
        "bytes_kept": kept,
        "memory_bytes": backend.memory_size(),
        "calls": c.calls,
        "per_thread": [
            {"state": t.state, "tasks": t.tasks, "steals": t.steals} for t in c.per_thread
        ],
        "isolated": bool(isolation.get("cross_origin_isolated", False)),
        "isolation": isolation,
        "started": True,
    }


def on_run(callback: Callable[[str, float], Any]) -> Callable[[str, float], Any]:
    """Call callback(name, wall_seconds) after each kernel call; returns it (a decorator)."""
    _hooks.append(callback)
    return callback


def remove_run_hook(callback: Callable[[str, float], Any]) -> None:
    """Stop calling a callback registered with on_run."""
    if callback in _hooks:
        _hooks.remove(callback)


def last_run() -> dict[str, Any] | None:
    """{"name", "wall", "threads", "time"} of the last kernel call, or None."""
    return None if _last_run is None else dict(_last_run)


def record_run(name: str, wall: float) -> None:
    """Called by the kernels after each call: remember it and tell the hooks."""
    global _last_run
    # The count pool.py last set: reading the counters costs a host round trip per call.
    threads = _known_threads[0] or current_num_threads()
    _last_run = {"name": name, "wall": wall, "threads": threads, "time": time.time()}
    for hook in _hooks:
        try:
            hook(name, wall)
        except Exception as exc:  # noqa: BLE001 -- a broken hook must not break the call
            import warnings

            warnings.warn(
                f"jupyterlite_rayon: on_run hook {hook!r} failed: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )
