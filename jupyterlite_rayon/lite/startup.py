"""What the Pyodide kernel loads when it starts, and where a built site makes each come from.

jupyterlite-pyodide-kernel 0.8.6's worker, at start: imports Pyodide from ``pyodideUrl`` (its
CDN unless the site has its own), installs ``loadPyodideOptions.packages`` (the preloaded
wheels), loads micropip from pyodide-lock.json, installs the kernel's own piplite, then runs
``piplite.install`` for ipykernel and pyodide-kernel (the kernel's own ``pypi/``), comm (the
site's piplite index, else PyPI) and jedi and ipython (pyodide-lock.json, with their
dependencies, fetched beside the lock file). A package already installed by the preload is not
fetched again, which is how a site makes comm and the widget's wheels its own.

``site_origins`` reads a built site and says, for Pyodide and each of these wheels, whether it is
served by the site, the CDN or PyPI, or missing (the kernel cannot start).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyterlite_pyodide_kernel.constants import (
    PYODIDE_CDN_URL,
    PYODIDE_KERNEL_NPM_NAME,
    PYODIDE_KERNEL_PLUGIN_ID,
    PYODIDE_LOCK,
    PYODIDE_MJS,
)

from .wheel_file import normalize, parse_wheel_name

PYODIDE_PLUGIN_ID = PYODIDE_KERNEL_PLUGIN_ID
PYPI_DIR = "pypi"
ALL_JSON = "all.json"
#: where a site's own Pyodide lives (the place jupyterlite-pyodide-kernel's add-on uses too)
SITE_PYODIDE_DIR = "static/pyodide"
SITE_PYODIDE_URL = f"./{SITE_PYODIDE_DIR}/{PYODIDE_MJS}"
CDN_PYODIDE_URL = f"{PYODIDE_CDN_URL}/{PYODIDE_MJS}"
KERNEL_STATIC = f"extensions/{PYODIDE_KERNEL_NPM_NAME}/static"
# The kernel's worker lives in KERNEL_STATIC and Pyodide resolves a package URL against the
# worker's location, so this climbs back to the site root.
WORKER_TO_ROOT = "../../../../"
WIDGET_FRONT_END = "extensions/@jupyter-widgets/jupyterlab-manager/package.json"

#: what the kernel loads from pyodide-lock.json at start (micropip vendors its packaging)
LOCK_ROOTS = ("micropip", "ipython", "jedi")
#: what the kernel installs from its own pypi/ at start
KERNEL_OWN = ("piplite", "ipykernel", "pyodide-kernel")
#: the one start-up wheel piplite takes from PyPI unless the site has it
COMM = "comm"
#: the kernel side of the pool widget (with comm): preloaded with RayonAddon.widgets
WIDGETS = ("ipywidgets", "jupyterlab_widgets")

SITE = "site"
CDN = "CDN"
PYPI = "PyPI"
INTERNET = "internet"
MISSING = "missing"
LATER = "on %pip install"
NETWORK = (CDN, PYPI, INTERNET)


def startup_wheels(widgets: bool) -> tuple[str, ...]:
    """The wheels the add-on puts in the site's pypi/ and preloads (besides its own)."""
    return (COMM, *WIDGETS) if widgets else (COMM,)


