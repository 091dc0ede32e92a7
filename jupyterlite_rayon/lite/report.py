"""`jupyter lite status` and `jupyter lite check`: can the site run threads, on which hosts.

Each line says, for one way of hosting the site, whether its pages will be cross-origin
isolated, and if not, what to do: the fix texts are jupyterlite_rayon.isolation's, the same
the kernel's warning and the front-end's notification give. Then where Pyodide and each wheel
the kernel loads at start come from (site, CDN, PyPI), with a warning when the kernel needs the
internet to start. ``check`` fails when the site misses what its options ask for (no wheel, the
wheel not indexed, the worker not patched, a self-contained site that is not) or what the kernel
needs to start.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any, ClassVar

from jupyterlite_core.constants import JUPYTERLITE_JSON

from ..isolation import HEADERS, HOSTS
from ._base import CONFIG_SECTION, RayonAddon
from .headers import (
    HEADERS_FILE,
    VERCEL_FILE,
    headers_file_isolates,
    headers_isolate,
    vercel_file_isolates,
)
from .service_worker import SW_FILE, is_patched
from .startup import MISSING, WIDGET_FRONT_END, Origin, site_origins
from .wheel import PYODIDE_PLUGIN_ID, PYPI_DIR, WHEEL_STEM, site_wheels

PREFIX = "[rayon]"


def host_fix(kind: str) -> str:
    """The fix jupyterlite_rayon.isolation gives for one kind of host ("github-pages", ...)."""
    for row in HOSTS:
        if row["kind"] == kind:
            return str(row["fix"])
    raise KeyError(f"jupyterlite_rayon.isolation.HOSTS has no row of kind {kind!r}")


def has_tornado() -> bool:
    """True if `jupyter lite serve` runs tornado, the only server that sends extra headers."""
    return importlib.util.find_spec("tornado") is not None


class RayonReportAddon(RayonAddon):
    """Report whether the site is set up for threads (status, check)."""

    __all__: ClassVar[list[str]] = ["status", "check"]

    def status(self, manager: Any) -> Iterator[dict[str, Any]]:
        yield self.task(name="rayon", actions=[self._print_status])

    def check(self, manager: Any) -> Iterator[dict[str, Any]]:
        yield self.task(
            name="threads",
            doc="report whether the site is set up for threads",
            uptodate=[lambda: False],
            actions=[self._check_threads],
        )

    def serve_line(self, has_tornado: bool) -> str:
        """The line for `jupyter lite serve` (a WARNING when its headers would be dropped)."""
        served = headers_isolate(
            {**(self.manager.http_headers or {}), **(self.manager.extra_http_headers or {})}
        )
        if served and has_tornado:
            return "threads on `jupyter lite serve`: yes (COOP/COEP headers)"
        if served:
            return f"WARNING threads on `jupyter lite serve`: no: {host_fix('localhost')}"
        return (
            "threads on `jupyter lite serve`: no: LiteBuildConfig.extra_http_headers lacks "
            f"{HEADERS}; turn {CONFIG_SECTION}.isolation_headers on (the default)"
        )

    def site_report(self) -> tuple[list[str], list[str]]:
        """Lines about the built site for each kind of host, and the problems that fail check."""
        out = self.output_dir
        lines: list[str] = []
        problems: list[str] = []
        wheels = site_wheels(out / PYPI_DIR)
        if wheels:
            lines.append(f"wheel: {PYPI_DIR}/{wheels[0].name} (`%pip install jupyterlite-rayon`)")
        else:
            problems.append(f"no jupyterlite_rayon wheel in {PYPI_DIR}/")
        settings = self.get_lite_plugin_settings(out / JUPYTERLITE_JSON, PYODIDE_PLUGIN_ID)
        urls = settings.get("pipliteUrls", [])
        if wheels and not any(u.startswith(f"./{PYPI_DIR}/all.json") for u in urls):
            problems.append(f"{PYPI_DIR}/all.json is not in pipliteUrls: piplite cannot find it")
        packages = (settings.get("loadPyodideOptions") or {}).get("packages", [])
        preloaded = any(WHEEL_STEM in p for p in packages)
        lines.append(
            "import without %pip: "
            + (
                "yes (loadPyodideOptions.packages)"
                if preloaded
                else f"no (turn {CONFIG_SECTION}.preload on, or `%pip install` it)"
            )
        )
        origin_lines, origin_problems = self.origins_report(site_origins(out, settings))
        lines += origin_lines
        problems += origin_problems
        front_end = WIDGET_FRONT_END.rsplit("/", 1)[0]
        lines.append(
            f"widget front end: site ({front_end})"
            if (out / WIDGET_FRONT_END).is_file()
            else f"WARNING widget front end: not in the site ({front_end}), so jr.widget() "
            "shows nothing: `pip install jupyterlab_widgets` where you build, and build again"
        )
        rebuild = f"turn {CONFIG_SECTION}.isolation_headers on and build again, then"
        lines.append(
            "threads on Netlify / Cloudflare Pages: "
            + (
                f"yes ({HEADERS_FILE})"
                if headers_file_isolates(out / HEADERS_FILE)
                else f"no: the site has no {HEADERS_FILE} with COOP/COEP: {rebuild} "
                + host_fix("headers-file")
            )
        )
        lines.append(
            "threads on Vercel: "
            + (
                f"yes ({VERCEL_FILE})"
                if vercel_file_isolates(out / VERCEL_FILE)
                else f"no: the site has no {VERCEL_FILE} with COOP/COEP: {rebuild} "
                + host_fix("vercel")
            )
        )
        sw_patched = is_patched(out / SW_FILE)
        lines.append(
            "threads on hosts without headers (GitHub Pages): "
            + (
                f"yes, after one automatic reload ({SW_FILE} patched)"
                if sw_patched
                else f"no: {host_fix('github-pages')}"
            )
        )
        if self.service_worker and not sw_patched:
            problems.append(f"{CONFIG_SECTION}.service_worker is on but {SW_FILE} is not patched")
        return lines, problems

    def origins_report(self, origins: list[Origin]) -> tuple[list[str], list[str]]:
        """Where Pyodide and each start-up wheel come from, the warning when any needs the
        internet, and the problems: what the kernel cannot load, and a self-contained site
        that is not."""
        lines = [o.line() for o in origins]
        problems = [f"{o.what}: {o.detail}" for o in origins if o.at_start and o.source == MISSING]
        online = [o for o in origins if o.needs_internet]
        if online:
            lines.append(
                "WARNING the site needs the internet when the kernel starts ("
                + ", ".join(f"{o.what} from {o.source}" for o in online)
                + f"): without it the kernel never starts. Build with --rayon-self-contained "
                f"({CONFIG_SECTION}.self_contained) and {CONFIG_SECTION}.pyodide_dir to serve "
                "them from the site"
            )
            if self.self_contained:
                problems.append(
                    f"{CONFIG_SECTION}.self_contained is on but the kernel loads "
                    + ", ".join(o.what for o in online)
                    + " from the internet"
                )
        else:
            lines.append(
                "internet when the kernel starts: not needed (the site serves Pyodide and every "
                "start-up wheel)"
            )
        return lines, problems

    def _print_status(self) -> None:
        print(f"    wheel: {self.wheel or '(written from the installed package)'}")
        print(f"    preload: {self.preload}")
        print(f"    COEP: {self.coep}")
        print(f"    headers for hosts: {self.isolation_headers}")
        print(f"    service worker patch: {self.service_worker}")
        print(f"    self-contained: {self.self_contained}")
        print(f"    Pyodide folder: {self.pyodide_dir or '(none)'}")
        print(f"    wheels folder: {self.wheels_dir or '(none)'}")
        print(f"    download with pip: {self.download}")
        print(f"    widgets: {self.widgets}")
        print(f"    {self.serve_line(has_tornado())}")

    def _check_threads(self) -> None:
        lines, problems = self.site_report()
        for line in [self.serve_line(has_tornado()), *lines]:
            print(f"    {PREFIX} {line}")
        if problems:
            raise RuntimeError(f"{PREFIX} site not ready: " + "; ".join(problems))
