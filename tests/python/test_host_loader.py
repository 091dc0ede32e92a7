"""The Blob URL loader of the JS host: the module graph, the rewriting, and the refusals.

The rewritten graph is run in Node from data: URLs (like Blob URLs, they have no base to resolve
'./x.mjs' against) and from renamed files, to prove the graph loads and createPool works.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from jupyterlite_rayon.host import loader
from jupyterlite_rayon.host.loader import ModuleGraphError

WASM = Path(loader.HOST_DIR).parent / "wasm" / "pool-mt.wasm"
NODE = shutil.which("node")


def node() -> str:
    assert NODE, "these tests run the host in Node: install Node.js 20 or newer"
    return NODE


def test_graph_lists_every_host_module_after_its_imports() -> None:
    graph = loader.module_graph()
    names = [name for name, _ in graph]
    assert names[-1] == loader.ENTRY
    assert len(names) == len(set(names))
    for position, (name, source) in enumerate(graph):
        for dependency in loader.imports(source, name):
            assert names.index(dependency) < position, f"{name} before its import {dependency}"
    # Every module in the folder is reachable from the entry, except the old single-file name,
    # which only re-exports the entry for Node users.
    on_disk = {p.name for p in loader.HOST_DIR.glob("*.mjs")}
    assert set(names) == on_disk - {"pool_host.mjs"}
    assert dict(graph)["abi.mjs"] == (loader.HOST_DIR / "abi.mjs").read_text()


def test_imports_finds_the_static_forms_in_order() -> None:
    source = (
        "import { a, b } from './one.mjs';\n"
        'import * as ns from "./two.mjs";\n'
        "import {\n  c,\n  d,\n} from './three.mjs';\n"
        "import './four.mjs';\n"
        "export { e } from './one.mjs';\n"
        "export * from './five.mjs';\n"
        "export * as six from './six.mjs';\n"
        "export { local };\n"
        "export const x = 'from ./not-an-import.mjs';\n"
        "// import { nothing } from './comment.mjs' is prose\n"
        "const os = await import('node:os');\n"
    )
    assert loader.imports(source) == [
        "one.mjs",
        "two.mjs",
        "three.mjs",
        "four.mjs",
        "five.mjs",
        "six.mjs",
    ]


def test_rewrite_replaces_each_specifier_and_nothing_else() -> None:
    source = (
        "import { a } from './one.mjs';\nexport { b } from \"./two.mjs\";\nconst s = './one.mjs';\n"
    )
    urls = {"one.mjs": "blob:null/1111", "two.mjs": "data:text/javascript;base64,QUJD"}
    out = loader.rewrite(source, urls)
    assert out == (
        'import { a } from "blob:null/1111";\n'
        'export { b } from "data:text/javascript;base64,QUJD";\n'
        "const s = './one.mjs';\n"
    )
    with pytest.raises(ModuleGraphError, match=r"'./two.mjs', which has no URL yet.*order"):
        loader.rewrite(source, {"one.mjs": "blob:x"}, "mod.mjs")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import fs from 'node:fs';\n", r"line 1 imports 'node:fs'.*sibling modules"),
        ("import { x } from '../up.mjs';\n", r"imports '../up.mjs'"),
        ("import { x } from './sub/x.mjs';\n", r"imports './sub/x.mjs'"),
        ("const m = await import('./x.mjs');\n", r"dynamic import of './x.mjs'"),
        ("const m = await import(name);\n", r"dynamic import of name"),
        ("const u = new URL('w.js', import.meta.url);\n", r"import\.meta"),
        ("import { a, // why\n  b } from './x.mjs';\n", r"line 1 has an import statement"),
        ("  import { a } from './x.mjs';\n", r"line 1 has an import statement"),
        ("export { a } from\n  // the module\n  './x.mjs';\n", r"line 1 has an export"),
    ],
)
def test_unsupported_forms_are_refused_with_the_line(source: str, message: str) -> None:
    with pytest.raises(ModuleGraphError, match=message):
        loader.imports(source, "bad.mjs")


def test_cycles_and_missing_modules_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.mjs").write_text("import { b } from './b.mjs';\nexport const a = 1;\n")
    (tmp_path / "b.mjs").write_text("import { a } from './a.mjs';\nexport const b = 2;\n")
    with pytest.raises(ModuleGraphError, match=r"import cycle a\.mjs -> b\.mjs -> a\.mjs"):
        loader.module_graph("a.mjs", tmp_path)
    (tmp_path / "c.mjs").write_text("export * from './gone.mjs';\n")
    with pytest.raises(ModuleGraphError, match=r"c\.mjs imports 'gone\.mjs', which is not a file"):
        loader.module_graph("c.mjs", tmp_path)


def test_link_makes_urls_dependencies_first() -> None:
    seen: list[str] = []

    def make(name: str, source: str) -> str:
        # Every import in what it is given already points at a URL made before.
        assert "'./" not in source and '"./' not in source, name
        seen.append(name)
        return f"blob:test/{len(seen)}"

    urls = loader.link(make)
    assert list(urls) == [name for name, _ in loader.module_graph()] == seen
    assert urls[loader.ENTRY] == f"blob:test/{len(seen)}"


# What the Node check runs: the host's API from the linked entry, a real pool, a kernel call,
# the counters decode and one failed status.
SCRIPT = """
const { readFileSync } = await import('node:fs');
const host = await import(readFileSync(process.argv[2], 'utf8'));
const pool = await host.createPool({ wasm: readFileSync(process.argv[3]), threads: 2 });
const out = pool.alloc(8);
pool.call('jr_bench_fib', 20, out);
const fib = Number(pool.view(BigInt64Array, out, 1)[0]);
const counters = host.readCounters(pool.memory.buffer, pool.counters);
let error = null;
try { pool.call('jr_reduce', 1, 0, out, 0, out); } catch (e) { error = e; }
pool.free(out);
await pool.terminate();
console.log(JSON.stringify({ api: Object.keys(host).sort(), fib, threads: counters.threads,
  calls: counters.calls, isPoolError: error instanceof host.PoolError, code: error.code,
  status: error.status, detail: error.detail, threading: host.detectThreading().ok }));
