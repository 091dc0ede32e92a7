"""IPython magics: `%%parallel` runs a cell on the pool at chosen thread counts and reports
wall time, cpu/wall and the pool's counters; `%parallel` shows or sets the pool's state.

Loaded by `%load_ext jupyterlite_rayon` (the package's `load_ipython_extension` calls
`load_ipython_extension` here). In JupyterLite the pool starts asynchronously, so loading the
extension schedules `init_thread_pool()` on the running event loop and `%%parallel` waits for
it where Pyodide can block (JSPI), or says to run the cell again.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import math
import shlex
import sys
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display
from IPython.utils.capture import capture_output

from .. import pool

CELL_USAGE = "usage: %%parallel [-n N|max] [--sweep 1,2,4|max] [--repeat R] [--quiet]"
LINE_USAGE = "usage: %parallel [threads N|max | info | widget]"
IN_BROWSER = sys.platform == "emscripten"

# The pool start scheduled by %load_ext in JupyterLite (None elsewhere or when a pool ran).
_start_task: asyncio.Future[Any] | None = None


@dataclass
class RunStats:
    """One timed run of a cell: the thread count, times and the pool counters' deltas."""

    threads: int
    wall: float
    cpu: float | None  # process CPU seconds; None where the backend cannot measure it
    tasks: int
    steals: int
    calls: int

    @property
    def cpu_per_wall(self) -> float | None:
        if self.cpu is None or self.wall <= 0:
            return None
        return self.cpu / self.wall


@dataclass
class SweepRow:
    """The best run at one thread count, with speedup and efficiency against the first row."""

    run: RunStats
    speedup: float
    efficiency: float


# ---------------------------------------------------------------------------------------------
# Argument parsing: every mistake is a one-line UsageError, never a traceback or SystemExit.


class _Parser(argparse.ArgumentParser):
    def __init__(self, usage: str) -> None:
        super().__init__(prog="%%parallel", add_help=False)
        self._one_line_usage = usage

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; {self._one_line_usage}")


def _cell_parser() -> _Parser:
    parser = _Parser(CELL_USAGE)
    parser.add_argument("-n", "--threads", dest="threads", default=None)
    parser.add_argument("--sweep", default=None)
    parser.add_argument("--repeat", default="1")
    parser.add_argument("--quiet", action="store_true")
    return parser


