"""%%parallel and %parallel in a real IPython shell, on the real wasmtime pool.

The cells under test measure themselves (thread count seen, pool counters around their own
kernel calls) and those measurements are compared with what the magic reports.
"""

from __future__ import annotations

import ast
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.utils.capture import CapturedIO, capture_output

import jupyterlite_rayon as jr
from jupyterlite_rayon import pool
from jupyterlite_rayon.notebook import magics, report, startup, status, sweep

RUN_LINE = re.compile(
    r"%%parallel: (?P<threads>\d+) threads?, wall (?P<wall>[\d.]+) ms"
    r"(?P<best> \(best of (?P<rounds>\d+), spread (?P<spread>\d+)%\))?, "
    r"cpu/wall (?P<cpu>[\d.]+|n/a), calls (?P<calls>\d+), tasks (?P<tasks>\d+), "
    r"steals (?P<steals>\d+)"
)

# A cell that records what it saw: the thread count, and the pool counters around its own
# kernel calls (three calls: sum, dot, mandelbrot), checked against numpy.
MEASURED_CELL = """
import time as _time
_t0 = _time.perf_counter()
_before = jr.pool_info()
_total = jr.sum(data)
_d = jr.dot(data, data)
_img = jr.mandelbrot(37, 23, max_iter=50)
_after = jr.pool_info()
seen.append(dict(threads=jr.current_num_threads(),
                 tasks=_after["tasks"] - _before["tasks"],
                 steals=_after["steals"] - _before["steals"],
                 calls=_after["calls"] - _before["calls"],
                 total=_total, dot=_d, inner=_time.perf_counter() - _t0))
print("cell ran at", jr.current_num_threads())
"""


@pytest.fixture
def seen(ip: InteractiveShell) -> Iterator[list[dict[str, Any]]]:
    values = np.arange(200_003, dtype=np.float64) * 0.5
    ip.user_ns.update(jr=jr, data=jr.asarray(values), seen=[], expected=values)
    before = jr.current_num_threads()
    yield ip.user_ns["seen"]
    assert jr.current_num_threads() == before, "a test left the pool resized"
    ip.user_ns["data"].close()


def run(ip: InteractiveShell, cell: str) -> tuple[ExecutionResult, CapturedIO]:
    with capture_output() as io:
        result = ip.run_cell(cell)
    return result, io


def check_measured(seen: list[dict[str, Any]], expected: np.ndarray) -> None:
    for record in seen:
        assert record["total"] == pytest.approx(float(expected.sum()), rel=1e-12)
        # elementwise, not BLAS: OpenBLAS's threads spin for a while after a call, and that CPU
        # time would land in the process CPU time the next %%parallel cell reports
        assert record["dot"] == pytest.approx(float(np.sum(expected * expected)), rel=1e-12)
        assert record["calls"] == 3


def test_n_runs_at_each_count_and_reports_its_own_counters(
    ip: InteractiveShell, seen: list[dict[str, Any]]
) -> None:
    maximum = jr.cpu_count()
    previous = jr.current_num_threads()
    for n in sorted({1, 2, maximum} & set(range(1, maximum + 1))):
        seen.clear()
        result, io = run(ip, f"%%parallel -n {n}\n{MEASURED_CELL}")
        assert result.success, io.stderr
        assert f"cell ran at {n}\n" in io.stdout  # the cell's own output shows
        match = RUN_LINE.search(io.stdout)
        assert match, io.stdout
        assert len(seen) == 1  # one thread count: the cell runs once
        assert int(match["threads"]) == n == seen[0]["threads"]
        assert int(match["calls"]) == seen[0]["calls"] == 3
        assert int(match["tasks"]) == seen[0]["tasks"] > 0
        assert int(match["steals"]) == seen[0]["steals"]
        # CPython measures CPU time, and a computing cell uses some (its upper bound needs a
        # longer cell: test_cpu_per_wall_is_at_most_the_threads_at_work)
        assert match["cpu"] != "n/a" and float(match["cpu"]) > 0, match[0]
        assert jr.current_num_threads() == previous
        check_measured(seen, ip.user_ns["expected"])


