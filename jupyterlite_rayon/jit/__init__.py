"""`@jit`: a typed subset of Python compiled to WebAssembly that runs on the pool.

    from jupyterlite_rayon.jit import jit, prange

    @jit
    def energy(x):
        s = 0.0
        for i in prange(len(x)):
            s += x[i] * x[i]
        return s

Pure Python (it runs inside Pyodide): frontend.py (AST -> IR), typeinfer.py, parallel.py
(prange loops and reductions), lower.py (IR -> wasm), wasm.py (binary encoder and text),
dispatch.py (one module per signature), runtime.py (the seam to the pool). docs/jit.md is
the user guide and states the jit ABI.
"""

from __future__ import annotations

from .dispatch import Dispatcher, jit
from .errors import JitError
from .prange import prange

njit = jit  # numba's spelling

__all__ = ["Dispatcher", "JitError", "jit", "njit", "prange"]
