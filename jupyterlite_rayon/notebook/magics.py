"""IPython magics: `%%parallel` runs a cell on the pool at chosen thread counts and reports
wall time, cpu/wall and the pool's counters; `%parallel` shows or sets the pool's state.

Loaded by `%load_ext jupyterlite_rayon` (the package's `load_ipython_extension` calls
`load_ipython_extension` here). In JupyterLite the pool starts asynchronously, so loading the
extension schedules `init_thread_pool()` on the running event loop (startup.py) and
`%%parallel` waits for it where Pyodide can block (JSPI), or says to run the cell again.

The options are declared with IPython's `magic_arguments`, so `%%parallel?` and `%parallel?`
show the generated usage, and every mistake is a one-line UsageError ending in that usage.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from .. import pool
from ..errors import PoolNotStarted
from . import live, startup
from .report import run_line, sweep_html, sweep_text
from .status import info_text, status_line, why_max
from .sweep import CellRunner, CountTiming, sweep_rows, time_cell

# Rounds a sweep times by default: enough for a best and a spread, quick enough to be the default.
SWEEP_ROUNDS = 3


def _word(text: str) -> str:
    """One option value without its quotes: IPython splits magic lines like a Windows shell
    (shlex, non-POSIX), which keeps the quotes of `--sweep "1, 2"` in the word."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


@magics_class
class ParallelMagics(Magics):
    """`%%parallel` and `%parallel`; see their generated help (`%%parallel?`, `%parallel?`)."""

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self.ip = shell  # Magics.shell is typed Optional; this one is always set
        #: every run of the last %%parallel cell, per thread count
        self.last_timings: list[CountTiming] = []

    @cell_magic("parallel")
    @magic_arguments(name="%parallel")  # the help's usage line prefixes one more "%"
    @argument(
        "-n",
        "--threads",
        metavar="N|max",
        type=_word,
        default=None,
        help="run the cell with the pool at N threads (default: as it is now); the "
        "previous count is restored afterwards, also when the cell raises",
    )
    @argument(
        "--sweep",
        metavar="1,2,4|max",
        type=_word,
        default=None,
        help="run the cell at each thread count of the list and show a table and a "
        "chart of wall time, speedup and efficiency (max: 1, 2, 4, ... up to "
        "max_threads())",
    )
    @argument(
        "--repeat",
        metavar="R",
        type=_word,
        default=None,
        help=f"time R rounds, each running the cell once at every thread count (1, 2, 4, 1, "
        f"2, 4, ...), and report each count's fastest run and the spread of its runs "
        f"(default: {SWEEP_ROUNDS} with --sweep, 1 otherwise)",
    )
    @argument("--quiet", action="store_true", help="print nothing but the cell's own output")
    def parallel_cell(self, line: str, cell: str) -> None:
        """Run a cell on the thread pool and report wall time, cpu/wall and pool counters."""
        args = _parse(ParallelMagics.parallel_cell, line)
        if args.threads is not None and args.sweep is not None:
            raise UsageError(f"use either -n or --sweep, not both; {CELL_USAGE}")
        if args.repeat is not None:
            repeat = parse_repeat(args.repeat)
        else:
            repeat = SWEEP_ROUNDS if args.sweep is not None else 1
        self._check_no_await(cell)
        _ensure_pool()
        maximum, cores = pool.max_threads(), pool.cpu_count()
        if args.sweep is not None:
            counts = parse_sweep(args.sweep, maximum, why_max(), cores)
        elif args.threads is not None:
            counts = [parse_thread_count(args.threads, maximum, CELL_USAGE, why_max(), cores)]
        else:
            counts = [pool.current_num_threads()]

        runner = CellRunner(self.ip)
        previous = pool.current_num_threads()
        try:
            timings = time_cell(runner, cell, counts, repeat)
        finally:
            live.refresh_all()
        self.last_timings = timings
        if runner.failed is not None:
            if not args.quiet:
                print(
                    f"%%parallel: the cell raised; not timed. The pool is back at "
                    f"{previous} threads.",
                    file=sys.stderr,
                )
            return
        if args.quiet:
            return
        if args.sweep is None:
            print(run_line(timings[0]))
        else:
            rows = sweep_rows(timings)
            display(
                {"text/plain": sweep_text(rows, repeat), "text/html": sweep_html(rows, repeat)},
                raw=True,
            )

    @line_magic("parallel")
    @magic_arguments(name="parallel")
    @argument(
        "command",
        nargs="?",
        type=str.lower,
        choices=("threads", "info", "widget"),
        metavar="threads|info|widget",
        help="what to do (nothing: the one-line status)",
    )
    @argument(
        "count",
        nargs="?",
        metavar="N|max",
        type=_word,
        default=None,
        help="the thread count for `threads`",
    )
    def parallel_line(self, line: str) -> None:
        """Show the thread pool's state, resize it, or show its widget.

        %parallel              one-line pool status
        %parallel threads N    resize the pool to N threads (or `max`)
        %parallel info         the pool's state, and the isolation state with its fix
        %parallel widget       show the pool widget
        """
        args = _parse(ParallelMagics.parallel_line, line)
        if args.command is None:
            print(status_line(pool.pool_info()))
        elif args.command == "threads":
            if args.count is None:
                raise UsageError(f"`threads` needs a thread count, N or max; {LINE_USAGE}")
            self._threads(args.count)
        elif args.count is not None:
            raise UsageError(
                f"`{args.command}` takes no argument, got {args.count!r}; {LINE_USAGE}"
            )
        elif args.command == "info":
            print(info_text(pool.pool_info()))
        else:
            try:
                view = live.widget()
            except ImportError as exc:  # ipywidgets missing: say how to install it
                raise UsageError(str(exc)) from None
            display(view)

    def _threads(self, count: str) -> None:
        _ensure_pool()
        n = parse_thread_count(count, pool.max_threads(), LINE_USAGE, why_max(), pool.cpu_count())
        try:
            previous = pool.set_num_threads(n)
        except (ValueError, RuntimeError) as exc:
            raise UsageError(f"could not resize the pool to {n} threads: {exc}") from None
        live.refresh_all()
        print(f"jupyterlite_rayon: threads {previous} -> {pool.current_num_threads()}")

    def _check_no_await(self, cell: str) -> None:
        """CPython kernels run cells inside their event loop, so a nested cell cannot await
        (Pyodide can: its loop runs the nested cell through JSPI)."""
        if startup.IN_BROWSER:
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


