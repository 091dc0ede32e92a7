"""Browser test fixtures: one offline JupyterLite site, served three ways, driven by Chromium.

- ``lite_site``: the site built once per session by scripts/build_site.py (the add-on puts the
  jupyterlite-rayon wheel in it and preloads it, plus the labextension). ``lite_site_sw`` is
  the same site built with ``RayonAddon.service_worker``. Both must carry the labextension
  built in jupyterlite_rayon/labextension (or JR_SITE_WHEEL's): the tests use its interrupt
  bridge, status bar and pyodide-kernel fix, never a copy of their own.
- ``site_url(mode)``: base URL of the site served on 127.0.0.1, mode "coi" (COOP/COEP/CORP
  headers), "plain" (no headers) or "sw" (no headers, service worker patched).
- ``browser``: Playwright driving /usr/bin/chromium. Every context has a route guard that aborts
  any request not to 127.0.0.1; a test that caused one fails.
- ``open_kernel(mode)`` -> ``LiteKernel``: a notebook opened in the lab with a Pyodide kernel.
  ``.execute(code, timeout=120)`` -> dict(status, stdout, stderr, results, error) where results
  are the mime bundles of execute_result/display_data and error is {ename, evalue, traceback}
  or None; ``.execute_async(code).result(timeout)``; ``.interrupt()``; ``.page``.
- ``kernel_coi``, ``kernel_plain``, ``kernel_sw``: one kernel per test module.
- ``guarded_page``: a fresh page in its own guarded context, for tests without a kernel.
- ``screenshot(page, name)``: saves _work/screenshots/NAME.png.

scripts/install_browser_deps.sh runs once per session first (idempotent, quick when done).
JR_SITE_WHEEL=path/to/jupyterlite_rayon-*.whl puts that wheel in the sites instead of one
written from the source tree.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
SHOTS = ROOT / "_work" / "screenshots"
MODES = ("coi", "plain", "sw")
LOCAL_PREFIXES = ("http://127.0.0.1", "ws://127.0.0.1", "blob:", "data:", "about:")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Belt and braces with the route guard: no name but 127.0.0.1 resolves, even for requests
    # a service worker makes (which Playwright's routing does not see).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
KERNEL_START_TIMEOUT_S = 180
# The site's copy of the jupyterlite-rayon labextension, and the bridge it publishes.
LABEXTENSION = "extensions/jupyterlite-rayon/package.json"
BUILT_LABEXTENSION = ROOT / "jupyterlite_rayon" / "labextension" / "package.json"
WHEEL_LABEXTENSION = "share/jupyter/labextensions/jupyterlite-rayon/package.json"


def _load_script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"jr_scripts_{name}", SCRIPTS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_site_script = _load_script("build_site")
serve_script = _load_script("serve")


# -- the page side, as JS functions evaluated with page.evaluate --------------------------------

JS_OPEN_NOTEBOOK = """async ({kernelName, timeoutMs}) => {
  const sleep = (ms) => new Promise(r => setTimeout(r, ms));
  const t0 = performance.now();
  const late = () => performance.now() - t0 > timeoutMs;
  while (!window.jupyterapp) {
    if (late()) throw new Error('no window.jupyterapp');
    await sleep(100);
  }
  const app = window.jupyterapp;
  await app.restored;
  const restored = performance.now() - t0;
  const panel = await app.commands.execute('notebook:create-new', {kernelName});
  await panel.context.ready;
  await panel.sessionContext.ready;
  for (;;) {
    const k = panel.sessionContext.session && panel.sessionContext.session.kernel;
    if (k && k.status === 'idle' && k.connectionStatus === 'connected') break;
    if (late()) throw new Error('kernel not idle: ' + (k ? k.status : 'no kernel'));
    await sleep(100);
  }
  window.__jrPanel = panel;
  window.__jrRuns = new Map();
  window.__jrNextRun = 0;
  return {restored_ms: restored, ready_ms: performance.now() - t0};
}"""

JS_START_RUN = """(code) => {
  const panel = window.__jrPanel, nb = panel.content, model = nb.model;
  model.sharedModel.insertCell(model.cells.length, {cell_type: 'code', source: code});
  const index = model.cells.length - 1;
  nb.activeCellIndex = index;
  const cell = nb.widgets[index];
  const outputs = () => cell.model.outputs.toJSON();
  const id = ++window.__jrNextRun;
  // CodeCell.execute is what running a cell in the notebook calls: outputs render as usual.
  const run = cell.constructor.execute(cell, panel.sessionContext).then(
    (reply) => ({reply: reply ? reply.content : null, outputs: outputs()}),
    (err) => ({exception: String(err && err.message || err), outputs: outputs()}));
  window.__jrRuns.set(id, run);
  return id;
}"""

JS_WAIT_RUN = """async ([id, timeoutMs]) => {
  const run = window.__jrRuns.get(id);
  if (!run) throw new Error('unknown run ' + id);
  const timer = new Promise(r => setTimeout(() => r({timeout: true}), timeoutMs));
  const got = await Promise.race([run, timer]);
  if (!got.timeout) window.__jrRuns.delete(id);
  return got;
}"""

JS_INTERRUPT = """async () => {
  const k = window.__jrPanel.sessionContext.session.kernel;
  await k.interrupt();
}"""


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def error_name(ename: str) -> str:
    """The exception's class name: pyodide-kernel 0.8.6 sends "<class 'mod.Name'>" as ename."""
    match = re.fullmatch(r"<class '([\w.]+)'>", ename.strip())
    return match.group(1).rsplit(".", 1)[-1] if match else ename