def _split(line: str, usage: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:  # unbalanced quotes
        raise UsageError(f"{exc}; {usage}") from None


def parse_thread_count(text: str, maximum: int, usage: str, why_max: str = "") -> int:
    """A thread count from the user: an integer in 1..maximum, or "max"."""
    if text.strip().lower() == "max":
        return maximum
    try:
        n = int(text)
    except ValueError:
        raise UsageError(f"thread count {text!r} is not a whole number; {usage}") from None
    if not 1 <= n <= maximum:
        raise UsageError(
            f"thread count {n} is outside 1..{maximum} ({why_max or 'max_threads() here'}); "
            f"{usage}"
        )
    return n


def parse_sweep(text: str, maximum: int, why_max: str = "") -> list[int]:
    """`1,2,4` or `max` (powers of two up to the maximum, and the maximum itself)."""
    if text.strip().lower() == "max":
        counts = [1]
        while counts[-1] * 2 <= maximum:
            counts.append(counts[-1] * 2)
        if counts[-1] != maximum:
            counts.append(maximum)
        return counts
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(p == "" for p in parts):
        raise UsageError(
            f"--sweep {text!r} is not a comma-separated list like 1,2,4; {CELL_USAGE}"
        )
    counts = [parse_thread_count(p, maximum, CELL_USAGE, why_max) for p in parts]
    if len(set(counts)) != len(counts):
        raise UsageError(f"--sweep {text!r} repeats a thread count; {CELL_USAGE}")
    return counts


def parse_repeat(text: str) -> int:
    try:
        repeat = int(text)
    except ValueError:
        raise UsageError(f"--repeat {text!r} is not a whole number; {CELL_USAGE}") from None
    if repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {repeat}; {CELL_USAGE}")
    return repeat


# ---------------------------------------------------------------------------------------------
# The pool: make sure one runs before a timed cell.


def why_max() -> str:
    """Why max_threads() is what it is, and how to get more, for out-of-range messages."""
    info = pool.pool_info()
    if info.get("build") == "st":
        iso = info.get("isolation") or {}
        return (f"the single-thread build runs: {iso.get('reason') or 'no shared memory'}; "
                f"fix: {iso.get('fix') or 'serve the site cross-origin isolated'}")
    if IN_BROWSER:
        return "max_threads() here: the cores the browser reports"
    return f"max_threads() here; set {pool.MAX_THREADS_ENV} before the pool starts to allow more"


def _pool_started() -> bool:
    try:
        return bool(pool.pool_info().get("started", False))
    except RuntimeError:  # PoolError and friends: there is no usable pool
        return False


def ensure_pool() -> None:
    """Start or wait for the pool, or raise a UsageError that says what to run."""
    if _pool_started():
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
        raise UsageError(
            f"no thread pool: {reason}; run `await jupyterlite_rayon.init_thread_pool()` "
            "in a cell, then run this cell again"
        )
    if task is not None:
        raise UsageError(
            "the thread pool is still starting (%load_ext began it); run this cell again "
            "in a moment, or run `await jupyterlite_rayon.init_thread_pool()` first"
        )
    raise UsageError(
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
    return _pool_started()


def start_pool_in_background() -> None:
    """JupyterLite: schedule `init_thread_pool()` on the kernel's running loop."""
    global _start_task
    if _pool_started() or (_start_task is not None and not _start_task.done()):
        return
    awaitable: Awaitable[Any] = pool.init_thread_pool()
    _start_task = asyncio.ensure_future(awaitable)
    print("jupyterlite_rayon: starting the thread pool in the background; "
          "%%parallel cells wait for it.")


# ---------------------------------------------------------------------------------------------
# Timing one run of a cell.


def _counters(info: dict[str, Any]) -> tuple[int, int, int]:
    return int(info.get("tasks", 0)), int(info.get("steals", 0)), int(info.get("calls", 0))


def _measures_cpu() -> bool:
    # CPython: process CPU time covers the wasmtime threads. Browser workers' CPU time is not
    # visible to the kernel's worker.
    return not IN_BROWSER and pool.pool_info().get("backend") == "wasmtime"


class CellRunner:
    """Runs a cell like IPython does (output shows, names land in the user namespace) and
    times it; a failed run is remembered so the outer cell also reports failure."""

    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell
        self.failed: ExecutionResult | None = None

    def run(self, cell: str, threads: int, show_output: bool) -> RunStats | None:
        """One run; None when the cell raised (its traceback is shown)."""
        cpu_ok = _measures_cpu()
        tasks0, steals0, calls0 = _counters(pool.pool_info())
        outer = self.shell.displayhook.exec_result
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        try:
            if show_output:
                result = self.shell.run_cell(cell)
            else:
                # Repeats stay quiet; a failure still shows what it printed and its traceback.
                with capture_output() as captured:
                    result = self.shell.run_cell(cell, silent=True)
                if not result.success:
                    captured.show()
        finally:
            # The nested run_cell clears the displayhook's result: give the outer cell its own
            # back so its execute_result and status are still recorded.
            self.shell.displayhook.exec_result = outer
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        if not result.success:
            self.failed = result
            if outer is not None:
                outer.error_before_exec = result.error_before_exec
                outer.error_in_exec = result.error_in_exec
            return None
        tasks1, steals1, calls1 = _counters(pool.pool_info())
        return RunStats(
            threads=threads,
            wall=wall,
            cpu=cpu if cpu_ok else None,
            tasks=tasks1 - tasks0,
            steals=steals1 - steals0,
            calls=calls1 - calls0,
        )


def best_of(runs: Sequence[RunStats]) -> RunStats:
    return min(runs, key=lambda r: r.wall)


def sweep_rows(best: Sequence[RunStats]) -> list[SweepRow]:
    """Speedup and efficiency against the first thread count of the sweep."""
    base = best[0]
    rows = []
    for run in best:
        speedup = base.wall / run.wall if run.wall > 0 else float("nan")
        efficiency = speedup * base.threads / run.threads
        rows.append(SweepRow(run=run, speedup=speedup, efficiency=efficiency))
    return rows


# ---------------------------------------------------------------------------------------------
# Reports: a line for one thread count, a table and an SVG chart for a sweep.


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}"  # enough digits for the speedup to check


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _threads(n: int) -> str:
    return "1 thread" if n == 1 else f"{n} threads"


def run_line(run: RunStats, repeat: int) -> str:
    best = f" (best of {repeat})" if repeat > 1 else ""
    cpu = _ratio(run.cpu_per_wall)
    if run.cpu is None:
        cpu += " (browser workers' CPU time is not measurable)"
    return (
        f"%%parallel: {_threads(run.threads)}, wall {_ms(run.wall)} ms{best}, cpu/wall {cpu}, "
        f"calls {run.calls}, tasks {run.tasks}, steals {run.steals}"
    )


SWEEP_COLUMNS = ("threads", "wall ms", "cpu/wall", "speedup", "efficiency", "calls", "tasks",
                 "steals")


def _row_cells(row: SweepRow) -> list[str]:
    r = row.run
    return [str(r.threads), _ms(r.wall), _ratio(r.cpu_per_wall), f"{row.speedup:.2f}",
            f"{row.efficiency * 100:.0f}%", str(r.calls), str(r.tasks), str(r.steals)]


def sweep_text(rows: Sequence[SweepRow], repeat: int) -> str:
    cells = [list(SWEEP_COLUMNS)] + [_row_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(SWEEP_COLUMNS))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in cells]
    hint = _sweep_hint(rows, repeat)
    return "\n".join([_sweep_caption(rows, repeat), *lines, *(["", hint] if hint else [])])


