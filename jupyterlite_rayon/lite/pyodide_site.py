"""Pyodide served by the site itself: the distribution and the lock wheels the kernel loads.

The Pyodide npm package (``npm pack pyodide@314.0.6``) has the runtime but none of the wheels
pyodide-lock.json names (they live on the CDN); a full release tarball has them all. For a
self-contained site the wheels the kernel loads at start (startup.LOCK_ROOTS and their
dependencies) must sit beside the site's pyodide-lock.json. Where PyPI's build of a pure wheel
differs from Pyodide's (same name and version), the site's copy of the lock gets the sha256 of
the file it serves; the user's Pyodide folder is never changed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterlite_pyodide_kernel.constants import (
    PYODIDE_LOCK,
    PYODIDE_MJS,
    PYODIDE_URL_ENV_VAR,
    PYODIDE_VERSION,
)

from ._base import CONFIG_SECTION
from .fetch import pip_download_args
from .startup import LOCK_ROOTS, find_wheels, lock_closure, sha256_of
from .wheel_file import is_pure

#: the files without which a folder is not a Pyodide distribution
PYODIDE_FILES = (PYODIDE_MJS, PYODIDE_LOCK, "pyodide.asm.wasm", "python_stdlib.zip")
NPM_HINT = (
    f"`npm pack pyodide@{PYODIDE_VERSION}` and unpack it, or the `pyodide/` folder of "
    f"https://github.com/pyodide/pyodide/releases/download/{PYODIDE_VERSION}/"
    f"pyodide-{PYODIDE_VERSION}.tar.bz2"
)


def check_pyodide_dir(path: Path) -> None:
    """Raise FileNotFoundError, naming the option and what to put there, unless Pyodide is."""
    missing = [f for f in PYODIDE_FILES if not (path / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{CONFIG_SECTION}.pyodide_dir: {path} is not a Pyodide distribution (no "
            f"{', '.join(missing)}); point it at {NPM_HINT}"
        )


def pyodide_addon_source(lite_dir: Path, config: Any) -> str | None:
    """The Pyodide jupyterlite-pyodide-kernel's own add-on copies into the site, if any."""
    if (lite_dir / "static" / "pyodide").is_dir():
        return str(lite_dir / "static" / "pyodide")
    section = config.get("PyodideAddon", {}) if config is not None else {}
    url = section.get("pyodide_url") if hasattr(section, "get") else None
    return url or os.environ.get(PYODIDE_URL_ENV_VAR) or None


def place_lock_wheels(
    pyodide: Path,
    sources: list[Path],
    fetch: Callable[[str], Path] | None,
    log: Callable[[str], None],
) -> list[str]:
    """Put every lock wheel the kernel loads at start beside the site's pyodide-lock.json.

    ``pyodide`` is the site's Pyodide folder; a wheel not there already is taken from
    ``sources`` (by name and version), else fetched with ``fetch("name==version")`` when
    given. Rewrites the site's lock where a file's sha256 differs. Returns the lock keys.
    Raises FileNotFoundError listing every wheel still missing and how to get them.
    """
    lock_path = pyodide / PYODIDE_LOCK
    lock = json.loads(lock_path.read_text())
    packages = lock["packages"]
    keys = lock_closure(packages, LOCK_ROOTS)
    missing: list[str] = []
    for key in keys:
        entry = packages[key]
        name, version = entry["name"], entry["version"]
        dest = pyodide / entry["file_name"]
        if dest.is_file():
            continue
        if not is_pure(entry["file_name"]):
            missing.append(f"{name}=={version}")
            continue
        found = find_wheels(sources, name, version)
        if not found and fetch is not None:
            found = [fetch(f"{name}=={version}")]
        if not found:
            missing.append(f"{name}=={version}")
            continue
        # Served under the lock's file name: that is the URL Pyodide asks for.
        shutil.copyfile(found[0], dest)
    if missing:
        folders = ", ".join(str(s) for s in sources) or "no folder"
        command = " ".join(pip_download_args(missing, "WHEELS_DIR")[1:])
        raise FileNotFoundError(
            f"[rayon] the kernel loads {', '.join(missing)} from {PYODIDE_LOCK} at start, and "
            f"neither the Pyodide folder nor {CONFIG_SECTION}.wheels_dir ({folders}) has them: "
            f"`python {command}` and set {CONFIG_SECTION}.wheels_dir=WHEELS_DIR, or build with "
            "--rayon-download to let pip fetch them"
        )
    patched = []
    for key in keys:
        entry = packages[key]
        sha = sha256_of(pyodide / entry["file_name"])
        if sha != entry["sha256"]:
            entry["sha256"] = sha
            patched.append(key)
    if patched:
        lock_path.write_text(json.dumps(lock))
        log(
            f"[rayon] {lock_path}: sha256 of {', '.join(patched)} set to the files served "
            "(PyPI's builds of the same versions)"
        )
    return keys
