"""Put the pure-Python wheels that pyodide-lock.json names next to a local Pyodide.

The Pyodide npm package ships the runtime but not its package wheels (they live on a CDN).
The JupyterLite Pyodide kernel loads micropip, ipython, jedi and their dependencies from
pyodide-lock.json at start (jupyterlite_rayon.lite.startup.LOCK_ROOTS, the default here), so an
offline site needs those files beside pyodide.mjs. The pure ones (py3-none-any) are on PyPI
under the same name and version: download them with pip and, where PyPI's file differs from the
one Pyodide built, rewrite the lock's sha256 to match. This fills the local folder the browser
tests and the demo build from; a site author can instead let the add-on do it
(``jupyter lite build --rayon-self-contained --rayon-download``).

usage: python scripts/fetch_lock_wheels.py PYODIDE_DIR [PACKAGE ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

from jupyterlite_rayon.lite.fetch import pip_download
from jupyterlite_rayon.lite.startup import LOCK_ROOTS, lock_closure


def fetch(pyodide_dir: Path, roots: list[str]) -> int:
    lock_path = pyodide_dir / "pyodide-lock.json"
    if not lock_path.is_file():
        raise SystemExit(f"{lock_path} not found: unpack the pyodide npm package there first")
    lock = json.loads(lock_path.read_text())
    packages = lock["packages"]
    try:
        keys = lock_closure(packages, roots)
    except KeyError as err:
        raise SystemExit(str(err)) from None
    patched = 0
    for key in keys:
        entry = packages[key]
        file_name = entry["file_name"]
        if not file_name.endswith("-none-any.whl"):
            # A compiled Pyodide package: it can only come from Pyodide's own distribution.
            raise SystemExit(f"{key} ({file_name}) is not pure Python: it cannot come from PyPI")
        dest = pyodide_dir / file_name
        if not dest.exists():
            # pip resolves the index and any mirror config; served under the lock's name.
            with tempfile.TemporaryDirectory() as tmp:
                got = pip_download(f"{entry['name']}=={entry['version']}", Path(tmp))
                shutil.move(got, dest)
        sha = hashlib.sha256(dest.read_bytes()).hexdigest()
        if sha != entry["sha256"]:
            entry["sha256"] = sha
            patched += 1
        print(f"{key:24} {file_name}")
    if patched:
        lock_path.write_text(json.dumps(lock))
        print(f"rewrote sha256 of {patched} entries in {lock_path}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyodide_dir", type=Path)
    parser.add_argument("packages", nargs="*", default=list(LOCK_ROOTS))
    args = parser.parse_args()
    return fetch(args.pyodide_dir, args.packages)


if __name__ == "__main__":
    sys.exit(main())