def wait_until_the_process_is_idle(timeout: float = 5.0) -> None:
    """Process CPU time counts every thread of the process: numpy's OpenBLAS threads spin for
    a while after a call (another test's). Wait until nothing but this thread runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cpu0 = time.process_time()
        time.sleep(0.05)
        if time.process_time() - cpu0 < 0.005:
            return
    raise AssertionError("other threads of this process kept running; cpu/wall cannot be checked")


def test_cpu_per_wall_is_at_most_the_threads_at_work(ip: InteractiveShell, seen: list[Any]) -> None:
    """cpu/wall: the process's CPU seconds over the wall seconds of the cell, so at most the
    pool's threads (the caller included) on this machine's cores. The cell runs ~50 ms at one
    thread: the kernel adds other threads' CPU time to the process's total only at scheduler
    ticks (a few ms), which makes the ratio of a sub-millisecond cell meaningless."""
    wait_until_the_process_is_idle()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    counts = sorted({1, 2, jr.cpu_count()} & set(range(1, jr.cpu_count() + 1)))
    cell = "with jr.mandelbrot(400, 300, max_iter=1000) as image:\n    seen.append(image.tolist())"
    result, io = run(ip, f"%%parallel --sweep {','.join(map(str, counts))}\n{cell}")
    assert result.success, io.stderr
    assert all(image == seen[0] for image in seen)  # the same image at every thread count
    rows = parse_sweep(io.outputs[-1].data["text/plain"])
    assert [int(r["threads"]) for r in rows] == counts
    for row in rows:
        at_work = min(int(row["threads"]), cores or int(row["threads"]))
        # slack: the widget's poller thread, the tick granularity above, rounding
        assert 0 < num(row["cpu/wall"]) <= at_work + 0.25, row


def test_n_max_and_no_option(ip: InteractiveShell, seen: list[dict[str, Any]]) -> None:
    result, io = run(ip, f"%%parallel -n max\n{MEASURED_CELL}")
    assert result.success, io.stderr
    assert seen[-1]["threads"] == jr.cpu_count()
    result, io = run(ip, f"%%parallel\n{MEASURED_CELL}")
    assert result.success, io.stderr
    assert seen[-1]["threads"] == jr.current_num_threads()
    match = RUN_LINE.search(io.stdout)
    assert match and int(match["threads"]) == jr.current_num_threads()


def test_cell_semantics_names_and_last_value(ip: InteractiveShell, seen: list[Any]) -> None:
    result, io = run(ip, "%%parallel -n 1\nsome_name = jr.sum(data)\nsome_name * 2")
    assert result.success, io.stderr
    assert ip.user_ns["some_name"] == pytest.approx(float(ip.user_ns["expected"].sum()))
    assert str(ip.user_ns["some_name"] * 2) in io.stdout  # the last expression is displayed


def test_repeat_takes_the_best_run(ip: InteractiveShell, seen: list[dict[str, Any]]) -> None:
    cell = f"%%parallel -n 1 --repeat 3\n{MEASURED_CELL}"
    result, io = run(ip, cell)
    assert result.success, io.stderr
    assert len(seen) == 3
    assert io.stdout.count("cell ran at") == 1  # repeats run quietly
    match = RUN_LINE.search(io.stdout)
    assert match and match["rounds"] == "3", io.stdout
    # the best outer time is at least the fastest inner time
    assert float(match["wall"]) + half_unit(match["wall"]) >= min(r["inner"] for r in seen) * 1e3
    assert {int(match["tasks"])} <= {r["tasks"] for r in seen}
    (timing,) = magics_instance(ip).last_timings
    assert [r.threads for r in timing.runs] == [1, 1, 1]
    assert match["wall"] == report.ms_text(min(r.wall for r in timing.runs))
    walls = [r.wall for r in timing.runs]
    assert int(match["spread"]) == round((max(walls) / min(walls) - 1) * 100)
    check_measured(seen, ip.user_ns["expected"])


def parse_sweep(text: str) -> list[dict[str, str]]:
    """The text/plain sweep table as rows of {column: printed text}."""
    lines = text.strip().splitlines()
    assert lines[0].startswith("%%parallel sweep")
    header = re.split(r"\s{2,}", lines[1].strip())
    assert header == list(report.SWEEP_COLUMNS)
    rows = []
    for line in lines[2:]:
        if not line.strip():
            break  # a hint follows the table
        cells = re.split(r"\s{2,}", line.strip())
        assert len(cells) == len(header), line
        rows.append(dict(zip(header, cells)))
    return rows


def num(text: str) -> float:
    return float(text.rstrip("%"))


def half_unit(text: str) -> float:
    """Half the last printed digit: how far rounding may have moved the printed value."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10.0**-decimals


