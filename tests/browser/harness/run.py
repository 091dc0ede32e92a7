"""Run Python in a bare Pyodide Worker in Chromium, with the repository's jupyterlite_rayon.

For fast iteration on the Pyodide backend without a JupyterLite site (a developer tool: the
browser tests use the built site and its labextension, never this page):
    python tests/browser/harness/run.py [--headers coi|none] [--interrupt-after S] CODE...
Each CODE is run in turn in the same worker (top-level await works); the result, the printed
output or the error is printed per cell. --interrupt-after S writes SIGINT into every
interrupt buffer the pool announced, S seconds after the last cell started.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


class Handler(http.server.SimpleHTTPRequestHandler):
    coi = True
    wasm_dir: Path | None = None

    def translate_path(self, path: str) -> str:
        # /__wasm/NAME comes from --wasm-dir: test builds that are not in the package.
        if self.wasm_dir is not None and path.startswith("/__wasm/"):
            return str(self.wasm_dir / Path(path).name)
        return super().translate_path(path)
    extensions_map = {  # noqa: RUF012 -- the base class declares it as an instance variable
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
    }

    def end_headers(self) -> None:
        if self.coi:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def package_files(wasm_dir: Path | None) -> list[list[str]]:
    """(path in the Pyodide FS, URL) for every file of the package."""
    pkg = ROOT / "jupyterlite_rayon"
    files = [
        [f"/home/pyodide/pkg/{p.relative_to(ROOT)}", f"/{p.relative_to(ROOT)}"]
        for p in sorted(pkg.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
        and not (wasm_dir and p.suffix == ".wasm")
    ]
    if wasm_dir:
        files += [[f"/home/pyodide/pkg/jupyterlite_rayon/wasm/{p.name}", f"/__wasm/{p.name}"]
                  for p in sorted(wasm_dir.glob("*.wasm"))]
    return files


def serve(
    coi: bool, wasm_dir: Path | None = None
) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = type("H", (Handler,), {"coi": coi, "wasm_dir": wasm_dir})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(ROOT))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("code", nargs="*")
    ap.add_argument("--headers", choices=["coi", "none"], default="coi")
    ap.add_argument("--interrupt-after", type=float)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--wasm-dir", type=Path, help="use the pool-*.wasm of this directory")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    server, base = serve(a.headers == "coi", a.wasm_dir)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(a.timeout * 1000)
        page.on("console", lambda m: print(f"[console.{m.type}] {m.text[:400]}"))
        page.on("pageerror", lambda e: print(f"[pageerror] {e}"))
        page.goto(base + "tests/browser/harness/index.html")
        page.wait_for_function("window.harnessReady")
        t0 = time.time()
        print("start:", page.evaluate("(f) => harness.start(f)", package_files(a.wasm_dir)),
              f"{time.time() - t0:.1f}s", flush=True)
        for i, code in enumerate(a.code):
            t0 = time.time()
            if a.interrupt_after is not None and i == len(a.code) - 1:
                page.evaluate("(c) => { window.lastRun = harness.run(c); }", code)
                time.sleep(a.interrupt_after)
                print("interrupted buffers:", page.evaluate("harness.interrupt()"))
                r = page.evaluate("window.lastRun")
            else:
                r = page.evaluate("(c) => harness.run(c)", code)
            print(f"--- cell {i} ({time.time() - t0:.2f}s)\n{json.dumps(r, indent=1)}", flush=True)
        browser.close()
    server.shutdown()


if __name__ == "__main__":
    main()
