"""The pool's state in words: `%parallel` (one line), `%parallel info` (the full state with
the isolation fix), the widget's status panel, and why max_threads() is what it is.

Pure functions of `pool_info()` dicts and `Snapshot`s; nothing here reads or changes the pool
except `why_max()`, which asks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import pool
from . import startup


@dataclass
class Snapshot:
    """What every widget shows: the pool's counters plus what the widgets add to them."""

    info: dict[str, Any]
    shares: list[float]  # per thread: its tasks since the last change / the busiest thread's
    error: str | None  # the last failed resize, until a resize succeeds
    last_run: dict[str, Any] | None
    starting: bool  # JupyterLite: %load_ext started the pool and it is not up yet


def size_text(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def why_max() -> str:
    """Why max_threads() is what it is, for out-of-range messages."""
    info = pool.pool_info()
    if info.get("build") == "st":
        iso = info.get("isolation") or {}
        return (
            f"the single-thread build runs: {iso.get('reason') or 'no shared memory'}; "
            f"fix: {iso.get('fix') or 'serve the site cross-origin isolated'}"
        )
    return "the most threads the pool's build can run; more than the cores is fine"


def status_line(info: dict[str, Any]) -> str:
    """`%parallel`: one line."""
    if not info.get("started", False):
        how = (
            "run `await jupyterlite_rayon.init_thread_pool()`"
            if startup.IN_BROWSER
            else "any %%parallel cell or kernel call starts it"
        )
        return f"jupyterlite_rayon: no pool running ({how})"
    isolated = "isolated" if info.get("isolated") else "NOT isolated (one thread)"
    return (
        f"jupyterlite_rayon: {info.get('backend')} backend, {info.get('build')} build, "
        f"{info.get('threads')}/{info.get('max_threads')} threads, {isolated}; "
        f"{info.get('calls', 0)} calls, {info.get('tasks', 0)} tasks, "
        f"{info.get('steals', 0)} steals, {size_text(int(info.get('bytes_in_use', 0)))} in use"
    )


def info_text(info: dict[str, Any]) -> str:
    """`%parallel info`: the pool's state per thread, and the isolation state with its fix."""
    iso = info.get("isolation") or {}
    lines = [status_line(info), ""]
    if info.get("started", False):
        lines += [
            f"backend          {info.get('backend')} ({info.get('build')} build)",
            (
                f"threads          {info.get('threads')} of at most {info.get('max_threads')}"
                f" on {info.get('cores')} cores ({info.get('busy', 0)} busy now)"
            ),
            f"kernel calls     {info.get('calls', 0)}",
            f"tasks / steals   {info.get('tasks', 0)} / {info.get('steals', 0)}",
            (
                f"memory           {size_text(int(info.get('bytes_in_use', 0)))} in use of "
                f"{size_text(int(info.get('memory_bytes', 0)))} pool memory"
            ),
        ]
        per_thread = info.get("per_thread") or []
        for i, t in enumerate(per_thread):
            lines.append(
                f"  thread {i:<3}     {t.get('state', '?'):<9} "
                f"{t.get('tasks', 0)} tasks, {t.get('steals', 0)} steals"
            )
    lines += [
        "",
        f"cross-origin isolated  {iso.get('cross_origin_isolated')}",
        f"shared memory          {iso.get('shared_memory')}",
    ]
    if info.get("isolated"):
        lines.append("isolation              ok: the threaded build runs")
    else:
        lines.append(f"why not isolated       {iso.get('reason') or 'unknown'}")
        lines.append(f"how to fix             {iso.get('fix') or 'see the README'}")
    return "\n".join(lines)


def status_rows(snapshot: Snapshot) -> list[tuple[str, str]]:
    """The widget's status panel as (label, text) rows; the view renders them."""
    info = snapshot.info
    iso = info.get("isolation") or {}
    if not info.get("started", False):
        if snapshot.starting:
            state = "starting (%load_ext began it)"
        elif startup.IN_BROWSER:
            state = "not started: run `await jupyterlite_rayon.init_thread_pool()`"
        else:
            state = (
                "not running: the next kernel call (or "
                "jupyterlite_rayon.init_thread_pool()) starts it"
            )
        return [("pool", state)]
    if info.get("isolated"):
        isolation = "isolated: shared memory works"
    else:
        isolation = (
            f"not isolated ({iso.get('reason') or 'unknown reason'}); "
            f"fix: {iso.get('fix') or 'see the README'}"
        )
    rows = [
        ("backend", f"{info.get('backend')}, {info.get('build')} build"),
        ("isolation", isolation),
        ("threads", f"{info.get('threads')} on {info.get('cores')} cores"),
        ("busy", str(info.get("busy", 0))),
        ("tasks", str(info.get("tasks", 0))),
        ("steals", str(info.get("steals", 0))),
        ("calls", str(info.get("calls", 0))),
        (
            "memory",
            (
                f"{size_text(int(info.get('bytes_in_use', 0)))} in use of "
                f"{size_text(int(info.get('memory_bytes', 0)))}"
            ),
        ),
        ("last run", _last_run_text(snapshot.last_run)),
    ]
    if snapshot.error:
        rows.append(("error", snapshot.error))
    return rows


def _last_run_text(last: dict[str, Any] | None) -> str:
    if not last:
        return "none yet"
    seconds = last.get("wall_seconds", last.get("wall"))
    name = last.get("name", "?")
    if isinstance(seconds, int | float):
        return f"{name}: {seconds * 1e3:.1f} ms"
    return str(name)
