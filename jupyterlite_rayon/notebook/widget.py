"""`PoolWidget`: the pool's controls and status, composed from ipywidgets 8's built-in widgets.

It only displays `Snapshot`s and hands slider releases and its closing to the callbacks it was
made with; `live.py` reads the pool, makes the widgets and keeps every one on the page showing
the same snapshot. In JupyterLite the labextension also draws into it while a call runs (the
kernel cannot): it finds the parts by the classes `jr-pool-widget`, `jr-pool-bars`,
`jr-thread-label`, `jr-pool-live` and the status cells by `data-jr-field`, so those names are a
contract with labextension/src/widgetview.ts. Importing this module imports ipywidgets.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from .status import Snapshot, status_rows


class PoolWidget(w.VBox):
    """Thread slider (resizes the pool when released), status panel, per-thread activity."""

    def __init__(
        self,
        on_resize: Callable[[int], None],
        on_close: Callable[[PoolWidget], None],
        note: str,
        **kwargs: Any,
    ) -> None:
        self._on_resize = on_resize  # a slider release: the caller resizes the pool
        self._on_close = on_close
        self.slider = w.IntSlider(
            value=1,
            min=1,
            max=1,
            step=1,
            description="threads",
            continuous_update=False,  # resize once, when the slider is released
        )
        self.status = w.HTML(value="")
        self.bars = w.VBox([])
        self.bars.add_class("jr-pool-bars")
        # Written only by the page (labextension), never by Python: a live line during calls.
        self.live = w.HTML(value="")
        self.live.add_class("jr-pool-live")
        self.note = w.HTML(value=f"<small>{html.escape(note)}</small>")
        self._syncing = False  # True while show() moves the slider: not a user's request
        super().__init__([self.slider, self.status, self.live, self.bars, self.note], **kwargs)
        self.add_class("jr-pool-widget")
        self.slider.observe(self._on_slider, names="value")

    def _on_slider(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self._on_resize(int(change["new"]))

    def show(self, snapshot: Snapshot) -> None:
        """Make every part of the widget agree with the snapshot."""
        info = snapshot.info
        started = bool(info.get("started", False))
        # One position per core (more when the pool already has more threads than cores),
        # never past the build's cap.
        threads = max(int(info.get("threads") or 1), 1)
        cap = max(int(info.get("max_threads") or 1), 1)
        maximum = min(max(int(info.get("cores") or 1), threads), cap)
        threads = min(threads, maximum)
        self._syncing = True
        try:
            # max before value: the slider clamps a value above its current max.
            self.slider.max = maximum
            self.slider.value = threads
        finally:
            self._syncing = False
        self.slider.disabled = not started or maximum == 1
        self.status.value = _status_html(status_rows(snapshot))
        self._show_bars(info.get("per_thread") or [], snapshot.shares, threads if started else 0)

    def _show_bars(
        self, per_thread: list[dict[str, Any]], shares: list[float], threads: int
    ) -> None:
        records = per_thread[:threads]
        while len(self.bars.children) < len(records):
            i = len(self.bars.children)
            bar = w.FloatProgress(
                value=0.0, min=0.0, max=1.0, description=f"#{i}", layout=w.Layout(width="260px")
            )
            label = w.Label(value="")
            label.add_class("jr-thread-label")  # the page writes it during calls
            self.bars.children = (*self.bars.children, w.HBox([bar, label]))
        if len(self.bars.children) > len(records):
            self.bars.children = self.bars.children[: len(records)]
        for row, record, share in zip(self.bars.children, records, shares):
            bar, label = row.children
            working = record.get("state") == "working"
            bar.value = share
            bar.bar_style = "success" if working else "info"
            label.value = (
                f"{record.get('state', '?')}, {record.get('tasks', 0)} tasks, "
                f"{record.get('steals', 0)} steals"
            )

    def close(self) -> None:
        self._on_close(self)
        for row in self.bars.children:
            for child in row.children:
                child.close()
            row.close()
        for child in (self.slider, self.status, self.live, self.bars, self.note):
            child.close()
        super().close()


def _status_html(rows: list[tuple[str, str]]) -> str:
    cell = "padding:1px 12px 1px 0;line-height:1.3;text-align:left"
    body = "".join(
        f'<tr><th style="{cell}">{html.escape(label)}</th>'
        f'<td data-jr-field="{html.escape(label)}" style="{cell}{_error_style(label)}">'
        f"{html.escape(text)}</td></tr>"
        for label, text in rows
    )
    return f'<table class="jr-pool-status">{body}</table>'


def _error_style(label: str) -> str:
    return ";color:#c00" if label == "error" else ""
