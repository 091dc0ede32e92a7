"""A wheel of a pure-Python distribution installed in the build environment.

The site's widget front end (@jupyter-widgets/jupyterlab-manager) comes from the build
environment's jupyterlab_widgets, so the kernel side (ipywidgets, comm) taken from the same
environment is the version that front end speaks to, and a plain ``jupyter lite build`` ships
them with no download. Only the importable files are packed (no scripts, no shared data: the
labextension of jupyterlab_widgets is already in the site as a federated extension).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from .wheel_file import pack_wheel

COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")
SKIPPED_SUFFIXES = (".pyc", ".pyo")
# dist-info files that describe this installation, not the project.
INSTALL_ONLY = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "WHEEL", "METADATA"}


class NotPackable(RuntimeError):
    """The installed distribution cannot be turned into a pure wheel (missing, compiled...)."""


def environment_version(name: str) -> str | None:
    """The version of ``name`` in the build environment, None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def wheel_from_installed(name: str, dest: Path) -> Path:
    """Write a py3-none-any wheel of the installed distribution ``name`` into ``dest``.

    Raises NotPackable (saying what to do) when it is not installed, is an editable install
    (its files are not in site-packages), or holds compiled code Pyodide cannot load.
    """
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError as err:
        raise NotPackable(f"{name} is not installed in the build environment") from err
    files = dist.files or []
    root = Path(str(dist.locate_file("")))
    packed: list[tuple[str, bytes]] = []
    extra: list[tuple[str, bytes]] = []
    for rel in files:
        parts = rel.parts
        if not parts or parts[0] == ".." or rel.suffix in SKIPPED_SUFFIXES:
            continue  # scripts and shared data live outside site-packages
        if "__pycache__" in parts:
            continue
        if rel.suffix in COMPILED_SUFFIXES:
            raise NotPackable(f"{name} has compiled code ({rel}): Pyodide cannot load it")
        path = root / rel
        if parts[0].endswith(".dist-info"):
            if len(parts) == 2 and parts[1] not in INSTALL_ONLY and path.is_file():
                extra.append((parts[1], path.read_bytes()))
            elif len(parts) > 2 and path.is_file():  # licenses/...
                extra.append(("/".join(parts[1:]), path.read_bytes()))
            continue
        if rel.suffix == ".pth" or not path.is_file():
            raise NotPackable(f"{name} is installed in editable mode: its files are not packable")
        packed.append((rel.as_posix(), path.read_bytes()))
    if not packed:
        raise NotPackable(f"{name} has no importable files in the build environment")
    metadata = dist.read_text("METADATA")
    if metadata is None:
        raise NotPackable(f"{name} has no METADATA in the build environment")
    return pack_wheel(
        dest,
        dist.metadata["Name"],
        dist.version,
        sorted(packed),
        metadata.encode(),
        generator=__name__,
        extra_dist_info=sorted(extra),
    )
