"""Running a cell on the pool at chosen thread counts and timing it (`%%parallel`).

A run goes through IPython's own `run_cell`, so the cell's output shows and its names land in
the user namespace; around it the wall time, the process CPU time (CPython) and the pool
counters' deltas are read. The thread count the pool had before is restored afterwards, also
when the cell raises.

Several rounds are interleaved (1, 2, 4, 1, 2, 4, ...): whatever slows the machine for a while
(another process, a frequency change, a garbage collection) then touches every thread count
alike instead of one row, and the best of each count's runs, with their spread, is reported.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.utils.capture import capture_output

from .. import pool
from . import startup


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
class CountTiming:
    """Every run of the cell at one thread count (one per round), in the order they ran."""

    runs: list[RunStats]

    @property
    def best(self) -> RunStats:
        return min(self.runs, key=lambda r: r.wall)

    @property
    def spread(self) -> float | None:
        """How much slower the slowest run was than the fastest (0.1: 10%); None for one run."""
        if len(self.runs) < 2:
            return None
        fastest = self.best.wall
        slowest = max(r.wall for r in self.runs)
        return slowest / fastest - 1 if fastest > 0 else float("nan")


@dataclass
class SweepRow:
    """The best run at one thread count, with speedup and efficiency against the first row,
    and the spread of that count's runs."""

    run: RunStats
    speedup: float
    efficiency: float
    spread: float | None = None
    #: more threads than the machine's cores: they shared the cores
    oversubscribed: bool = False


def _counters() -> tuple[int, int, int]:
    info = pool.pool_info()
    return int(info.get("tasks", 0)), int(info.get("steals", 0)), int(info.get("calls", 0))


def measures_cpu() -> bool:
    """CPython: process CPU time covers the wasmtime threads. Browser workers' CPU time is not
    visible to the kernel's worker."""
    return not startup.IN_BROWSER and pool.pool_info().get("backend") == "wasmtime"


class CellRunner:
    """Runs a cell like IPython does (output shows, names land in the user namespace) and
    times it; a failed run is remembered so the outer cell also reports failure."""

    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell
        self.failed: ExecutionResult | None = None

    def run(self, cell: str, threads: int, show_output: bool) -> RunStats | None:
        """One run; None when the cell raised (its traceback is shown)."""
        cpu_ok = measures_cpu()
        tasks0, steals0, calls0 = _counters()
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
        tasks1, steals1, calls1 = _counters()
        return RunStats(
            threads=threads,
            wall=wall,
            cpu=cpu if cpu_ok else None,
            tasks=tasks1 - tasks0,
            steals=steals1 - steals0,
            calls=calls1 - calls0,
        )


def resize(n: int) -> None:
    """Put the pool at n threads, or say in one line why it cannot be."""
    if pool.current_num_threads() == n:
        return
    try:
        pool.set_num_threads(n)
    except (ValueError, RuntimeError) as exc:
        raise UsageError(f"could not resize the pool to {n} threads: {exc}") from None


def time_cell(
    runner: CellRunner, cell: str, counts: Sequence[int], rounds: int
) -> list[CountTiming]:
    """Run the cell `rounds` times at each thread count, the rounds interleaved (every count
    once per round, in the order of `counts`); only the very first run shows its output.
    Stops at the first failed run (runner.failed says so; the timings then hold the runs
    before it), and always puts the pool back at the thread count it had."""
    timings = [CountTiming(runs=[]) for _ in counts]
    previous = pool.current_num_threads()
    try:
        for round_index in range(rounds):
            for index, n in enumerate(counts):
                resize(n)
                first = round_index == 0 and index == 0
                run = runner.run(cell, n, show_output=first)
                if run is None:
                    return [t for t in timings if t.runs]
                timings[index].runs.append(run)
    finally:
        if pool.current_num_threads() != previous:
            pool.set_num_threads(previous)
    return timings


def sweep_rows(timings: Sequence[CountTiming], cores: int | None = None) -> list[SweepRow]:
    """Best runs, with speedup and efficiency against the first thread count of the sweep;
    rows above `cores` (default: this machine's) are marked oversubscribed."""
    cores = pool.cpu_count() if cores is None else cores
    base = timings[0].best
    rows = []
    for timing in timings:
        run = timing.best
        speedup = base.wall / run.wall if run.wall > 0 else float("nan")
        efficiency = speedup * base.threads / run.threads
        rows.append(
            SweepRow(
                run=run,
                speedup=speedup,
                efficiency=efficiency,
                spread=timing.spread,
                oversubscribed=run.threads > cores,
            )
        )
    return rows