def _usage(magic: Callable[..., Any]) -> str:
    """The generated usage of a magic as one line: `usage: %%parallel [-n N|max] ...`."""
    text: str = magic.parser.format_usage()  # type: ignore[attr-defined]
    return "usage: " + " ".join(text.replace("::", "", 1).split())


CELL_USAGE = _usage(ParallelMagics.parallel_cell)
LINE_USAGE = _usage(ParallelMagics.parallel_line)


def _parse(magic: Callable[..., Any], line: str) -> Any:
    """The magic's options from its line; any mistake is one UsageError with the usage."""
    usage = _usage(magic)
    try:
        return parse_argstring(magic, line)
    except UsageError as exc:  # argparse's own message, e.g. "expected one argument"
        raise UsageError(f"{exc}; {usage}") from None
    except ValueError as exc:  # unbalanced quotes
        raise UsageError(f"{exc}; {usage}") from None


def _ensure_pool() -> None:
    """Start or wait for the pool, or raise a UsageError that says what to run."""
    try:
        startup.ensure_pool()
    except PoolNotStarted as exc:
        raise UsageError(str(exc)) from None


def parse_thread_count(
    text: str, maximum: int, usage: str, why_max: str = "", cores: int | None = None
) -> int:
    """A thread count from the user: an integer in 1..maximum, or "max" (one per core)."""
    if text.strip().lower() == "max":
        return min(cores, maximum) if cores is not None else maximum
    try:
        n = int(text)
    except ValueError:
        raise UsageError(f"thread count {text!r} is not a whole number; {usage}") from None
    if not 1 <= n <= maximum:
        raise UsageError(
            f"thread count {n} is outside 1..{maximum} ({why_max or 'max_threads() here'}); {usage}"
        )
    return n


def parse_sweep(text: str, maximum: int, why_max: str = "", cores: int | None = None) -> list[int]:
    """`1,2,4` or `max` (powers of two up to the cores, and the cores themselves)."""
    if text.strip().lower() == "max":
        top = min(cores, maximum) if cores is not None else maximum
        counts = [1]
        while counts[-1] * 2 <= top:
            counts.append(counts[-1] * 2)
        if counts[-1] != top:
            counts.append(top)
        return counts
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(p == "" for p in parts):
        raise UsageError(f"--sweep {text!r} is not a comma-separated list like 1,2,4; {CELL_USAGE}")
    counts = [parse_thread_count(p, maximum, CELL_USAGE, why_max, cores) for p in parts]
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


def load_ipython_extension(ip: InteractiveShell) -> None:
    """Register the magics; in JupyterLite also start the pool in the background."""
    ip.register_magics(ParallelMagics)
    if startup.IN_BROWSER:
        startup.start_in_background()
