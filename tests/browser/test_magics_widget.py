"""%load_ext, %%parallel --sweep and the pool widget in a real JupyterLite kernel (Chromium,
offline, the cross-origin isolated site). Fixtures come from tests/browser/conftest.py.

Screenshots go to _work/screenshots/ (magics_sweep.png, magics_widget.png).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from kernel_sources import REF_MANDELBROT

from jupyterlite_rayon.notebook.magics import SWEEP_ROUNDS

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "_work" / "screenshots"

# The cell records what it saw, so the table can be checked against the runs themselves.
SWEEP_CELL = """%%parallel --sweep 1,2
_before = jr.pool_info()
_img = jr.mandelbrot(64, 48, max_iter=200)
_after = jr.pool_info()
seen.append({"threads": jr.current_num_threads(), "calls": _after["calls"] - _before["calls"],
             "tasks": _after["tasks"] - _before["tasks"],
             "ok": flat(_img.tolist()) == reference})
print("ran at", jr.current_num_threads())
"""


def run(kernel: Any, code: str, timeout: float = 180) -> dict[str, Any]:
    r = kernel.execute(code, timeout=timeout)
    assert r["status"] == "ok", f"cell failed: {r.get('error')}\n{r.get('stderr')}\n{code}"
    return r


def last_json(r: dict[str, Any]) -> Any:
    lines = [line for line in r["stdout"].splitlines() if line.strip()]
    assert lines, f"no output: {r}"
    return json.loads(lines[-1])


EARLY: dict[str, Any] = {}


@pytest.fixture(scope="module")
def kernel(kernel_coi: Any) -> Any:
    """The isolated kernel with the extension loaded and its background pool start finished."""
    r = run(kernel_coi, "%load_ext jupyterlite_rayon")
    assert "starting the thread pool in the background" in r["stdout"]
    # At once, while the pool may still be starting: the cell waits for it (JSPI) or says so.
    EARLY.update(
        kernel_coi.execute(
            "%%parallel -n 1\nimport jupyterlite_rayon as jr\nprint('ran at', jr.current_num_threads())"
        )
    )
    run(
        kernel_coi,
        """
import asyncio, json, jupyterlite_rayon as jr
for _ in range(600):
    if jr.pool_info()["started"]:
        break
    await asyncio.sleep(0.1)
print(json.dumps(jr.pool_info()["started"]))
""",
    )
    return kernel_coi


def test_parallel_right_after_load_ext_waits_or_says_so(kernel: Any) -> None:
    r = EARLY
    if "ran at 1" in r["stdout"]:
        assert r["status"] == "ok" and "%%parallel: 1 thread, wall" in r["stdout"], r
    else:  # Pyodide could not block here: one line that says what to do
        lines = r["stderr"].strip().splitlines()
        assert len(lines) == 1 and "the thread pool is still starting" in lines[0], r
    print("early %%parallel:", "waited for the pool" if "ran at" in r["stdout"] else "said so")


def test_load_ext_starts_the_pool_and_status_line(kernel: Any) -> None:
    r = run(kernel, "%parallel")
    assert re.search(r"pyodide backend, mt build, \d+/\d+ threads, isolated", r["stdout"]), r
    r = run(kernel, "%parallel info")
    assert "cross-origin isolated  True" in r["stdout"]


def test_bad_options_are_one_line_and_the_kernel_keeps_running(kernel: Any) -> None:
    for options in ["-n 0", "--sweep 1,,2", "--bogus", "-n 99", "--repeat 0"]:
        r = kernel.execute(f"%%parallel {options}\nprint('should not run')")
        # pyodide-kernel 0.8.6 answers "ok" for a UsageError (it only counts tracebacks)
        assert "should not run" not in r["stdout"]
        lines = r["stderr"].strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("UsageError: "), r
        assert "usage: %%parallel" in lines[0] and r["error"] is None
    r = run(kernel, "print(jr.current_num_threads())")
    assert r["stdout"].strip().isdigit()


def test_error_in_the_cell_restores_the_thread_count(kernel: Any) -> None:
    before = last_json(run(kernel, "print(json.dumps(jr.current_num_threads()))"))
    r = kernel.execute("%%parallel -n 1\nraise ValueError(f'boom at {jr.current_num_threads()}')")
    assert r["status"] == "error" and r["error"]["ename"] == "ValueError", r
    assert "boom at 1" in r["error"]["evalue"]
    assert "back at" in r["stderr"]
    after = last_json(run(kernel, "print(json.dumps(jr.current_num_threads()))"))
    assert after == before


def test_sweep_renders_table_and_chart(kernel: Any) -> None:
    run(
        kernel,
        """
seen = []
before_threads = jr.current_num_threads()

