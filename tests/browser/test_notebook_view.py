"""The Notebook view (/notebooks/) as well as JupyterLab (issue 11 item 7): the status item
(in the top bar: that view has no status bar), the interrupt bridge, the not-isolated
notification and the one service-worker reload."""

from __future__ import annotations

import re
from typing import Any

from browser_conftest import JS_START_RUN, JS_WAIT_RUN, GuardedContext, wait_isolated
from page_names import BRIDGE_SOURCE, PLUGIN_ID, STATUS

# The Notebook view's panel is the shell's current widget; runs go through conftest's helpers.
JS_USE_CURRENT_PANEL = """async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  for (;;) {
    const k = panel.sessionContext.session && panel.sessionContext.session.kernel;
    if (k && k.status === 'idle') break;
    await new Promise(r => setTimeout(r, 100));
  }
  window.__jrPanel = panel;
  window.__jrRuns = new Map();
  window.__jrNextRun = 0;
}"""

NOTIFICATION = re.compile(r"runs on one thread: this page is not cross-origin isolated")

# A notebook with the Pyodide kernel in its metadata, made through the page's contents API.
JS_NEW_NOTEBOOK = """async () => {
  const app = window.jupyterapp;
  await app.restored;
  const model = await app.serviceManager.contents.newUntitled({type: 'notebook'});
  await app.serviceManager.contents.save(model.path, {type: 'notebook', format: 'json',
    content: {nbformat: 4, nbformat_minor: 5, cells: [],
              metadata: {kernelspec: {name: 'python', display_name: 'Python (Pyodide)'}}}});
  return model.path;
}"""


def open_notebook_view(browser: Any, url: str) -> tuple[GuardedContext, Any]:
    guard = GuardedContext(browser)
    page = guard.context.new_page()
    page.set_default_timeout(120_000)
    page.goto(url + "tree/index.html")
    page.wait_for_function("window.jupyterapp !== undefined")
    path = page.evaluate(JS_NEW_NOTEBOOK)
    page.goto(url + f"notebooks/index.html?path={path}")
    page.wait_for_function("window.jupyterapp !== undefined")
    page.evaluate("window.jupyterapp.restored")
    return guard, page


def test_notebook_view_isolated_has_the_status_item_and_bridge(browser: Any, site_url: Any) -> None:
    guard, page = open_notebook_view(browser, site_url("coi"))
    try:
        item = page.locator(STATUS)
        item.filter(has_text="rayon: isolated").wait_for()
        assert page.evaluate(BRIDGE_SOURCE) == PLUGIN_ID
        assert page.get_by_text(NOTIFICATION).count() == 0
        # A pool in this notebook's kernel: the item shows it, as in JupyterLab.
        page.evaluate(JS_USE_CURRENT_PANEL)
        run = page.evaluate(
            JS_START_RUN, "import jupyterlite_rayon as jr\nawait jr.init_thread_pool(2)"
        )
        got = page.evaluate(JS_WAIT_RUN, [run, 120_000])
        assert (got.get("reply") or {}).get("status") == "ok", got
        item.filter(has_text="2 threads, 0 busy").wait_for(timeout=30_000)
        assert item.inner_text() == "rayon: isolated · 2 threads, 0 busy"
        page.screenshot(path="_work/screenshots/notebook_view_isolated.png")
    finally:
        guard.close()


def test_notebook_view_plain_says_why_one_thread(browser: Any, site_url: Any) -> None:
    guard, page = open_notebook_view(browser, site_url("plain"))
    try:
        page.locator(STATUS).filter(has_text="rayon: not isolated (1 thread)").wait_for()
        page.get_by_text(NOTIFICATION).first.wait_for(timeout=60_000)
    finally:
        guard.close()


def test_notebook_view_sw_site_reloads_once_into_isolation(browser: Any, site_url: Any) -> None:
    """A first visit straight to the Notebook view of the service-worker site: one reload, then
    isolated (the page need not hold a notebook for that)."""
    guard = GuardedContext(browser)
    try:
        page = guard.context.new_page()
        page.set_default_timeout(120_000)
        loads: list[str] = []
        page.on("framenavigated", lambda f: loads.append(f.url) if f == page.main_frame else None)
        page.goto(site_url("sw") + "notebooks/index.html?path=first-visit.ipynb")
        assert wait_isolated(page, 60), f"the Notebook view did not become isolated: {loads}"
        page.wait_for_function("window.jupyterapp !== undefined")
        page.locator(STATUS).filter(has_text="rayon: isolated").wait_for()
        assert page.evaluate(BRIDGE_SOURCE) == PLUGIN_ID
        assert len(loads) == 2, f"expected the first load and one reload: {loads}"
    finally:
        guard.close()
