"""Benchmark the pool inside a real JupyterLite Pyodide kernel in Chromium.

Measures, in one kernel of a cross-origin isolated site:
  - pool start time (`await init_thread_pool(2)`: host import, compile, workers up);
  - Python-to-pool call overhead (a kernel call on a 1-element resident array; issue 9's
    target is under 20 us);
  - mandelbrot and a sum reduction at 1 and 2 threads, against the same computation in pure
    Python in the same kernel;
  - @jr.jit: the Mandelbrot written in Python and compiled in the kernel, against the built-in
    jr.mandelbrot and its own .py_func, and an `energy` reduction against jr.dot.
Wall time is the best of --repeat runs. Browsers expose no CPU clock to the page, so every
measurement runs as its own cell and cpu/wall is read outside: the CPU time of the processes
this script started (Chromium's, whose renderer runs the pool's workers) over the cell's wall
time. The table also shows how the pool's tasks were split between its threads.

usage: python benchmarks/bench_browser.py [--site DIR | --url URL] [--repeat 3] [--quick]
  --site DIR  a built JupyterLite site (scripts/build_site.py); served here with COOP/COEP
  --url URL   an already served, cross-origin isolated site
  neither     builds the site into _work/bench-site with scripts/build_site.py first
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# Runs in the kernel first: imports, starts the pool, defines the steps (one cell).
KERNEL_CODE = r'''
import array, json, math, time
t0 = time.perf_counter()
import jupyterlite_rayon as jr
t_import = time.perf_counter() - t0
t0 = time.perf_counter()
await jr.init_thread_pool(2)
t_start = time.perf_counter() - t0
REPEAT, W, H, ITER, N = {repeat}, {width}, {height}, {max_iter}, {n}

def best(fn, repeat=REPEAT):
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return min(times)

def py_mandelbrot(width, height, x0=-2.0, x1=1.0, y0=-1.5, y1=1.5, max_iter=ITER):
    dx, dy = (x1 - x0) / width, (y1 - y0) / height
    total = 0
    for j in range(height):
        cy = y0 + j * dy
        for i in range(width):
            cx = x0 + i * dx
            zr = zi = 0.0
            k = 0
            while k < max_iter:
                zr2, zi2 = zr * zr, zi * zi
                if zr2 + zi2 > 4.0:
                    break
                zi = (2.0 * zr) * zi + cy
                zr = (zr2 - zi2) + cx
                k += 1
            total += k
    return total

def tasks_now():
    return [t["tasks"] for t in jr.pool_info()["per_thread"]]

def tasks_split(before):
    """Share of the tasks each thread ran since `before` (per-thread totals)."""
    now = tasks_now()
    per = [n - (before[i] if i < len(before) else 0) for i, n in enumerate(now)]
    total = sum(per) or 1
    return "/".join(f"{100 * t / total:.0f}%" for t in per)

rows = []
tiny = jr.asarray(array.array("d", [1.0]))
calls = 300
# Each step_* below runs as its own cell, so the driver can read the browser's CPU time
# around it (browsers expose no CPU clock to the page).

def step_overhead():
    global overhead, overhead_new, backend_quick, backend_handoff
    jr.sum(tiny)
    def many_calls():
        for _ in range(calls):
            jr.sum(tiny)
    overhead = best(many_calls, 5) / calls
    # A call that makes its output: sqrt of 8 resident elements, a new array each call.
    eight = jr.asarray(array.array("d", range(8)))
    def many_new():
        for _ in range(calls):
            jr.sqrt(eight)
    overhead_new = best(many_new, 5) / calls
    # The backend's share: a status call straight to the host (small inputs: `quick`), and
    # the same call with the interrupt buffer handed to the pool's poll (long calls).
    backend = jr.get_backend()
    scratch = jr.pool.scratch()
    def backend_calls(quick):
        for _ in range(calls):
            backend.call("jr_reduce", 0, 0, tiny.ptr, 1, scratch, quick=quick)
    backend_quick = best(lambda: backend_calls(True), 5) / calls
    backend_handoff = best(lambda: backend_calls(False), 5) / calls

def step_mandelbrot(threads):
    with jr.threadpool_limits(threads):
        jr.mandelbrot(W, H, max_iter=ITER)
        before = tasks_now()
        wall = best(lambda: jr.mandelbrot(W, H, max_iter=ITER))
        rows.append(["mandelbrot", f"pool, {threads} thread(s)", wall, tasks_split(before)])

# Pure Python on a coarse sampling of the same view (it is slow), scaled to the full image.
rows_py = max(1, H // 16)

def step_mandelbrot_py():
    t = time.perf_counter(); py_total = py_mandelbrot(W, rows_py); t_py = time.perf_counter() - t
    same = sum(map(sum, jr.mandelbrot(W, rows_py, max_iter=ITER).tolist())) == py_total
    rows.append(["mandelbrot", f"pure Python ({rows_py} of {H} rows, scaled)", t_py * H / rows_py,
                 "same counts" if same else "COUNTS DIFFER"])

# @jr.jit: the same Mandelbrot written as a user would, against the built-in and .py_func.
@jr.jit
def jit_escape(out, x0, x1, y0, y1, max_iter):
    h, w = out.shape
    dx, dy = (x1 - x0) / w, (y1 - y0) / h  # the built-in's formula, so pixels compare exactly
    for j in jr.prange(h):
        cy = y0 + j * dy
        for i in range(w):
            cx = x0 + i * dx
            zr = zi = 0.0
            k = 0
            while k < max_iter and zr * zr + zi * zi <= 4.0:
                zr, zi = zr * zr - zi * zi + cx, 2.0 * zr * zi + cy
                k += 1
            out[j, i] = k

@jr.jit
def jit_energy(x):
    s = 0.0
    for i in jr.prange(len(x)):
        s += x[i] * x[i]
    return s

view = (-2.0, 1.0, -1.5, 1.5, ITER)
img = jr.zeros((H, W), "uint32")

def step_jit(threads):
    with jr.threadpool_limits(threads):
        jit_escape(img, *view)
        before = tasks_now()
        wall = best(lambda: jit_escape(img, *view))
        builtin = next(r[2] for r in rows if r[:2] == ["mandelbrot", f"pool, {threads} thread(s)"])
        rows.append(["jit mandelbrot", f"@jr.jit, {threads} thread(s)", wall,
                     f"{tasks_split(before)}; {wall / builtin:.2f}x the built-in"])

class Grid:  # what .py_func writes into (no numpy in the kernel): out[j, i] = k on lists
    def __init__(self, h, w):
        self.shape, self.rows = (h, w), [[0] * w for _ in range(h)]
    def __setitem__(self, key, value):
        self.rows[key[0]][key[1]] = value

def step_jit_py():
    same = img.tolist() == jr.mandelbrot(W, H, max_iter=ITER).tolist()
    small = Grid(rows_py, W)
    t = time.perf_counter(); jit_escape.py_func(small, *view)  # coarse rows, as py_mandelbrot
    t_py = time.perf_counter() - t
    coarse = jr.zeros((rows_py, W), "uint32"); jit_escape(coarse, *view)
    same_py = coarse.tolist() == small.rows
    rows.append(["jit mandelbrot", f"pure Python .py_func ({rows_py} of {H} rows, scaled)",
                 t_py * H / rows_py, ("same pixels as jr.mandelbrot" if same else "PIXELS DIFFER")
                 + (" and .py_func" if same_py else "; .py_func DIFFERS")])

data = array.array("d", (float(i % 1000) for i in range(N)))
t = time.perf_counter(); resident = jr.asarray(data); t_copy = time.perf_counter() - t

def step_sum(threads):
    with jr.threadpool_limits(threads):
        jr.sum(resident)
        before = tasks_now()
        wall = best(lambda: jr.sum(resident))
        rows.append([f"sum of {N} float64", f"pool, {threads} thread(s), resident", wall,
                     tasks_split(before)])

def step_sum_copy():
    with jr.threadpool_limits(2):
        rows.append([f"sum of {N} float64", "pool, 2 threads, incl. copy in",
                     best(lambda: jr.sum(data)), ""])

def step_sum_py():
    rows.append([f"sum of {N} float64", "pure Python sum()", best(lambda: sum(data)), ""])

def step_energy(threads):
    with jr.threadpool_limits(threads):
        jit_energy(resident)
        before = tasks_now()
        wall = best(lambda: jit_energy(resident))
        dot = best(lambda: jr.dot(resident, resident))
        rows.append([f"energy of {N} float64", f"@jr.jit, {threads} thread(s)", wall,
                     f"{tasks_split(before)}; jr.dot {dot * 1e3:.1f} ms, {wall / dot:.2f}x it"])

def step_energy_py():
    rows.append([f"energy of {N} float64", "pure Python .py_func (1/16 of the data, scaled)",
                 16 * best(lambda: jit_energy.py_func(data[: N // 16]), 1), ""])

def step_fsum():
    rows.append([f"sum of {N} float64", "pure Python math.fsum()", best(lambda: math.fsum(data)),
                 ""])

def report():
    info = jr.pool_info()
    print(json.dumps({"import_s": t_import, "start_s": t_start, "overhead_s": overhead,
                      "overhead_new_s": overhead_new, "overhead_calls": calls, "backend_quick_s": backend_quick,
                      "backend_handoff_s": backend_handoff,
                      "copy_in_s": t_copy, "rows": rows, "build": info["build"],
                      "threads": info["threads"], "cores": jr.cpu_count()}))
'''

JS_START = """async () => {
  while (!window.jupyterapp) await new Promise((r) => setTimeout(r, 100));
  await window.jupyterapp.restored;
  const t0 = performance.now();
  const kernel = await window.jupyterapp.serviceManager.kernels.startNew({ name: 'python' });
  window.__benchKernel = kernel;
  while (kernel.connectionStatus !== 'connected') await new Promise((r) => setTimeout(r, 50));
  await kernel.requestKernelInfo();
  return (performance.now() - t0) / 1000;
}"""

JS_EXEC = """async (code) => {
  const out = [], err = [];
  const future = window.__benchKernel.requestExecute({ code });
  future.onIOPub = (m) => {
    if (m.header.msg_type === 'stream') (m.content.name === 'stderr' ? err : out).push(m.content.text);
    if (m.header.msg_type === 'error') err.push(m.content.ename + ': ' + m.content.evalue);
  };
  const reply = await future.done;
  return { status: reply.content.status, stdout: out.join(''), stderr: err.join('') };
}"""


def serve(site: Path) -> tuple[subprocess.Popen[str], str]:
    """scripts/serve.py with COOP/COEP on a free port; returns the process and its URL."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "serve.py"), str(site), "0", "--headers", "coi"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        proc.terminate()
        raise SystemExit(f"scripts/serve.py did not start: {line!r}")
    return proc, line.split()[1]