def outputs_to_result(got: dict[str, Any]) -> dict[str, Any]:
    """The notebook cell's outputs (nbformat JSON) as the dict tests read."""
    stdout: list[str] = []
    stderr: list[str] = []
    results: list[dict[str, Any]] = []
    error: dict[str, Any] | None = None
    for out in got.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            (stdout if out.get("name") == "stdout" else stderr).append(_text(out.get("text")))
        elif kind in ("execute_result", "display_data"):
            results.append({k: v for k, v in out.get("data", {}).items()})
        elif kind == "error":
            error = {
                "ename": error_name(out.get("ename", "")),
                "evalue": out.get("evalue", ""),
                "traceback": out.get("traceback", []),
            }
    reply = got.get("reply") or {}
    if got.get("exception"):
        status = "error"
        error = error or {"ename": "ExecutionFailed", "evalue": got["exception"], "traceback": []}
    else:
        status = reply.get("status") or ("error" if error else "ok")
        if status == "error" and error is None:
            error = {
                "ename": error_name(reply.get("ename", "")),
                "evalue": reply.get("evalue", ""),
                "traceback": reply.get("traceback", []),
            }
    return {
        "status": status,
        "stdout": "".join(stdout),
        "stderr": "".join(stderr),
        "results": results,
        "error": error,
    }


OPEN_GUARDS: list[GuardedContext] = []


class GuardedContext:
    """A browser context whose requests may only go to 127.0.0.1."""

    def __init__(self, browser: Any) -> None:
        self.blocked: list[str] = []
        self.reported = 0  # blocked[:reported] already failed a test
        OPEN_GUARDS.append(self)
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.context.route("**/*", self._route)
        # Requests that bypass routing (a service worker's own fetches) still show up here.
        self.context.on("request", self._seen)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(LOCAL_PREFIXES):
            route.continue_()
        else:
            self._seen(route.request)
            route.abort()

    def _seen(self, request: Any) -> None:
        url = request.url
        if not url.startswith(LOCAL_PREFIXES) and url not in self.blocked:
            self.blocked.append(url)

    def check_offline(self) -> None:
        new = self.blocked[self.reported :]
        self.reported = len(self.blocked)
        assert not new, f"requests left 127.0.0.1 (offline guard): {new[:10]}"

    def close(self) -> None:
        if self in OPEN_GUARDS:
            OPEN_GUARDS.remove(self)
        self.context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Fail the test that was running when a page tried to leave 127.0.0.1."""
    result = yield
    for guard in OPEN_GUARDS:
        guard.check_offline()
    return result


class PendingRun:
    """A cell started with ``execute_async``; ``result(timeout)`` waits for it."""

    def __init__(self, kernel: LiteKernel, run_id: int, code: str) -> None:
        self.kernel, self.run_id, self.code = kernel, run_id, code

    def wait(self, timeout: float) -> dict[str, Any] | None:
        """The result, or None if the cell is still running after `timeout` seconds."""
        got = self.kernel.page.evaluate(JS_WAIT_RUN, [self.run_id, int(timeout * 1000)])
        self.kernel.guard.check_offline()
        return None if got.get("timeout") else outputs_to_result(got)

    def result(self, timeout: float = 120) -> dict[str, Any]:
        got = self.kernel.page.evaluate(JS_WAIT_RUN, [self.run_id, int(timeout * 1000)])
        self.kernel.guard.check_offline()
        if got.get("timeout"):
            self.kernel.interrupt()  # so later cells do not queue behind this one forever
            console = "\n".join(self.kernel.console[-15:])
            raise TimeoutError(
                f"cell did not finish in {timeout}s:\n{self.code[:400]}\nconsole:\n{console}"
            )
        return outputs_to_result(got)


class LiteKernel:
    """A JupyterLite notebook with a live Pyodide kernel, in its own browser context."""

    def __init__(self, guard: GuardedContext, page: Any, mode: str, url: str) -> None:
        self.guard, self.page, self.mode, self.url = guard, page, mode, url
        self.console: list[str] = []
        self.navigations = 0  # main-frame navigations: the first load, then each reload
        self.timings: dict[str, Any] = {}
        self.closed = False
        page.on("console", lambda m: self.console.append(f"[{m.type}] {m.text[:500]}"))
        page.on("pageerror", lambda e: self.console.append(f"[pageerror] {e}"))
        page.on("framenavigated", self._navigated)

    def _navigated(self, frame: Any) -> None:
        if frame == self.page.main_frame:
            self.navigations += 1

    @property
    def isolated(self) -> bool:
        return bool(self.page.evaluate("crossOriginIsolated"))

    def execute_async(self, code: str) -> PendingRun:
        return PendingRun(self, self.page.evaluate(JS_START_RUN, code), code)

    def execute(self, code: str, timeout: float = 120) -> dict[str, Any]:
        return self.execute_async(code).result(timeout)

    def interrupt(self) -> None:
        self.page.evaluate(JS_INTERRUPT)

    def screenshot(self, name: str) -> Path:
        return screenshot_page(self.page, name)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.guard.close()


def screenshot_page(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def wait_isolated(page: Any, timeout_s: float) -> bool:
    """Poll crossOriginIsolated across reloads (a reload destroys the evaluation context)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            page.wait_for_load_state("load")
            if page.evaluate("crossOriginIsolated"):
                return True
        except PlaywrightError as err:  # the page navigated mid-evaluate: look again
            if "context was destroyed" not in str(err) and "navigat" not in str(err):
                raise
        time.sleep(0.25)
    return False


