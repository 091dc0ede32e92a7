"""Fetching start-up wheels with pip, only when ``RayonAddon.download`` allows it.

By default the build never touches the network: every file comes from a folder the user points
at or from the build environment, so a build on an air-gapped machine behaves like any other.
With the option, what is missing is fetched by ``pip download`` (PyPI, or whatever index and
mirrors pip is configured with) into the build cache, pure wheels for Pyodide's Python only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .wheel_file import is_pure

#: the Python of Pyodide 314.0.6 (what jupyterlite-pyodide-kernel 0.8.6 runs)
PYODIDE_PYTHON = "3.14"


def pip_download_args(requirements: list[str], dest: str) -> list[str]:
    """The pip command that fetches these requirements as pure wheels for Pyodide's Python."""
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        PYODIDE_PYTHON,
        "--disable-pip-version-check",
        "-d",
        dest,
        *requirements,
    ]


def pip_download(requirement: str, dest: Path) -> Path:
    """Download one pure wheel (``name`` or ``name==version``) into ``dest``; its path.

    Raises RuntimeError with pip's own message when pip cannot get it.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jr-pip-") as tmp:
        proc = subprocess.run(
            pip_download_args([requirement], tmp),
            capture_output=True,
            text=True,
            check=False,
        )
        got = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or len(got) != 1:
            raise RuntimeError(
                f"`pip download {requirement}` failed ({proc.returncode}): "
                + (proc.stderr.strip().splitlines() or ["no output"])[-1]
            )
        if not is_pure(got[0].name):
            raise RuntimeError(f"pip gave {got[0].name} for {requirement}: not a pure wheel")
        out = dest / got[0].name
        shutil.move(got[0], out)  # tmp may be on another filesystem
        return out
