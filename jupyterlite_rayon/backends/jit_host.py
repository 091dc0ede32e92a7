"""The JitHost (jupyterlite_rayon/jit/runtime.py) over the running pool, for every backend.

Jitted functions run on the pool the rest of the API uses: their frames and copies come from
its allocator, PoolArrays of its arena are used in place, modules are registered through the
backend's `jit_load` and run through its `jit_call` (kernels/ABI.md, "Jitted modules").
"""

from __future__ import annotations

from typing import Any

from .. import pool
from ..array import pool_arena
from .base import Backend


class PoolJitHost:
    """What a compiled kernel needs, on one live backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.shared = bool(backend.threaded)
        self.arena: Any = pool_arena()

    def write(self, ptr: int, data: bytes | bytearray | memoryview) -> None:
        self.backend.write(ptr, memoryview(data))

    def read(self, ptr: int, nbytes: int) -> bytes:
        return self.backend.read(ptr, nbytes)

    def load_module(self, wasm: bytes, nfuncs: int) -> int:
        return self.backend.jit_load(wasm, nfuncs)

    def call(self, main_slot: int, ctx: int) -> int:
        return self.backend.jit_call(main_slot, ctx)


_current: PoolJitHost | None = None


def current() -> PoolJitHost:
    """The host of the running pool (CPython starts one on first use), one per pool: a
    compiled module is registered once per pool."""
    global _current
    backend = pool.get_backend()
    host = _current
    if host is None or host.backend is not backend:
        host = _current = PoolJitHost(backend)
    return host
