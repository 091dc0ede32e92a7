"""The pool widgets' shared state and live updates, and `widget()`, which makes one.

`widget()` returns a `PoolWidget` (built in `widget.py` from ipywidgets 8's own widgets, so no
front-end code is needed). Every widget on the page shows the same `Snapshot`: one read of the
pool's counters, taken here and pushed to all of them, so two widgets never disagree and a
`set_num_threads()` call anywhere shows up in every slider.

What "live" means:
- CPython (wasmtime backend): a daemon thread reads the shared counters every 0.25 s while a
  widget exists, also while a cell runs (the pool's threads do not hold the GIL).
- Pyodide (JupyterLite): the kernel's worker is blocked inside a pool call, and no timer of
  that worker can fire until it returns, so Python updates the widget after every pool call
  (the `on_run` hook, at most 10 times a second), after every cell, and when the pool finishes
  starting. During a call the page draws the live part: the labextension reads the same shared
  counters as its status bar, five times a second, and writes busy, tasks, steals, calls, each
  thread's bar and the call's elapsed time into the widget (labextension/src/widgetview.ts),
  so widget and status bar show one reading.

This module imports nothing from ipywidgets at import time: `import jupyterlite_rayon` works
without it, and `widget()` says how to install it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import pool
from ..errors import NeedsAwait
from . import startup
from .status import Snapshot

if TYPE_CHECKING:
    from .widget import PoolWidget

POLL_SECONDS = 0.25
ON_RUN_MIN_SECONDS = 0.1

LIVE_NOTE = (
    "busy, tasks and threads are live from the page, also during a call; the rest updates "
    "after every pool call and every cell"
    if startup.IN_BROWSER
    else f"updates every {POLL_SECONDS} s from the shared counters, also during runs"
)


@dataclass
class _Shared:
    views: list[PoolWidget] = field(default_factory=list)
    error: str | None = None
    prev_tasks: list[int] = field(default_factory=list)
    shares: list[float] = field(default_factory=list)
    last_push: float = 0.0
    last_signature: tuple[Any, ...] = ()
    poller: threading.Thread | None = None
    hooks_installed: bool = False


# One lock for reading the pool and pushing to the widgets, so the poller thread and the
# kernel's thread never interleave a stale snapshot with a fresh one.
_lock = threading.RLock()
_shared = _Shared()


def widget() -> PoolWidget:
    """A pool widget: thread slider, status panel, one activity bar per thread."""
    try:
        from .widget import PoolWidget
    except ImportError as exc:
        how = "%pip install ipywidgets" if startup.IN_BROWSER else "pip install ipywidgets"
        raise ImportError(
            f"the pool widget needs ipywidgets 8: run `{how}` and try again ({exc})"
        ) from exc
    if not startup.IN_BROWSER and not startup.pool_started():
        pool.init_thread_pool()  # synchronous in CPython; Pyodide's start must be awaited
    view = PoolWidget(on_resize=resize, on_close=unregister, note=LIVE_NOTE)
    with _lock:
        _shared.views.append(view)
        _install_hooks()
        refresh_all()  # the new widget and the others show one snapshot
    _ensure_poller()
    return view


def unregister(view: PoolWidget) -> None:
    """Forget a closed widget; the poller stops when none is left."""
    with _lock:
        if view in _shared.views:
            _shared.views.remove(view)


def live_widgets() -> list[PoolWidget]:
    with _lock:
        return list(_shared.views)


def refresh_all() -> None:
    """Read the counters once and show them in every widget (nothing when there is none)."""
    with _lock:
        if not _shared.views:
            return
        snapshot = _snapshot()
        _shared.last_push = time.monotonic()
        for view in list(_shared.views):
            view.show(snapshot)


def resize(n: int) -> None:
    """A slider was released at n: resize the pool, or show why it failed, in every widget."""
    with _lock:
        try:
            if pool.current_num_threads() != n:
                pool.set_num_threads(n)
            _shared.error = None
        except NeedsAwait:
            # A slider's message handler cannot block on new workers (browser): start them
            # on the kernel's loop; every widget refreshes when they run.
            _shared.error = None
            _grow_in_background(n)
        except (ValueError, RuntimeError) as exc:
            _shared.error = f"could not resize the pool to {n} threads: {exc}"
        refresh_all()


def _grow_in_background(n: int) -> None:
    async def grow() -> None:
        try:
            await pool.init_thread_pool(n)
            _shared.error = None
        except (ValueError, RuntimeError) as exc:
            _shared.error = f"could not resize the pool to {n} threads: {exc}"
        refresh_all()

    asyncio.ensure_future(grow())


def _snapshot() -> Snapshot:
    info = pool.pool_info()
    tasks = [int(t.get("tasks", 0)) for t in info.get("per_thread") or []]
    # A thread that joined since the last read starts from its current count: its record may
    # hold tasks from before an earlier shrink.
    prev = _shared.prev_tasks + tasks[len(_shared.prev_tasks) :]
    deltas = [max(now - before, 0) for now, before in zip(tasks, prev)]
    if not _shared.prev_tasks:
        # First read: show how all the work so far was shared out.
        busiest = max(tasks, default=0)
        _shared.shares = [t / busiest if busiest else 0.0 for t in tasks]
        _shared.prev_tasks = tasks
    elif any(deltas):
        busiest = max(deltas)
        _shared.shares = [d / busiest for d in deltas]
        _shared.prev_tasks = tasks
    shares = (_shared.shares + [0.0] * len(tasks))[: len(tasks)]
    try:
        last = pool.last_run()
    except RuntimeError:
        last = None
    return Snapshot(
        info=info, shares=shares, error=_shared.error, last_run=last, starting=startup.starting()
    )


def _signature(info: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("started", "threads", "busy", "tasks", "steals", "calls", "bytes_in_use")
    per_thread = tuple(t.get("state") for t in info.get("per_thread") or [])
    return tuple(info.get(k) for k in keys) + per_thread


def _install_hooks() -> None:
    """Once per process: refresh after pool calls, after cells, and when the pool starts."""
    if _shared.hooks_installed:
        return
    _shared.hooks_installed = True
    pool.on_run(_on_run)
    try:
        from IPython import get_ipython
    except ImportError:
        shell = None  # plain Python: no cell events
    else:
        shell = get_ipython()
    if shell is not None:
        shell.events.register("post_run_cell", _after_cell)
    startup.on_start_finished(refresh_all)


def _on_run(name: str, wall_seconds: float) -> None:
    # Throttled: a loop of many tiny calls must not flood the front end with messages.
    if time.monotonic() - _shared.last_push >= ON_RUN_MIN_SECONDS:
        refresh_all()


def _after_cell(*_args: Any) -> None:
    refresh_all()


def _ensure_poller() -> None:
    if startup.IN_BROWSER:
        return  # no thread can run while the worker is blocked; see the module docstring
    with _lock:
        if _shared.poller is not None and _shared.poller.is_alive():
            return
        _shared.poller = threading.Thread(
            target=_poll, name="jupyterlite-rayon-widget", daemon=True
        )
        _shared.poller.start()


def _poll() -> None:
    while True:
        time.sleep(POLL_SECONDS)
        with _lock:
            if not _shared.views:
                _shared.poller = None
                return
            signature = _signature(pool.pool_info())
            if signature != _shared.last_signature:
                _shared.last_signature = signature
                refresh_all()