def lock_closure(packages: dict[str, Any], roots: tuple[str, ...] | list[str]) -> list[str]:
    """The roots and everything they depend on, as pyodide-lock.json keys, sorted.

    Raises KeyError naming the roots the lock file does not have.
    """
    missing = [r for r in roots if normalize(r) not in packages]
    if missing:
        raise KeyError(f"{PYODIDE_LOCK} has no {', '.join(missing)}")
    seen: set[str] = set()
    todo = [normalize(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(normalize(d) for d in packages[name].get("depends", []))
    return sorted(seen)


def find_wheels(dirs: list[Path], name: str, version: str | None = None) -> list[Path]:
    """The wheels of project ``name`` (of ``version``, if given) in these folders."""
    want = normalize(name)
    found = []
    for folder in dirs:
        for path in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
            parsed = parse_wheel_name(path.name)
            if parsed and parsed[0] == want and (version is None or parsed[1] == version):
                found.append(path)
    return found


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Origin:
    """Where one thing the kernel loads comes from in a built site."""

    what: str
    source: str  # SITE, CDN, PYPI, INTERNET, MISSING or LATER
    detail: str
    at_start: bool = True

    @property
    def needs_internet(self) -> bool:
        return self.at_start and self.source in NETWORK

    def line(self) -> str:
        return f"{self.what}: {self.source} ({self.detail})"


def url_source(url: str) -> str:
    return CDN if url.startswith("https://cdn.jsdelivr.net/") else INTERNET


def is_remote(url: str) -> bool:
    return "://" in url or url.startswith("//")


def preloaded(out: Path, settings: dict[str, Any]) -> dict[str, tuple[str, Path | None]]:
    """Normalized project name -> (URL, file in the site or None) of each preloaded wheel."""
    packages = (settings.get("loadPyodideOptions") or {}).get("packages", [])
    found: dict[str, tuple[str, Path | None]] = {}
    for url in packages:
        parsed = parse_wheel_name(url.rsplit("/", 1)[-1])
        if parsed is None:
            continue  # a pyodide-lock.json package name: the lock rows report it
        if is_remote(url):
            found[parsed[0]] = (url, None)
        else:
            found[parsed[0]] = (url, (out / KERNEL_STATIC / url).resolve())
    return found


def index_names(path: Path) -> dict[str, list[str]]:
    """Normalized project name -> file names of a piplite ``all.json`` (empty if none)."""
    if not path.is_file():
        return {}
    index = json.loads(path.read_text())
    return {
        normalize(name): [f["filename"] for rel in info["releases"].values() for f in rel]
        for name, info in index.items()
    }


def pyodide_origin(out: Path, settings: dict[str, Any]) -> tuple[Origin, Path | None]:
    """Where Pyodide comes from, and the site's Pyodide folder when it is the site's."""
    url = settings.get("pyodideUrl") or CDN_PYODIDE_URL
    if is_remote(url):
        return Origin("Pyodide", url_source(url), url), None
    folder = (out / url).parent
    if not (out / url).is_file():
        return Origin("Pyodide", MISSING, f"pyodideUrl {url} is not in the site"), None
    return Origin("Pyodide", SITE, url.removeprefix("./")), folder


def lock_origins(out: Path, folder: Path | None, pyodide: Origin) -> list[Origin]:
    """Where each pyodide-lock.json package the kernel loads at start comes from."""
    if folder is None:
        if pyodide.source == MISSING:
            return []
        base = pyodide.detail.rsplit("/", 1)[0]
        return [
            Origin(
                f"start-up wheels {', '.join(LOCK_ROOTS)} and their dependencies",
                pyodide.source,
                f"{PYODIDE_LOCK} at {base}/",
            )
        ]
    lock_path = folder / PYODIDE_LOCK
    rel = lock_path.relative_to(out).as_posix()
    if not lock_path.is_file():
        return [Origin(f"start-up wheels {', '.join(LOCK_ROOTS)}", MISSING, f"no {rel}")]
    packages = json.loads(lock_path.read_text())["packages"]
    try:
        keys = lock_closure(packages, LOCK_ROOTS)
    except KeyError as err:
        return [Origin(f"start-up wheels {', '.join(LOCK_ROOTS)}", MISSING, str(err))]
    origins = []
    for key in keys:
        entry = packages[key]
        what = f"start-up wheel {key} {entry['version']}"
        path = folder / entry["file_name"]
        where = path.relative_to(out).as_posix()
        if not path.is_file():
            origins.append(Origin(what, MISSING, f"{where} is not in the site"))
        elif sha256_of(path) != entry["sha256"]:
            origins.append(
                Origin(
                    what, MISSING, f"{where} differs from its sha256 in {rel}: Pyodide refuses it"
                )
            )
        else:
            origins.append(Origin(what, SITE, where))
    return origins


def piplite_origin(
    name: str,
    out: Path,
    settings: dict[str, Any],
    preloads: dict[str, tuple[str, Path | None]],
    at_start: bool,
) -> Origin:
    """Where a wheel piplite installs (at start, or on ``%pip install``) comes from."""
    key = normalize(name)
    label = ("start-up wheel " if at_start else "widget wheel ") + key
    if key in preloads:
        # A preloaded wheel is loaded at start, whatever piplite would do with it later.
        url, path = preloads[key]
        if path is None:
            return Origin(label, url_source(url), f"preloaded from {url}")
        if not path.is_file():
            return Origin(label, MISSING, f"preloaded {url} is not in the site")
        where = path.relative_to(out.resolve()).as_posix()
        return Origin(label, SITE, f"preloaded from {where}")
    when = "at start" if at_start else "after `%pip install ipywidgets`"
    for index in (out / PYPI_DIR / ALL_JSON, out / KERNEL_STATIC / PYPI_DIR / ALL_JSON):
        files = index_names(index).get(key)
        if files:
            where = index.relative_to(out).as_posix()
            return Origin(label, SITE if at_start else LATER, f"{files[-1]} in {where}, {when}")
    if settings.get("disablePyPIFallback"):
        problem = "the kernel cannot start" if at_start else "`%pip install` cannot find it"
        return Origin(
            label, MISSING, f"not in the site and disablePyPIFallback: {problem}", at_start
        )
    return Origin(label, PYPI if at_start else LATER, f"pypi.org, {when}", at_start)


def site_origins(out: Path, settings: dict[str, Any]) -> list[Origin]:
    """Pyodide and every start-up wheel of a built site (then the widget's), with its source."""
    pyodide, folder = pyodide_origin(out, settings)
    preloads = preloaded(out, settings)
    return [
        pyodide,
        *lock_origins(out, folder, pyodide),
        *(piplite_origin(n, out, settings, preloads, True) for n in (*KERNEL_OWN, COMM)),
        *(piplite_origin(n, out, settings, preloads, False) for n in WIDGETS),
    ]
