"""The single-thread build (what every non-isolated browser page runs) runs in CPython too, and
gives bit for bit what the threaded build gives at any thread count (and numpy's sums)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import jupyterlite_rayon as jr

# Deterministic inputs and every kernel whose result the docs promise is thread-independent;
# prints one JSON object of exact results (floats as hex).
PROGRAM = textwrap.dedent("""
    import json, sys
    import numpy as np
    import jupyterlite_rayon as jr

    def exact(v):  # floats as hex, ints as they are (uint64 sums need all 64 bits)
        return v.hex() if isinstance(v, float) else str(v)

    def run():
        rng = np.random.default_rng(7)
        out = {}
        for n in (0, 1, 4095, 4097, 65537):
            for dtype in ("float64", "float32", "int32", "int64", "uint32", "uint64"):
                x = rng.standard_normal(n) * 1e3
                if dtype.startswith("u"):  # both halves of the range, so sums wrap
                    x = rng.integers(0, np.iinfo(dtype).max, size=n, dtype=dtype, endpoint=True)
                x = x.astype(dtype)
                y = np.roll(x, 1)
                key = f"{dtype}/{n}"
                out[key + "/sum"] = exact(jr.sum(x))
                out[key + "/mean"] = float(jr.mean(x)).hex() if n else "nan"
                out[key + "/dot"] = exact(jr.dot(x, y))
                out[key + "/cumsum"] = jr.cumsum(x).to_numpy().tobytes().hex()[-64:]
                out[key + "/sort"] = jr.sort(x).to_numpy().tobytes().hex()[:64]
                if n:
                    out[key + "/minmax"] = [exact(jr.min(x)), exact(jr.max(x))]
                    # one value near 2**64 has no range (x +- 0.5 rounds to x): numpy refuses
                    if n > 1 or not dtype.startswith("u"):
                        out[key + "/hist"] = jr.histogram(x, 17)[0].tolist()
        # matrix-vector products around each of the row forms' switches (matmul.zig, MatVec)
        for dtype in ("float64", "float32"):
            for m in (13, 20):
                for k in (31, 33, 3071, 3073, 6145, 7000):
                    a = rng.standard_normal((m, k)).astype(dtype)
                    v = rng.standard_normal(k).astype(dtype)
                    out[f"matvec/{dtype}/{m}x{k}"] = jr.dot(a, v).to_numpy().tobytes().hex()
        out["mandelbrot"] = jr.mandelbrot(61, 37, max_iter=300).to_numpy().sum().item()
        out["pi"] = jr.monte_carlo_pi(100_003, seed=5)
        return out

    results = {}
    for threads in [int(t) for t in sys.argv[1:]]:
        jr.set_num_threads(threads)
        results[threads] = run()
    print(json.dumps(results))
""")


def run(build: str, threads: list[int]) -> dict[str, object]:
    env = dict(os.environ, JUPYTERLITE_RAYON_BUILD=build)
    r = subprocess.run(
        [sys.executable, "-c", PROGRAM, *map(str, threads)],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_st_equals_mt_at_every_thread_count() -> None:
    mt = run("mt", [1, 2, 3, 4])
    st = run("st", [1])
    reference = st["1"]
    for threads, results in mt.items():
        assert results == reference, f"mt at {threads} threads differs from st"


def test_the_st_pool_says_what_it_is() -> None:
    code = (
        "import jupyterlite_rayon as jr, json; jr.sum([1.0]); "
        "i = jr.pool_info(); print(json.dumps([i['build'], i['threads'], i['max_threads']]))"
    )
    env = dict(os.environ, JUPYTERLITE_RAYON_BUILD="st")
    r = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == ["st", 1, 1]
    jr.sum([1.0])
    assert jr.pool_info()["build"] == "mt"  # this process is untouched


@pytest.mark.parametrize(
    "suite",
    [
        "test_promotion.py",  # every op, dtype pair, scalar kind, special value
        "test_numpy_order.py",  # sum, mean and cumsum equal numpy's bit for bit
    ],
)
def test_a_numpy_comparison_suite_passes_on_the_st_build(suite: str) -> None:
    """The suite on pool-st.wasm, without its thread-count tests (the st build has one thread)."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, JUPYTERLITE_RAYON_BUILD="st")
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
        + [os.path.join(here, suite), "-k", "not thread_counts"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=here,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    last = r.stdout.strip().splitlines()[-1]
    assert " passed" in last
    assert "deselected" in last  # the thread-count tests only
