"""Compile the pool modules (pool-mt.wasm, pool-st.wasm) from kernels/ with Zig from PyPI.

Used by the hatchling build hook (hatch_build.py) and by developers:
    python kernels/build.py [OUT_DIR]
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
ROOT_SOURCE = HERE / "exports.zig"
DEFAULT_OUT = HERE.parent / "jupyterlite_rayon" / "wasm"


def _abi() -> ModuleType:
    """The generated contract constants (from kernels/ABI.md), loaded by path: the build hook
    runs before the package is importable."""
    path = HERE.parent / "jupyterlite_rayon" / "abi.py"
    spec = importlib.util.spec_from_file_location("jupyterlite_rayon_abi", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ABI = _abi()
INITIAL_MEMORY = _ABI.MEMORY_MIN_PAGES * _ABI.PAGE_BYTES  # 4 MiB
MAX_MEMORY = _ABI.MEMORY_MAX_PAGES * _ABI.PAGE_BYTES  # 2 GiB

# Flag and value pairs stay on one line.
# fmt: off
COMMON = [
    "-target", "wasm32-freestanding",
    "-O", "ReleaseFast",
    "-fno-entry",
    "-rdynamic",
    "-fstrip",
    "--import-memory",
    f"--initial-memory={INITIAL_MEMORY}",
    f"--max-memory={MAX_MEMORY}",
    "--stack", str(1 << 20),
    # The jit (kernels/ops/jit.zig) adds its modules' functions to this table in every thread.
    "--export-table", "--growable-table",
]
# fmt: on

BUILDS = {
    "pool-mt.wasm": [
        "-mcpu=generic+atomics+bulk_memory+simd128+reference_types",
        "-fno-single-threaded",
        "--shared-memory",
        "--export=wasi_thread_start",
    ],
    "pool-st.wasm": [
        "-mcpu=generic+bulk_memory+simd128+reference_types",
        "-fsingle-threaded",
    ],
}


def zig() -> list[str]:
    return [sys.executable, "-m", "ziglang"]


def build(out_dir: Path = DEFAULT_OUT) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    built = []
    for name, flags in BUILDS.items():
        out = out_dir / name
        cmd = [*zig(), "build-exe", str(ROOT_SOURCE), *COMMON, *flags, f"-femit-bin={out}"]
        # Zig's cache goes to the user cache dir; run from kernels/ so relative imports resolve.
        subprocess.run(cmd, cwd=HERE, check=True)
        built.append(out)
    return built


if __name__ == "__main__":
    for path in build(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT):
        print(f"{path} {path.stat().st_size} bytes")
