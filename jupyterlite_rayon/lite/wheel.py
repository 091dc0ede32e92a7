"""jupyterlite-rayon in the site: a wheel in ``pypi/``, preloaded in the Pyodide kernel.

build: puts a py3-none-any jupyterlite-rayon wheel in the site's ``pypi/``, which the Pyodide
kernel's piplite add-on indexes, so ``%pip install jupyterlite-rayon`` works offline. Without
``RayonAddon.wheel`` it writes one from the installed package (an editable install has none).
post_build: with ``RayonAddon.preload`` (default on), lists the wheel in the kernel's
``loadPyodideOptions.packages`` so ``import jupyterlite_rayon`` works without ``%pip``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from jupyterlite_core.constants import JUPYTERLITE_JSON

from ..host import loader
from ._base import CONFIG_SECTION, RayonAddon

DIST_NAME = "jupyterlite-rayon"
WHEEL_STEM = "jupyterlite_rayon"
PACKAGE_DIR_NAME = "jupyterlite_rayon"
PYODIDE_PLUGIN_ID = "@jupyterlite/pyodide-kernel-extension:kernel"
PYPI_DIR = "pypi"
# The Pyodide kernel's worker lives at extensions/<npm name>/static/ and Pyodide resolves a
# package URL against the worker's location, so this climbs back to the site root.
WORKER_TO_ROOT = "../../../../"
# Files that are built for the browser front end or by Python, never needed in the kernel.
WHEEL_EXCLUDE_DIRS = {"__pycache__", "labextension"}
WHEEL_EXCLUDE_SUFFIXES = {".pyc", ".pyo"}
# The pool builds and every module of the JS host's graph (the kernel loads them all).
REQUIRED_RUNTIME_FILES = (
    "wasm/pool-mt.wasm",
    "wasm/pool-st.wasm",
    *(f"host/{name}" for name, _ in loader.module_graph()),
)
# A fixed timestamp keeps the written wheel byte-identical between builds.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def package_dir() -> Path:
    """The directory of the installed jupyterlite_rayon package."""
    spec = importlib.util.find_spec(PACKAGE_DIR_NAME)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("jupyterlite_rayon is not importable: `pip install jupyterlite-rayon`")
    return Path(next(iter(spec.submodule_search_locations)))


def installed_version() -> str:
    """The version of the installed jupyterlite-rayon distribution."""
    try:
        return importlib.metadata.version(DIST_NAME)
    except importlib.metadata.PackageNotFoundError as err:
        raise RuntimeError(
            "jupyterlite-rayon has no installed metadata: `pip install -e .` (or a wheel) first, "
            f"or set {CONFIG_SECTION}.wheel to a built wheel"
        ) from err


def wheel_name(version: str) -> str:
    return f"{WHEEL_STEM}-{version}-py3-none-any.whl"


def is_rayon_wheel(name: str) -> bool:
    """True for a file name Pyodide can install as jupyterlite-rayon (pure Python)."""
    return name.startswith(f"{WHEEL_STEM}-") and name.endswith("-none-any.whl")


def site_wheels(pypi: Path) -> list[Path]:
    """The jupyterlite_rayon wheels in a site's ``pypi/`` folder."""
    return sorted(p for p in pypi.glob(f"{WHEEL_STEM}-*.whl") if is_rayon_wheel(p.name))


def package_files(root: Path) -> list[Path]:
    """The package's files that belong in the kernel wheel, sorted for a stable wheel."""
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_dir() or path.suffix in WHEEL_EXCLUDE_SUFFIXES:
            continue
        if any(part in WHEEL_EXCLUDE_DIRS for part in rel.parts):
            continue
        files.append(path)
    return files


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def write_wheel(root: Path, version: str, dest: Path) -> Path:
    """Write a py3-none-any wheel of the package directory ``root`` into ``dest``.

    Used when the package is installed in editable mode (no wheel exists). The wheel holds
    the Python sources, the pool .wasm builds and the JS host: everything the kernel imports.
    """
    missing = [f for f in REQUIRED_RUNTIME_FILES if not (root / f).is_file()]
    if missing:
        raise RuntimeError(
            f"{root} lacks {', '.join(missing)}: build them first "
            "(`python kernels/build.py`, or reinstall with `pip install -e .`)"
        )
    dist_info = f"{WHEEL_STEM}-{version}.dist-info"
    entries: list[tuple[str, bytes]] = [
        (f"{PACKAGE_DIR_NAME}/{p.relative_to(root).as_posix()}", p.read_bytes())
        for p in package_files(root)
    ]
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: {DIST_NAME}\n"
        f"Version: {version}\n"
        "Summary: A real multi-threaded WebAssembly thread pool for JupyterLite notebooks\n"
        "Requires-Python: >=3.11\n"
    )
    wheel_meta = (
        f"Wheel-Version: 1.0\nGenerator: {__name__}\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    entries += [
        (f"{dist_info}/METADATA", metadata.encode()),
        (f"{dist_info}/WHEEL", wheel_meta.encode()),
        (f"{dist_info}/top_level.txt", f"{PACKAGE_DIR_NAME}\n".encode()),
    ]
    record_name = f"{dist_info}/RECORD"
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    record += f"{record_name},,\n"
    entries.append((record_name, record.encode()))

    dest.mkdir(parents=True, exist_ok=True)
    out = dest / wheel_name(version)
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    tmp.replace(out)
    return out


