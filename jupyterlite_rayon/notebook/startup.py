"""The pool start that `%load_ext jupyterlite_rayon` schedules in JupyterLite.

In Pyodide `init_thread_pool()` must be awaited, and `%load_ext` cannot await, so it schedules
the start on the kernel's running loop. This module owns that one task: the magics wait for it
(or say what to run), the widgets show "starting" while it runs and refresh when it ends.
In CPython the pool starts synchronously and there is never a task.

Nothing here imports IPython or ipywidgets: `import jupyterlite_rayon` works without them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .. import backends, pool
from ..errors import PoolNotStarted

# The notebook modules read this one name at call time (startup.IN_BROWSER), so a test can
# replay JupyterLite's behaviour in CPython by patching it here.
IN_BROWSER = backends.IN_BROWSER

# The start scheduled by %load_ext in JupyterLite (None elsewhere, or before %load_ext).
_start_task: asyncio.Future[Any] | None = None
# Called once each time a scheduled start finishes (however it finished).
_listeners: list[Callable[[], None]] = []


def pool_started() -> bool:
    """True when a pool runs and kernels can be called."""
    try:
        return bool(pool.pool_info().get("started", False))
    except RuntimeError:  # PoolError and friends: there is no usable pool
        return False


def starting() -> bool:
    """True while the start %load_ext scheduled has not finished."""
    return _start_task is not None and not _start_task.done()


def on_start_finished(callback: Callable[[], None]) -> None:
    """Call `callback()` when a scheduled start finishes (also one scheduled later)."""
    if callback not in _listeners:
        _listeners.append(callback)


def _notify(_task: asyncio.Future[Any]) -> None:
    for callback in _listeners:
        callback()


def start_in_background() -> None:
    """JupyterLite: schedule `init_thread_pool()` on the kernel's running loop."""
    global _start_task
    if pool_started() or starting():
        return
    awaitable: Awaitable[Any] = pool.init_thread_pool()
    _start_task = asyncio.ensure_future(awaitable)
    _start_task.add_done_callback(_notify)
    print(
        "jupyterlite_rayon: starting the thread pool in the background; "
        "%%parallel cells wait for it."
    )


def ensure_pool() -> None:
    """Start the pool or wait for its start; PoolNotStarted says what to run when neither can
    happen now (Pyodide without JSPI cannot block a cell for an asynchronous start)."""
    if pool_started():
        return
    if not IN_BROWSER:
        pool.init_thread_pool()  # synchronous in CPython
        return
    task = _start_task
    if task is not None and not task.done() and _wait_in_pyodide(task):
        return
    if task is not None and task.done():
        if task.cancelled():
            reason = "its start was cancelled"
        else:
            exc = task.exception()
            reason = f"it failed to start: {exc}" if exc is not None else "it stopped"
        raise PoolNotStarted(
            f"no thread pool: {reason}; run `await jupyterlite_rayon.init_thread_pool()` "
            "in a cell, then run this cell again"
        )
    if task is not None:
        raise PoolNotStarted(
            "the thread pool is still starting (%load_ext began it); run this cell again "
            "in a moment, or run `await jupyterlite_rayon.init_thread_pool()` first"
        )
    raise PoolNotStarted(
        "no thread pool yet: run `await jupyterlite_rayon.init_thread_pool()` in a cell first"
    )


def _wait_in_pyodide(task: asyncio.Future[Any]) -> bool:
    """Block until the pool start finishes, where Pyodide can (JSPI); False if it cannot."""
    try:
        from pyodide.ffi import can_run_sync, run_sync  # type: ignore[import-not-found]
    except ImportError:
        return False
    if not can_run_sync():
        return False
    try:
        run_sync(task)
    except Exception:  # noqa: BLE001 - JsException or the start's own error, reported later
        return False  # ensure_pool then reports the task's own error
    return pool_started()