"""


def _run_host(entry_url: str, tmp_path: Path) -> dict[str, object]:
    script = tmp_path / "check.mjs"
    script.write_text(SCRIPT)
    # In a file: a data: URL of the whole graph is longer than one argument may be.
    url_file = tmp_path / "entry-url.txt"
    url_file.write_text(entry_url)
    result = subprocess.run(
        [node(), str(script), str(url_file), str(WASM)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def _check(result: dict[str, object]) -> None:
    assert result["api"] == sorted(
        [
            "createPool",
            "detectThreading",
            "readModuleInfo",
            "PoolError",
            "readCounters",
            "jitLoad",
            "jitCall",
            "loadForeign",
        ]
    )
    assert result["fib"] == 6765
    assert result["threads"] == 2
    assert result["calls"] == 1
    assert result["isPoolError"] is True
    assert (result["code"], result["status"]) == (-4, "E_EMPTY")
    assert result["detail"]
    assert result["threading"] is True


def test_the_linked_graph_runs_in_node_from_data_urls(tmp_path: Path) -> None:
    def data_url(name: str, source: str) -> str:
        return "data:text/javascript;base64," + base64.b64encode(source.encode()).decode()

    urls = loader.link(data_url)
    _check(_run_host(urls[loader.ENTRY], tmp_path))


def test_the_linked_graph_runs_from_renamed_files(tmp_path: Path) -> None:
    # Other names than the originals: only the rewritten specifiers can connect them.
    out = tmp_path / "blobs"
    out.mkdir()

    def file_url(name: str, source: str) -> str:
        path = out / f"m{len(list(out.iterdir()))}.js.mjs"
        path.write_text(source)
        return path.as_uri()

    urls = loader.link(file_url)
    assert not any((out / name).exists() for name in urls)
    _check(_run_host(urls[loader.ENTRY], tmp_path))