@pytest.mark.parametrize("sweep", ["1,2", "max", "2,1", "1"])
def test_sweep_table_matches_the_runs(
    ip: InteractiveShell, seen: list[dict[str, Any]], sweep: str
) -> None:
    maximum = jr.cpu_count()
    if sweep in ("1,2", "2,1") and maximum < 2:
        pytest.skip("one core: no 2-thread pool")
    counts = magics.parse_sweep(sweep, maximum)
    result, io = run(ip, f"%%parallel --sweep {sweep}\n{MEASURED_CELL}")
    assert result.success, io.stderr
    # the default: SWEEP_ROUNDS rounds, interleaved
    assert [r["threads"] for r in seen] == counts * magics.SWEEP_ROUNDS
    assert io.stdout.count("cell ran at") == 1  # only the first run shows its output
    bundle = io.outputs[-1].data
    assert f"best of {magics.SWEEP_ROUNDS} interleaved rounds" in bundle["text/plain"]
    rows = parse_sweep(bundle["text/plain"])
    assert [int(r["threads"]) for r in rows] == counts
    timings = magics_instance(ip).last_timings
    assert [t.best.threads for t in timings] == counts
    base = rows[0]
    for i, (row, timing) in enumerate(zip(rows, timings)):
        records = seen[i :: len(counts)]  # this count's run in every round
        assert len(timing.runs) == len(records) == magics.SWEEP_ROUNDS
        for run_stats, record in zip(timing.runs, records):
            # counters: exactly what the cell itself measured around its own calls
            assert run_stats.threads == record["threads"] == int(row["threads"])
            assert run_stats.tasks == record["tasks"] and run_stats.steals == record["steals"]
            assert run_stats.calls == record["calls"] == 3
            # wall time: at least the time the cell measured inside itself
            assert run_stats.wall >= record["inner"]
        # the row is the fastest run, and the spread is its runs' spread
        best = min(timing.runs, key=lambda r: r.wall)
        assert row["wall ms"] == report.ms_text(best.wall)
        assert (int(row["tasks"]), int(row["steals"])) == (best.tasks, best.steals)
        walls = [r.wall for r in timing.runs]
        assert row["spread"] == f"{(max(walls) / min(walls) - 1) * 100:.0f}%"
        assert row["cpu/wall"] != "n/a" and num(row["cpu/wall"]) > 0, row
        # speedup: within what the printed (rounded) wall times allow
        b, b_slack = num(base["wall ms"]), half_unit(base["wall ms"])
        t, t_slack = num(row["wall ms"]), half_unit(row["wall ms"])
        low, high = (b - b_slack) / (t + t_slack), (b + b_slack) / (t - t_slack)
        assert low - 0.005 <= num(row["speedup"]) <= high + 0.005, (row, base)
        scale = int(base["threads"]) / int(row["threads"]) * 100
        efficiency = num(row["speedup"]) * scale
        slack = 0.5 + half_unit(row["speedup"]) * scale  # both printed values are rounded
        assert num(row["efficiency"]) == pytest.approx(efficiency, abs=slack)
    assert base["speedup"] == "1.00" and base["efficiency"] == "100%"
    # the HTML table carries the same numbers, and a chart per measure comes with it
    page = bundle["text/html"]
    assert page.count("<svg") == 3 and page.count("<tr>") == len(counts) + 1
    for row in rows:
        for value in row.values():
            assert f'<td style="padding:2px 8px">{value}</td>' in page
    check_measured(seen, ip.user_ns["expected"])


def magics_instance(ip: InteractiveShell) -> magics.ParallelMagics:
    manager = ip.magics_manager
    assert manager is not None
    instance: magics.ParallelMagics = manager.registry["ParallelMagics"]
    return instance


def test_sweep_with_repeat(ip: InteractiveShell, seen: list[dict[str, Any]]) -> None:
    result, io = run(ip, f"%%parallel --sweep 1,max --repeat 2\n{MEASURED_CELL}")
    counts = magics.parse_sweep("1,max", jr.cpu_count()) if jr.cpu_count() > 1 else None
    if counts is None:
        assert not result.success  # 1,1 repeats a count
        return
    assert result.success, io.stderr
    assert len(seen) == 2 * len(counts)
    assert io.stdout.count("cell ran at") == 1
    rows = parse_sweep(io.outputs[-1].data["text/plain"])
    assert "best of 2 interleaved rounds" in io.outputs[-1].data["text/plain"]
    assert [r["threads"] for r in seen] == counts * 2  # 1, max, 1, max
    for row, pair in zip(rows, [seen[0::2], seen[1::2]]):
        assert int(row["tasks"]) in {r["tasks"] for r in pair}
        # the best of the two: no slower than the faster run's own inner time allows
        fastest = min(r["inner"] for r in pair) * 1e3
        assert num(row["wall ms"]) + half_unit(row["wall ms"]) >= fastest


