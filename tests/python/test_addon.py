"""The JupyterLite add-ons (jupyterlite_rayon.lite) in real `jupyter lite build/check/status/serve`
runs: one add-on per concern, all configured by the "RayonAddon" section.

Sites are built offline in tmp dirs: the default ones point at Pyodide's CDN, the self-contained
ones copy a small fake Pyodide (the npm package's layout: runtime files and pyodide-lock.json,
no wheels) and take the lock's wheels from a folder, or from pip with a local find-links folder
(PIP_NO_INDEX). Nothing is fetched from the network. The browser side: tests/browser/test_site.py
and tests/browser/test_offline_site.py (a self-contained site with every request refused).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jupyterlite_core")
pytest.importorskip("jupyterlite_pyodide_kernel")

from jupyterlite_rayon import isolation
from jupyterlite_rayon.host import loader
from jupyterlite_rayon.lite._base import RayonAddon
from jupyterlite_rayon.lite.headers import (
    COEP,
    COEP_VALUES,
    COOP,
    CORP,
    RayonHeadersAddon,
    headers_isolate,
    isolation_headers,
    vercel_config,
)
from jupyterlite_rayon.lite.installed import NotPackable, wheel_from_installed
from jupyterlite_rayon.lite.report import RayonReportAddon
from jupyterlite_rayon.lite.service_worker import (
    SW_MARKER,
    RayonServiceWorkerAddon,
    patch_service_worker,
)
from jupyterlite_rayon.lite.startup import (
    CDN_PYODIDE_URL,
    LOCK_ROOTS,
    MISSING,
    PYPI,
    SITE,
    lock_closure,
    site_origins,
)
from jupyterlite_rayon.lite.wheel import (
    RayonWheelAddon,
    package_dir,
    package_files,
    write_wheel,
)
from jupyterlite_rayon.lite.wheel_file import pack_wheel

PYODIDE_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"
RUNTIME = {
    "jupyterlite_rayon/__init__.py": b"VERSION = 'fake'\n",
    "jupyterlite_rayon/wasm/pool-mt.wasm": b"\0asm\1\0\0\0",
    "jupyterlite_rayon/wasm/pool-st.wasm": b"\0asm\1\0\0\0",
    # every module of the JS host's graph: the wheel writer refuses a package without one
    **{f"jupyterlite_rayon/host/{name}": b"export {};\n" for name, _ in loader.module_graph()},
}


def lite(
    lite_dir: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `jupyter lite ARGS` in lite_dir; output (stdout+stderr) in .stdout."""
    proc = subprocess.run(
        [sys.executable, "-m", "jupyterlite_core", *args],
        cwd=lite_dir,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    proc.stdout += proc.stderr
    if check:
        assert proc.returncode == 0, proc.stdout[-4000:]
    return proc


def make_lite_dir(root: Path, rayon: dict[str, Any], **build: Any) -> Path:
    lite_dir = root / "lite"
    lite_dir.mkdir(parents=True)
    (lite_dir / "jupyter-lite.json").write_text(
        json.dumps(
            {
                "jupyter-lite-schema-version": 0,
                "jupyter-config-data": {
                    "litePluginSettings": {PYODIDE_PLUGIN: {"disablePyPIFallback": True}},
                },
            }
        )
    )
    (lite_dir / "jupyter_lite_config.json").write_text(
        json.dumps(
            {
                "LiteBuildConfig": {"output_dir": str(root / "site"), **build},
                "RayonAddon": rayon,
            }
        )
    )
    return lite_dir


def pyodide_settings(site: Path) -> dict[str, Any]:
    config = json.loads((site / "jupyter-lite.json").read_text())
    return config["jupyter-config-data"]["litePluginSettings"][PYODIDE_PLUGIN]


def stock_service_worker() -> str:
    """JupyterLite 0.8.6's own service-worker.js, from the app archive jupyterlite-core ships."""
    import jupyterlite_core

    archive = next(Path(jupyterlite_core.__file__).parent.glob("jupyterlite-app-*.tgz"))
    with tarfile.open(archive) as tf:
        member = tf.extractfile("package/service-worker.js")
        assert member is not None
        return member.read().decode()


def node_check(source: str, tmp_path: Path) -> None:
    path = tmp_path / "sw.js"
    path.write_text(source)
    subprocess.run(["node", "--check", str(path)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def fake_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small but valid jupyterlite_rayon wheel, for builds that test the site, not the wheel."""
    root = tmp_path_factory.mktemp("fakepkg")
    for name, data in RUNTIME.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return write_wheel(root / "jupyterlite_rayon", "0.0.1", root / "dist")


@pytest.fixture(scope="module")
def default_site(tmp_path_factory: pytest.TempPathFactory, fake_wheel: Path) -> Path:
    """A site built with the add-on's defaults (headers, preload) and a given wheel."""
    root = tmp_path_factory.mktemp("default")
    lite(make_lite_dir(root, {"wheel": str(fake_wheel)}), "build")
    return root


# -- the service worker patch ---------------------------------------------------------------


def test_service_worker_patch_adds_headers_to_every_response(tmp_path: Path) -> None:
    stock = stock_service_worker()
    patched = patch_service_worker(stock, isolation_headers("require-corp"))
    assert patched.count("respondWith(n.then(jrIsolate))") == 1
    for name, value in isolation_headers("require-corp").items():
        assert f'h.set("{name}","{value}")' in patched
    assert patched.startswith('"use strict";' + SW_MARKER)
    node_check(patched, tmp_path)
    # Patching twice changes nothing.
    assert patch_service_worker(patched, isolation_headers("require-corp")) == patched


@pytest.mark.parametrize(
    "source",
    [
        "self.addEventListener('fetch', e => e.respondWith(fetch(e.request)))",
        "n&&e.respondWith(n);m&&e.respondWith(m)",
        "",
    ],
)
def test_service_worker_patch_refuses_an_unknown_layout(source: str) -> None:
    with pytest.raises(ValueError, match="does not have the layout") as err:
        patch_service_worker(source, isolation_headers("require-corp"))
    assert "COOP/COEP headers instead" in str(err.value)


# -- the wheel ------------------------------------------------------------------------------


def test_written_wheel_is_valid_and_holds_the_runtime(tmp_path: Path) -> None:
    root = tmp_path / "src"
    for name, data in {
        **RUNTIME,
        "jupyterlite_rayon/__pycache__/x.cpython-311.pyc": b"junk",
        "jupyterlite_rayon/labextension/package.json": b"{}",
        "jupyterlite_rayon/kernels.py": b"X = 1\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    wheel = write_wheel(root / "jupyterlite_rayon", "1.2.3", tmp_path / "dist")
    assert wheel.name == "jupyterlite_rayon-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert set(RUNTIME) | {"jupyterlite_rayon/kernels.py"} <= names
        assert not any("__pycache__" in n or "labextension" in n for n in names)
        record = zf.read("jupyterlite_rayon-1.2.3.dist-info/RECORD").decode().splitlines()
        for line in record:
            name, digest, size = line.rsplit(",", 2)
            if name.endswith("RECORD"):
                continue
            data = zf.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == f"sha256={expected.decode()}" and int(size) == len(data), name
        assert len(record) == len(names)
        meta = zf.read("jupyterlite_rayon-1.2.3.dist-info/METADATA").decode()
        assert "Name: jupyterlite-rayon\n" in meta and "Version: 1.2.3\n" in meta
    # Byte-identical when written again: the site does not change between builds.
    again = write_wheel(root / "jupyterlite_rayon", "1.2.3", tmp_path / "dist2")
    assert again.read_bytes() == wheel.read_bytes()


def test_wheel_without_the_wasm_build_says_how_to_build_it(tmp_path: Path) -> None:
    pkg = tmp_path / "jupyterlite_rayon"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    with pytest.raises(RuntimeError, match="wasm/pool-mt.wasm.*kernels/build.py"):
        write_wheel(pkg, "1.0", tmp_path / "dist")


# -- host header files ----------------------------------------------------------------------


def test_vercel_config_keeps_other_settings_and_replaces_its_rule() -> None:
    old = {
        "cleanUrls": True,
        "headers": [
            {"source": "/(.*)", "headers": [{"key": "X-Old", "value": "1"}]},
            {"source": "/api", "headers": [{"key": "X-Api", "value": "2"}]},
        ],
    }
    new = vercel_config(old, isolation_headers("credentialless"))
    assert new["cleanUrls"] is True
    assert [r["source"] for r in new["headers"]] == ["/api", "/(.*)"]
    ours = new["headers"][-1]["headers"]
    assert {"key": "Cross-Origin-Embedder-Policy", "value": "credentialless"} in ours


@pytest.mark.parametrize(
    ("headers", "isolates"),
    [
        (
            {
                "Cross-Origin-Opener-Policy": "same-origin",
                "Cross-Origin-Embedder-Policy": "require-corp",
            },
            True,
        ),
        (
            {
                "cross-origin-opener-policy": "same-origin",
                "cross-origin-embedder-policy": "credentialless",
            },
            True,
        ),
        ({"Cross-Origin-Opener-Policy": "same-origin"}, False),
        (
            {
                "Cross-Origin-Opener-Policy": "same-origin-allow-popups",
                "Cross-Origin-Embedder-Policy": "require-corp",
            },
            False,
        ),
        (
            {
                "Cross-Origin-Opener-Policy": "same-origin",
                "Cross-Origin-Embedder-Policy": "unsafe-none",
            },
            False,
        ),
        ({}, False),
    ],
)
def test_headers_isolate(headers: dict[str, str], isolates: bool) -> None:
    assert headers_isolate(headers) is isolates


# -- jupyter lite build / check / status / serve --------------------------------------------


def test_build_puts_the_wheel_in_the_piplite_index(default_site: Path, fake_wheel: Path) -> None:
    site = default_site / "site"
    assert (site / "pypi" / fake_wheel.name).read_bytes() == fake_wheel.read_bytes()
    index = json.loads((site / "pypi" / "all.json").read_text())
    release = index["jupyterlite-rayon"]["releases"]["0.0.1"][0]
    assert release["filename"] == fake_wheel.name
    settings = pyodide_settings(site)
    assert any(u.startswith("./pypi/all.json?sha256=") for u in settings["pipliteUrls"])
    assert settings["disablePyPIFallback"] is True  # the user's settings are kept


def env_wheel(name: str) -> str:
    """The file name of the wheel the add-on writes from the build environment's ``name``."""
    dist = importlib.metadata.distribution(name)
    return f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-py3-none-any.whl"


def test_build_preloads_the_wheel(default_site: Path, fake_wheel: Path) -> None:
    packages = pyodide_settings(default_site / "site")["loadPyodideOptions"]["packages"]
    # comm and the widget's wheels (from the build environment) first, then jupyterlite-rayon.
    names = [env_wheel("comm"), env_wheel("ipywidgets"), env_wheel("jupyterlab_widgets")]
    assert packages == [f"../../../../pypi/{n}" for n in [*names, fake_wheel.name]]
    # The URL is relative to the kernel worker, which lives in the pyodide kernel's static dir.
    static = default_site / "site" / "extensions/@jupyterlite/pyodide-kernel-extension/static"
    assert list(static.glob("*.worker.*.js"))
    assert (static / packages[-1]).resolve() == (default_site / "site/pypi" / fake_wheel.name)
    for url, name in zip(packages, names, strict=False):
        assert (static / url).resolve() == (default_site / "site/pypi" / name)
    # piplite indexes them too, so `%pip install ipywidgets` is satisfied from the site.
    index = json.loads((default_site / "site/pypi/all.json").read_text())
    assert {"comm", "ipywidgets", "jupyterlab-widgets", "jupyterlite-rayon"} <= {
        k.replace("_", "-") for k in index
    }


def test_build_writes_header_files_for_hosts(default_site: Path) -> None:
    site = default_site / "site"
    assert (site / "_headers").read_text() == (
        "/*\n"
        "  Cross-Origin-Opener-Policy: same-origin\n"
        "  Cross-Origin-Embedder-Policy: require-corp\n"
        "  Cross-Origin-Resource-Policy: same-origin\n"
    )
    vercel = json.loads((site / "vercel.json").read_text())
    rule = vercel["headers"][0]
    assert rule["source"] == "/(.*)"
    assert {h["key"]: h["value"] for h in rule["headers"]} == isolation_headers("require-corp")
    # Without the option, JupyterLite's service worker is left as shipped.
    assert (site / "service-worker.js").read_text() == stock_service_worker()


def test_check_reports_how_each_host_gets_threads(default_site: Path) -> None:
    out = lite(default_site / "lite", "check").stdout
    assert "[rayon] threads on `jupyter lite serve`: yes" in out
    assert "[rayon] threads on Netlify / Cloudflare Pages: yes (_headers)" in out
    assert "[rayon] threads on Vercel: yes (vercel.json)" in out
    assert "[rayon] import without %pip: yes" in out
    # The fix is the one jupyterlite_rayon.isolation gives everywhere (kernel, front end).
    github = next(line.strip() for line in out.splitlines() if "(GitHub Pages)" in line)
    assert github == (
        "[rayon] threads on hosts without headers (GitHub Pages): no: "
        + isolation.fix_for_host("someone.github.io")
    )
    assert "RayonAddon.service_worker" in github and "--rayon-service-worker" in github


def test_check_says_the_cdn_site_needs_the_internet(default_site: Path) -> None:
    out = lite(default_site / "lite", "check").stdout
    assert f"[rayon] Pyodide: CDN ({CDN_PYODIDE_URL})" in out
    assert (
        "[rayon] start-up wheels micropip, ipython, jedi and their dependencies: CDN "
        "(pyodide-lock.json at https://cdn.jsdelivr.net/pyodide/v314.0.6/full/)"
    ) in out
    assert f"[rayon] start-up wheel comm: site (preloaded from pypi/{env_wheel('comm')})" in out
    assert (
        f"[rayon] widget wheel ipywidgets: site (preloaded from pypi/{env_wheel('ipywidgets')})"
    ) in out
    assert "[rayon] start-up wheel ipykernel: site (ipykernel-" in out
    warning = next(x.strip() for x in out.splitlines() if "needs the internet" in x)
    assert warning.startswith("[rayon] WARNING the site needs the internet when the kernel starts")
    assert "Pyodide from CDN" in warning and "--rayon-self-contained" in warning
    assert "RayonAddon.pyodide_dir" in warning
    assert "comm from" not in warning  # comm is the site's
    assert "[rayon] widget front end: site (extensions/@jupyter-widgets/jupyterlab-manager)" in out


def test_check_fails_a_self_contained_site_that_needs_the_internet(default_site: Path) -> None:
    from jupyterlite_core.manager import LiteManager
    from traitlets.config import Config

    site = default_site / "site"
    report = RayonReportAddon(LiteManager(lite_dir=default_site / "lite", output_dir=site))
    assert report.site_report()[1] == []  # a CDN site is fine when self_contained is off
    manager = LiteManager(
        lite_dir=default_site / "lite",
        output_dir=site,
        config=Config({"RayonAddon": {"self_contained": True}}),
    )
    problems = RayonReportAddon(manager).site_report()[1]
    assert len(problems) == 1, problems
    assert problems[0].startswith("RayonAddon.self_contained is on but the kernel loads Pyodide")


def test_origins_of_a_site_without_comm(tmp_path: Path) -> None:
    """comm neither preloaded nor indexed: PyPI at start, or (fallback off) no kernel at all."""
    by_what = {o.what: o for o in site_origins(tmp_path, {})}
    assert by_what["start-up wheel comm"].source == PYPI
    assert by_what["start-up wheel comm"].needs_internet
    assert not by_what["widget wheel ipywidgets"].needs_internet  # only on %pip install
    off = {o.what: o for o in site_origins(tmp_path, {"disablePyPIFallback": True})}
    assert off["start-up wheel comm"].source == MISSING
    assert "the kernel cannot start" in off["start-up wheel comm"].detail
    # A preload URL whose file is not in the site is as bad.
    settings = {"loadPyodideOptions": {"packages": ["../../../../pypi/comm-1.0-py3-none-any.whl"]}}
    gone = {o.what: o for o in site_origins(tmp_path, settings)}["start-up wheel comm"]
    assert gone.source == MISSING and "is not in the site" in gone.detail


def test_status_lists_the_isolation_headers(default_site: Path) -> None:
    out = lite(default_site / "lite", "status").stdout
    assert "Cross-Origin-Opener-Policy: same-origin" in out
    assert "Cross-Origin-Embedder-Policy: require-corp" in out
    assert "service worker patch: False" in out
    assert "self-contained: False" in out and "widgets: True" in out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_sends_the_isolation_headers(default_site: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlite_core", "serve", "--port", str(port)],
        cwd=default_site / "lite",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab/index.html") as resp:
                    headers = dict(resp.headers)
                break
            except OSError:
                assert proc.poll() is None, "jupyter lite serve exited"
                assert time.monotonic() < deadline, "jupyter lite serve did not answer"
                time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert headers["Cross-Origin-Resource-Policy"] == "same-origin"


def test_build_with_service_worker_option(tmp_path: Path, fake_wheel: Path) -> None:
    lite_dir = make_lite_dir(tmp_path, {"wheel": str(fake_wheel)})
    built = lite(
        lite_dir,
        "build",
        "--rayon-service-worker",
        "--rayon-coep",
        "credentialless",
        "--rayon-no-preload",
        "--rayon-no-widgets",
    ).stdout
    # Every add-on takes the whole RayonAddon section without a warning about the others' options.
    assert "not recognized" not in built
    site = tmp_path / "site"
    sw = (site / "service-worker.js").read_text()
    assert SW_MARKER in sw and 'h.set("Cross-Origin-Embedder-Policy","credentialless")' in sw
    node_check(sw, tmp_path)
    assert "Cross-Origin-Embedder-Policy: credentialless" in (site / "_headers").read_text()
    # Only comm is preloaded: neither jupyterlite-rayon nor the widget's wheels.
    packages = pyodide_settings(site)["loadPyodideOptions"]["packages"]
    assert packages == [f"../../../../pypi/{env_wheel('comm')}"]
    assert not list((site / "pypi").glob("ipywidgets-*"))
    out = lite(
        lite_dir, "check", "--rayon-service-worker", "--rayon-no-preload", "--rayon-no-widgets"
    ).stdout
    assert "(GitHub Pages): yes, after one automatic reload" in out
    assert "import without %pip: no" in out
    assert (
        "[rayon] widget wheel ipywidgets: missing (not in the site and disablePyPIFallback: "
        "`%pip install` cannot find it)"
    ) in out


def test_build_without_headers_option_says_threads_are_off(
    tmp_path: Path, fake_wheel: Path
) -> None:
    lite_dir = make_lite_dir(tmp_path, {"wheel": str(fake_wheel), "isolation_headers": False})
    out = lite(lite_dir, "check").stdout
    assert not (tmp_path / "site" / "_headers").exists()
    assert "threads on `jupyter lite serve`: no: LiteBuildConfig.extra_http_headers lacks" in out
    assert f"extra_http_headers lacks {isolation.HEADERS}" in out
    assert "threads on Vercel: no" in out
    for line, host in [
        ("threads on Netlify / Cloudflare Pages: no", "site.netlify.app"),
        ("threads on Vercel: no", "site.vercel.app"),
    ]:
        found = next(x for x in out.splitlines() if line in x)
        assert "RayonAddon.isolation_headers on" in found
        assert found.endswith(isolation.fix_for_host(host)), found


def test_build_with_a_bad_coep_fails_clearly(tmp_path: Path, fake_wheel: Path) -> None:
    lite_dir = make_lite_dir(tmp_path, {"wheel": str(fake_wheel)})
    proc = lite(lite_dir, "build", "--rayon-coep", "same-origin", check=False)
    assert proc.returncode != 0
    assert (
        "RayonAddon.coep must be one of require-corp, credentialless, not 'same-origin'"
        in proc.stdout
    )


@pytest.mark.parametrize(
    ("wheel", "message"),
    [
        ("missing/jupyterlite_rayon-1.0-py3-none-any.whl", "does not exist"),
        ("other-1.0-py3-none-any.whl", "is not a jupyterlite_rayon-"),
    ],
)
def test_build_with_a_bad_wheel_fails_clearly(tmp_path: Path, wheel: str, message: str) -> None:
    lite_dir = make_lite_dir(tmp_path, {"wheel": wheel})
    (lite_dir / "other-1.0-py3-none-any.whl").write_bytes(b"not a wheel")
    proc = lite(lite_dir, "build", check=False)
    assert proc.returncode != 0
    assert "RayonAddon.wheel" in proc.stdout and message in proc.stdout


def test_a_second_rayon_wheel_in_the_site_fails_clearly(tmp_path: Path, fake_wheel: Path) -> None:
    lite_dir = make_lite_dir(tmp_path, {"wheel": str(fake_wheel)})
    (lite_dir / "pypi").mkdir()
    fake_root = fake_wheel.parent.parent / "jupyterlite_rayon"
    write_wheel(fake_root, "0.0.2", lite_dir / "pypi")  # piplite copies it to the site
    proc = lite(lite_dir, "build", check=False)
    assert proc.returncode != 0
    assert "expected one jupyterlite_rayon wheel" in proc.stdout
    assert "jupyterlite_rayon-0.0.2-py3-none-any.whl" in proc.stdout


def test_build_writes_the_wheel_from_the_installed_package(tmp_path: Path) -> None:
    """No wheel given: the site's wheel is the installed package (editable installs too)."""
    package = package_dir()
    lite(make_lite_dir(tmp_path, {}), "build")
    wheels = list((tmp_path / "site" / "pypi").glob("jupyterlite_rayon-*-py3-none-any.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as zf:
        names = set(zf.namelist())
    expected = {
        f"jupyterlite_rayon/{p.relative_to(package).as_posix()}" for p in package_files(package)
    }
    assert expected <= names
    assert {
        "jupyterlite_rayon/wasm/pool-mt.wasm",
        "jupyterlite_rayon/wasm/pool-st.wasm",
        "jupyterlite_rayon/host/index.mjs",
        "jupyterlite_rayon/host/pool.mjs",
        "jupyterlite_rayon/__init__.py",
        "jupyterlite_rayon/lite/wheel.py",
    } <= names


def manager_for(tmp_path: Path, **config: Any) -> Any:
    from jupyterlite_core.manager import LiteManager

    return LiteManager(lite_dir=tmp_path, output_dir=tmp_path / "site", **config)


def test_addon_adds_headers_for_serve_but_user_headers_win(tmp_path: Path) -> None:
    manager = manager_for(
        tmp_path,
        extra_http_headers={"Cross-Origin-Embedder-Policy": "credentialless", "X-Mine": "1"},
    )
    RayonHeadersAddon(manager)
    assert manager.extra_http_headers == {
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Embedder-Policy": "credentialless",
        "Cross-Origin-Resource-Policy": "same-origin",
        "X-Mine": "1",
    }


def test_status_warns_when_tornado_is_missing(tmp_path: Path) -> None:
    manager = manager_for(tmp_path)
    RayonHeadersAddon(manager)  # adds the serve headers the report reads
    rayon = RayonReportAddon(manager)
    assert rayon.serve_line(has_tornado=True) == (
        "threads on `jupyter lite serve`: yes (COOP/COEP headers)"
    )
    warning = rayon.serve_line(has_tornado=False)
    assert warning.startswith("WARNING") and "pip install jupyter_server" in warning
    assert warning.endswith(isolation.fix_for_host("localhost"))


def test_examples_site_builds_for_every_host(tmp_path: Path) -> None:
    """examples/ as a user would build it: CDN Pyodide, the service worker patched."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    lite_dir = tmp_path / "examples"
    shutil.copytree(examples, lite_dir)
    out = lite(lite_dir, "check", "--output-dir", str(tmp_path / "site")).stdout
    assert "(GitHub Pages): yes, after one automatic reload" in out
    assert "import without %pip: yes" in out
    assert "[rayon] WARNING the site needs the internet when the kernel starts" in out
    files = tmp_path / "site" / "files"
    assert sorted(p.name for p in files.glob("*.ipynb")) == sorted(
        p.name for p in (examples / "notebooks").glob("*.ipynb")
    )


# -- self-contained sites: Pyodide and every start-up wheel served by the site ---------------

# A pyodide-lock.json as small as the kernel's start allows: LOCK_ROOTS and two dependencies,
# plus a compiled package the kernel does not load at start (it is never copied or asked for).
LOCK_WHEELS = {
    "micropip": ("0.11.1", []),
    "ipython": ("9.12.0", ["traitlets"]),
    "traitlets": ("5.14.3", []),
    "jedi": ("0.19.2", ["parso"]),
    "parso": ("0.8.6", []),
}
PYODIDE_RUNTIME = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip")


def fake_lock_wheel(name: str, version: str, dest: Path) -> Path:
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    return pack_wheel(dest, name, version, [(f"{name}/__init__.py", b"")], meta, "test")


def fake_pyodide(root: Path) -> tuple[Path, Path]:
    """A Pyodide folder as npm ships it (no wheels) and a folder with the lock's wheels.

    traitlets' sha256 in the lock is Pyodide's build, not the file's (as for PyPI's wheels).
    """
    pyodide, wheels = root / "pyodide", root / "wheels"
    pyodide.mkdir()
    for name in PYODIDE_RUNTIME:
        (pyodide / name).write_bytes(b"// fake " + name.encode())
    packages: dict[str, Any] = {}
    for name, (version, depends) in LOCK_WHEELS.items():
        wheel = fake_lock_wheel(name, version, wheels)
        sha = "0" * 64 if name == "traitlets" else hashlib.sha256(wheel.read_bytes()).hexdigest()
        packages[name] = {
            "name": name,
            "version": version,
            "file_name": wheel.name,
            "depends": depends,
            "sha256": sha,
        }
    packages["numpy"] = {
        "name": "numpy",
        "version": "2.4.6",
        "file_name": "numpy-2.4.6-cp314-cp314-pyemscripten_2026_0_wasm32.whl",
        "depends": [],
        "sha256": "1" * 64,
    }
    (pyodide / "pyodide-lock.json").write_text(json.dumps({"info": {}, "packages": packages}))
    return pyodide, wheels


def site_lock(site: Path) -> dict[str, Any]:
    return json.loads((site / "static/pyodide/pyodide-lock.json").read_text())["packages"]


@pytest.fixture(scope="module")
def self_contained_site(tmp_path_factory: pytest.TempPathFactory, fake_wheel: Path) -> Path:
    """Built with the flags: Pyodide from a folder, the lock's wheels and a comm from another."""
    root = tmp_path_factory.mktemp("self-contained")
    wheels = fake_pyodide(root)[1]
    fake_lock_wheel("comm", "0.0.9", wheels)  # wheels_dir wins over the build environment
    lite(make_lite_dir(root, {"wheel": str(fake_wheel)}), "build", *self_contained_flags(root))
    return root


def self_contained_flags(root: Path) -> list[str]:
    """The flags self_contained_site is built with (check builds again: it needs them too)."""
    return [
        "--rayon-self-contained",
        "--rayon-pyodide-dir",
        str(root / "pyodide"),
        "--rayon-wheels-dir",
        str(root / "wheels"),
    ]


def test_self_contained_site_serves_pyodide_and_the_lock_wheels(
    self_contained_site: Path,
) -> None:
    site = self_contained_site / "site"
    assert pyodide_settings(site)["pyodideUrl"] == "./static/pyodide/pyodide.mjs"
    served = site / "static/pyodide"
    for name in PYODIDE_RUNTIME:
        assert (served / name).is_file(), name
    lock = site_lock(site)
    assert lock_closure(lock, LOCK_ROOTS) == sorted(LOCK_WHEELS)
    for name in LOCK_WHEELS:
        path = served / lock[name]["file_name"]
        # Each file the kernel asks for is there, with the sha256 Pyodide checks it against.
        assert hashlib.sha256(path.read_bytes()).hexdigest() == lock[name]["sha256"], name
    assert not list(served.glob("numpy-*"))
    # The user's Pyodide folder is left as it was.
    source = json.loads((self_contained_site / "pyodide/pyodide-lock.json").read_text())
    assert source["packages"]["traitlets"]["sha256"] == "0" * 64
    assert not list((self_contained_site / "pyodide").glob("*.whl"))


def test_self_contained_site_preloads_comm_from_the_wheels_dir(
    self_contained_site: Path, fake_wheel: Path
) -> None:
    site = self_contained_site / "site"
    assert [p.name for p in (site / "pypi").glob("comm-*.whl")] == ["comm-0.0.9-py3-none-any.whl"]
    packages = pyodide_settings(site)["loadPyodideOptions"]["packages"]
    assert packages[0] == "../../../../pypi/comm-0.0.9-py3-none-any.whl"
    assert packages[-1] == f"../../../../pypi/{fake_wheel.name}"


def test_check_says_the_self_contained_site_needs_no_internet(self_contained_site: Path) -> None:
    out = lite(
        self_contained_site / "lite", "check", *self_contained_flags(self_contained_site)
    ).stdout
    assert "[rayon] Pyodide: site (static/pyodide/pyodide.mjs)" in out
    for name, (version, _) in LOCK_WHEELS.items():
        line = f"[rayon] start-up wheel {name} {version}: site (static/pyodide/{name}-{version}"
        assert line in out, name
    assert (
        "[rayon] start-up wheel comm: site (preloaded from pypi/comm-0.0.9-py3-none-any.whl)" in out
    )
    assert "[rayon] internet when the kernel starts: not needed" in out
    assert "needs the internet" not in out
    origins = site_origins(
        self_contained_site / "site", pyodide_settings(self_contained_site / "site")
    )
    assert all(o.source == SITE for o in origins), [o for o in origins if o.source != SITE]


def test_self_contained_site_from_jupyterlites_own_pyodide(
    tmp_path: Path, fake_wheel: Path
) -> None:
    """Pyodide where jupyterlite-pyodide-kernel's add-on looks (lite_dir/static/pyodide)."""
    pyodide, wheels = fake_pyodide(tmp_path)
    lite_dir = make_lite_dir(
        tmp_path, {"wheel": str(fake_wheel), "self_contained": True, "wheels_dir": str(wheels)}
    )
    shutil.copytree(pyodide, lite_dir / "static" / "pyodide")
    lite(lite_dir, "build")
    site = tmp_path / "site"
    assert pyodide_settings(site)["pyodideUrl"] == "./static/pyodide/pyodide.mjs"
    lock = site_lock(site)
    for name in LOCK_WHEELS:
        assert (site / "static/pyodide" / lock[name]["file_name"]).is_file(), name
    # Both Pyodide sources at once are refused.
    proc = lite(lite_dir, "build", "--rayon-pyodide-dir", str(pyodide), check=False)
    assert proc.returncode != 0 and "two Pyodide distributions" in proc.stdout


def test_self_contained_without_a_pyodide_says_where_to_get_one(
    tmp_path: Path, fake_wheel: Path
) -> None:
    lite_dir = make_lite_dir(tmp_path, {"wheel": str(fake_wheel)})
    proc = lite(lite_dir, "build", "--rayon-self-contained", check=False)
    assert proc.returncode != 0
    assert "RayonAddon.self_contained needs a Pyodide to serve" in proc.stdout
    assert "npm pack pyodide@314.0.6" in proc.stdout and "--pyodide" in proc.stdout
    (tmp_path / "empty").mkdir()
    proc = lite(lite_dir, "build", "--rayon-pyodide-dir", str(tmp_path / "empty"), check=False)
    assert proc.returncode != 0
    assert "is not a Pyodide distribution (no pyodide.mjs, pyodide-lock.json" in proc.stdout


def test_a_missing_lock_wheel_fails_the_build_and_says_how_to_get_it(
    tmp_path: Path, fake_wheel: Path
) -> None:
    pyodide, wheels = fake_pyodide(tmp_path)
    found_links = tmp_path / "links"
    found_links.mkdir()
    for path in wheels.glob("jedi-*.whl"):
        path.rename(found_links / path.name)
    rayon = {
        "wheel": str(fake_wheel),
        "self_contained": True,
        "pyodide_dir": str(pyodide),
        "wheels_dir": str(wheels),
    }
    lite_dir = make_lite_dir(tmp_path, rayon)
    proc = lite(lite_dir, "build", check=False)
    assert proc.returncode != 0
    assert "the kernel loads jedi==0.19.2 from pyodide-lock.json at start" in proc.stdout
    assert "pip download --no-deps --only-binary=:all: --python-version 3.14" in proc.stdout
    assert "--rayon-download" in proc.stdout
    # With --rayon-download pip fetches it (here from a local folder: pip's own settings).
    pip_env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(found_links)}
    lite(lite_dir, "build", "--rayon-download", env=pip_env)
    lock = site_lock(tmp_path / "site")
    fetched = tmp_path / "site/static/pyodide" / lock["jedi"]["file_name"]
    assert hashlib.sha256(fetched.read_bytes()).hexdigest() == lock["jedi"]["sha256"]


def test_a_startup_wheel_no_folder_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Not packable from the environment: pip (when allowed), else a failure (self-contained)
    or a warning that says what the kernel will do instead."""
    from traitlets.config import Config

    links = tmp_path / "links"
    fake_lock_wheel("wasmtime", "0.0.1", links)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    fetching = RayonWheelAddon(
        manager_for(tmp_path, config=Config({"RayonAddon": {"download": True}}))
    )
    fetching._write_installed("wasmtime")  # compiled where we build: fetched instead
    assert [p.name for p in fetching.output_wheels.iterdir()] == ["wasmtime-0.0.1-py3-none-any.whl"]
    strict = RayonWheelAddon(
        manager_for(tmp_path, config=Config({"RayonAddon": {"self_contained": True}}))
    )
    with pytest.raises(FileNotFoundError, match="RayonAddon.self_contained: no wasmtime wheel"):
        strict._write_installed("wasmtime")
    RayonWheelAddon(manager_for(tmp_path))._report_missing_startup_wheel("comm")
    assert "the kernel fetches comm from PyPI when it starts" in caplog.text
    assert "pip download --no-deps" in caplog.text and "--rayon-download" in caplog.text


# -- wheels of the build environment's distributions ------------------------------------------


def test_wheel_from_an_installed_distribution_is_valid(tmp_path: Path) -> None:
    wheel = wheel_from_installed("comm", tmp_path)
    assert wheel.name == env_wheel("comm")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "comm/__init__.py" in names
        assert not any(n.endswith(".pyc") or n.startswith("..") for n in names)
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        record = zf.read(f"{dist_info}/RECORD").decode().splitlines()
        assert len(record) == len(names)
        for line in record:
            name, digest, size = line.rsplit(",", 2)
            if name.endswith("RECORD"):
                continue
            data = zf.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == f"sha256={expected.decode()}" and int(size) == len(data), name
        assert "Tag: py3-none-any" in zf.read(f"{dist_info}/WHEEL").decode()
        installed = Path(str(importlib.metadata.distribution("comm").locate_file("comm")))
        assert zf.read("comm/__init__.py") == (installed / "__init__.py").read_bytes()
    assert wheel_from_installed("comm", tmp_path / "again").read_bytes() == wheel.read_bytes()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("wasmtime", "has compiled code"),
        ("jupyterlite-rayon", "editable"),
        ("no-such-dist-jr", "is not installed"),
    ],
)
def test_wheel_from_installed_refuses_what_pyodide_cannot_load(
    tmp_path: Path, name: str, message: str
) -> None:
    with pytest.raises(NotPackable, match=message):
        wheel_from_installed(name, tmp_path)


# -- the layout: one add-on per concern, one config section -------------------------------

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "jupyterlite_rayon"
CONCERNS = {
    "jupyterlite-rayon-wheel": RayonWheelAddon,
    "jupyterlite-rayon-headers": RayonHeadersAddon,
    "jupyterlite-rayon-service-worker": RayonServiceWorkerAddon,
    "jupyterlite-rayon-report": RayonReportAddon,
}


def test_one_addon_per_concern_on_the_entry_point() -> None:
    from jupyterlite_core.addons import get_addon_implementations

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert declared["jupyterlite.addon.v0"] == {
        name: f"{cls.__module__}:{cls.__name__}" for name, cls in CONCERNS.items()
    }
    # What jupyterlite finds is what pyproject declares (else: `pip install -e .` again).
    found = {
        name: cls
        for name, cls in get_addon_implementations().items()
        if cls.__module__.startswith("jupyterlite_rayon.")
    }
    assert found == CONCERNS
    for cls in CONCERNS.values():
        assert issubclass(cls, RayonAddon) and cls.__all__, cls
    # The shared base has no hooks, aliases or flags: the add-ons would inherit and repeat them.
    assert "__all__" not in RayonAddon.__dict__
    assert not hasattr(RayonAddon, "aliases") and not hasattr(RayonAddon, "flags")


def test_the_rayon_addon_section_configures_every_addon(tmp_path: Path) -> None:
    from traitlets.config import Config

    options = {
        "wheel": "w.whl",
        "preload": False,
        "coep": "credentialless",
        "isolation_headers": False,
        "service_worker": True,
        "self_contained": True,
        "pyodide_dir": "pyodide",
        "wheels_dir": "wheels",
        "download": True,
        "widgets": False,
    }
    manager = manager_for(tmp_path, config=Config({"RayonAddon": options}))
    for cls in CONCERNS.values():
        addon = cls(manager)
        assert {name: getattr(addon, name) for name in options} == options, cls
    assert RayonAddon.class_traits()["coep"].default_value == COEP_VALUES[0]


def test_help_lists_the_rayon_options(tmp_path: Path) -> None:
    out = lite(tmp_path, "build", "--help-all").stdout
    for flag in (
        "--rayon-wheel",
        "--rayon-coep",
        "--rayon-service-worker",
        "--rayon-no-preload",
        "--rayon-self-contained",
        "--rayon-pyodide-dir",
        "--rayon-wheels-dir",
        "--rayon-download",
        "--rayon-no-widgets",
    ):
        assert flag in out, flag
    for option in ("wheel", "coep", "pyodide_dir", "wheels_dir"):
        assert f"Equivalent to: [--RayonAddon.{option}]" in out, option
    assert "Equivalent to: [--RayonAddon.self_contained=True]" in out


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports (also inside functions), absolute names."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name == "__init__.py":
        package += ".__init__"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level)[0] + "." if node.level else ""
            names.add(base + (node.module or ""))
    return names


def test_only_the_lite_package_imports_jupyterlite_core() -> None:
    build_only = (
        "jupyterlite_core",
        "jupyterlite_pyodide_kernel",
        "doit",
        "jupyterlite_rayon.lite",
    )
    lite_dir = PACKAGE / "lite"
    runtime = [p for p in PACKAGE.rglob("*.py") if lite_dir not in p.parents]
    assert len(runtime) > 5
    for path in runtime:
        bad = {m for m in imported_modules(path) if m.startswith(build_only)}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
    assert any("jupyterlite_core" in m for p in lite_dir.glob("*.py") for m in imported_modules(p))
    # And the runtime really runs without it: importing the package loads none of it.
    code = (
        "import sys, jupyterlite_rayon; "
        "print(sorted(m for m in sys.modules if m.startswith(('jupyterlite_core', "
        "'jupyterlite_rayon.lite', 'doit'))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert proc.stdout.strip() == "[]", proc.stdout


def test_the_header_names_are_written_once() -> None:
    """COOP/COEP/CORP are spelled in lite/headers.py; the service worker and serve.py reuse it."""
    sources = [*(PACKAGE / "lite").glob("*.py"), ROOT / "scripts" / "serve.py"]
    for path in sources:
        literals = [
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        ]
        spelled = [v for v in literals if "Cross-Origin-" in v]
        if path.name == "headers.py":
            assert spelled == [COOP, COEP, CORP]
        else:
            assert not spelled, f"{path.relative_to(ROOT)} spells {spelled}"