class RayonWheelAddon(RayonAddon):
    """Put a jupyterlite-rayon wheel in the site and preload it (``wheel``, ``preload``)."""

    __all__: ClassVar[list[str]] = ["build", "post_build"]

    aliases: ClassVar[dict[str, str]] = {"rayon-wheel": f"{CONFIG_SECTION}.wheel"}
    flags: ClassVar[dict[str, tuple[dict[str, Any], str]]] = {
        "rayon-no-preload": (
            {CONFIG_SECTION: {"preload": False}},
            "do not load jupyterlite-rayon at kernel start (then `%pip install` it)",
        ),
    }

    @property
    def output_wheels(self) -> Path:
        return self.output_dir / PYPI_DIR

    def given_wheel(self) -> Path | None:
        """The configured wheel file, checked; None when the wheel is to be written."""
        if not self.wheel:
            return None
        path = (Path(self.manager.lite_dir) / self.wheel).resolve()
        if not path.is_file():
            raise FileNotFoundError(
                f"{CONFIG_SECTION}.wheel: {path} does not exist; build it with `pip wheel .` "
                f"or leave {CONFIG_SECTION}.wheel empty to write one from the installed package"
            )
        if not is_rayon_wheel(path.name):
            raise ValueError(
                f"{CONFIG_SECTION}.wheel: {path.name} is not a "
                "jupyterlite_rayon-*-py3-none-any.whl wheel; Pyodide can only install "
                "pure-Python wheels"
            )
        return path

    def build(self, manager: Any) -> Iterator[dict[str, Any]]:
        given = self.given_wheel()
        if given is not None:
            dest = self.output_wheels / given.name
            yield self.task(
                name=f"copy:whl:{given.name}",
                file_dep=[given],
                targets=[dest],
                actions=[(self.copy_one, [given, dest])],
            )
            return
        root = package_dir()
        version = installed_version()
        dest = self.output_wheels / wheel_name(version)
        yield self.task(
            name=f"write:whl:{dest.name}",
            doc="write a jupyterlite-rayon wheel from the installed package",
            file_dep=package_files(root),
            targets=[dest],
            actions=[(self._write_wheel, [root, version])],
        )

    def post_build(self, manager: Any) -> Iterator[dict[str, Any]]:
        if not self.preload:
            return
        yield self.task(
            name="preload",
            doc="load jupyterlite-rayon when the Pyodide kernel starts",
            uptodate=[lambda: False],
            actions=[self._set_preload],
        )

    def _write_wheel(self, root: Path, version: str) -> None:
        for old in site_wheels(self.output_wheels):
            old.unlink()
        path = write_wheel(root, version, self.output_wheels)
        self.log.info("[rayon] wrote %s", path)

    def _set_preload(self) -> None:
        wheels = site_wheels(self.output_wheels)
        if len(wheels) != 1:
            raise RuntimeError(
                f"[rayon] expected one jupyterlite_rayon wheel in {self.output_wheels}, found "
                f"{[w.name for w in wheels]}; remove the extra ones from {PYPI_DIR}/"
            )
        url = f"{WORKER_TO_ROOT}{PYPI_DIR}/{wheels[0].name}"
        for config_path in self.get_output_config_paths():
            if not config_path.exists() or config_path.name != JUPYTERLITE_JSON:
                continue
            settings = self.get_lite_plugin_settings(config_path, PYODIDE_PLUGIN_ID)
            options = dict(settings.get("loadPyodideOptions") or {})
            packages = [p for p in options.get("packages", []) if WHEEL_STEM not in p]
            options["packages"] = [*packages, url]
            settings["loadPyodideOptions"] = options
            self.set_lite_plugin_settings(config_path, PYODIDE_PLUGIN_ID, settings)
        self.log.info("[rayon] kernels load %s at start", url)