def test_rounds_are_interleaved_and_repeat_sets_how_many(
    ip: InteractiveShell, seen: list[dict[str, Any]]
) -> None:
    if jr.cpu_count() < 2:
        pytest.skip("one core: no 2-thread pool")
    result, io = run(ip, f"%%parallel --sweep 2,1 --repeat 4\n{MEASURED_CELL}")
    assert result.success, io.stderr
    assert [r["threads"] for r in seen] == [2, 1] * 4
    assert "best of 4 interleaved rounds" in io.outputs[-1].data["text/plain"]
    assert [len(t.runs) for t in magics_instance(ip).last_timings] == [4, 4]
    seen.clear()
    result, io = run(ip, f"%%parallel --sweep 2,1 --repeat 1\n{MEASURED_CELL}")
    assert result.success, io.stderr
    assert [r["threads"] for r in seen] == [2, 1]
    assert "interleaved" not in io.outputs[-1].data["text/plain"]
    assert [r["spread"] for r in parse_sweep(io.outputs[-1].data["text/plain"])] == ["-", "-"]
    seen.clear()
    result, io = run(ip, f"%%parallel -n 2\n{MEASURED_CELL}")  # one thread count: one run
    assert result.success, io.stderr
    assert [r["threads"] for r in seen] == [2]
    match = RUN_LINE.search(io.stdout)
    assert match and match["best"] is None, io.stdout


def test_quiet_prints_only_the_cells_output(ip: InteractiveShell, seen: list[Any]) -> None:
    result, io = run(ip, f"%%parallel --quiet -n 1\n{MEASURED_CELL}")
    assert result.success
    assert io.stdout == "cell ran at 1\n"
    assert io.stderr == "" and io.outputs == []
    result, io = run(ip, f"%%parallel --quiet --sweep 1\n{MEASURED_CELL}")
    assert io.stdout == "cell ran at 1\n" and io.outputs == []


@pytest.mark.parametrize(
    ("options", "fail_at"),
    [
        ("-n 1", 1),
        ("-n max", 1),
        ("", 1),
        ("--sweep 1,max", 2),  # the second thread count of the first round raises
        ("--sweep 1,max", 3),  # the first thread count of the second round raises
        ("--sweep max --repeat 2", 2),  # the second run raises
    ],
)
def test_error_in_cell_restores_threads(
    ip: InteractiveShell, seen: list[Any], options: str, fail_at: int
) -> None:
    if options == "--sweep 1,max" and jr.cpu_count() == 1:
        pytest.skip("one core: 1,max repeats a count")
    before = jr.current_num_threads()
    ip.user_ns["fail_at"] = fail_at
    cell = (
        f"%%parallel {options}\n{MEASURED_CELL}\n"
        "if len(seen) == fail_at: raise ValueError(f'boom at {jr.current_num_threads()}')"
    )
    result, io = run(ip, cell)
    assert not result.success  # the outer cell fails too, so "Run all" stops here
    assert isinstance(result.error_in_exec, ValueError)
    assert f"boom at {seen[-1]['threads']}" in io.stdout + io.stderr
    assert len(seen) == fail_at  # nothing ran after the failure
    assert "not timed" in io.stderr and "back at" in io.stderr
    assert jr.current_num_threads() == before
    # the pool keeps working
    assert jr.sum(ip.user_ns["data"]) == pytest.approx(float(ip.user_ns["expected"].sum()))


def test_syntax_error_in_cell(ip: InteractiveShell, seen: list[Any]) -> None:
    before = jr.current_num_threads()
    result, io = run(ip, "%%parallel -n 1\ndef broken(:")
    assert not result.success and jr.current_num_threads() == before
    assert "SyntaxError" in io.stdout + io.stderr


def test_cell_that_resizes_the_pool_is_undone(ip: InteractiveShell, seen: list[Any]) -> None:
    before = jr.current_num_threads()
    result, io = run(ip, "%%parallel -n 1\njr.set_num_threads(jr.cpu_count())")
    assert result.success, io.stderr
    assert jr.current_num_threads() == before