"""
        + REF_MANDELBROT
        + """
def flat(values):
    return [v for row in values for v in row] if values and isinstance(values[0], list) else values

reference = ref_mandelbrot(64, 48, -2.0, 1.0, -1.5, 1.5, 200)
""",
    )
    r = run(kernel, SWEEP_CELL)
    # Every count runs in each of the default rounds, interleaved; only the first run prints.
    assert r["stdout"].count("ran at") == 1 and "ran at 1" in r["stdout"], r["stdout"]
    bundles = [b for b in r["results"] if "text/html" in b and "jr-sweep" in b["text/html"]]
    assert len(bundles) == 1, r["results"]
    page_html, text = bundles[0]["text/html"], bundles[0]["text/plain"]
    assert page_html.count("<svg") == 3
    lines = text.strip().splitlines()
    table = lines[2 : lines.index("")] if "" in lines else lines[2:]  # a hint may follow
    rows = [re.split(r"\s{2,}", line.strip()) for line in table]
    assert [row[0] for row in rows] == ["1", "2"]
    assert all(row[2] == "n/a" for row in rows)  # cpu/wall cannot be measured in the browser
    rounds = SWEEP_ROUNDS
    assert f"best of {rounds} interleaved rounds" in lines[0], lines[0]
    seen = last_json(run(kernel, "print(json.dumps(seen))"))
    assert [s["threads"] for s in seen] == [1, 2] * rounds
    assert all(s["ok"] for s in seen)
    # A row is its count's best run: its calls and tasks are those of one of that count's runs.
    for row in rows:
        runs = {(s["calls"], s["tasks"]) for s in seen if s["threads"] == int(row[0])}
        assert (int(row[5]), int(row[6])) in runs, (row, runs)
    restored = run(kernel, "print(json.dumps(jr.current_num_threads() == before_threads))")
    assert last_json(restored) is True
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = kernel.page
    # The report renders in the notebook itself (the run went through the notebook's cell).
    shown = page.locator(".jr-sweep-report").last
    shown.wait_for(timeout=30_000)
    assert shown.locator("svg").count() == 3
    shown.scroll_into_view_if_needed()
    shown.screenshot(path=str(SHOTS / "magics_sweep.png"))
    kernel.screenshot("magics_sweep_notebook")  # the cell and its output in the notebook


def readouts(page: Any) -> list[str]:
    """The slider readout of every pool widget on the page."""
    return page.locator(".jr-pool-widget .widget-readout").all_inner_texts()


def wait_threads(kernel: Any, expected: int) -> list[int]:
    got: list[int] = []
    for _ in range(40):  # the slider's comm message reaches the kernel between cells
        got = last_json(
            run(
                kernel,
                "print(json.dumps([jr.current_num_threads(), w.slider.value, w2.slider.value]))",
            )
        )
        if got == [expected] * 3:
            break
        time.sleep(0.25)
    return got


def test_widget_renders_and_its_slider_resizes_the_pool(kernel: Any) -> None:
    run(kernel, "%pip install ipywidgets", timeout=300)
    r = run(kernel, "w = jr.widget()\nw")
    assert any("application/vnd.jupyter.widget-view+json" in b for b in r["results"]), r
    r = run(kernel, "w2 = jr.widget()\nw2")  # a second widget on the page
    info = last_json(
        run(
            kernel,
            """
print(json.dumps({"value": w.slider.value, "max": w.slider.max, "threads": jr.current_num_threads(),
                  "bars": len(w.bars.children), "status": w.status.value}))
