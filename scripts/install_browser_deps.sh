#!/usr/bin/env bash
# Install what the browser tests and the offline demo site need, from the registries only:
# Debian's chromium, playwright and the JupyterLite build tools from PyPI, Pyodide from npm
# (into .deps/pyodide/ with the pure wheels its lock file names that the kernel loads at start)
# and comm, ipywidgets, jupyterlab_widgets (into .deps/pypi/). The sites are then built offline
# with RayonAddon.self_contained, pyodide_dir=.deps/pyodide, wheels_dir=.deps/pypi
# (scripts/build_site.py). Idempotent: a second run only checks.
# usage: bash scripts/install_browser_deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYODIDE_VERSION=314.0.6   # what jupyterlite-pyodide-kernel 0.8.6 pins
DEPS=$ROOT/.deps
PIP=(python -m pip install -q --disable-pip-version-check)

# The demo site needs no browser of ours: scripts/demo.sh sets NO_CHROMIUM=1.
if [ -z "${NO_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
    echo "installing Debian chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q chromium >/dev/null
fi

# Never `playwright install`: the tests drive /usr/bin/chromium.
python -c "import playwright, jupyterlite_core, jupyterlite_pyodide_kernel, jupyter_server" \
    2>/dev/null || "${PIP[@]}" playwright "jupyterlite-core==0.8.6" \
    "jupyterlite-pyodide-kernel==0.8.6" "jupyter_server>=2"

if [ ! -f "$DEPS/pyodide/pyodide.mjs" ]; then
    echo "fetching pyodide $PYODIDE_VERSION from npm"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack -q "pyodide@$PYODIDE_VERSION" >/dev/null \
        && tar xzf "pyodide-$PYODIDE_VERSION.tgz")
    rm -rf "$DEPS/pyodide"
    mkdir -p "$DEPS"
    mv "$tmp/package" "$DEPS/pyodide"
    rm -rf "$tmp"
fi
# What the kernel loads from pyodide-lock.json when it starts (jupyterlite_rayon.lite.startup).
python scripts/fetch_lock_wheels.py "$DEPS/pyodide" >/dev/null

mkdir -p "$DEPS/pypi"
# The start-up wheels the add-on preloads (startup.startup_wheels).
for pkg in comm ipywidgets jupyterlab_widgets; do
    if ! ls "$DEPS/pypi/${pkg}-"*.whl >/dev/null 2>&1; then
        python -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
            --python-version 3.14 -d "$DEPS/pypi" "$pkg"
    fi
done
echo "browser deps ready: /usr/bin/chromium, $DEPS/pyodide, $DEPS/pypi"
