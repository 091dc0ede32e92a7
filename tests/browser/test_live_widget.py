"""The pool widget is live during one long call in the page, and agrees with the status bar
(issue 11 item 2, issue 12 item 3).

The kernel's worker is blocked during a call, so the labextension draws the widget's live part
from the same shared counters, in the same reading, as the status bar. The page samples the
widget and the status bar together (one synchronous read of the DOM) while one call runs.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from page_names import STATUS

# Sample the widget and the status bar together until the cell's run ends.
JS_SAMPLE_DURING_RUN = """([id, status, everyMs]) => {
  const view = [...document.querySelectorAll('.jr-pool-widget')].pop();
  const samples = window.__jrSamples = [];
  const sample = () => {
    const live = view.querySelector('.jr-pool-live');
    const field = (name) => {
      const td = view.querySelector(`[data-jr-field="${name}"]`);
      return td ? td.textContent : null;
    };
    samples.push({
      inCall: live.getAttribute('data-jr-in-call') === 'true',
      live: live.textContent,
      busy: field('busy'),
      tasks: field('tasks'),
      labels: [...view.querySelectorAll('.jr-pool-bars .jr-thread-label')].map(e => e.textContent),
      status: document.querySelector(status).textContent,
    });
  };
  const timer = setInterval(sample, everyMs);
  // The last sample a little after the end: the page's next readings see the pool idle.
  window.__jrSampled = false;
  window.__jrRuns.get(id).then(() => {
    clearInterval(timer);
    setTimeout(() => { sample(); window.__jrSampled = true; }, 600);
  });
}"""


def run(kernel: Any, code: str, timeout: float = 300) -> dict[str, Any]:
    r = kernel.execute(code, timeout=timeout)
    assert r["status"] == "ok", f"cell failed: {r.get('error')}\n{r.get('stderr')}\n{code}"
    return r


@pytest.fixture(scope="module")
def widget_kernel(kernel_coi: Any) -> Any:
    run(kernel_coi, "%pip install ipywidgets")
    run(kernel_coi, "import json, jupyterlite_rayon as jr\nawait jr.init_thread_pool(2)")
    r = run(kernel_coi, "w = jr.widget()\nw")
    assert any("application/vnd.jupyter.widget-view+json" in b for b in r["results"]), r
    kernel_coi.page.wait_for_function(
        """() => { const l = document.querySelector('.jr-pool-widget .jr-pool-live');
                   return l && l.textContent.startsWith('live: idle, 2 threads'); }""",
        timeout=60_000,
    )
    return kernel_coi


def status_busy(text: str) -> int:
    found = re.search(r"(\d+) busy", text)
    assert found, f"the status bar shows no pool: {text!r}"
    return int(found.group(1))


def test_widget_view_changes_during_one_long_call(widget_kernel: Any) -> None:
    # One call of a few seconds on two threads (most pixels run to max_iter; about 3 s since
    # the kernel runs eight pixels in lanes: 0.7 s at max_iter 3000 left too few samples).
    pending = widget_kernel.execute_async(
        "img = jr.mandelbrot(2400, 1800, max_iter=12000)\nprint(json.dumps(jr.pool_info()['calls']))"
    )
    widget_kernel.page.evaluate(JS_SAMPLE_DURING_RUN, [pending.run_id, STATUS, 250])
    r = pending.result(timeout=300)
    assert r["status"] == "ok", r
    widget_kernel.page.wait_for_function("window.__jrSampled === true")
    samples = widget_kernel.page.evaluate("window.__jrSamples")
    during = [s for s in samples if s["inCall"]]
    print(f"{len(during)} of {len(samples)} samples during the call; first: {during[:1]}")
    assert len(during) >= 3, samples
    # The elapsed time runs on, and the threads' task counts move, while the call runs.
    elapsed = [float(re.search(r"running, ([\d.]+) s", s["live"]).group(1)) for s in during]
    assert elapsed == sorted(elapsed) and elapsed[-1] > elapsed[0], elapsed
    assert len({tuple(s["labels"]) for s in during}) >= 2, during
    assert len({s["tasks"] for s in during}) >= 2, during
    assert all(len(s["labels"]) == 2 for s in samples), samples  # one per thread
    # The cores are seen working: a busy thread and a "working" label, both threads used.
    assert max(int(s["busy"]) for s in during) >= 1, during
    assert any("working" in label for s in during for label in s["labels"]), during
    # One reading for both: widget and status bar never disagree, during and after the call.
    for s in samples:
        assert int(s["busy"]) == status_busy(s["status"]), s
    last = samples[-1]
    assert not last["inCall"] and last["live"].startswith("live: idle, 2 threads"), last
    assert "the last call seen running took" in last["live"], last
    assert int(last["busy"]) == 0