BAD_CELL_OPTIONS = [
    ("-n 0", "outside 1.."),
    ("-n -1", "outside 1.."),
    ("-n {big}", "outside 1.."),
    ("-n x", "not a whole number"),
    ("-n 1.5", "not a whole number"),
    ("--sweep 1,,2", "comma-separated"),
    ("--sweep ''", "comma-separated"),
    ("--sweep 1,1", "repeats"),
    ("--sweep a,b", "not a whole number"),
    ("--sweep 1,{big}", "outside 1.."),
    ("--sweep 0", "outside 1.."),
    ("--repeat 0", "at least 1"),
    ("--repeat x", "not a whole number"),
    ("--bogus", "unrecognized arguments: --bogus"),
    ("extra", "unrecognized arguments: extra"),
    ("-n 1 --sweep 1", "either -n or --sweep"),
    ('-n "1', "quotation"),
    ("-n", "expected one argument"),
    ("--sweep", "expected one argument"),
]


@pytest.mark.parametrize(("options", "message"), BAD_CELL_OPTIONS)
def test_bad_cell_options_give_one_usage_line(
    ip: InteractiveShell, seen: list[Any], options: str, message: str
) -> None:
    before = jr.current_num_threads()
    options = options.format(big=jr.max_threads() + 1)
    result, io = run(ip, f"%%parallel {options}\n{MEASURED_CELL}")
    assert not result.success
    assert seen == []  # the cell did not run
    lines = io.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("UsageError: "), io.stderr
    assert message in lines[0] and lines[0].endswith(f"; {magics.CELL_USAGE}"), lines[0]
    assert "Traceback" not in io.stdout + io.stderr
    assert jr.current_num_threads() == before
    # the magic and the pool keep working
    result, io = run(ip, f"%%parallel -n 1\n{MEASURED_CELL}")
    assert result.success and seen[-1]["threads"] == 1


@pytest.mark.parametrize(
    "line",
    [
        "threads 0",
        "threads",
        "threads 1 2",
        "threads many",
        "foo",
        "info extra",
        "widget 2",
        "threads {big}",
    ],
)
def test_bad_line_arguments(ip: InteractiveShell, seen: list[Any], line: str) -> None:
    before = jr.current_num_threads()
    result, io = run(ip, f"%parallel {line.format(big=jr.max_threads() + 1)}")
    assert not result.success
    lines = io.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("UsageError: "), io.stderr
    assert lines[0].endswith(f"; {magics.LINE_USAGE}"), lines[0]
    assert jr.current_num_threads() == before


def test_usage_is_generated_from_the_declared_options(ip: InteractiveShell) -> None:
    """`%%parallel?` and `%parallel?` show the usage magic_arguments builds, which is the one
    the UsageErrors end with, and every option and sub-command with its help."""
    assert magics.CELL_USAGE == (
        "usage: %%parallel [-n N|max] [--sweep 1,2,4|max] [--repeat R] [--quiet]"
    )
    assert magics.LINE_USAGE == "usage: %parallel [threads|info|widget] [N|max]"
    result, io = run(ip, "%%parallel?")
    assert result.success, io.stderr
    assert "%%parallel [-n N|max] [--sweep 1,2,4|max] [--repeat R] [--quiet]" in io.stdout
    for option in ("-n <N|max>, --threads <N|max>", "--sweep <1,2,4|max>", "--repeat R", "--quiet"):
        assert re.search(rf"^  {re.escape(option)}\s", io.stdout, re.MULTILINE), option
    result, io = run(ip, "%parallel?")
    assert result.success, io.stderr
    assert "%parallel [threads|info|widget] [N|max]" in io.stdout
    for command in ("threads N", "info", "widget"):
        assert f"\n%parallel {command} " in io.stdout, (command, io.stdout)
    assert "--sweep" not in io.stdout  # the line magic's help is its own


def test_line_commands_ignore_case(ip: InteractiveShell, seen: list[Any]) -> None:
    result, io = run(ip, "%parallel INFO")
    assert result.success, io.stderr
    assert io.stdout.startswith("jupyterlite_rayon: wasmtime backend")
    before = jr.current_num_threads()
    result, io = run(ip, "%parallel Threads MAX")
    assert result.success, io.stderr
    assert jr.current_num_threads() == jr.cpu_count()
    jr.set_num_threads(before)


