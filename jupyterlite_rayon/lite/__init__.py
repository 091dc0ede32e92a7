"""The JupyterLite build add-ons: ship jupyterlite-rayon in a site and make the site isolated.

One add-on per concern, each on the ``jupyterlite.addon.v0`` entry point (the layout of
jupyterlite-pyodide-kernel's add-ons):

- ``wheel.RayonWheelAddon``: what the kernel loads at start, served by the site: a
  jupyterlite-rayon wheel, comm and the widget's wheels in ``pypi/``, preloaded in the Pyodide
  kernel; with ``self_contained`` also Pyodide and its lock wheels (``pyodide_site``). Its
  helpers: ``startup`` (what the kernel loads, where a built site makes each come from),
  ``installed`` (wheels of the build environment's distributions), ``fetch`` (pip, only with
  ``download``), ``wheel_file`` (writing wheels)
- ``headers.RayonHeadersAddon``: COOP/COEP/CORP for ``jupyter lite serve``, ``_headers``
  (Netlify, Cloudflare Pages) and ``vercel.json``
- ``service_worker.RayonServiceWorkerAddon``: JupyterLite's service worker adds the headers
  (hosts that cannot set any, e.g. GitHub Pages)
- ``report.RayonReportAddon``: ``jupyter lite status`` / ``check`` say whether the site can run
  threads on each kind of host, and what to do if not, and where Pyodide and each start-up
  wheel come from (site, CDN, PyPI)

They share ``_base.RayonAddon``: the options users set, in ``jupyter_lite_config.json`` under
``"RayonAddon"`` or with the ``--rayon-*`` flags. This package is the only part of
jupyterlite_rayon that imports jupyterlite_core; the in-kernel runtime never imports it.
"""
