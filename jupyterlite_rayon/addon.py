"""The JupyterLite build add-on: ship jupyterlite-rayon in the site and make the site isolated.

Entry point ``jupyterlite.addon.v0`` -> ``RayonAddon``. Configure it in
``jupyter_lite_config.json`` under ``"RayonAddon"`` or on the command line
(``--rayon-wheel``, ``--rayon-coep``, ``--rayon-service-worker``, ``--rayon-no-preload``).

What it does to a ``jupyter lite build``:
- build: puts a py3-none-any jupyterlite-rayon wheel in ``pypi/`` (the Pyodide kernel's piplite
  add-on indexes it), so ``%pip install jupyterlite-rayon`` works offline. Without a wheel file
  configured it writes one from the installed package (an editable install has none).
- post_build: with ``preload`` (default on), lists the wheel in the kernel's
  ``loadPyodideOptions.packages`` so ``import jupyterlite_rayon`` works without ``%pip``;
  writes ``_headers`` (Netlify, Cloudflare Pages) and ``vercel.json`` with COOP/COEP/CORP;
  with ``service_worker``, patches JupyterLite's own ``service-worker.js`` to add the same
  headers (for hosts that cannot set headers, e.g. GitHub Pages).
- on creation: adds COOP/COEP/CORP to ``LiteBuildConfig.extra_http_headers`` so
  ``jupyter lite serve`` sends them (only its tornado server honours them).
- status/check: say whether the site is set up for threads, and what to do if not.

Threads need cross-origin isolation: SharedArrayBuffer and shared WebAssembly.Memory exist only
when the page is served with COOP same-origin and COEP require-corp (or credentialless).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from jupyterlite_core.addons.base import BaseAddon
from jupyterlite_core.constants import JUPYTERLITE_JSON
from traitlets import Bool, Unicode

DIST_NAME = "jupyterlite-rayon"
WHEEL_STEM = "jupyterlite_rayon"
PACKAGE_DIR_NAME = "jupyterlite_rayon"
PYODIDE_PLUGIN_ID = "@jupyterlite/pyodide-kernel-extension:kernel"
PYPI_DIR = "pypi"
# The Pyodide kernel's worker lives at extensions/<npm name>/static/ and Pyodide resolves a
# package URL against the worker's location, so this climbs back to the site root.
WORKER_TO_ROOT = "../../../../"
SW_FILE = "service-worker.js"
SW_MARKER = "/* jupyterlite-rayon: cross-origin isolation */"
# JupyterLite 0.8.x's minified worker ends onFetch with `n&&e.respondWith(n)`; the names may
# change between releases, the shape has not.
SW_RESPOND = re.compile(r"(?P<resp>[A-Za-z_$][\w$]*)&&(?P<event>[A-Za-z_$][\w$]*)\.respondWith\("
                        r"(?P=resp)\)")
# Files that are built for the browser front end or by Python, never needed in the kernel.
WHEEL_EXCLUDE_DIRS = {"__pycache__", "labextension"}
WHEEL_EXCLUDE_SUFFIXES = {".pyc", ".pyo"}
REQUIRED_RUNTIME_FILES = ("wasm/pool-mt.wasm", "wasm/pool-st.wasm", "host/pool_host.mjs")
COEP_VALUES = ("require-corp", "credentialless")
# A fixed timestamp keeps the written wheel byte-identical between builds.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def isolation_headers(coep: str) -> dict[str, str]:
    """The response headers that make a page cross-origin isolated."""
    return {
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Embedder-Policy": coep,
        "Cross-Origin-Resource-Policy": "same-origin",
    }


def headers_isolate(headers: dict[str, str]) -> bool:
    """True if these response headers make a page cross-origin isolated."""
    lower = {k.lower(): (v or "").strip().lower() for k, v in headers.items()}
    return lower.get("cross-origin-opener-policy") == "same-origin" and lower.get(
        "cross-origin-embedder-policy"
    ) in {"require-corp", "credentialless"}


def netlify_headers(headers: dict[str, str]) -> str:
    """A ``_headers`` file (Netlify, Cloudflare Pages) applying headers to every path."""
    lines = ["/*"] + [f"  {name}: {value}" for name, value in headers.items()]
    return "\n".join(lines) + "\n"


def vercel_config(existing: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """``vercel.json`` with a rule applying headers to every path, other settings kept."""
    config = dict(existing)
    rules = [r for r in config.get("headers", []) if r.get("source") != "/(.*)"]
    rules.append({
        "source": "/(.*)",
        "headers": [{"key": name, "value": value} for name, value in headers.items()],
    })
    config["headers"] = rules
    return config


def patch_service_worker(source: str, headers: dict[str, str]) -> str:
    """Make JupyterLite's service worker add headers to every response it serves.

    Raises ValueError if the worker does not have the one ``respondWith`` call expected.
    """
    if SW_MARKER in source:
        return source
    matches = SW_RESPOND.findall(source)
    if len(matches) != 1:
        raise ValueError(
            f"{SW_FILE} does not have the layout jupyterlite-rayon knows (one "
            f"`x&&e.respondWith(x)` in onFetch, found {len(matches)}): this JupyterLite "
            "version is not supported by RayonAddon.service_worker. Serve the site with "
            "COOP/COEP headers instead (_headers, vercel.json, `jupyter lite serve`), or "
            "turn the option off."
        )
    sets = "".join(f"h.set({json.dumps(k)},{json.dumps(v)});" for k, v in headers.items())
    # Opaque responses (status 0) cannot be rebuilt; they are cross-origin anyway.
    helper = (
        f"{SW_MARKER}function jrIsolate(r){{if(!r||r.status===0||r.type===\"opaque\")return r;"
        f"const h=new Headers(r.headers);{sets}"
        "return new Response(r.body,{status:r.status,statusText:r.statusText,headers:h})}"
    )
    patched = SW_RESPOND.sub(
        lambda m: f"{m['resp']}&&{m['event']}.respondWith({m['resp']}.then(jrIsolate))", source
    )
    if patched.startswith('"use strict";'):
        return '"use strict";' + helper + patched[len('"use strict";'):]
    return helper + patched


def package_dir() -> Path:
    """The directory of the installed jupyterlite_rayon package."""
    spec = importlib.util.find_spec(PACKAGE_DIR_NAME)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("jupyterlite_rayon is not importable: `pip install jupyterlite-rayon`")
    return Path(next(iter(spec.submodule_search_locations)))


def installed_version() -> str:
    try:
        return importlib.metadata.version(DIST_NAME)
    except importlib.metadata.PackageNotFoundError as err:
        raise RuntimeError(
            "jupyterlite-rayon has no installed metadata: `pip install -e .` (or a wheel) first, "
            "or set RayonAddon.wheel to a built wheel"
        ) from err


def wheel_name(version: str) -> str:
    return f"{WHEEL_STEM}-{version}-py3-none-any.whl"


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
        "Wheel-Version: 1.0\n"
        "Generator: jupyterlite_rayon.addon\n"
        "Root-Is-Purelib: true\n"
        "Tag: py3-none-any\n"
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


class RayonAddon(BaseAddon):
    """Ship jupyterlite-rayon in a JupyterLite site and make the site cross-origin isolated."""

    __all__: ClassVar[list[str]] = ["status", "build", "post_build", "check"]

    wheel: str = Unicode(
        "",
        help="path to a jupyterlite-rayon py3-none-any wheel (relative to lite_dir); "
        "empty: write one from the installed package",
    ).tag(config=True)  # type: ignore[assignment]

    preload: bool = Bool(
        True,
        help="load the wheel when the kernel starts, so `import jupyterlite_rayon` works "
        "without `%pip install jupyterlite-rayon`",
    ).tag(config=True)  # type: ignore[assignment]

    # Checked in the build, not by traitlets: jupyterlite skips (with only a log line) an add-on
    # whose construction fails, and the site would silently lose its isolation.
    coep: str = Unicode(
        "require-corp",
        help="Cross-Origin-Embedder-Policy value: require-corp or credentialless (lets the page "
        "load cross-origin resources that lack CORP headers; Chromium, Firefox)",
    ).tag(config=True)  # type: ignore[assignment]

    isolation_headers: bool = Bool(
        True,
        help="add COOP/COEP/CORP to LiteBuildConfig.extra_http_headers (jupyter lite serve) "
        "and write _headers and vercel.json into the site",
    ).tag(config=True)  # type: ignore[assignment]

    service_worker: bool = Bool(
        False,
        help="patch JupyterLite's service-worker.js to add COOP/COEP/CORP, for hosts that "
        "cannot set headers (GitHub Pages); the first visit then reloads once",
    ).tag(config=True)  # type: ignore[assignment]

    aliases: ClassVar[dict[str, str]] = {
        "rayon-wheel": "RayonAddon.wheel",
        "rayon-coep": "RayonAddon.coep",
    }
    flags: ClassVar[dict[str, tuple[dict[str, Any], str]]] = {
        "rayon-service-worker": (
            {"RayonAddon": {"service_worker": True}},
            "patch JupyterLite's service worker to make the site cross-origin isolated",
        ),
        "rayon-no-preload": (
            {"RayonAddon": {"preload": False}},
            "do not load jupyterlite-rayon at kernel start (then `%pip install` it)",
        ),
    }

    def __init__(self, manager: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(manager, *args, **kwargs)
        if self.isolation_headers and self.coep in COEP_VALUES:
            # Headers the user configured win over ours.
            manager.extra_http_headers = {
                **isolation_headers(self.coep),
                **(manager.extra_http_headers or {}),
            }

    # -- paths -------------------------------------------------------------------------------

    @property
    def output_wheels(self) -> Path:
        return Path(self.manager.output_dir) / PYPI_DIR

    @property
    def headers(self) -> dict[str, str]:
        return isolation_headers(self.coep)

    def given_wheel(self) -> Path | None:
        """The configured wheel file, checked; None when the wheel is to be written."""
        if not self.wheel:
            return None
        path = (Path(self.manager.lite_dir) / self.wheel).resolve()
        if not path.is_file():
            raise FileNotFoundError(
                f"RayonAddon.wheel: {path} does not exist; build it with `pip wheel .` or "
                "leave RayonAddon.wheel empty to write one from the installed package"
            )
        if not (path.name.startswith(f"{WHEEL_STEM}-") and path.name.endswith("-none-any.whl")):
            raise ValueError(
                f"RayonAddon.wheel: {path.name} is not a jupyterlite_rayon-*-py3-none-any.whl "
                "wheel; Pyodide can only install pure-Python wheels"
            )
        return path

    def site_wheels(self) -> list[Path]:
        return sorted(self.output_wheels.glob(f"{WHEEL_STEM}-*-none-any.whl"))

    # -- hooks -------------------------------------------------------------------------------

    def status(self, manager: Any) -> Iterator[dict[str, Any]]:
        yield self.task(name="rayon", actions=[self._print_status])

    def build(self, manager: Any) -> Iterator[dict[str, Any]]:
        if self.coep not in COEP_VALUES:
            raise ValueError(
                f"RayonAddon.coep must be one of {', '.join(COEP_VALUES)}, not {self.coep!r}"
            )
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
        out = Path(manager.output_dir)
        if self.preload:
            yield self.task(
                name="preload",
                doc="load jupyterlite-rayon when the Pyodide kernel starts",
                uptodate=[lambda: False],
                actions=[self._set_preload],
            )
        if self.isolation_headers:
            yield self.task(
                name="headers",
                doc="write _headers and vercel.json with COOP/COEP/CORP",
                uptodate=[lambda: False],
                actions=[(self._write_host_headers, [out])],
            )
        if self.service_worker:
            yield self.task(
                name="service-worker",
                doc=f"patch {SW_FILE} to add COOP/COEP/CORP",
                uptodate=[lambda: False],
                actions=[(self._patch_service_worker, [out / SW_FILE])],
            )

    def check(self, manager: Any) -> Iterator[dict[str, Any]]:
        yield self.task(
            name="threads",
            doc="report whether the site is set up for threads",
            uptodate=[lambda: False],
            actions=[self._check_threads],
        )

    # -- actions -----------------------------------------------------------------------------

    def _write_wheel(self, root: Path, version: str) -> None:
        for old in self.site_wheels():
            old.unlink()
        path = write_wheel(root, version, self.output_wheels)
        self.log.info("[rayon] wrote %s", path)

    def _set_preload(self) -> None:
        wheels = self.site_wheels()
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

    def _write_host_headers(self, out: Path) -> None:
        headers_file = out / "_headers"
        text = netlify_headers(self.headers)
        if headers_file.exists():
            old = headers_file.read_text()
            if "Cross-Origin-Embedder-Policy" not in old:
                headers_file.write_text(old.rstrip("\n") + "\n" + text)
        else:
            headers_file.write_text(text)
        vercel = out / "vercel.json"
        existing = json.loads(vercel.read_text()) if vercel.exists() else {}
        vercel.write_text(json.dumps(vercel_config(existing, self.headers), indent=2) + "\n")

    def _patch_service_worker(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(
                f"{path} not found: this JupyterLite build has no service worker to patch; "
                "turn RayonAddon.service_worker off and serve the site with COOP/COEP headers"
            )
        patched = patch_service_worker(path.read_text(), self.headers)
        path.write_text(patched)
        self.log.info("[rayon] patched %s for cross-origin isolation", path)

    def _print_status(self) -> None:
        has_tornado = importlib.util.find_spec("tornado") is not None
        wheel = self.wheel or "(written from the installed package)"
        print(f"    wheel: {wheel}")
        print(f"    preload: {self.preload}")
        print(f"    COEP: {self.coep}")
        print(f"    headers for hosts: {self.isolation_headers}")
        print(f"    service worker patch: {self.service_worker}")
        for line in self.thread_report(has_tornado):
            print(f"    {line}")

    def thread_report(self, has_tornado: bool) -> list[str]:
        """Lines saying, for each way of hosting, whether the site can run threads."""
        served = headers_isolate(
            {**(self.manager.http_headers or {}), **(self.manager.extra_http_headers or {})}
        )
        lines = []
        if served and has_tornado:
            lines.append("threads on `jupyter lite serve`: yes (COOP/COEP headers)")
        elif served:
            lines.append(
                "WARNING threads on `jupyter lite serve`: no: tornado is not installed, so its "
                "stdlib server ignores extra_http_headers; `pip install jupyter_server`"
            )
        else:
            lines.append(
                "threads on `jupyter lite serve`: no: LiteBuildConfig.extra_http_headers lacks "
                "COOP same-origin and COEP require-corp; keep RayonAddon.isolation_headers on"
            )
        return lines

    def _check_threads(self) -> None:
        out = Path(self.manager.output_dir)
        has_tornado = importlib.util.find_spec("tornado") is not None
        problems = []
        lines = self.thread_report(has_tornado)
        wheels = self.site_wheels()
        if wheels:
            lines.append(f"wheel: {PYPI_DIR}/{wheels[0].name} (`%pip install jupyterlite-rayon`)")
        else:
            problems.append(f"no jupyterlite_rayon wheel in {PYPI_DIR}/")
        settings = self.get_lite_plugin_settings(out / JUPYTERLITE_JSON, PYODIDE_PLUGIN_ID)
        indexed = any(u.startswith(f"./{PYPI_DIR}/all.json") for u in
                      settings.get("pipliteUrls", []))
        if wheels and not indexed:
            problems.append(f"{PYPI_DIR}/all.json is not in pipliteUrls: piplite cannot find it")
        packages = (settings.get("loadPyodideOptions") or {}).get("packages", [])
        preloaded = any(WHEEL_STEM in p for p in packages)
        lines.append(
            "import without %pip: "
            + ("yes (loadPyodideOptions.packages)" if preloaded else "no (RayonAddon.preload)")
        )
        lines.append(
            "threads on Netlify / Cloudflare Pages: "
            + ("yes (_headers)" if self._file_isolates(out / "_headers") else
               "no: no _headers with COOP/COEP (RayonAddon.isolation_headers)")
        )
        lines.append(
            "threads on Vercel: "
            + ("yes (vercel.json)" if self._vercel_isolates(out / "vercel.json") else
               "no: no vercel.json with COOP/COEP (RayonAddon.isolation_headers)")
        )
        sw = out / SW_FILE
        sw_patched = sw.exists() and SW_MARKER in sw.read_text()
        lines.append(
            "threads on hosts without headers (GitHub Pages): "
            + ("yes, after one automatic reload (service-worker.js patched)" if sw_patched else
               "no: enable RayonAddon.service_worker (--rayon-service-worker)")
        )
        if self.service_worker and not sw_patched:
            problems.append(f"RayonAddon.service_worker is on but {SW_FILE} is not patched")
        for line in lines:
            print(f"    [rayon] {line}")
        if problems:
            raise RuntimeError("[rayon] site not ready: " + "; ".join(problems))

    @staticmethod
    def _file_isolates(path: Path) -> bool:
        if not path.exists():
            return False
        headers = {}
        for line in path.read_text().splitlines():
            name, sep, value = line.strip().partition(":")
            if sep and not line.startswith("/"):
                headers[name.strip()] = value.strip()
        return headers_isolate(headers)

    @staticmethod
    def _vercel_isolates(path: Path) -> bool:
        if not path.exists():
            return False
        config = json.loads(path.read_text())
        for rule in config.get("headers", []):
            if rule.get("source") == "/(.*)":
                return headers_isolate({h["key"]: h["value"] for h in rule.get("headers", [])})
        return False


__all__ = ["RayonAddon", "isolation_headers", "patch_service_worker", "write_wheel"]