def test_quoted_option_values_mean_what_they_say(ip: InteractiveShell, seen: list[Any]) -> None:
    # IPython keeps the quotes when it splits a magic's line; the values are read without them.
    result, io = run(ip, f"%%parallel --sweep '1' --repeat \"1\" --quiet\n{MEASURED_CELL}")
    assert result.success, io.stderr
    assert [r["threads"] for r in seen] == [1]
    result, io = run(ip, f'%%parallel -n "max" --quiet\n{MEASURED_CELL}')
    assert result.success, io.stderr
    assert seen[-1]["threads"] == jr.cpu_count()


def test_line_status_threads_and_info(ip: InteractiveShell, seen: list[Any]) -> None:
    before = jr.current_num_threads()
    info = jr.pool_info()
    result, io = run(ip, "%parallel")
    assert result.success
    assert io.stdout.count("\n") == 1
    assert (
        f"wasmtime backend, {info['build']} build, {before}/{info['max_threads']} threads"
        in io.stdout
    )
    result, io = run(ip, "%parallel threads 1")
    assert result.success and jr.current_num_threads() == 1
    assert io.stdout.strip() == f"jupyterlite_rayon: threads {before} -> 1"
    result, io = run(ip, "%parallel threads max")
    assert jr.current_num_threads() == jr.cpu_count()
    jr.set_num_threads(before)
    result, io = run(ip, "%parallel info")
    assert result.success
    text = io.stdout
    assert "cross-origin isolated" in text and "how to fix" not in text  # CPython: isolated
    thread_lines = re.findall(r"^  thread \d+ ", text, flags=re.MULTILINE)
    assert len(thread_lines) == len(jr.pool_info()["per_thread"])
    assert re.search(rf"^kernel calls +{jr.pool_info()['calls']}$", text, flags=re.MULTILINE)


def test_info_when_not_isolated_says_how_to_fix() -> None:
    info = dict(
        jr.pool_info(),
        isolated=False,
        isolation={
            "cross_origin_isolated": False,
            "shared_memory": False,
            "reason": "no COOP/COEP headers",
            "fix": "serve with the headers",
        },
    )
    text = status.info_text(info)
    assert "why not isolated       no COOP/COEP headers" in text
    assert "how to fix             serve with the headers" in text
    assert "NOT isolated" in status.status_line(info)


def test_line_widget_displays_a_widget(ip: InteractiveShell, seen: list[Any]) -> None:
    pytest.importorskip("ipywidgets")
    from jupyterlite_rayon.notebook import live

    result, io = run(ip, "%parallel widget")
    assert result.success, io.stderr
    assert "application/vnd.jupyter.widget-view+json" in io.outputs[-1].data
    for view in live.live_widgets():
        view.close()


def test_parse_sweep_max() -> None:
    assert magics.parse_sweep("max", 1) == [1]
    assert magics.parse_sweep("max", 2) == [1, 2]
    assert magics.parse_sweep("max", 6) == [1, 2, 4, 6]
    assert magics.parse_sweep("MAX", 8) == [1, 2, 4, 8]
    assert magics.parse_sweep(" 3, 1 ", 4) == [3, 1]


def test_sweep_rows_arithmetic() -> None:
    runs = [
        sweep.RunStats(threads=t, wall=w, cpu=None, tasks=1, steals=0, calls=1)
        for t, w in [(2, 0.4), (4, 0.25), (8, 0.2)]
    ]
    rows = sweep.sweep_rows([sweep.CountTiming([r]) for r in runs])
    assert [r.speedup for r in rows] == pytest.approx([1.0, 1.6, 2.0])
    assert [r.efficiency for r in rows] == pytest.approx([1.0, 0.8, 0.5])
    assert [r.spread for r in rows] == [None, None, None]  # one run each
    assert "n/a" in report.run_line(sweep.CountTiming([runs[0]]))
    assert "best of" not in report.run_line(sweep.CountTiming([runs[0]]))


def stats(threads: int, wall: float) -> sweep.RunStats:
    return sweep.RunStats(threads=threads, wall=wall, cpu=None, tasks=1, steals=0, calls=1)


