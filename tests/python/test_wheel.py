"""`pip wheel .` on this checkout gives one py3-none-any wheel with both pool builds, the JS
host and the labextension: what `%pip install jupyterlite-rayon` and `jupyter lite build` need."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

from jupyterlite_rayon.host import loader

ROOT = Path(__file__).resolve().parents[2]


def test_pip_wheel_builds_both_pool_modules(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "--disable-pip-version-check",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    names = set(zipfile.ZipFile(wheel).namelist())
    host = [f"jupyterlite_rayon/host/{name}" for name, _ in loader.module_graph()]
    assert "jupyterlite_rayon/host/index.mjs" in host and len(host) > 5
    for member in (
        "jupyterlite_rayon/wasm/pool-mt.wasm",
        "jupyterlite_rayon/wasm/pool-st.wasm",
        "jupyterlite_rayon/host/loader.py",
        *host,
    ):
        assert member in names, member
    with zipfile.ZipFile(wheel) as zf:
        for build in ("pool-mt.wasm", "pool-st.wasm"):
            assert zf.read(f"jupyterlite_rayon/wasm/{build}")[:4] == b"\0asm"
    shared = [n for n in names if "/share/jupyter/labextensions/jupyterlite-rayon/" in n]
    assert any(n.endswith("/package.json") for n in shared), sorted(names)[:20]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    parser = configparser.ConfigParser()
    parser.read_string(zipfile.ZipFile(wheel).read(entry_points).decode())
    # One JupyterLite add-on per concern, each in its module of jupyterlite_rayon/lite/.
    addons = dict(parser["jupyterlite.addon.v0"])
    concerns = [
        ("wheel", "wheel", "RayonWheelAddon"),
        ("headers", "headers", "RayonHeadersAddon"),
        ("service-worker", "service_worker", "RayonServiceWorkerAddon"),
        ("report", "report", "RayonReportAddon"),
    ]
    assert addons == {
        f"jupyterlite-rayon-{name}": f"jupyterlite_rayon.lite.{module}:{cls}"
        for name, module, cls in concerns
    }
    for target in addons.values():
        assert target.split(":")[0].replace(".", "/") + ".py" in names, target