def open_lite_kernel(browser: Any, url: str, mode: str) -> LiteKernel:
    guard = GuardedContext(browser)
    page = guard.context.new_page()
    page.set_default_timeout(KERNEL_START_TIMEOUT_S * 1000)
    kernel = LiteKernel(guard, page, mode, url)
    try:
        t0 = time.monotonic()
        page.goto(url + "lab/index.html")
        kernel.timings["first_load_isolated"] = page.evaluate("crossOriginIsolated")
        # On the sw site the labextension reloads once when the patched worker controls the
        # page; if it is missing, reload here so the kernel fixture still gives isolation.
        if mode == "sw" and not wait_isolated(page, 30):
            page.wait_for_function("navigator.serviceWorker.controller !== null")
            kernel.timings["manual_reload"] = True
            page.reload()
            if not wait_isolated(page, 30):
                raise AssertionError("the service-worker site is not isolated after a reload")
        kernel.timings.update(
            page.evaluate(
                JS_OPEN_NOTEBOOK,
                {"kernelName": "python", "timeoutMs": KERNEL_START_TIMEOUT_S * 1000},
            )
        )
        kernel.timings["total_s"] = round(time.monotonic() - t0, 1)
        guard.check_offline()
    except (PlaywrightError, AssertionError):
        try:
            screenshot_page(page, f"kernel_start_failed_{mode}")
        finally:
            tail = "\n".join(kernel.console[-30:])
            kernel.close()
        raise AssertionError(f"could not start a kernel on the {mode} site:\n{tail}") from None
    return kernel


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_deps() -> None:
    subprocess.run(
        ["bash", str(SCRIPTS / "install_browser_deps.sh")], check=True, stdout=subprocess.DEVNULL
    )


def _site_wheel() -> Path | None:
    """JR_SITE_WHEEL=path tests a built wheel instead of one written from the source tree."""
    wheel = os.environ.get("JR_SITE_WHEEL")
    return Path(wheel) if wheel else None


def _labextension_load(package_json: str) -> str:
    """The remoteEntry a labextension's package.json loads (its content hash is in the name)."""
    return str(json.loads(package_json)["jupyterlab"]["_build"]["load"])


def _expected_labextension(wheel: Path | None) -> str:
    """The labextension the sites must carry: the given wheel's, else the one built here."""
    if wheel is None:
        assert BUILT_LABEXTENSION.is_file(), (
            "the labextension is not built: `cd labextension && npm install && npm run build`"
        )
        return _labextension_load(BUILT_LABEXTENSION.read_text())
    with zipfile.ZipFile(wheel) as whl:
        names = [n for n in whl.namelist() if n.endswith(".data/data/" + WHEEL_LABEXTENSION)]
        assert names, f"{wheel} has no labextension in its shared data ({WHEEL_LABEXTENSION})"
        return _labextension_load(whl.read(names[0]).decode())


