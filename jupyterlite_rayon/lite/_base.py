"""What every jupyterlite-rayon add-on shares: the options users set.

Each add-on (one per concern) subclasses ``RayonAddon``. traitlets loads a configurable's
config from the sections named for every class in its MRO, so the one ``"RayonAddon"`` section
of ``jupyter_lite_config.json`` (and the ``--rayon-*`` flags, which set ``RayonAddon.*``)
configures all of them, as when a single add-on did everything. ``RayonAddon`` itself is not
registered: it has no hooks.
"""

from __future__ import annotations

from pathlib import Path

from traitlets import Bool, Unicode

try:
    from jupyterlite_core.addons.base import BaseAddon
except ModuleNotFoundError as err:  # pragma: no cover - jupyterlite-core is a test dependency
    raise ModuleNotFoundError(
        "jupyterlite_rayon.lite is the `jupyter lite build` add-on and needs jupyterlite-core: "
        "`pip install jupyterlite-core jupyterlite-pyodide-kernel`"
    ) from err

#: the config section users write, and the prefix of every option name in messages
CONFIG_SECTION = "RayonAddon"


class RayonAddon(BaseAddon):
    """The options of the jupyterlite-rayon add-ons (config section ``RayonAddon``)."""

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
        help="the COEP header's value: require-corp or credentialless (lets the page load "
        "cross-origin resources that lack CORP headers; Chromium, Firefox)",
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

    self_contained: bool = Bool(
        False,
        help="serve Pyodide and every wheel the kernel loads at start from the site itself, so "
        "it works without internet (needs pyodide_dir, or jupyterlite's --pyodide)",
    ).tag(config=True)  # type: ignore[assignment]

    pyodide_dir: str = Unicode(
        "",
        help="with self_contained: an unpacked Pyodide distribution to copy into the site "
        "(the pyodide npm package, or a release's pyodide/ folder; relative to lite_dir)",
    ).tag(config=True)  # type: ignore[assignment]

    wheels_dir: str = Unicode(
        "",
        help="a folder of pure wheels the kernel loads at start: the pyodide-lock.json ones the "
        "Pyodide folder lacks, and comm, ipywidgets, jupyterlab_widgets (relative to lite_dir); "
        "empty: the Pyodide folder, the lite_dir's pypi/ and the build environment",
    ).tag(config=True)  # type: ignore[assignment]

    download: bool = Bool(
        False,
        help="let `pip download` fetch the start-up wheels no folder has (PyPI or pip's "
        "configured index); off, the build never uses the network",
    ).tag(config=True)  # type: ignore[assignment]

    widgets: bool = Bool(
        True,
        help="put ipywidgets, comm and jupyterlab_widgets in the site and load them when the "
        "kernel starts, so jr.widget() works without `%pip install ipywidgets`",
    ).tag(config=True)  # type: ignore[assignment]

    @property
    def lite_dir(self) -> Path:
        return Path(self.manager.lite_dir)

    def option_path(self, value: str) -> Path:
        """An option's path, relative to lite_dir unless absolute."""
        return (self.lite_dir / value).resolve()

    @property
    def output_dir(self) -> Path:
        return Path(self.manager.output_dir)
