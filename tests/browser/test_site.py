"""The site the add-on builds, served three ways, in Chromium.

- "coi": served with COOP/COEP/CORP: the kernel is cross-origin isolated, jupyterlite_rayon
  imports without %pip, the status bar says isolated, no notification.
- "plain": no headers: not isolated, the status bar says so and a notification gives the fix.
- "sw": no headers, service worker patched by RayonAddon.service_worker: the first load is not
  isolated, the labextension reloads exactly once, then the kernel is isolated.
All offline: the fixtures' route guard fails a test on any request not to 127.0.0.1.
"""

from __future__ import annotations

import json
import re
from typing import Any

from page_names import BRIDGE_SOURCE, PLUGIN_ID, RELOAD_KEY, STATUS

from jupyterlite_rayon import isolation

NOTIFICATION = re.compile(r"runs on one thread: this page is not cross-origin isolated")

KERNEL_FACTS = """
import json, js
import jupyterlite_rayon
print(json.dumps({
    "isolated": bool(js.crossOriginIsolated),
    "sab": hasattr(js, "SharedArrayBuffer"),
    "module": jupyterlite_rayon.__file__,
}))
"""


def facts(kernel: Any) -> dict[str, Any]:
    r = kernel.execute(KERNEL_FACTS)
    assert r["status"] == "ok", r
    return json.loads(r["stdout"].strip().splitlines()[-1])


def status_text(kernel: Any) -> str:
    item = kernel.page.locator(STATUS)
    item.wait_for(timeout=30_000)
    return item.inner_text()


def test_coi_site_is_isolated_and_rayon_is_preloaded(kernel_coi: Any) -> None:
    got = facts(kernel_coi)
    assert got["isolated"] is True and got["sab"] is True
    # Installed from the site's wheel at kernel start: no %pip line ran in this kernel.
    assert "site-packages/jupyterlite_rayon/" in got["module"], got
    assert kernel_coi.timings["first_load_isolated"] is True
    assert kernel_coi.navigations == 1
    assert status_text(kernel_coi).startswith("rayon: isolated")
    assert kernel_coi.page.get_by_text(NOTIFICATION).count() == 0
    # The shipped labextension's interrupt bridge and pyodide-kernel fix are the active ones.
    assert kernel_coi.page.evaluate(BRIDGE_SOURCE) == PLUGIN_ID
    assert kernel_coi.page.evaluate("Atomics.waitAsync.__jrFixed") is True
    kernel_coi.screenshot("site_coi")


def test_coi_site_ships_the_runtime_files(kernel_coi: Any) -> None:
    r = kernel_coi.execute("""
import json, pathlib, jupyterlite_rayon
root = pathlib.Path(jupyterlite_rayon.__file__).parent
print(json.dumps(sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                        if p.suffix in {".wasm", ".mjs"})))
""")
    assert r["status"] == "ok", r
    shipped = json.loads(r["stdout"].strip().splitlines()[-1])
    assert {"wasm/pool-mt.wasm", "wasm/pool-st.wasm", "host/pool_host.mjs"} <= set(shipped)


def test_coi_status_bar_shows_the_pool_threads(kernel_coi: Any) -> None:
    r = kernel_coi.execute(
        "import jupyterlite_rayon as jr\nawait jr.init_thread_pool(2)\n"
        "print(jr.pool_info()['threads'])"
    )
    assert r["status"] == "ok" and r["stdout"].strip().endswith("2"), r
    item = kernel_coi.page.locator(STATUS)
    # The kernel posts its pool's counters block once; the page reads it every 500 ms.
    item.filter(has_text="2 threads").wait_for(timeout=30_000)
    assert re.fullmatch(r"rayon: isolated · 2 threads, [0-2] busy", item.inner_text())
    r = kernel_coi.execute("jr.set_num_threads(1)")
    assert r["status"] == "ok", r
    item.filter(has_text="1 thread,").wait_for(timeout=30_000)
    kernel_coi.screenshot("site_coi_pool_status")