def _build_checked_site(out: Path, service_worker: bool) -> Path:
    """Build the site and check it carries the labextension these tests are about."""
    wheel = _site_wheel()
    site = build_site_script.build_site(out, service_worker=service_worker, wheel=wheel)
    copy = site / LABEXTENSION
    assert copy.is_file(), f"the site {site} has no jupyterlite-rayon labextension"
    got, want = _labextension_load(copy.read_text()), _expected_labextension(wheel)
    assert got == want, f"the site carries labextension {got}, not the built one ({want})"
    return site


@pytest.fixture(scope="session")
def lite_site(browser_deps: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once: COOP/COEP come from the server, the service worker is stock."""
    return _build_checked_site(tmp_path_factory.mktemp("lite") / "site", service_worker=False)


@pytest.fixture(scope="session")
def lite_site_sw(browser_deps: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same site built with RayonAddon.service_worker (for hosts without headers)."""
    return _build_checked_site(tmp_path_factory.mktemp("lite-sw") / "site", service_worker=True)


class SiteServers:
    """site_url(mode) -> base URL ending in '/'; a server per mode starts on first use."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request
        self.servers: dict[str, tuple[Any, str]] = {}

    def site_dir(self, mode: str) -> Path:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        return self.request.getfixturevalue("lite_site_sw" if mode == "sw" else "lite_site")

    def __call__(self, mode: str) -> str:
        if mode not in self.servers:
            headers = "coi" if mode == "coi" else "none"
            self.servers[mode] = serve_script.serve_in_thread(self.site_dir(mode), headers)
        return self.servers[mode][1]

    def close(self) -> None:
        for server, _ in self.servers.values():
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="session")
def site_url(request: pytest.FixtureRequest) -> Iterator[SiteServers]:
    servers = SiteServers(request)
    yield servers
    servers.close()


@pytest.fixture(scope="session")
def browser(browser_deps: None) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def open_kernel(browser: Any, site_url: SiteServers) -> Iterator[Callable[[str], LiteKernel]]:
    """open_kernel(mode) -> LiteKernel; every kernel opened is closed at the end of the session."""
    opened: list[LiteKernel] = []

    def open_(mode: str) -> LiteKernel:
        url = site_url(mode)
        try:
            kernel = open_lite_kernel(browser, url, mode)
        except AssertionError as first:
            # pyodide-kernel 0.8.6's coincident channel can hand its worker a half-written
            # reply under heavy load ("Pyodide has suffered a fatal error ... JSON"): that is
            # upstream, not this project, so one fresh page gets a second chance.
            warnings.warn(f"kernel start failed once, retrying: {first}", stacklevel=1)
            kernel = open_lite_kernel(browser, url, mode)
        opened.append(kernel)
        return kernel

    yield open_
    for kernel in opened:
        kernel.close()


def _module_kernel(open_kernel: Callable[[str], LiteKernel], mode: str) -> Iterator[LiteKernel]:
    kernel = open_kernel(mode)
    yield kernel
    kernel.guard.check_offline()
    kernel.close()


@pytest.fixture(scope="module")
def kernel_coi(open_kernel: Callable[[str], LiteKernel]) -> Iterator[LiteKernel]:
    yield from _module_kernel(open_kernel, "coi")


@pytest.fixture(scope="module")
def kernel_plain(open_kernel: Callable[[str], LiteKernel]) -> Iterator[LiteKernel]:
    yield from _module_kernel(open_kernel, "plain")


@pytest.fixture(scope="module")
def kernel_sw(open_kernel: Callable[[str], LiteKernel]) -> Iterator[LiteKernel]:
    yield from _module_kernel(open_kernel, "sw")


@pytest.fixture
def guarded_page(browser: Any) -> Iterator[Any]:
    """A fresh page in its own guarded context (no kernel), closed after the test."""
    guard = GuardedContext(browser)
    try:
        yield guard.context.new_page()
    finally:
        guard.close()


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    return screenshot_page


def pytest_report_header(config: pytest.Config) -> str:
    return f"browser tests: {CHROMIUM}, screenshots in {SHOTS}, python {sys.version.split()[0]}"


# Test modules import this conftest's helpers as `browser_conftest`: the bare name `conftest`
# belongs to whichever conftest pytest imported last (tests/python/jit has one too).
sys.modules["browser_conftest"] = sys.modules[__name__]