def _sweep_caption(rows: Sequence[SweepRow], repeat: int) -> str:
    best = f", best of {repeat} runs each" if repeat > 1 else ""
    return f"%%parallel sweep: speedup against {_threads(rows[0].run.threads)}{best}"


def _sweep_hint(rows: Sequence[SweepRow], repeat: int) -> str:
    """Superlinear speedup from single runs: the first run usually paid one-off costs."""
    if repeat == 1 and any(r.efficiency > 1.1 for r in rows):
        return ("efficiency over 100% usually means the first run paid one-off costs "
                "(compiling, memory growth): --repeat 3 keeps the best of 3 runs")
    return ""


def sweep_html(rows: Sequence[SweepRow], repeat: int) -> str:
    pad = ' style="padding:2px 8px"'
    head = "".join(f"<th{pad}>{html.escape(c)}</th>" for c in SWEEP_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td{pad}>{html.escape(c)}</td>" for c in _row_cells(r)) + "</tr>"
        for r in rows
    )
    table = (
        '<table class="jr-sweep" style="border-collapse:collapse;text-align:right">'
        '<caption style="text-align:left;white-space:nowrap">'
        f"{html.escape(_sweep_caption(rows, repeat))}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
    labels = [str(r.run.threads) for r in rows]
    ideal = [r.run.threads / rows[0].run.threads for r in rows]
    charts = "".join([
        bar_chart_svg("wall time (ms)", labels, [r.run.wall * 1e3 for r in rows], "{:.1f}"),
        bar_chart_svg("speedup (line: ideal)", labels, [r.speedup for r in rows], "{:.2f}",
                      ideal=ideal),
        bar_chart_svg("efficiency (%)", labels, [r.efficiency * 100 for r in rows], "{:.0f}",
                      ideal=[100.0] * len(rows)),
    ])
    hint = _sweep_hint(rows, repeat)
    note = f'<p class="jr-sweep-hint"><small>{html.escape(hint)}</small></p>' if hint else ""
    return (f'<div class="jr-sweep-report">{table}{note}'
            f'<div style="display:flex">{charts}</div></div>')


def bar_chart_svg(title: str, labels: Sequence[str], values: Sequence[float], fmt: str,
                  ideal: Sequence[float] | None = None) -> str:
    """A small labelled bar chart; `ideal` draws a reference polyline across the bars."""
    width, height, top, bottom, left = 220, 170, 28, 24, 8
    plot_h = height - top - bottom
    finite = [v for v in list(values) + list(ideal or []) if math.isfinite(v)]
    peak = max(finite + [1e-12])
    slot = (width - 2 * left) / max(len(values), 1)
    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'role="img" aria-label="{html.escape(title)}" style="font:11px sans-serif">'),
        (f'<text x="{width / 2}" y="14" text-anchor="middle" font-weight="bold">'
         f"{html.escape(title)}</text>"),
        (f'<line x1="{left}" y1="{top + plot_h}" x2="{width - left}" y2="{top + plot_h}" '
         'stroke="#888"/>'),
    ]
    for i, (label, value) in enumerate(zip(labels, values)):
        shown = value if math.isfinite(value) else 0.0
        h = plot_h * max(shown, 0.0) / peak
        x = left + i * slot + slot * 0.15
        y = top + plot_h - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                     'fill="#4c78a8"/>')
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" text-anchor="middle">'
                     f"{html.escape(fmt.format(value))}</text>")
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{height - 8}" text-anchor="middle">'
                     f"{html.escape(label)}t</text>")
    if ideal:
        points = " ".join(
            f"{left + i * slot + slot / 2:.1f},{top + plot_h - plot_h * v / peak:.1f}"
            for i, v in enumerate(ideal)
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="#e45756" '
                     'stroke-dasharray="4 3" stroke-width="1.5"/>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# Status for %parallel and %parallel info.


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{nbytes} B"


def status_line(info: dict[str, Any]) -> str:
    if not info.get("started", False):
        how = ("run `await jupyterlite_rayon.init_thread_pool()`" if IN_BROWSER
               else "any %%parallel cell or kernel call starts it")
        return f"jupyterlite_rayon: no pool running ({how})"
    isolated = "isolated" if info.get("isolated") else "NOT isolated (one thread)"
    return (
        f"jupyterlite_rayon: {info.get('backend')} backend, {info.get('build')} build, "
        f"{info.get('threads')}/{info.get('max_threads')} threads, {isolated}; "
        f"{info.get('calls', 0)} calls, {info.get('tasks', 0)} tasks, "
        f"{info.get('steals', 0)} steals, {_size(int(info.get('bytes_in_use', 0)))} in use"
    )


def info_text(info: dict[str, Any]) -> str:
    iso = info.get("isolation") or {}
    lines = [status_line(info), ""]
    if info.get("started", False):
        lines += [
            f"backend          {info.get('backend')} ({info.get('build')} build)",
            (f"threads          {info.get('threads')} of at most {info.get('max_threads')}"
             f" ({info.get('busy', 0)} busy now)"),
            f"kernel calls     {info.get('calls', 0)}",
            f"tasks / steals   {info.get('tasks', 0)} / {info.get('steals', 0)}",
            (f"memory           {_size(int(info.get('bytes_in_use', 0)))} in use of "
             f"{_size(int(info.get('memory_bytes', 0)))} pool memory"),
        ]
        per_thread = info.get("per_thread") or []
        for i, t in enumerate(per_thread):
            lines.append(f"  thread {i:<3}     {t.get('state', '?'):<9} "
                         f"{t.get('tasks', 0)} tasks, {t.get('steals', 0)} steals")
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


# ---------------------------------------------------------------------------------------------
# The magics.


@magics_class
class ParallelMagics(Magics):
    """`%%parallel` and `%parallel`; see their docstrings (`%%parallel?`)."""

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self.ip = shell  # Magics.shell is typed Optional; this one is always set
        #: the runs of the last %%parallel cell (best run per thread count)
        self.last_runs: list[RunStats] = []

    @line_cell_magic
    def parallel(self, line: str, cell: str | None = None) -> None:
        """Run a cell on the thread pool and report time and pool counters, or manage the pool.

        Cell magic::

            %%parallel [-n N|max] [--sweep 1,2,4|max] [--repeat R] [--quiet]

        -n N        run the cell with the pool at N threads (default: as it is now);
                    the previous count is restored afterwards, also when the cell raises
        --sweep L   run the cell once per thread count in L and show a table and a chart of
                    wall time, speedup and efficiency (`max`: 1, 2, 4, ... up to the maximum)
        --repeat R  time R runs per thread count and keep the fastest
        --quiet     print nothing but the cell's own output

        Line magic::

            %parallel              one-line pool status
            %parallel threads N    resize the pool (N or `max`)
            %parallel info         the pool's state, and the isolation state with its fix
            %parallel widget       show the pool widget
        """
        if cell is None:
            self._line(line)
        else:
            self._cell(line, cell)

    def _line(self, line: str) -> None:
        words = _split(line, LINE_USAGE)
        if not words:
            print(status_line(pool.pool_info()))
            return
        command, rest = words[0].lower(), words[1:]
        if command == "threads" and len(rest) == 1:
            ensure_pool()
            n = parse_thread_count(rest[0], pool.max_threads(), LINE_USAGE, why_max())
            try:
                previous = pool.set_num_threads(n)
            except (ValueError, RuntimeError) as exc:
                raise UsageError(f"could not resize the pool to {n} threads: {exc}") from None
            _refresh_widgets()
            print(f"jupyterlite_rayon: threads {previous} -> {pool.current_num_threads()}")
        elif command == "info" and not rest:
            print(info_text(pool.pool_info()))
        elif command == "widget" and not rest:
            from .live import widget

            try:
                view = widget()
            except ImportError as exc:  # ipywidgets missing: say how to install it
                raise UsageError(str(exc)) from None
            display(view)
        else:
            raise UsageError(f"unknown arguments {line.strip()!r}; {LINE_USAGE}")

    def _check_no_await(self, cell: str) -> None:
        """CPython kernels run cells inside their event loop, so a nested cell cannot await
        (Pyodide can: its loop runs the nested cell through JSPI)."""
        if IN_BROWSER:
            return
        try:
            asyncio.get_running_loop()
            transformed = self.ip.transform_cell(cell)
        except (RuntimeError, SyntaxError, ValueError):
            return  # no running loop, or run_cell reports the broken cell itself
        if self.ip.should_run_async(cell, transformed_cell=transformed):
            raise UsageError(
                "%%parallel cannot run a cell with top-level `await` in this kernel (its event "
                "loop is busy running this cell); move the awaits to a cell of their own"
            )

    def _cell(self, line: str, cell: str) -> None:
        args, extra = _cell_parser().parse_known_args(_split(line, CELL_USAGE))
        if extra:
            raise UsageError(f"unknown arguments {' '.join(extra)!r}; {CELL_USAGE}")
        if args.threads is not None and args.sweep is not None:
            raise UsageError(f"use either -n or --sweep, not both; {CELL_USAGE}")
        repeat = parse_repeat(args.repeat)
        self._check_no_await(cell)
        ensure_pool()
        maximum = pool.max_threads()
        if args.sweep is not None:
            counts = parse_sweep(args.sweep, maximum, why_max())
        elif args.threads is not None:
            counts = [parse_thread_count(args.threads, maximum, CELL_USAGE, why_max())]
        else:
            counts = [pool.current_num_threads()]

        runner = CellRunner(self.ip)
        best: list[RunStats] = []
        previous = pool.current_num_threads()
        try:
            for index, n in enumerate(counts):
                _resize(n)
                runs: list[RunStats] = []
                for attempt in range(repeat):
                    run = runner.run(cell, n, show_output=index == 0 and attempt == 0)
                    if run is None:
                        break
                    runs.append(run)
                if runner.failed is not None:
                    break
                best.append(best_of(runs))
        finally:
            if pool.current_num_threads() != previous:
                pool.set_num_threads(previous)
            _refresh_widgets()
        self.last_runs = best
        if runner.failed is not None:
            if not args.quiet:
                print(f"%%parallel: the cell raised; not timed. The pool is back at "
                      f"{previous} threads.", file=sys.stderr)
            return
        if args.quiet:
            return
        if args.sweep is None:
            print(run_line(best[0], repeat))
        else:
            rows = sweep_rows(best)
            display({"text/plain": sweep_text(rows, repeat),
                      "text/html": sweep_html(rows, repeat)}, raw=True)


def _resize(n: int) -> None:
    if pool.current_num_threads() == n:
        return
    try:
        pool.set_num_threads(n)
    except (ValueError, RuntimeError) as exc:
        raise UsageError(f"could not resize the pool to {n} threads: {exc}") from None


def _refresh_widgets() -> None:
    # Only when the widget module is in use: importing it must not be a side effect here.
    widget_module = sys.modules.get(f"{__package__}.live")
    if widget_module is not None:
        widget_module.refresh_all()


def load_ipython_extension(ip: InteractiveShell) -> None:
    """Register the magics; in JupyterLite also start the pool in the background."""
    ip.register_magics(ParallelMagics)
    if IN_BROWSER:
        start_pool_in_background()