def test_rounds_give_the_best_and_the_spread() -> None:
    one = sweep.CountTiming([stats(1, 0.12), stats(1, 0.10), stats(1, 0.11)])
    two = sweep.CountTiming([stats(2, 0.06), stats(2, 0.05), stats(2, 0.055)])
    assert one.best.wall == 0.10 and one.spread == pytest.approx(0.2)
    rows = sweep.sweep_rows([one, two])
    assert [r.run.wall for r in rows] == [0.10, 0.05]  # the fastest of each count
    assert rows[1].speedup == pytest.approx(2.0) and rows[1].spread == pytest.approx(0.2)
    assert "wall 100.00 ms (best of 3, spread 20%)" in report.run_line(one)
    text = report.sweep_text(rows, repeat=3)
    assert text.splitlines()[0].endswith("best of 3 interleaved rounds")
    table = parse_sweep(text)
    assert [r["spread"] for r in table] == ["20%", "20%"]
    assert "differed" not in text  # 20% is ordinary noise
    noisy = sweep.CountTiming([stats(2, 0.05), stats(2, 0.08)])
    rows = sweep.sweep_rows([one, noisy])
    text = report.sweep_text(rows, repeat=3)
    assert parse_sweep(text)[1]["spread"] == "60%"
    assert "differed by up to 60%" in text and "--repeat 10" in text
    assert "differed by up to 60%" in report.sweep_html(rows, repeat=3)


class _PendingStart:
    """Stands in for the asyncio task %load_ext schedules in JupyterLite."""

    def __init__(self, done: bool, error: BaseException | None = None) -> None:
        self._done, self._error = done, error

    def done(self) -> bool:
        return self._done

    def cancelled(self) -> bool:
        return False

    def exception(self) -> BaseException | None:
        return self._error


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (None, "no thread pool yet: run `await jupyterlite_rayon.init_thread_pool()`"),
        (_PendingStart(done=False), "still starting"),
        (_PendingStart(done=True, error=RuntimeError("no workers")), "failed to start: no workers"),
    ],
)
def test_browser_cell_before_the_pool_exists(
    ip: InteractiveShell, seen: list[Any], monkeypatch: pytest.MonkeyPatch, task: Any, message: str
) -> None:
    # JupyterLite's situation, replayed in CPython: no pool yet and no way to block for it
    # (no pyodide module here, so _wait_in_pyodide cannot wait either).
    real_info = jr.pool_info
    monkeypatch.setattr(startup, "IN_BROWSER", True)
    monkeypatch.setattr(startup, "_start_task", task)
    monkeypatch.setattr(pool, "pool_info", lambda: dict(real_info(), started=False))
    result, io = run(ip, f"%%parallel -n 1\n{MEASURED_CELL}")
    assert not result.success and seen == []
    lines = io.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("UsageError: ") and message in lines[0]
    monkeypatch.undo()
    result, io = run(ip, f"%%parallel -n 1\n{MEASURED_CELL}")  # and then it works
    assert result.success and seen[-1]["threads"] == 1


def test_top_level_await_inside_a_running_loop_is_a_usage_error(
    ip: InteractiveShell, seen: list[Any]
) -> None:
    # ipykernel runs cells inside its event loop; run_cell_async reproduces that here.
    import asyncio

    async def in_loop() -> ExecutionResult:
        return await ip.run_cell_async(
            "%%parallel -n 1\nimport asyncio\nawait asyncio.sleep(0)\nseen.append(1)",
            transformed_cell="get_ipython().run_cell_magic('parallel', '-n 1', "
            "'import asyncio\\nawait asyncio.sleep(0)\\nseen.append(1)\\n')\n",
        )

    with capture_output() as io:
        result = asyncio.run(in_loop())
    assert not result.success and seen == []
    assert "UsageError" in io.stderr and "await" in io.stderr
    # without a running loop (a terminal IPython) the same cell runs
    result, io = run(ip, "%%parallel -n 1\nimport asyncio\nawait asyncio.sleep(0)\nseen.append(1)")
    assert result.success, io.stderr
    assert seen == [1]


