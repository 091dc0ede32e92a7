#!/usr/bin/env bash
# Build the demo site from examples/notebooks and serve it on 127.0.0.1 with the COOP/COEP headers
# (threads on). Offline: the site is self-contained (RayonAddon.self_contained): Pyodide and every
# wheel the kernel loads are served by the site, from .deps/ on this machine.
# usage: bash scripts/demo.sh [PORT]        then open http://127.0.0.1:PORT/lab/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${1:-8000}
PIP=(python -m pip install -q --disable-pip-version-check)
"${PIP[@]}" "ziglang==0.17.1"
pip show -q jupyterlite-rayon 2>/dev/null || "${PIP[@]}" -e .
NO_CHROMIUM=1 bash scripts/install_browser_deps.sh
# The service-worker patch too, so the same folder also works on GitHub Pages.
exec python scripts/build_site.py _site --contents examples/notebooks --service-worker --serve "$PORT"
