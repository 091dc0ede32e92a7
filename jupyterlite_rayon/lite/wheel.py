"""What the kernel loads at start, in the site: the wheels in ``pypi/``, preloaded, and Pyodide.

build: puts a py3-none-any jupyterlite-rayon wheel in the site's ``pypi/``, which the Pyodide
kernel's piplite add-on indexes, so ``%pip install jupyterlite-rayon`` works offline. Without
``RayonAddon.wheel`` it writes one from the installed package (an editable install has none).
Next to it go comm and (``RayonAddon.widgets``, default on) ipywidgets and jupyterlab_widgets,
from ``RayonAddon.wheels_dir``, the lite_dir's ``pypi/``, the build environment (installed.py)
or, with ``RayonAddon.download``, pip. With ``RayonAddon.self_contained`` (or
``pyodide_dir``) Pyodide is copied into ``static/pyodide/`` (pyodide_site.py).
post_build: lists comm, the widget's wheels and (``RayonAddon.preload``, default on)
jupyterlite-rayon in the kernel's ``loadPyodideOptions.packages``, so the first cell can
``import jupyterlite_rayon`` and show ``jr.widget()`` without ``%pip``; a self-contained site
gets the pyodide-lock.json wheels the kernel loads beside its Pyodide, and its ``pyodideUrl``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import doit.tools
from jupyterlite_core.constants import JUPYTERLITE_JSON

from ..host import loader
from . import pyodide_site
from ._base import CONFIG_SECTION, RayonAddon
from .fetch import pip_download, pip_download_args
from .installed import NotPackable, environment_version, wheel_from_installed
from .startup import (
    COMM,
    PYODIDE_PLUGIN_ID,
    PYPI_DIR,
    SITE_PYODIDE_DIR,
    SITE_PYODIDE_URL,
    WORKER_TO_ROOT,
    find_wheels,
    startup_wheels,
)
from .wheel_file import normalize, pack_wheel, parse_wheel_name

DIST_NAME = "jupyterlite-rayon"
WHEEL_STEM = "jupyterlite_rayon"
PACKAGE_DIR_NAME = "jupyterlite_rayon"
# Files that are built for the browser front end or by Python, never needed in the kernel.
WHEEL_EXCLUDE_DIRS = {"__pycache__", "labextension"}
WHEEL_EXCLUDE_SUFFIXES = {".pyc", ".pyo"}
# The pool builds and every module of the JS host's graph (the kernel loads them all).
REQUIRED_RUNTIME_FILES = (
    "wasm/pool-mt.wasm",
    "wasm/pool-st.wasm",
    *(f"host/{name}" for name, _ in loader.module_graph()),
)


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
    files = [
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
    return pack_wheel(
        dest,
        DIST_NAME,
        version,
        files,
        metadata.encode(),
        generator=__name__,
        extra_dist_info=[("top_level.txt", f"{PACKAGE_DIR_NAME}\n".encode())],
    )


class RayonWheelAddon(RayonAddon):
    """What the kernel loads at start, served by the site (``wheel``, ``preload``, ``widgets``,
    ``self_contained``, ``pyodide_dir``, ``wheels_dir``, ``download``)."""

    __all__: ClassVar[list[str]] = ["build", "post_build"]

    aliases: ClassVar[dict[str, str]] = {
        "rayon-wheel": f"{CONFIG_SECTION}.wheel",
        "rayon-pyodide-dir": f"{CONFIG_SECTION}.pyodide_dir",
        "rayon-wheels-dir": f"{CONFIG_SECTION}.wheels_dir",
    }
    flags: ClassVar[dict[str, tuple[dict[str, Any], str]]] = {
        "rayon-no-preload": (
            {CONFIG_SECTION: {"preload": False}},
            "do not load jupyterlite-rayon at kernel start (then `%pip install` it)",
        ),
        "rayon-self-contained": (
            {CONFIG_SECTION: {"self_contained": True}},
            "serve Pyodide and every wheel the kernel loads at start from the site (no internet)",
        ),
        "rayon-download": (
            {CONFIG_SECTION: {"download": True}},
            "let `pip download` fetch the start-up wheels no folder has",
        ),
        "rayon-no-widgets": (
            {CONFIG_SECTION: {"widgets": False}},
            "do not ship ipywidgets (then jr.widget() needs `%pip install ipywidgets`)",
        ),
    }

    @property
    def output_wheels(self) -> Path:
        return self.output_dir / PYPI_DIR

    @property
    def output_pyodide(self) -> Path:
        return self.output_dir / SITE_PYODIDE_DIR

    @property
    def download_cache(self) -> Path:
        return Path(self.manager.cache_dir) / "rayon" / "wheels"

    @property
    def serves_pyodide(self) -> bool:
        """True when the site must serve its own Pyodide (and the lock wheels beside it)."""
        return bool(self.self_contained or self.pyodide_dir)

    def wheel_dirs(self) -> list[Path]:
        """The folders start-up wheels are taken from, in order (wheels_dir first)."""
        dirs = [self.option_path(self.wheels_dir)] if self.wheels_dir else []
        if self.wheels_dir and not dirs[0].is_dir():
            raise FileNotFoundError(f"{CONFIG_SECTION}.wheels_dir: {dirs[0]} is not a folder")
        if self.pyodide_dir:
            dirs.append(self.option_path(self.pyodide_dir))
        return dirs

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
        yield from self._rayon_wheel_tasks()
        for name in startup_wheels(self.widgets):
            yield from self._startup_wheel_tasks(name)
        if self.serves_pyodide:
            yield from self._pyodide_tasks()

    def post_build(self, manager: Any) -> Iterator[dict[str, Any]]:
        if self.serves_pyodide:
            yield self.task(
                name="pyodide-lock-wheels",
                doc="put the pyodide-lock.json wheels the kernel loads at start beside Pyodide",
                uptodate=[lambda: False],
                actions=[self._place_lock_wheels],
            )
        yield self.task(
            name="preload",
            doc="load the start-up wheels and jupyterlite-rayon when the Pyodide kernel starts",
            uptodate=[lambda: False],
            actions=[self._set_preload],
        )

    # -- jupyterlite-rayon's wheel ------------------------------------------------------------

    def _rayon_wheel_tasks(self) -> Iterator[dict[str, Any]]:
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

    def _write_wheel(self, root: Path, version: str) -> None:
        for old in site_wheels(self.output_wheels):
            old.unlink()
        path = write_wheel(root, version, self.output_wheels)
        self.log.info("[rayon] wrote %s", path)

    # -- comm and the widget's wheels ---------------------------------------------------------

    def _startup_wheel_tasks(self, name: str) -> Iterator[dict[str, Any]]:
        """One task putting ``name``'s wheel in the site's pypi/, from the first source that
        has it; none when the lite_dir's pypi/ has it (piplite copies that one)."""
        if self._one_wheel(name, [self.lite_dir / PYPI_DIR]) is not None:
            return
        given = self._one_wheel(name, self.wheel_dirs())
        if given is not None:
            yield self.task(
                name=f"copy:whl:{given.name}",
                file_dep=[given],
                targets=[self.output_wheels / given.name],
                actions=[(self._put_startup_wheel, [name, given])],
            )
            return
        version = environment_version(name)
        if version is not None:
            yield self.task(
                name=f"write:whl:{normalize(name)}",
                doc=f"write a {name} wheel from the build environment",
                uptodate=[doit.tools.config_changed({"version": version})],
                targets=[
                    self.output_wheels
                    / f"{normalize(name).replace('-', '_')}-{version}-py3-none-any.whl"
                ],
                actions=[(self._write_installed, [name])],
            )
            return
        if self.download:
            yield self.task(
                name=f"fetch:whl:{normalize(name)}",
                doc=f"pip download {name}",
                uptodate=[lambda: False],
                actions=[(self._fetch_startup_wheel, [name])],
            )
            return
        self._report_missing_startup_wheel(name)

    def _one_wheel(self, name: str, dirs: list[Path]) -> Path | None:
        found = find_wheels(dirs, name)
        if len(found) > 1:
            raise RuntimeError(
                f"[rayon] several {name} wheels ({', '.join(str(f) for f in found)}): keep one, "
                "the kernel preloads it"
            )
        return found[0] if found else None

    def _drop_other_versions(self, name: str) -> None:
        # A build into an old site must not leave two versions for the preload to choose from.
        for old in find_wheels([self.output_wheels], name):
            old.unlink()

    def _put_startup_wheel(self, name: str, path: Path) -> None:
        self._drop_other_versions(name)
        self.copy_one(path, self.output_wheels / path.name)

    def _write_installed(self, name: str) -> None:
        self._drop_other_versions(name)
        try:
            path = wheel_from_installed(name, self.output_wheels)
        except NotPackable as err:
            if self.download:
                self._fetch_startup_wheel(name)
            else:
                self._report_missing_startup_wheel(name, f" ({err})")
            return
        self.log.info("[rayon] wrote %s from the build environment", path)

    def _fetch_startup_wheel(self, name: str) -> None:
        path = pip_download(name, self.download_cache)
        self._put_startup_wheel(name, path)
        self.log.info("[rayon] fetched %s with pip", path.name)

    def _report_missing_startup_wheel(self, name: str, why: str = "") -> None:
        """Fail a self-contained build; else warn that the kernel or the widget goes online."""
        command = " ".join(pip_download_args([name], "WHEELS_DIR")[1:])
        how = (
            f"`python {command}` and set {CONFIG_SECTION}.wheels_dir=WHEELS_DIR, install {name} "
            "where you build, or build with --rayon-download"
        )
        if self.self_contained:
            raise FileNotFoundError(
                f"[rayon] {CONFIG_SECTION}.self_contained: no {name} wheel in "
                f"{CONFIG_SECTION}.wheels_dir, the lite_dir's {PYPI_DIR}/ or the build "
                f"environment{why}: {how}"
            )
        then = (
            "the kernel fetches comm from PyPI when it starts"
            if name == COMM
            else "jr.widget() needs `%pip install ipywidgets` first"
        )
        self.log.warning(
            "[rayon] no %s wheel to put in the site%s, so %s: %s", name, why, then, how
        )

    # -- Pyodide ------------------------------------------------------------------------------

    def _pyodide_tasks(self) -> Iterator[dict[str, Any]]:
        other = pyodide_site.pyodide_addon_source(self.lite_dir, self.config)
        if not self.pyodide_dir:
            if other is None:
                raise FileNotFoundError(
                    f"[rayon] {CONFIG_SECTION}.self_contained needs a Pyodide to serve: set "
                    f"{CONFIG_SECTION}.pyodide_dir (--rayon-pyodide-dir) to "
                    f"{pyodide_site.NPM_HINT}, or give jupyterlite's own --pyodide a local "
                    "path or URL of a Pyodide release tarball"
                )
            return  # jupyterlite-pyodide-kernel's add-on copies that one
        src = self.option_path(self.pyodide_dir)
        if other is not None:
            raise ValueError(
                f"[rayon] two Pyodide distributions: {CONFIG_SECTION}.pyodide_dir ({src}) and "
                f"jupyterlite-pyodide-kernel's ({other}); keep one"
            )
        pyodide_site.check_pyodide_dir(src)
        files = [p for p in sorted(src.rglob("*")) if p.is_file()]
        yield self.task(
            name="copy:pyodide",
            doc=f"copy the Pyodide in {src} into the site",
            file_dep=files,
            targets=[self.output_pyodide / p.relative_to(src) for p in files],
            actions=[(self.copy_one, [src, self.output_pyodide])],
        )

    def _place_lock_wheels(self) -> None:
        pyodide_site.check_pyodide_dir(self.output_pyodide)
        fetch = (lambda req: pip_download(req, self.download_cache)) if self.download else None
        pyodide_site.place_lock_wheels(self.output_pyodide, self.wheel_dirs(), fetch, self.log.info)
        for config_path in self._output_lite_jsons():
            settings = self.get_lite_plugin_settings(config_path, PYODIDE_PLUGIN_ID)
            if settings.get("pyodideUrl") != SITE_PYODIDE_URL:
                settings["pyodideUrl"] = SITE_PYODIDE_URL
                self.set_lite_plugin_settings(config_path, PYODIDE_PLUGIN_ID, settings)

    # -- the preload --------------------------------------------------------------------------

    def _output_lite_jsons(self) -> list[Path]:
        return [
            p for p in self.get_output_config_paths() if p.exists() and p.name == JUPYTERLITE_JSON
        ]

    def _set_preload(self) -> None:
        """List comm, the widget's wheels and jupyterlite-rayon in loadPyodideOptions.packages
        (in that order: a wheel's dependencies are installed before it)."""
        names = [*startup_wheels(self.widgets)]
        wanted: list[Path] = []
        for name in names:
            found = self._one_wheel(name, [self.output_wheels])
            if found is not None:
                wanted.append(found)
        if self.preload:
            wheels = site_wheels(self.output_wheels)
            if len(wheels) != 1:
                raise RuntimeError(
                    f"[rayon] expected one jupyterlite_rayon wheel in {self.output_wheels}, "
                    f"found {[w.name for w in wheels]}; remove the extra ones from {PYPI_DIR}/"
                )
            wanted.append(wheels[0])
        ours = {normalize(n) for n in [*names, DIST_NAME]}
        urls = [f"{WORKER_TO_ROOT}{PYPI_DIR}/{w.name}" for w in wanted]
        for config_path in self._output_lite_jsons():
            settings = self.get_lite_plugin_settings(config_path, PYODIDE_PLUGIN_ID)
            options = dict(settings.get("loadPyodideOptions") or {})
            kept = [p for p in options.get("packages", []) if _project(p) not in ours]
            if kept or urls:
                options["packages"] = [*kept, *urls]
            else:
                options.pop("packages", None)
            if options:
                settings["loadPyodideOptions"] = options
            else:
                settings.pop("loadPyodideOptions", None)
            self.set_lite_plugin_settings(config_path, PYODIDE_PLUGIN_ID, settings)
        for url in urls:
            self.log.info("[rayon] kernels load %s at start", url)


def _project(package: str) -> str:
    """The normalized project of a loadPyodideOptions.packages entry (a URL or a lock name)."""
    parsed = parse_wheel_name(package.rsplit("/", 1)[-1])
    return parsed[0] if parsed else normalize(package)
