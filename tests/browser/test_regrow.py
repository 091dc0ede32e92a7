"""Growing, shrinking and regrowing the pool in a real JupyterLite page (Chromium, isolated).

Issue 11's open bug: regrowing past the cores after a shrink sometimes trapped a worker with
"table index is out of bounds". A browser's Worker.terminate() returns before the worker has
stopped, so a retired helper could still be parked on its slot when a new worker took the slot,
and both ran the next thread on one stack (the fix and its argument: the slot generations of
jupyterlite_rayon/host/thread_runtime.mjs). Every resize path is driven here many times, with
the kernels checked against known answers after each step; the kernel must stay alive.
Fixture kernel_coi comes from tests/browser/conftest.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kernel_sources import REF_MANDELBROT

CYCLES = 30

SETUP = (
    r"""
import array, json
import jupyterlite_rayon as jr

"""
    + REF_MANDELBROT
    + r"""
await jr.init_thread_pool(1)
# Whole numbers: the sum is exact in any order, so it is known without numpy.
N = 200_003
X = jr.asarray(array.array("d", (float(i % 1000) for i in range(N))))
SUM = float(sum(i % 1000 for i in range(N)))
MANDEL = ref_mandelbrot(64, 48, -2.0, 1.0, -1.5, 1.5, 200)

def check(where, want_threads):
    bad = []
    if jr.current_num_threads() != want_threads:
        bad.append((where, "threads", jr.current_num_threads()))
    if jr.sum(X) != SUM:
        bad.append((where, "sum", jr.sum(X)))
    img = jr.mandelbrot(64, 48, -2.0, 1.0, -1.5, 1.5, 200)
    if [v for row in img.tolist() for v in row] != MANDEL:
        bad.append((where, "mandelbrot"))
    return bad

print(json.dumps(check("start", 1)))
"""
)


# A cell of these takes seconds; a pool that hangs (two threads on one helper stack can) must
# fail the test well before the run's deadline.
CELL_TIMEOUT_S = 240


def run(kernel: Any, code: str, timeout: float = CELL_TIMEOUT_S) -> dict[str, Any]:
    r = kernel.execute(code, timeout=timeout)
    assert r["status"] == "ok", f"cell failed: {r.get('error')}\n{r.get('stderr')}\n{code}"
    return r


def last_json(r: dict[str, Any]) -> Any:
    lines = [line for line in r["stdout"].splitlines() if line.strip()]
    assert lines, f"no output: {r}"
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def coi(kernel_coi: Any) -> Any:
    assert kernel_coi.isolated, "the coi site must be cross-origin isolated"
    assert last_json(run(kernel_coi, SETUP)) == []
    return kernel_coi


def test_init_thread_pool_4_2_1_4_thirty_times(coi: Any) -> None:
    r = run(
        coi,
        f"""
bad = []
for cycle in range({CYCLES}):
    for n in (4, 2, 1, 4):
        await jr.init_thread_pool(n)
        bad += check(f"cycle {{cycle}} init_thread_pool({{n}})", n)
    # Within the started workers (a sweep's steps), then a block past them.
    for n in (1, 2, 3):
        jr.set_num_threads(n)
        bad += check(f"cycle {{cycle}} set_num_threads({{n}})", n)
    await jr.init_thread_pool(2)
    for n in (1, 4):  # within the workers, and past them (new workers start inside the cell)
        with jr.threadpool_limits(n):
            bad += check(f"cycle {{cycle}} threadpool_limits({{n}})", n)
        bad += check(f"cycle {{cycle}} after threadpool_limits({{n}})", 2)
print(json.dumps([bad[:5], len(bad), jr.pool_info()["threads"], jr.pool_info()["build"]]))
""",
    )
    first, count, threads, build = last_json(r)
    assert (first, count) == ([], 0), f"{count} wrong answers, the first: {first}"
    assert (threads, build) == (2, "mt")


def test_sweeps_past_the_cores_after_a_shrink(coi: Any) -> None:
    # The notebook that showed the bug (example 03): 4 threads, back to 2, then a sweep that
    # grows past the workers again, each round ending with the kernels checked.
    run(coi, "%load_ext jupyterlite_rayon")
    for round_ in range(5):
        run(coi, "await jr.init_thread_pool(4)\nawait jr.init_thread_pool(2)")
        r = run(
            coi,
            "%%parallel --sweep 1,2,4 --repeat 2\nimg = jr.mandelbrot(300, 200, max_iter=300)",
        )
        said = (r["stdout"] + r["stderr"]).lower()
        assert "trapped" not in said and "broken" not in said, said
        after = last_json(run(coi, f"print(json.dumps(check('sweep round {round_}', 2)))"))
        assert after == [], after
    # Alive, and the pool still resizes.
    r = run(coi, "await jr.init_thread_pool(3)\nprint(json.dumps(check('last', 3)))")
    assert last_json(r) == []
