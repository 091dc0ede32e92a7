"""Shared fixtures: one real pool per session, the foreign fixture module built with Zig."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing import globalipapp

# numpy's BLAS threads spin after a call and their CPU time would land in the next timed cell
# (the magics' cpu/wall); one BLAS thread keeps those measurements about the pool alone.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jupyterlite_rayon as jr

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# std.Thread on wasm32-wasi needs ReleaseFast (see shared recipes); shared imported memory
# with a 64 MiB maximum so the "more memory than the maximum" case is cheap to reach.
ZIG_FLAGS = [
    "-target", "wasm32-wasi", "-mcpu=generic+atomics+bulk_memory", "-O", "ReleaseFast",
    "-fno-entry", "-rdynamic", "-fno-single-threaded", "--import-memory", "--shared-memory",
    "--initial-memory=1048576", "--max-memory=67108864", "--export=wasi_thread_start",
    "--stack", "262144",
]
FOREIGN_MAX_MEMORY = 67108864


@pytest.fixture(scope="session")
def pool() -> object:
    """The session's pool (2 threads to start; tests resize it and put it back)."""
    jr.init_thread_pool(2)
    return jr.get_backend()


@pytest.fixture(scope="session")
def foreign_wasm(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fixtures/foreign_psum.zig built with Zig (cached by source hash)."""
    source = FIXTURES / "foreign_psum.zig"
    key = hashlib.sha256(source.read_bytes() + " ".join(ZIG_FLAGS).encode()).hexdigest()[:16]
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    out_dir = (Path(cache.mkdir("jupyterlite-rayon-fixtures")) if cache is not None
               else tmp_path_factory.mktemp("fixtures"))
    out = out_dir / f"foreign_psum-{key}.wasm"
    if not out.exists():
        tmp = out.with_suffix(".tmp.wasm")
        subprocess.run([sys.executable, "-m", "ziglang", "build-exe", str(source), *ZIG_FLAGS,
                        f"-femit-bin={tmp}"], check=True, cwd=out_dir)
        tmp.replace(out)
    return out


@pytest.fixture(scope="module")
def ip() -> InteractiveShell:
    """An IPython shell with the extension loaded and the pool running (magics, widget)."""
    globalipapp.start_ipython()  # once per process; later calls return None
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "jupyterlite_rayon")
    jr.init_thread_pool()
    return shell
