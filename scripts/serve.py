"""Serve a built JupyterLite site on 127.0.0.1, with or without cross-origin isolation headers.

usage: python scripts/serve.py SITE PORT [--headers coi|none] [--coep require-corp|credentialless]

PORT 0 picks a free port. Prints ``READY http://127.0.0.1:PORT/`` once listening. Threaded (the
lab fetches many files at once), never cached (``no-store``), JS/wasm/mjs served with the MIME
types module workers and streaming compilation require. The browser tests import
``make_server`` from here to serve in-process.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import sys
import threading
from pathlib import Path
from typing import ClassVar

# The same headers the build add-on gives every host (defined once there).
from jupyterlite_rayon.lite.headers import COEP_VALUES, isolation_headers

MIME_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".ipynb": "application/json",
    ".whl": "application/octet-stream",
    ".zip": "application/zip",
    ".svg": "image/svg+xml",
    ".css": "text/css",
}
HEADER_MODES = ("coi", "none")


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    extra_headers: ClassVar[dict[str, str]] = {}

    def guess_type(self, path: str | os.PathLike[str]) -> str:
        # Module workers refuse scripts without a JS type; the OS's tables may lack .mjs/.wasm.
        return MIME_TYPES.get(Path(path).suffix.lower()) or super().guess_type(path)

    def end_headers(self) -> None:
        for name, value in self.extra_headers.items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def make_server(
    site: Path, port: int = 0, headers: str = "coi", coep: str = COEP_VALUES[0]
) -> http.server.ThreadingHTTPServer:
    """A server for ``site`` on 127.0.0.1 (not started); ``server.server_port`` is the port."""
    if headers not in HEADER_MODES:
        raise ValueError(f"headers must be one of {HEADER_MODES}, not {headers!r}")
    site = Path(site)
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"{site} is not a built JupyterLite site (no index.html)")
    handler = type(
        "Handler",
        (SiteHandler,),
        {"extra_headers": isolation_headers(coep) if headers == "coi" else {}},
    )
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(handler, directory=str(site))
    )
    server.daemon_threads = True
    return server


def serve_in_thread(
    site: Path, headers: str = "coi", coep: str = COEP_VALUES[0]
) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start a server on a free port in a daemon thread; returns it and its base URL."""
    server = make_server(site, 0, headers, coep)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("port", type=int)
    parser.add_argument("--headers", choices=HEADER_MODES, default="coi")
    parser.add_argument("--coep", choices=COEP_VALUES, default=COEP_VALUES[0])
    args = parser.parse_args()
    server = make_server(args.site, args.port, args.headers, args.coep)
    print(f"READY http://127.0.0.1:{server.server_port}/ headers={args.headers}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