""",
        )
    )
    assert info["value"] == info["threads"] == info["bars"] and info["max"] >= 2
    assert "pyodide, mt build" in info["status"]
    page = kernel.page
    widgets = page.locator(".jr-pool-widget")
    widgets.nth(1).locator(".widget-slider").wait_for(timeout=60_000)
    first = widgets.nth(0)
    first.scroll_into_view_if_needed()
    # Keyboard on the first widget's slider: Home = the minimum, End = the maximum.
    for key, expected in [("Home", 1), ("End", info["max"])]:
        handle = first.locator(".noUi-handle")
        handle.focus()
        handle.press(key)
        assert wait_threads(kernel, expected) == [expected] * 3
        page.wait_for_function(
            """(n) => [...document.querySelectorAll('.jr-pool-widget .widget-readout')]
                     .every(e => e.textContent.trim() === String(n))""",
            arg=expected,
        )
        assert readouts(page) == [str(expected)] * 2
    # The mouse: drag the second widget's handle to the left end of its track.
    widgets.nth(1).locator(".noUi-target").scroll_into_view_if_needed()
    track = widgets.nth(1).locator(".noUi-target").bounding_box()
    handle = widgets.nth(1).locator(".noUi-handle").bounding_box()
    assert track and handle
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] - 20, handle["y"] + handle["height"] / 2, steps=8)
    page.mouse.up()
    assert wait_threads(kernel, 1) == [1, 1, 1]
    page.wait_for_function(
        """() => [...document.querySelectorAll('.jr-pool-widget .widget-readout')]
                 .every(e => e.textContent.trim() === '1')"""
    )
    # Back to the maximum with the second widget's keyboard, then some work for the bars.
    widgets.nth(1).locator(".noUi-handle").press("End")
    assert wait_threads(kernel, info["max"]) == [info["max"]] * 3
    run(kernel, "_ = jr.mandelbrot(160, 120, max_iter=300)\nw.slider.value")
    widgets.nth(1).scroll_into_view_if_needed()
    widgets.nth(1).screenshot(path=str(SHOTS / "magics_widget.png"))


JS_WATCH_CALLS = """(id) => {
  const views = document.querySelectorAll('.jr-pool-widget');
  const view = views[views.length - 1];
  const calls = () => {
    for (const tr of view.querySelectorAll('.jr-pool-status tr')) {
      const th = tr.querySelector('th');
      if (th && th.textContent === 'calls') return tr.querySelector('td').textContent;
    }
    return null;
  };
  const watch = window.__jrWatch = {before: [], done: false};
  const observer = new MutationObserver(() => {
    if (!watch.done) watch.before.push(calls());
  });
  observer.observe(view, {subtree: true, childList: true, characterData: true});
  window.__jrRuns.get(id).then(() => { watch.done = true; observer.disconnect(); });
}"""


def test_widget_updates_while_a_cell_runs(kernel: Any) -> None:
    """Live in the browser = after every pool call: the panel changes before the cell ends."""
    run(kernel, "jr.set_num_threads(jr.cpu_count())")
    pending = kernel.execute_async("""
import time as _time
_t0, _n = _time.perf_counter(), 0
while _time.perf_counter() - _t0 < 4.0:
    jr.mandelbrot(120, 90, max_iter=300)
    _n += 1
print(_n)
""")
    kernel.page.evaluate(JS_WATCH_CALLS, pending.run_id)
    r = pending.result(timeout=120)
    assert r["status"] == "ok", r
    watch = kernel.page.evaluate("window.__jrWatch")
    seen = sorted({int(v) for v in watch["before"] if v and v.isdigit()})
    # several distinct call counts were on screen while the cell was still running
    assert len(seen) >= 3, watch


def test_plain_site_says_why_one_thread_and_how_to_fix(kernel_plain: Any) -> None:
    """Not cross-origin isolated: the single-thread build; the magics say what to change."""
    r = run(kernel_plain, "%load_ext jupyterlite_rayon")
    run(
        kernel_plain,
        """
import asyncio, json, jupyterlite_rayon as jr
for _ in range(600):
    if jr.pool_info()["started"]:
        break
    await asyncio.sleep(0.1)
""",
    )
    r = run(kernel_plain, "%parallel")
    assert "pyodide backend, st build, 1/1 threads, NOT isolated" in r["stdout"], r
    r = run(kernel_plain, "%parallel info")
    assert "why not isolated" in r["stdout"] and "how to fix" in r["stdout"], r
    r = kernel_plain.execute("%%parallel -n 2\nprint('should not run')")
    lines = r["stderr"].strip().splitlines()
    assert len(lines) == 1 and "outside 1..1 (the single-thread build runs:" in lines[0], r
    assert "fix:" in lines[0] and "should not run" not in r["stdout"]
    r = run(kernel_plain, "%%parallel --sweep max\nx = jr.sum([1.0, 2.0, 3.0])\nprint(x)")
    assert "6.0" in r["stdout"]
    table = [b["text/plain"] for b in r["results"] if "text/plain" in b][-1]
    assert table.splitlines()[2].split()[0] == "1"  # one row, at 1 thread


def test_line_magic_threads_and_widget(kernel: Any) -> None:
    before = last_json(run(kernel, "print(json.dumps(jr.current_num_threads()))"))
    r = run(kernel, "%parallel threads 1")
    assert r["stdout"].strip() == f"jupyterlite_rayon: threads {before} -> 1"
    r = run(kernel, "%parallel widget")
    assert any("application/vnd.jupyter.widget-view+json" in b for b in r["results"]), r
    kernel.page.wait_for_function(
        """() => [...document.querySelectorAll('.jr-pool-widget .widget-readout')]
                 .every(e => e.textContent.trim() === '1')"""
    )
    r = run(kernel, f"%parallel threads {before}")
    assert last_json(run(kernel, "print(json.dumps(jr.current_num_threads()))")) == before
