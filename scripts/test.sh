#!/usr/bin/env bash
# Install everything a fresh machine lacks, then run every test: zig, node, pytest (CPython and
# the browser end to end). Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n=== %s ===\n' "$*"; }

step "install: python packages and the pool build (ziglang from PyPI compiles kernels/)"
python -m pip install -q --disable-pip-version-check "ziglang==0.17.1"
python -m pip install -q --disable-pip-version-check -e ".[test,dev]"
ls -l jupyterlite_rayon/wasm/

step "install: browser deps (Debian chromium, Pyodide from npm, the offline wheels)"
bash scripts/install_browser_deps.sh

step "lint: the generated contract is fresh; ruff and mypy are clean on the package"
python scripts/gen_contract.py --check
python -m ruff check jupyterlite_rayon tests scripts benchmarks hatch_build.py kernels/build.py
python -m ruff format --check jupyterlite_rayon
python -m mypy jupyterlite_rayon

step "zig test: scheduler, deque, allocator (native threads)"
python kernels/gen_pow_tables.py --check && python -m ziglang test kernels/tests.zig -O ReleaseSafe

step "node --test: the JS host running the real pool modules in worker_threads"
node --test tests/node/

step "pytest"
set +e
python -m pytest "$@"
rc=$?
set -e
# pytest exit 5 means it collected no tests: that is a failure of this script's purpose.
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi
exit "$rc"