def test_plain_site_is_not_isolated_and_says_how_to_fix_it(kernel_plain: Any) -> None:
    got = facts(kernel_plain)
    assert got["isolated"] is False and got["sab"] is False
    assert "site-packages/jupyterlite_rayon/" in got["module"]
    assert kernel_plain.navigations == 1, "a headerless site without the patch must not reload"
    assert status_text(kernel_plain).startswith("rayon: not isolated")
    page = kernel_plain.page
    # The fix for this host (127.0.0.1), from isolation.py's table through the generated abi.ts.
    here = isolation.fix_for_host("127.0.0.1")
    assert here in page.locator(STATUS).get_attribute("title")
    page.get_by_text(NOTIFICATION).first.wait_for(timeout=30_000)
    kernel_plain.screenshot("site_plain_notification")
    page.get_by_role("button", name="How to fix").first.click()
    dialog = page.locator(".jp-Dialog-content")
    dialog.wait_for(timeout=10_000)
    text = dialog.inner_text()
    assert "Cross-Origin-Embedder-Policy: require-corp" in text, text
    assert f"Here (127.0.0.1): {here}." in text, text
    # Then the other hosts' fixes: what the site needs where it will be deployed.
    assert "--rayon-service-worker" in text and "vercel.json" in text, text
    for row in isolation.HOSTS:
        if row["kind"] != "localhost":
            assert str(row["fix"]) in text, (row["kind"], text)
    kernel_plain.screenshot("site_plain_fix_dialog")
    page.get_by_role("button", name="Ok").click()


def test_plain_site_pip_install_works_offline(kernel_plain: Any) -> None:
    r = kernel_plain.execute("%pip install jupyterlite-rayon", timeout=180)
    assert r["status"] == "ok", r
    r = kernel_plain.execute(
        "import micropip, json\nprint(json.dumps('jupyterlite-rayon' in micropip.list()))"
    )
    assert r["status"] == "ok" and r["stdout"].strip().endswith("true"), r


def test_sw_site_is_isolated_after_exactly_one_reload(kernel_sw: Any) -> None:
    assert kernel_sw.timings["first_load_isolated"] is False
    assert "manual_reload" not in kernel_sw.timings, "the labextension did not reload"
    assert kernel_sw.navigations == 2, f"{kernel_sw.navigations} loads, expected 2"
    got = facts(kernel_sw)
    assert got["isolated"] is True and got["sab"] is True
    page = kernel_sw.page
    assert "service-worker.js" in page.evaluate("navigator.serviceWorker.controller.scriptURL")
    # Isolated now: the loop guard is cleared, so the page stays put.
    assert page.evaluate(f"sessionStorage.getItem('{RELOAD_KEY}')") is None
    assert status_text(kernel_sw).startswith("rayon: isolated")
    kernel_sw.screenshot("site_sw_isolated")


# The example notebooks run top to bottom, isolated and not: tests/browser/test_examples.py.


def test_sw_site_reloads_at_most_once(guarded_page: Any, site_url: Any) -> None:
    """With the loop guard already set (a reload happened and did not help), no second reload:
    the page stays, says it is not isolated even after the reload, and how to fix it."""
    page = guarded_page
    page.add_init_script(f"sessionStorage.setItem('{RELOAD_KEY}', '1')")
    loads: list[str] = []

    def navigated(frame: Any) -> None:
        if frame == page.main_frame:
            loads.append(frame.url)

    page.on("framenavigated", navigated)
    page.goto(site_url("sw") + "lab/index.html")
    page.get_by_text(NOTIFICATION).first.wait_for(timeout=60_000)
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=60_000)
    page.wait_for_timeout(3000)  # time for a (wrong) reload to start
    assert len(loads) == 1, loads
    assert page.evaluate("crossOriginIsolated") is False
    assert page.locator(STATUS).inner_text().startswith("rayon: not isolated")
    assert "even after reloading" in page.locator(STATUS).get_attribute("title")
