"""What `%%parallel` shows: one line for one thread count; for a sweep a text table (text/plain)
and an HTML table with three inline SVG bar charts (wall time, speedup, efficiency).

Pure functions of the runs; no IPython, no pool.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from .sweep import CountTiming, SweepRow

SWEEP_COLUMNS = (
    "threads",
    "wall ms",
    "cpu/wall",
    "speedup",
    "efficiency",
    "calls",
    "tasks",
    "steals",
    "spread",
)
# Rounds that differ by more than this make the best a shaky number: the report says so.
NOISY_SPREAD = 0.25


def ms_text(seconds: float) -> str:
    """Milliseconds with enough digits for the printed speedup to be checked from them."""
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _threads(n: int) -> str:
    return "1 thread" if n == 1 else f"{n} threads"


def _spread(spread: float | None) -> str:
    return "-" if spread is None else f"{spread * 100:.0f}%"


def run_line(timing: CountTiming) -> str:
    """One thread count: its best run; with several runs, how many and their spread."""
    run = timing.best
    rounds = len(timing.runs)
    best = f" (best of {rounds}, spread {_spread(timing.spread)})" if rounds > 1 else ""
    cpu = _ratio(run.cpu_per_wall)
    if run.cpu is None:
        cpu += " (browser workers' CPU time is not measurable)"
    return (
        f"%%parallel: {_threads(run.threads)}, wall {ms_text(run.wall)} ms{best}, "
        f"cpu/wall {cpu}, calls {run.calls}, tasks {run.tasks}, steals {run.steals}"
    )


def _row_cells(row: SweepRow) -> list[str]:
    r = row.run
    return [
        f"{r.threads}*" if row.oversubscribed else str(r.threads),
        ms_text(r.wall),
        _ratio(r.cpu_per_wall),
        f"{row.speedup:.2f}",
        f"{row.efficiency * 100:.0f}%",
        str(r.calls),
        str(r.tasks),
        str(r.steals),
        _spread(row.spread),
    ]


def sweep_text(rows: Sequence[SweepRow], repeat: int) -> str:
    cells = [list(SWEEP_COLUMNS)] + [_row_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(SWEEP_COLUMNS))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in cells]
    hints = _sweep_hints(rows, repeat)
    return "\n".join([_sweep_caption(rows, repeat), *lines, *([""] + hints if hints else [])])


def _sweep_caption(rows: Sequence[SweepRow], repeat: int) -> str:
    best = f", best of {repeat} interleaved rounds" if repeat > 1 else ""
    return f"%%parallel sweep: speedup against {_threads(rows[0].run.threads)}{best}"


def _sweep_hints(rows: Sequence[SweepRow], repeat: int) -> list[str]:
    """What to distrust in the table, and what to run instead."""
    hints = []
    over = [r.run.threads for r in rows if r.oversubscribed]
    if over:
        hints.append(
            f"* more threads than this machine's cores: they take turns on the cores, so the "
            f"speedup stops growing there (rows {', '.join(map(str, over))})"
        )
    if repeat == 1 and any(r.efficiency > 1.1 for r in rows):
        # Superlinear speedup from single runs: the first run usually paid one-off costs.
        hints.append(
            "efficiency over 100% usually means the first run paid one-off costs "
            "(compiling, memory growth): --repeat 3 keeps the best of 3 runs"
        )
    spreads = [r.spread for r in rows if r.spread is not None and math.isfinite(r.spread)]
    if spreads and max(spreads) > NOISY_SPREAD:
        hints.append(
            f"the runs of one thread count differed by up to {max(spreads) * 100:.0f}%: the "
            "machine was busy; more rounds (--repeat 10) or a longer cell give steadier numbers"
        )
    return hints


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
    charts = "".join(
        [
            bar_chart_svg("wall time (ms)", labels, [r.run.wall * 1e3 for r in rows], "{:.1f}"),
            bar_chart_svg(
                "speedup (line: ideal)", labels, [r.speedup for r in rows], "{:.2f}", ideal=ideal
            ),
            bar_chart_svg(
                "efficiency (%)",
                labels,
                [r.efficiency * 100 for r in rows],
                "{:.0f}",
                ideal=[100.0] * len(rows),
            ),
        ]
    )
    note = "".join(
        f'<p class="jr-sweep-hint"><small>{html.escape(hint)}</small></p>'
        for hint in _sweep_hints(rows, repeat)
    )
    return (
        f'<div class="jr-sweep-report">{table}{note}<div style="display:flex">{charts}</div></div>'
    )


def bar_chart_svg(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    fmt: str,
    ideal: Sequence[float] | None = None,
) -> str:
    """A small labelled bar chart; `ideal` draws a reference polyline across the bars."""
    width, height, top, bottom, left = 220, 170, 28, 24, 8
    plot_h = height - top - bottom
    finite = [v for v in list(values) + list(ideal or []) if math.isfinite(v)]
    peak = max(finite + [1e-12])
    slot = (width - 2 * left) / max(len(values), 1)
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="{html.escape(title)}" style="font:11px sans-serif">'
        ),
        (
            f'<text x="{width / 2}" y="14" text-anchor="middle" font-weight="bold">'
            f"{html.escape(title)}</text>"
        ),
        (
            f'<line x1="{left}" y1="{top + plot_h}" x2="{width - left}" y2="{top + plot_h}" '
            'stroke="#888"/>'
        ),
    ]
    for i, (label, value) in enumerate(zip(labels, values)):
        shown = value if math.isfinite(value) else 0.0
        h = plot_h * max(shown, 0.0) / peak
        x = left + i * slot + slot * 0.15
        y = top + plot_h - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
            'fill="#4c78a8"/>'
        )
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" text-anchor="middle">'
            f"{html.escape(fmt.format(value))}</text>"
        )
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{height - 8}" text-anchor="middle">'
            f"{html.escape(label)}t</text>"
        )
    if ideal:
        points = " ".join(
            f"{left + i * slot + slot / 2:.1f},{top + plot_h - plot_h * v / peak:.1f}"
            for i, v in enumerate(ideal)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="#e45756" '
            'stroke-dasharray="4 3" stroke-width="1.5"/>'
        )
    parts.append("</svg>")
    return "".join(parts)
