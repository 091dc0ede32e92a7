"""A self-contained site, as a site author builds it: a plain `jupyter lite build` with
``--rayon-self-contained``, Pyodide from a local folder, no network.

The Pyodide folder has the npm package's layout (the runtime without pyodide-lock.json's wheels);
the lock wheels the kernel loads at start are in ``RayonAddon.wheels_dir``, and comm, ipywidgets
and jupyterlab_widgets come from the build environment, so the kernel starting at all proves the
add-on put every start-up file in the site. JupyterLite's PyPI fallback is left on (its
default): a wheel the site lacked would be fetched from PyPI, which the route guard refuses and
reports. The first cell shows ``jr.widget()`` with no ``%pip`` before it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_conftest import _site_wheel, build_site_script, open_lite_kernel, serve_script

ROOT = Path(__file__).resolve().parents[2]
DEPS_PYODIDE = ROOT / ".deps" / "pyodide"
PYODIDE_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"


def npm_layout(src: Path, pyodide: Path, wheels: Path) -> None:
    """Split a Pyodide folder into its runtime (as npm ships it) and the lock's wheels."""
    pyodide.mkdir()
    wheels.mkdir()
    for path in src.iterdir():
        if path.suffix == ".whl":
            shutil.copy(path, wheels / path.name)
        else:
            (pyodide / path.name).symlink_to(path)


@pytest.fixture(scope="module")
def offline_site(browser_deps: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("offline")
    npm_layout(DEPS_PYODIDE, root / "pyodide", root / "wheels")
    lite = root / "lite"
    lite.mkdir()
    (lite / "jupyter-lite.json").write_text(
        json.dumps(build_site_script.lite_settings(disable_pypi=False))
    )
    wheel = _site_wheel()
    rayon: dict[str, str] = {
        "pyodide_dir": str(root / "pyodide"),
        "wheels_dir": str(root / "wheels"),
    }
    if wheel is not None:
        rayon["wheel"] = str(wheel.resolve())
    config = {
        "LiteBuildConfig": {
            "output_dir": str(root / "site"),
            # The labextension built in this tree (or JR_SITE_WHEEL's), as the other sites.
            "federated_extensions": build_site_script.federated_extensions(wheel),
            "ignore_sys_prefix": ["federated_extensions"],
        },
        "RayonAddon": rayon,
    }
    (lite / "jupyter_lite_config.json").write_text(json.dumps(config))
    proc = subprocess.run(
        [sys.executable, "-m", "jupyterlite_core", "build", "--rayon-self-contained"],
        cwd=lite,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    site = root / "site"
    settings = json.loads((site / "jupyter-lite.json").read_text())["jupyter-config-data"][
        "litePluginSettings"
    ][PYODIDE_PLUGIN]
    assert settings["pyodideUrl"] == "./static/pyodide/pyodide.mjs", settings
    assert settings["disablePyPIFallback"] is False
    return site


@pytest.fixture(scope="module")
def offline(browser: Any, offline_site: Path) -> Iterator[Any]:
    server, url = serve_script.serve_in_thread(offline_site, "coi")
    kernel = open_lite_kernel(browser, url, "coi")
    try:
        yield kernel
        kernel.guard.check_offline()
    finally:
        kernel.close()
        server.shutdown()
        server.server_close()


def last_json(r: dict[str, Any]) -> Any:
    assert r["status"] == "ok", r
    return json.loads(r["stdout"].strip().splitlines()[-1])


def test_the_widget_renders_in_the_first_cell_without_pip(offline: Any) -> None:
    r = offline.execute(
        "import jupyterlite_rayon as jr\nawait jr.init_thread_pool(2)\nw = jr.widget()\nw",
        timeout=180,
    )
    assert r["status"] == "ok", r
    assert any("application/vnd.jupyter.widget-view+json" in b for b in r["results"]), r
    widget = offline.page.locator(".jr-pool-widget")
    widget.locator(".widget-slider").wait_for(timeout=60_000)
    assert widget.locator(".widget-readout").inner_text().strip() == "2"
    got = last_json(
        offline.execute(
            "import json, ipywidgets, comm\n"
            "print(json.dumps([ipywidgets.__version__, ipywidgets.__file__, comm.__file__]))"
        )
    )
    # Preloaded from the site's pypi/ (no %pip ran in this kernel).
    assert got[0].startswith("8.") and all("site-packages" in p for p in got[1:]), got
    offline.screenshot("offline_site_widget")


def test_a_threaded_cell_runs_with_the_network_refused(offline: Any) -> None:
    got = last_json(
        offline.execute(
            """
import array, json, js
import jupyterlite_rayon as jr
await jr.init_thread_pool(2)
before = jr.pool_info()
img = jr.mandelbrot(400, 300, max_iter=500)
n = 200_000
total = jr.sum(jr.asarray(array.array("d", range(n))))
after = jr.pool_info()
print(json.dumps({
    "isolated": bool(js.crossOriginIsolated), "build": after["build"],
    "threads": after["threads"], "sum": total, "want": n * (n - 1) / 2,
    "tasks": [a["tasks"] - b["tasks"] for a, b in zip(after["per_thread"], before["per_thread"])],
}))
""",
            timeout=180,
        )
    )
    assert got["isolated"] is True and got["build"] == "mt" and got["threads"] == 2, got
    assert got["sum"] == got["want"], got
    # Both threads ran some of the work: the pool is really threaded on the offline site.
    assert len(got["tasks"]) == 2 and all(t > 0 for t in got["tasks"]), got
    # Nothing left 127.0.0.1 while the kernel started and ran (the guard also fails the test).
    assert offline.guard.blocked == [], offline.guard.blocked
