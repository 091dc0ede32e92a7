"""The pool widget on the real wasmtime pool: traits, slider -> pool round trips, several
widgets kept consistent, counters shown as the pool reports them, failed resizes shown."""

from __future__ import annotations

import asyncio
import html
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import jupyterlite_rayon as jr
from jupyterlite_rayon import pool
from jupyterlite_rayon.notebook import live, startup
from jupyterlite_rayon.notebook.status import Snapshot, status_rows
from jupyterlite_rayon.notebook.widget import PoolWidget


@pytest.fixture
def pair(ip: InteractiveShell) -> Iterator[tuple[PoolWidget, PoolWidget]]:
    before = jr.current_num_threads()
    first, second = live.widget(), live.widget()
    yield first, second
    first.close()
    second.close()
    jr.set_num_threads(before)


def status(view: PoolWidget) -> dict[str, str]:
    cells = re.findall(r"<th[^>]*>(.*?)</th><td[^>]*>(.*?)</td>", view.status.value)
    return {html.unescape(k): html.unescape(v) for k, v in cells}


def wait_until(condition, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    """For the background poller only; no assertion depends on how fast it is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_traits(pair: tuple[PoolWidget, PoolWidget]) -> None:
    view, _ = pair
    info = jr.pool_info()
    assert isinstance(view, PoolWidget)
    assert view.slider.min == 1 and view.slider.max == jr.cpu_count()
    assert view.slider.value == jr.current_num_threads()
    assert view.slider.continuous_update is False
    assert view.slider.disabled == (jr.cpu_count() == 1)
    rows = status(view)
    assert rows["backend"] == f"wasmtime, {info['build']} build"
    assert rows["isolation"].startswith("isolated")
    assert rows["threads"] == f"{info['threads']} on {info['cores']} cores"
    assert "error" not in rows
    assert len(view.bars.children) == jr.current_num_threads()
    assert "every" in view.note.value  # says what "live" means here


def test_slider_round_trip_and_two_widgets_agree(pair: tuple[PoolWidget, PoolWidget]) -> None:
    first, second = pair
    for n in [1, jr.cpu_count(), 1, 2 if jr.cpu_count() >= 2 else 1]:
        first.slider.value = n
        assert jr.current_num_threads() == n
        assert second.slider.value == n
        assert len(first.bars.children) == len(second.bars.children) == n
        want = f"{n} on {jr.cpu_count()} cores"
        assert status(first)["threads"] == status(second)["threads"] == want
    second.slider.value = 1
    assert jr.current_num_threads() == 1 and first.slider.value == 1


def test_set_num_threads_in_a_cell_updates_every_widget(
    ip: InteractiveShell, pair: tuple[PoolWidget, PoolWidget]
) -> None:
    first, second = pair
    target = jr.cpu_count() if jr.current_num_threads() == 1 else 1
    ip.run_cell(f"import jupyterlite_rayon as jr\njr.set_num_threads({target})")
    # post_run_cell refreshed them: no waiting needed
    assert first.slider.value == second.slider.value == target


def test_poller_follows_set_num_threads_outside_cells(pair: tuple[PoolWidget, PoolWidget]) -> None:
    first, second = pair
    target = jr.cpu_count() if jr.current_num_threads() == 1 else 1
    jr.set_num_threads(target)
    assert wait_until(lambda: first.slider.value == second.slider.value == target)


def test_counters_and_bars_show_the_pool(
    ip: InteractiveShell, pair: tuple[PoolWidget, PoolWidget]
) -> None:
    first, second = pair
    values = np.arange(300_007, dtype=np.float64)
    with jr.asarray(values) as data:
        assert jr.sum(data) == pytest.approx(float(values.sum()))
        live.refresh_all()
    info = jr.pool_info()
    for view in pair:
        rows = status(view)
        assert rows["tasks"] == str(info["tasks"]) and rows["calls"] == str(info["calls"])
        assert rows["steals"] == str(info["steals"])
        assert rows["last run"] != "none yet"
        labels = [row.children[1].value for row in view.bars.children]
        expected = [
            f"{t['state']}, {t['tasks']} tasks, {t['steals']} steals"
            for t in info["per_thread"][: info["threads"]]
        ]
        assert labels == expected
        shares = [row.children[0].value for row in view.bars.children]
        assert all(0.0 <= s <= 1.0 for s in shares) and max(shares) == 1.0
    assert [r.children[0].value for r in first.bars.children] == [
        r.children[0].value for r in second.bars.children
    ]


def test_failed_resize_shows_its_message_then_clears(pair: tuple[PoolWidget, PoolWidget]) -> None:
    first, second = pair
    before = jr.current_num_threads()
    live.resize(jr.max_threads() + 1)  # what a failed resize looks like (bounds stop the slider)
    for view in pair:
        rows = status(view)
        assert rows["error"].startswith(f"could not resize the pool to {jr.max_threads() + 1}")
        assert view.slider.value == before
    assert jr.current_num_threads() == before
    first.slider.value = 1
    assert "error" not in status(first) and "error" not in status(second)
    assert jr.current_num_threads() == 1


def test_closed_widgets_are_forgotten(ip: InteractiveShell) -> None:
    view = live.widget()
    assert view in live.live_widgets()
    view.close()
    assert view not in live.live_widgets()
    jr.set_num_threads(jr.current_num_threads())  # the pool is unaffected


def test_widget_without_ipywidgets_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    monkeypatch.delitem(sys.modules, "jupyterlite_rayon.notebook.widget")
    with pytest.raises(ImportError, match="pip install ipywidgets"):
        live.widget()


def test_status_rows_when_not_isolated_or_not_started() -> None:
    info = dict(
        jr.pool_info(),
        isolated=False,
        isolation={"reason": "no COOP/COEP headers", "fix": "serve with the headers"},
    )
    snap = Snapshot(info=info, shares=[], error=None, last_run=None, starting=False)
    rows = dict(status_rows(snap))
    assert rows["isolation"] == ("not isolated (no COOP/COEP headers); fix: serve with the headers")
    snap = Snapshot(info={"started": False}, shares=[], error=None, last_run=None, starting=True)
    assert status_rows(snap) == [("pool", "starting (%load_ext began it)")]


def test_poller_shows_the_pool_busy_during_one_long_call(
    pair: tuple[PoolWidget, PoolWidget],
) -> None:
    """CPython's "live": the background thread updates the panel while a call runs."""
    view, _ = pair
    jr.set_num_threads(jr.cpu_count())
    seen: list[tuple[str, str]] = []

    def record(change: dict[str, object]) -> None:
        rows = status(view)
        seen.append((threading.current_thread().name, rows.get("busy", "")))

    view.status.observe(record, names="value")
    try:
        # One call at a time, each long enough for a 0.25 s poll; only the poller can update
        # the panel while a call runs (the on_run hook fires after it).
        for n in range(30, 40):
            assert jr.bench_fib(n) == fib(n)
            if any(
                name == "jupyterlite-rayon-widget" and busy not in ("", "0") for name, busy in seen
            ):
                break
    finally:
        view.status.unobserve(record, names="value")
    assert any(
        name == "jupyterlite-rayon-widget" and busy not in ("", "0") for name, busy in seen
    ), seen


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def test_package_level_widget_call(ip: InteractiveShell) -> None:
    """`jupyterlite_rayon.widget()` as the docs write it (after %load_ext)."""
    view = jr.widget()
    try:
        assert isinstance(view, PoolWidget) and view in live.live_widgets()
    finally:
        view.close()


def test_a_new_widget_and_the_old_ones_show_one_snapshot(ip: InteractiveShell) -> None:
    old = live.widget()
    try:
        assert jr.bench_fib(18) == fib(18)  # counters move; the on_run hook may be throttled
        new = live.widget()
        try:
            assert old.status.value == new.status.value
            assert [r.children[0].value for r in old.bars.children] == [
                r.children[0].value for r in new.bars.children
            ]
            assert [r.children[1].value for r in old.bars.children] == [
                r.children[1].value for r in new.bars.children
            ]
        finally:
            new.close()
    finally:
        old.close()


def test_widgets_show_a_background_start_and_refresh_when_it_ends(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JupyterLite's `%load_ext` start replayed in CPython: while the start that startup.py
    scheduled runs, every widget says so; when it ends they show the pool, with no cell run."""
    real_info = jr.pool_info
    views = [live.widget(), live.widget()]

    async def scenario() -> None:
        gate = asyncio.Event()

        async def slow_start() -> int:
            await gate.wait()
            return jr.current_num_threads()

        monkeypatch.setattr(startup, "_start_task", None)
        monkeypatch.setattr(pool, "pool_info", lambda: dict(real_info(), started=False))
        monkeypatch.setattr(pool, "init_thread_pool", lambda n=None: slow_start())
        with capture_output() as io:
            startup.start_in_background()
        assert "starting the thread pool in the background" in io.stdout
        assert startup.starting()
        live.refresh_all()
        for view in views:
            assert status(view) == {"pool": "starting (%load_ext began it)"}
        monkeypatch.setattr(pool, "pool_info", real_info)  # the pool is up ...
        gate.set()  # ... and the start finishes
        task = startup._start_task
        assert task is not None
        await task
        await asyncio.sleep(0)  # the task's done callbacks run on the next loop pass
        assert not startup.starting()
        for view in views:
            rows = status(view)
            assert rows["backend"].startswith("wasmtime") and "pool" not in rows, rows

    try:
        asyncio.run(scenario())
    finally:
        for view in views:
            view.close()


def test_importing_the_package_loads_neither_ipython_nor_ipywidgets() -> None:
    code = (
        "import sys, jupyterlite_rayon as jr\n"
        "assert callable(jr.widget) and callable(jr.load_ipython_extension)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('IPython', 'ipywidgets')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_slider_that_needs_new_workers_grows_the_pool_in_the_background(
    pair: tuple[PoolWidget, PoolWidget], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The browser's slider handler cannot block on new workers: set_num_threads raises
    # NeedsAwait there, and the widget starts them on the loop instead of showing an error.
    import asyncio

    from jupyterlite_rayon.errors import NeedsAwait

    def needs_await(n: int) -> int:
        raise NeedsAwait(f"set_num_threads({n}): await init_thread_pool({n})")

    first, second = pair
    target = 2 if jr.current_num_threads() == 1 else 1
    monkeypatch.setattr(jr.pool, "set_num_threads", needs_await)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        first.slider.value = target
        assert "error" not in status(first)
        loop.run_until_complete(asyncio.sleep(0.05))
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert jr.current_num_threads() == target
    assert second.slider.value == target and "error" not in status(second)