def test_line_widget_without_ipywidgets_is_a_usage_error(
    ip: InteractiveShell, seen: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    monkeypatch.delitem(sys.modules, "jupyterlite_rayon.notebook.widget", raising=False)
    result, io = run(ip, "%parallel widget")
    assert not result.success
    lines = io.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install ipywidgets" in lines[0], io.stderr


def test_superlinear_single_runs_get_a_hint() -> None:
    runs = [
        sweep.RunStats(threads=t, wall=w, cpu=None, tasks=1, steals=0, calls=1)
        for t, w in [(1, 0.08), (2, 0.02)]
    ]
    rows = sweep.sweep_rows([sweep.CountTiming([r]) for r in runs])
    assert rows[1].efficiency == pytest.approx(2.0)
    assert "--repeat 3" in report.sweep_text(rows, repeat=1)
    assert "--repeat 3" not in report.sweep_text(rows, repeat=3)  # already best-of
    assert "jr-sweep-hint" in report.sweep_html(rows, repeat=1)
    assert report.sweep_text(rows, repeat=1).splitlines()[-2] == ""  # after the table
    fair = sweep.sweep_rows(
        [sweep.CountTiming([runs[0]]), sweep.CountTiming([sweep.RunStats(2, 0.05, None, 1, 0, 1)])]
    )
    assert "--repeat" not in report.sweep_text(fair, repeat=1)


def test_out_of_range_on_the_single_thread_build_says_how_to_fix(
    ip: InteractiveShell, seen: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_info = jr.pool_info
    st_info = dict(
        real_info(),
        build="st",
        max_threads=1,
        isolated=False,
        isolation={
            "cross_origin_isolated": False,
            "shared_memory": False,
            "reason": "the page is not cross-origin isolated",
            "fix": "serve it with COOP/COEP headers",
        },
    )
    monkeypatch.setattr(pool, "pool_info", lambda: st_info)
    monkeypatch.setattr(pool, "max_threads", lambda: 1)
    for cell in ("%%parallel -n 2\npass", "%%parallel --sweep 1,2\npass"):
        result, io = run(ip, cell)
        lines = io.stderr.strip().splitlines()
        assert not result.success and len(lines) == 1, io.stderr
        assert (
            "outside 1..1 (the single-thread build runs: the page is not cross-origin "
            "isolated; fix: serve it with COOP/COEP headers)" in lines[0]
        )
    result, io = run(ip, "%parallel threads 2")
    assert not result.success and "fix: serve it with COOP/COEP headers" in io.stderr


def test_out_of_range_says_the_build_cap_and_names_no_setting(
    ip: InteractiveShell, seen: list[Any]
) -> None:
    result, io = run(ip, f"%%parallel -n {jr.max_threads() + 1}\npass")
    assert not result.success
    assert f"outside 1..{jr.max_threads()}" in io.stderr
    assert "JUPYTERLITE_RAYON" not in io.stderr  # no fix the reader's environment lacks


def test_a_sweep_past_the_cores_runs_and_marks_the_rows(
    ip: InteractiveShell, seen: list[Any]
) -> None:
    over = jr.cpu_count() + 1
    result, io = run(ip, f"%%parallel --sweep 1,{over} --repeat 1\n{MEASURED_CELL}")
    assert result.success, io.stderr
    assert [r["threads"] for r in seen[-2:]] == [1, over]
    table = io.outputs[-1].data["text/plain"]
    assert f"{over}*" in table and "more threads than this machine's cores" in table
    assert "1*" not in table


def test_keyboard_interrupt_in_the_cell_restores_threads(
    ip: InteractiveShell, seen: list[Any]
) -> None:
    before = jr.current_num_threads()
    result, io = run(
        ip, "%%parallel --sweep max\nseen.append(jr.current_num_threads())\nraise KeyboardInterrupt"
    )
    assert not result.success and isinstance(result.error_in_exec, KeyboardInterrupt)
    assert "KeyboardInterrupt" in io.stdout + io.stderr and "back at" in io.stderr
    assert seen == [1] and jr.current_num_threads() == before
    assert jr.sum(ip.user_ns["data"]) == pytest.approx(float(ip.user_ns["expected"].sum()))


def _notebook_imports() -> dict[str, set[str]]:
    """Each notebook module and the notebook modules it imports, wherever the import is (at
    the top, under TYPE_CHECKING, or inside a function)."""
    package = Path(magics.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        name = path.stem
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:  # from .x import y
                    targets.add(node.module.split(".")[0])
                else:  # from . import x, y
                    targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom | ast.Import):
                modules = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [alias.name for alias in node.names]
                )
                for module in modules:
                    if module.startswith("jupyterlite_rayon.notebook."):
                        targets.add(module.split(".")[2])
        graph[name] = targets - {name}
    return graph


def test_the_notebook_modules_import_no_circle() -> None:
    graph = _notebook_imports()
    assert {"magics", "sweep", "report", "status", "live", "widget", "startup"} <= set(graph)

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import circle: {' -> '.join((*path, name))}"
        for target in sorted(graph.get(name, ())):
            visit(target, (*path, name))

    for name in graph:
        visit(name, ())
    # the pool-start task has one owner: nobody reaches for another module through sys.modules
    package = Path(magics.__file__).parent
    for path in package.glob("*.py"):
        assert "sys.modules" not in path.read_text(), path.name
    # the view is the only module that imports ipywidgets
    for path in package.glob("*.py"):
        assert ("import ipywidgets" in path.read_text()) == (path.stem == "widget"), path.name