# The measuring cells, in order; each runs alone so its cpu/wall can be read (see tree_cpu).
STEPS = [
    "step_overhead()",
    "step_mandelbrot(1)",
    "step_mandelbrot(2)",
    "step_mandelbrot_py()",
    "step_jit(1)",
    "step_jit(2)",
    "step_jit_py()",
    "step_sum(1)",
    "step_sum(2)",
    "step_sum_copy()",
    "step_sum_py()",
    "step_energy(1)",
    "step_energy(2)",
    "step_energy_py()",
    "step_fsum()",
]


def tree_cpu() -> float:
    """CPU seconds of every process this one started (the server, Playwright's driver and
    Chromium with its renderer, whose threads run the pool's workers): the page has no CPU
    clock, so cpu/wall is read here around each cell."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        pid = int(entry)
        parent[pid] = int(fields[1])
        # utime, stime, and the children's that were waited for (they left the tree)
        cpu[pid] = sum(int(x) for x in fields[11:15]) / tick
    mine, total = {os.getpid()}, 0.0
    grew = True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                total += cpu[pid]
                grew = True
    return total


def measure(url: str, code: str, timeout: float) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    def run(page: Any, cell: str) -> str:
        r = page.evaluate(JS_EXEC, cell)
        if r["status"] != "ok":
            raise SystemExit(f"benchmark cell failed: {r['stderr']}\n{r['stdout']}")
        return str(r["stdout"])

    ratios: list[tuple[int, float]] = []  # (rows after the step, cpu/wall of the step)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            # Offline: nothing but the local server may be reached.
            context.route(
                "**/*",
                lambda r: (
                    r.continue_()
                    if r.request.url.startswith(("http://127.0.0.1", "blob:", "data:"))
                    else r.abort()
                ),
            )
            page = context.new_page()
            page.set_default_timeout(timeout * 1000)
            page.goto(url.rstrip("/") + "/lab/index.html")
            isolated = page.evaluate("crossOriginIsolated")
            kernel_s = page.evaluate(JS_START)
            run(page, code)
            for step in STEPS:
                c0, w0 = tree_cpu(), time.perf_counter()
                out = run(page, step + "\nprint(len(rows))")
                wall = time.perf_counter() - w0
                ratios.append((int(out.strip().splitlines()[-1]), (tree_cpu() - c0) / wall))
            report = run(page, "report()")
        finally:
            browser.close()
    result = json.loads(report.strip().splitlines()[-1])
    result.update(page_isolated=isolated, kernel_start_s=kernel_s)
    result["overhead_cpu"] = ratios[0][1]
    cpu_of_row: list[float] = []
    for count, ratio in ratios:
        cpu_of_row += [ratio] * (count - len(cpu_of_row))
    result["row_cpu"] = cpu_of_row
    return result


def print_table(m: dict[str, Any]) -> None:
    print(
        f"page crossOriginIsolated={m['page_isolated']}  build={m['build']}  "
        f"threads={m['threads']}  cores={m['cores']}  {m['date']}  load average "
        f"{m['load'][0]:.2f} before, {m['load'][1]:.2f} after"
    )
    print(
        f"kernel start {m['kernel_start_s']:.2f} s | import jupyterlite_rayon "
        f"{m['import_s'] * 1e3:.0f} ms | await init_thread_pool(2) {m['start_s'] * 1e3:.0f} ms"
        f" | copy in {m['copy_in_s'] * 1e3:.1f} ms"
    )
    print(
        f"call overhead (jr.sum of 1 resident float64, best of 5 x {m['overhead_calls']} calls):"
        f" {m['overhead_s'] * 1e6:.1f} us/call ({m['overhead_cpu']:.2f}), target < 20 us"
        f" ({'met' if m['overhead_s'] < 20e-6 else 'MISSED'}); of it the backend's call"
        f" {m['backend_quick_s'] * 1e6:.1f} us (small input, on the caller),"
        f" {m['backend_handoff_s'] * 1e6:.1f} us with the interrupt hand-off of long calls;"
        f" jr.sqrt of 8 resident float64 (a new array each call) {m['overhead_new_s'] * 1e6:.1f}"
        f" us/call ({'met' if m['overhead_new_s'] < 20e-6 else 'MISSED'})"
    )
    print(
        f"{'work':<26} {'variant':<40} {'wall ms (cpu/wall)':>18} {'vs 1 thread':>11} "
        f"{'vs Python':>10}  tasks split / check"
    )
    one: dict[str, float] = {}
    python: dict[str, float] = {}
    for work, variant, wall, _ in m["rows"]:
        if "1 thread" in variant:
            one.setdefault(work, wall)
        if "pure Python" in variant:
            python.setdefault(work, wall)
    for (work, variant, wall, note), cpu in zip(m["rows"], m["row_cpu"], strict=True):
        pool = "pure Python" not in variant
        vs_one = f"{one[work] / wall:.2f}x" if pool and work in one and wall else ""
        vs_py = f"{python[work] / wall:.1f}x" if pool and work in python and wall else ""
        timed = f"{wall * 1e3:.1f} ({cpu:.2f})"
        print(f"{work:<26} {variant:<40} {timed:>18} {vs_one:>11} {vs_py:>10}  {note}")
    print(
        "cpu/wall: the CPU time of the browser's processes over the wall time of the cell that "
        "measured the row (warm-up and every repeat, so about 1 per busy thread plus the "
        "browser's own work); the tasks split shows how evenly the threads shared the work."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path)
    ap.add_argument("--url")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    sizes = (
        {"width": 240, "height": 160, "max_iter": 200, "n": 1_000_000}
        if a.quick
        else {"width": 800, "height": 600, "max_iter": 500, "n": 8_000_000}
    )
    code = KERNEL_CODE.replace("{repeat}", str(a.repeat))
    for key, value in sizes.items():
        code = code.replace("{" + key + "}", str(value))
    server = None
    url = a.url
    if url is None:
        site = a.site
        if site is None:
            site = ROOT / "_work" / "bench-site"
            subprocess.run(
                [sys.executable, str(ROOT / "scripts" / "build_site.py"), str(site)], check=True
            )
        server, url = serve(site)
    try:
        load0 = os.getloadavg()[0]
        m = measure(url, code, a.timeout)
        m.update(date=time.strftime("%Y-%m-%d %H:%M"), load=(load0, os.getloadavg()[0]))
        print_table(m)
    finally:
        if server is not None:
            server.terminate()


if __name__ == "__main__":
    main()
