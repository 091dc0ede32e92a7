"""Build an offline JupyterLite site with jupyterlite-rayon, ready to serve from 127.0.0.1.

usage: python scripts/build_site.py OUT_DIR [--contents DIR] [--service-worker]
                                    [--no-preload] [--coep require-corp|credentialless]
                                    [--wheel WHEEL] [--serve PORT]

The site: jupyterlite-core 0.8.6 and jupyterlite-pyodide-kernel 0.8.6, the PyPI fallback
disabled, the jupyterlite-rayon add-ons configured by the "RayonAddon" section: self-contained
(``RayonAddon.self_contained``: Pyodide 314.0.6 copied from .deps/pyodide with the lock wheels the
kernel loads, comm, ipywidgets and jupyterlab_widgets from .deps/pypi, all preloaded: no CDN, no
PyPI), the wheel in pypi/, importable without %pip by default, COOP/COEP files for hosts, the
service-worker patch on request; the jupyterlite-rayon labextension and the given contents.
Run scripts/install_browser_deps.sh first (it fills .deps/). Then serve it with
``python scripts/serve.py OUT_DIR 8000`` (or pass ``--serve 8000`` here) and open
http://127.0.0.1:8000/lab/index.html.

The demo site: ``python scripts/build_site.py _site --contents examples/notebooks --serve 8000``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from jupyterlite_rayon.lite.headers import COEP_VALUES

ROOT = Path(__file__).resolve().parent.parent
DEPS = ROOT / ".deps"
LABEXTENSION_NAME = "jupyterlite-rayon"


def sys_prefix_labextensions() -> list[Path]:
    """The prebuilt labextensions pip installed into share/jupyter/labextensions."""
    share = Path(sysconfig.get_paths()["data"]) / "share/jupyter/labextensions"
    found = [*share.glob("*/package.json"), *share.glob("@*/*/package.json")]
    return sorted(
        p.parent for p in found if json.loads(p.read_text()).get("jupyterlab", {}).get("_build")
    )


def built_labextension() -> Path | None:
    """The labextension built in the source tree (an editable install does not copy it)."""
    path = ROOT / "jupyterlite_rayon" / "labextension"
    return path if (path / "package.json").is_file() else None


def federated_extensions(wheel: Path | None) -> list[str]:
    """Every labextension for the site: jupyterlite-rayon's from the given wheel's shared data,
    else the one built in the source tree (never the copy pip installed, which a later
    `npm run build` leaves stale), plus the other installed ones (the kernel, widgets)."""
    if wheel is not None:
        ours = wheel.resolve()
    else:
        built = built_labextension()
        if built is None:
            raise SystemExit(
                "the jupyterlite-rayon labextension is not built (no status bar, no interrupts, "
                "no service-worker reload): `cd labextension && npm install && npm run build`"
            )
        ours = built
    others = [p for p in sys_prefix_labextensions() if p.name != LABEXTENSION_NAME]
    return [str(ours), *(str(p) for p in others)]


def lite_settings(disable_pypi: bool = True) -> dict:
    return {
        "jupyter-lite-schema-version": 0,
        "jupyter-config-data": {
            # The browser tests drive the app through window.jupyterapp.
            "exposeAppInBrowser": True,
            "litePluginSettings": {
                "@jupyterlite/pyodide-kernel-extension:kernel": {
                    "disablePyPIFallback": disable_pypi,
                },
            },
        },
    }


def build_site(
    out: Path,
    contents: Path | None = None,
    service_worker: bool = False,
    preload: bool = True,
    coep: str = COEP_VALUES[0],
    wheel: Path | None = None,
) -> Path:
    """Build the site into ``out`` (replaced if it exists) and return it."""
    pyodide = DEPS / "pyodide"
    pypi = DEPS / "pypi"
    if not (pyodide / "pyodide.mjs").is_file() or not pypi.is_dir():
        raise SystemExit(f"{DEPS} is incomplete: run `bash scripts/install_browser_deps.sh`")
    if contents is not None and not contents.is_dir():
        raise SystemExit(f"--contents {contents}: not a directory")
    out = out.resolve()
    if out.exists():
        shutil.rmtree(out)
    federated = federated_extensions(wheel)

    with tempfile.TemporaryDirectory(prefix="jr-lite-") as tmp:
        lite = Path(tmp)
        (lite / "jupyter-lite.json").write_text(json.dumps(lite_settings(), indent=2))
        # The options every jupyterlite-rayon add-on reads (jupyterlite_rayon/lite/_base.py).
        rayon: dict[str, object] = {
            "service_worker": service_worker,
            "preload": preload,
            "coep": coep,
            # The add-on serves every start-up file from the site, from the local folders.
            "self_contained": True,
            "pyodide_dir": str(pyodide),
            "wheels_dir": str(pypi),
        }
        if wheel is not None:
            rayon["wheel"] = str(wheel.resolve())
        config = {
            "LiteBuildConfig": {
                "output_dir": str(out),
                "contents": [str(contents.resolve())] if contents is not None else [],
                "federated_extensions": federated,
                # federated lists the installed ones but jupyterlite-rayon's own.
                "ignore_sys_prefix": ["federated_extensions"],
            },
            "RayonAddon": rayon,
        }
        (lite / "jupyter_lite_config.json").write_text(json.dumps(config, indent=2))
        started = time.monotonic()
        log = lite / "build.log"
        with log.open("w") as fh:
            proc = subprocess.run(
                [sys.executable, "-m", "jupyterlite_core", "build"],
                cwd=lite,
                stdout=fh,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if proc.returncode != 0:
            tail = "\n".join(log.read_text().splitlines()[-40:])
            raise SystemExit(f"jupyter lite build failed ({proc.returncode}):\n{tail}")
        print(f"built {out} in {time.monotonic() - started:.0f}s")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--contents", type=Path, help="notebooks and files to add to the site")
    parser.add_argument(
        "--service-worker",
        action="store_true",
        help="patch the site's service worker for hosts without headers",
    )
    parser.add_argument(
        "--no-preload", action="store_true", help="do not load jupyterlite-rayon at kernel start"
    )
    parser.add_argument("--coep", choices=COEP_VALUES, default=COEP_VALUES[0])
    parser.add_argument(
        "--wheel",
        type=Path,
        help="a built jupyterlite-rayon wheel (default: written from the package)",
    )
    parser.add_argument(
        "--serve",
        type=int,
        metavar="PORT",
        help="then serve the site on 127.0.0.1:PORT with COOP/COEP headers",
    )
    args = parser.parse_args()
    site = build_site(
        args.out, args.contents, args.service_worker, not args.no_preload, args.coep, args.wheel
    )
    if args.serve is not None:
        sys.path.insert(0, str(ROOT / "scripts"))
        from serve import make_server

        server = make_server(site, args.serve, "coi", args.coep)
        print(
            f"serving on http://127.0.0.1:{server.server_port}/lab/index.html (Ctrl-C stops)",
            flush=True,
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
