"""`@jr.jit` in a real JupyterLite Pyodide kernel (Chromium), isolated (threads) and not (the
single-thread build): kernels defined in notebook cells, compiled in the kernel, run on the
pool's Web Workers, compared with .py_func in the same kernel; errors and the Interrupt button
leave the pool working. Fixtures kernel_coi / kernel_plain come from tests/browser/conftest.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

INTERRUPT_LANDS_WITHIN_S = 5.0

KERNELS = r'''
import array, json, math, time
import jupyterlite_rayon as jr

@jr.jit
def escape(out, x0, x1, y0, y1, max_iter):
    h, w = out.shape
    for j in jr.prange(h):
        cy = y0 + j * (y1 - y0) / h
        for i in range(w):
            cx = x0 + i * (x1 - x0) / w
            zr = zi = 0.0
            k = 0
            while k < max_iter and zr * zr + zi * zi <= 4.0:
                zr, zi = zr * zr - zi * zi + cx, 2.0 * zr * zi + cy
                k += 1
            out[j, i] = k

@jr.jit
def energy(x):
    s = 0.0
    for i in jr.prange(len(x)):
        s += x[i] * x[i]
    return s

@jr.jit
def floor_mod(x, out, d):
    for i in jr.prange(len(x)):
        out[i] = x[i] // d + x[i] % d

@jr.jit
def at(x, i):
    return x[i]

@jr.jit
def spin(n):
    k = 0
    while k < n:
        k += 1
    return k

class Grid:
    """A 2-D list indexed by [j, i], for .py_func (numpy is not in the offline site)."""
    def __init__(self, h, w):
        self.shape = (h, w)
        self.rows = [[0] * w for _ in range(h)]
    def __setitem__(self, key, value):
        self.rows[key[0]][key[1]] = value

def check_all(threads):
    jr.set_num_threads(threads)
    bad = []
    img = jr.zeros((45, 61), "uint32")
    escape(img, -2.0, 1.0, -1.2, 1.2, 150)
    ref = Grid(45, 61)
    escape.py_func(ref, -2.0, 1.0, -1.2, 1.2, 150)
    if img.tolist() != ref.rows:
        bad.append("escape")
    xs = array.array("d", [math.sin(i) for i in range(50_001)])
    got, want = energy(xs), energy.py_func(xs)
    if abs(got - want) > 1e-12 * want:
        bad.append(("energy", got, want))
    ints = array.array("q", range(-500, 500))
    out = array.array("q", [0] * 1000)
    floor_mod(ints, out, -7)
    ref_out = array.array("q", [0] * 1000)
    floor_mod.py_func(ints, ref_out, -7)
    if out != ref_out:
        bad.append("floor_mod")
    return bad, energy(xs).hex()
'''


def run(kernel: Any, code: str, timeout: float = 300) -> dict[str, Any]:
    r = kernel.execute(code, timeout=timeout)
    assert r["status"] == "ok", f"cell failed: {r.get('error')}\n{r.get('stderr')}\n{code}"
    return r


def last_json(r: dict[str, Any]) -> Any:
    lines = [line for line in r["stdout"].splitlines() if line.strip()]
    assert lines, f"no output: {r}"
    return json.loads(lines[-1])


def error_name(r: dict[str, Any]) -> str:
    err = r.get("error") or {}
    name = str(err.get("ename", "")) if isinstance(err, dict) else str(err)
    if name.startswith("<class '") and name.endswith("'>"):
        name = name[len("<class '") : -2]
    return name.rsplit(".", 1)[-1]


@pytest.fixture(scope="module")
def coi(kernel_coi: Any) -> Any:
    run(kernel_coi, KERNELS + "\nawait jr.init_thread_pool(2)\n")
    return kernel_coi


@pytest.fixture(scope="module")
def plain(kernel_plain: Any) -> Any:
    run(kernel_plain, KERNELS + "\nawait jr.init_thread_pool()\n")
    return kernel_plain


def test_jitted_kernels_match_py_func_on_threads(coi: Any) -> None:
    r = run(coi, "print(json.dumps([check_all(1), check_all(2), jr.pool_info()['build']]))")
    one, two, build = last_json(r)
    assert build == "mt"
    assert one[0] == [] and two[0] == []
    assert one[1] == two[1]  # the reduction is bit-identical at 1 and 2 threads
    r = run(
        coi,
        """
info = jr.pool_info()
print(json.dumps([escape.signatures != [], [t["tasks"] > 0 for t in info["per_thread"]]]))
""",
    )
    compiled, worked = last_json(r)
    assert compiled and worked == [True, True]  # both threads ran jitted chunks


def test_errors_and_the_interrupt_button_leave_the_pool_working(coi: Any) -> None:
    r = coi.execute("at(array.array('d', [1.0, 2.0]), 5)")
    assert r["status"] == "error" and error_name(r) == "IndexError", r
    run(coi, "print(spin(10))")  # compiled before the clock starts
    pending = coi.execute_async("print('spin starts', flush=True)\nspin(1 << 62)")
    coi.page.wait_for_function(
        """() => { const nb = window.__jrPanel.content;
          const cell = nb.widgets[nb.widgets.length - 1];
          return JSON.stringify(cell.model.outputs.toJSON()).includes('spin starts'); }""",
        polling=100,
        timeout=120_000,
    )
    time.sleep(0.5)
    sent = time.monotonic()
    coi.interrupt()
    r = pending.result(timeout=300)
    landed = time.monotonic() - sent
    assert r["status"] == "error" and error_name(r) == "KeyboardInterrupt", r
    assert landed < INTERRUPT_LANDS_WITHIN_S, f"the interrupt took {landed:.2f} s to land"
    r = run(coi, "print(json.dumps([spin(1000), check_all(2)[0]]))")
    assert last_json(r) == [1000, []]


def test_plain_site_runs_the_same_kernels_single_threaded(plain: Any, coi: Any) -> None:
    r = run(plain, "print(json.dumps([check_all(1), jr.pool_info()['build']]))")
    (bad, total), build = last_json(r)
    assert build == "st" and bad == []
    threaded = last_json(run(coi, "print(json.dumps(check_all(2)))"))
    assert total == threaded[1]  # the st build's reduction equals the threaded one's
