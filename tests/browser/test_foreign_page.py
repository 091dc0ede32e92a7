"""`jr.load_module` in a real JupyterLite page (Chromium, offline): a user's own wasi-threads
module, built from tests/fixtures/foreign_psum.zig as the CPython tests build it, runs on
browser workers with the same Python API as in CPython (backends/foreign_pyodide.py).

Isolated site: threads (parallel_sum on 2 threads equals the pure-Python sum), fd_write to the
cell, traps as WasmTrap, proc_exit as ProcExit (in the caller and in a helper), arrays in the
module's own memory, and a module loaded again after each fault. Plain site: the clear message
that a threaded module needs cross-origin isolation, with the fix for the page's host.
The module's bytes go into the kernel as base64 in a cell (no file system or fetch needed).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "foreign_psum.zig"


def _python_conftest() -> Any:
    """tests/python/conftest.py, for its ZIG_FLAGS (one place for how the fixture is built)."""
    spec = importlib.util.spec_from_file_location(
        "jr_python_conftest", ROOT / "tests" / "python" / "conftest.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fixture_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    flags = _python_conftest().ZIG_FLAGS
    key = hashlib.sha256(FIXTURE.read_bytes() + " ".join(flags).encode()).hexdigest()[:16]
    out = tmp_path_factory.mktemp("foreign") / f"foreign_psum-{key}.wasm"
    subprocess.run(
        [sys.executable, "-m", "ziglang", "build-exe", str(FIXTURE), *flags, f"-femit-bin={out}"],
        check=True,
        cwd=out.parent,
        timeout=300,
    )
    return out.read_bytes()


def run(kernel: Any, code: str, timeout: float = 120) -> dict[str, Any]:
    r: dict[str, Any] = kernel.execute(code, timeout=timeout)
    assert r["status"] == "ok", f"cell failed: {r.get('error')}\n{r.get('stderr')}\n{code[:300]}"
    return r


def fails(kernel: Any, code: str, timeout: float = 120) -> dict[str, Any]:
    r: dict[str, Any] = kernel.execute(code, timeout=timeout)
    assert r["status"] == "error", f"cell did not fail: {r}"
    return r["error"]  # type: ignore[no-any-return]


def last_json(r: dict[str, Any]) -> Any:
    lines = [line for line in r["stdout"].splitlines() if line.strip()]
    assert lines, f"no output: {r}"
    return json.loads(lines[-1])


def define_bytes(kernel: Any, wasm: bytes) -> None:
    encoded = base64.b64encode(wasm).decode("ascii")
    run(
        kernel,
        f"import base64, json, math, random, array\nimport jupyterlite_rayon as jr\n"
        f"WASM = base64.b64decode('{encoded}')\nprint(len(WASM))",
    )


@pytest.fixture(scope="module")
def coi(kernel_coi: Any, fixture_wasm: bytes) -> Any:
    assert kernel_coi.isolated
    define_bytes(kernel_coi, fixture_wasm)
    # Default helpers: one per core (navigator.hardwareConcurrency), at least 1 here.
    run(kernel_coi, "mod = await jr.load_module(WASM)\nprint(repr(mod))")
    return kernel_coi


def test_load_module_must_be_awaited_in_the_page(coi: Any) -> None:
    err = fails(coi, "pending = jr.load_module(WASM, threads=1)\npending.add_i64(1, 2)")
    assert err["ename"] == "ForeignModuleError"
    assert "await jupyterlite_rayon.load_module" in err["evalue"]


def test_exports_and_scalars(coi: Any) -> None:
    r = run(
        coi,
        "print(json.dumps([sorted(set(mod.exports) & {'parallel_sum', 'malloc', 'hello'}),"
        " mod.add_i64(2, 3), mod.add_i64(2**63 - 1, 1), 'wasi_thread_start' in mod.exports]))",
    )
    assert last_json(r) == [["hello", "malloc", "parallel_sum"], 5, -(2**63), False]


def test_parallel_sum_on_two_threads_equals_the_reference(coi: Any) -> None:
    r = run(
        coi,
        """
out = []
for n in (0, 1, 7, 1023, 4097, 65537):
    rnd = random.Random(n)
    values = array.array("d", (float(rnd.randrange(-1000, 1000)) for _ in range(n)))
    x = mod.asarray(values)
    out.append([mod.parallel_sum(x, n, t) == math.fsum(values) for t in (1, 2)])
    x.close()
print(json.dumps(out))
""",
    )
    assert last_json(r) == [[True, True]] * 6


def test_arrays_live_in_the_module_memory(coi: Any) -> None:
    r = run(
        coi,
        """
values = array.array("d", [0.5 * i for i in range(1001)])
x = mod.asarray(values)
out = mod.empty(len(values))
mod.scale(x, out, len(values), 4.0)
z = mod.zeros(17, "int32")
print(json.dumps([out.tolist() == [v * 4.0 for v in values], z.tolist() == [0] * 17,
                  mod.memory_bytes >= 1 << 20]))
""",
    )
    assert last_json(r) == [True, True, True]


def test_fd_write_goes_to_the_cell(coi: Any) -> None:
    r = run(coi, "mod.hello()")
    assert r["stdout"] == "hello from wasm\n"
    assert r["stderr"] == "a warning from wasm\n"


def test_a_trap_is_wasm_trap_and_a_new_load_works(coi: Any) -> None:
    run(coi, "boom = await jr.load_module(WASM, threads=1)")
    err = fails(coi, "boom.boom()")
    assert err["ename"] == "WasmTrap", err
    assert "boom trapped" in err["evalue"] and "load it again" in err["evalue"]
    err = fails(coi, "boom.add_i64(1, 2)")
    assert err["ename"] == "ForeignModuleError" and "load the module again" in err["evalue"]
    r = run(coi, "boom = await jr.load_module(WASM, threads=1)\nprint(boom.add_i64(1, 2))")
    assert last_json(r) == 3


def test_proc_exit_is_proc_exit_with_the_code(coi: Any) -> None:
    run(coi, "ex = await jr.load_module(WASM, threads=1)")
    err = fails(coi, "try:\n    ex.quit(3)\nexcept jr.ProcExit as e:\n    print(e.code)\n    raise")
    assert err["ename"] == "ProcExit" and "proc_exit(3)" in err["evalue"], err


def test_a_helper_fault_after_the_call_is_raised_by_the_next_call(coi: Any) -> None:
    run(coi, "late = await jr.load_module(WASM, threads=2)\nlate.trap_in_helper_later()")
    run(coi, "late.release_helper()\nimport time\ntime.sleep(0.3)")
    err = fails(coi, "late.add_i64(1, 2)")
    assert err["ename"] == "WasmTrap", err
    assert "a helper thread trapped" in err["evalue"]
    assert "add_i64 did not run" in err["evalue"] and "load it again" in err["evalue"]


def test_close_then_calls_say_closed(coi: Any) -> None:
    run(coi, "c = await jr.load_module(WASM, threads=1)\nc.close()")
    err = fails(coi, "c.add_i64(1, 2)")
    assert "closed" in err["evalue"]


def test_plain_page_says_a_threaded_module_needs_isolation(
    kernel_plain: Any, fixture_wasm: bytes
) -> None:
    assert not kernel_plain.isolated
    define_bytes(kernel_plain, fixture_wasm)
    err = fails(kernel_plain, "mod = await jr.load_module(WASM)")
    assert err["ename"] == "ForeignModuleError", err
    text = err["evalue"]
    assert "cross-origin isolated" in text and "To fix:" in text
    # 127.0.0.1 is `jupyter lite serve`'s host: the fix names its server option.
    assert "jupyter_server" in text, text
