"""Put the pure-Python wheels that pyodide-lock.json names next to a local Pyodide.

The Pyodide npm package ships the runtime but not its package wheels (they live on a CDN).
The JupyterLite Pyodide kernel loads micropip, ipython, jedi and their dependencies from
pyodide-lock.json at start, so an offline site needs those files beside pyodide.mjs. The pure
ones (py3-none-any) are on PyPI under the same name and version: download them with pip and,
where PyPI's file differs from the one Pyodide built, rewrite the lock's sha256 to match.

usage: python scripts/fetch_lock_wheels.py PYODIDE_DIR PACKAGE [PACKAGE ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PYODIDE_PYTHON = "3.14"


def normalize(name: str) -> str:
    """PEP 503 name, the form pyodide-lock.json uses for its keys."""
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(packages: dict[str, dict], roots: list[str]) -> list[str]:
    """The roots and everything they depend on, by lock key; unknown roots are an error."""
    missing = [r for r in roots if normalize(r) not in packages]
    if missing:
        raise SystemExit(f"not in pyodide-lock.json: {', '.join(missing)}")
    seen: set[str] = set()
    todo = [normalize(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(normalize(d) for d in packages[name].get("depends", []))
    return sorted(seen)


def download(name: str, version: str, dest: Path) -> None:
    """Fetch one wheel from PyPI into dest (pip resolves the index and any mirror config)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
             "--python-version", PYODIDE_PYTHON, "--disable-pip-version-check",
             "-d", tmp, f"{name}=={version}"],
            check=True,
        )
        got = list(Path(tmp).glob("*.whl"))
        if len(got) != 1:
            raise SystemExit(f"expected one wheel for {name}=={version}, pip gave {got}")
        shutil.copy(got[0], dest)


def fetch(pyodide_dir: Path, roots: list[str]) -> int:
    lock_path = pyodide_dir / "pyodide-lock.json"
    if not lock_path.is_file():
        raise SystemExit(f"{lock_path} not found: unpack the pyodide npm package there first")
    lock = json.loads(lock_path.read_text())
    packages = lock["packages"]
    patched = 0
    for key in closure(packages, roots):
        entry = packages[key]
        file_name = entry["file_name"]
        if not file_name.endswith("-none-any.whl"):
            # A compiled Pyodide package: it can only come from Pyodide's own distribution.
            raise SystemExit(f"{key} ({file_name}) is not pure Python: it cannot come from PyPI")
        dest = pyodide_dir / file_name
        if not dest.exists():
            download(entry["name"], entry["version"], dest)
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
    parser.add_argument("packages", nargs="+")
    args = parser.parse_args()
    return fetch(args.pyodide_dir, args.packages)


if __name__ == "__main__":
    sys.exit(main())
