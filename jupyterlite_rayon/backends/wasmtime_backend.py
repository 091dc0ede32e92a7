"""CPython backend: the pool module on wasmtime, with real threads on one shared memory.

The threads are wasi_threads.WasmThreads (one Store+Instance per Python thread). Kernel calls
run on its caller thread; the Python thread that asked waits interruptibly, and Ctrl-C sets the
pool's cancel flag: the call returns E_CANCELED and KeyboardInterrupt is raised with the pool
intact. Control calls (jr_alloc, jr_free, jr_set_threads) run directly on the calling thread.
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from typing import Any

import wasmtime as W

from .. import abi, errors
from .base import Backend
from .jit_wasmtime import JitModules
from .wasi_threads import WasmThreads, compile_module, engine

_U32 = 0xFFFFFFFF


def _package_wasm(filename: str) -> bytes:
    try:
        return resources.files("jupyterlite_rayon").joinpath("wasm").joinpath(filename).read_bytes()
    except FileNotFoundError:
        raise errors.PoolError(
            f"jupyterlite_rayon/wasm/{filename} is missing; build it with "
            "`python kernels/build.py` (or reinstall the package)"
        ) from None


@functools.cache
def _no_poll_module(eng: W.Engine) -> W.Module:
    return W.Module(eng, '(module (func (export "host_poll") (result i32) i32.const 0))')


#: "st" runs pool-st.wasm (the build every non-isolated browser page runs) on one thread
BUILD_ENV = "JUPYTERLITE_RAYON_BUILD"


class WasmtimeBackend(Backend):
    """A pool module on wasmtime: pool-mt.wasm (threads), or pool-st.wasm (one thread)."""

    name = "wasmtime"

    def __init__(self, threads: int, wasm: bytes | None = None, build: str = "mt") -> None:
        if build not in ("mt", "st"):
            raise ValueError(f"build must be 'mt' or 'st', got {build!r}")
        filename = f"pool-{build}.wasm"
        eng = engine()
        module = compile_module(eng, wasm if wasm is not None else _package_wasm(filename))
        # Pre-start as many helper threads as the pool will use, so spawns never wait.
        helpers = max(threads - 1, 0) if build == "mt" else 0
        self._jit = JitModules(eng)
        self.wasm = WasmThreads(module, eng, self._pool_imports, helpers=helpers, name="pool")
        self.threaded = self.wasm.shared
        version = self.wasm.call_direct("jr_abi_version")
        if version != abi.ABI_VERSION:
            raise errors.PoolError(
                f"{filename} has ABI version {version}, expected "
                f"{abi.ABI_VERSION}; rebuild it with `python kernels/build.py`"
            )
        self.counters_address = self.wasm.call_direct("jr_counters") & _U32
        self.build_max_threads = self.wasm.call_direct("jr_max_threads") & _U32
        self._cancel = self.counters_address + abi.COUNTERS_HEADER_OFFSETS["cancel"]
        self._jit.memory = self.wasm.memory
        self._jit.reader = self.wasm
        self._jit.registry = self.wasm.call_direct("jr_jit_modules") & _U32
        self.set_threads(threads if self.threaded else 1)

    def _pool_imports(self, host: WasmThreads, store: W.Store) -> dict[tuple[str, str], Any]:
        # The cancel flag is set by run()'s interrupt handler, so polling has nothing to add.
        # The caller polls every few tasks: a wasm function keeps that free, where a Python
        # callback would cost microseconds each time.
        poll = W.Instance(store, _no_poll_module(host.engine), [])
        return {
            ("env", "host_poll"): poll.exports(store)["host_poll"],
            ("env", "host_load_modules"): self._jit.import_func(store),
        }

    @classmethod
    def start(cls, threads: int) -> WasmtimeBackend:
        build = os.environ.get(BUILD_ENV, "mt") or "mt"
        if build not in ("mt", "st"):
            raise ValueError(f"{BUILD_ENV}={build!r}: use 'mt' (threads) or 'st' (one thread)")
        return cls(threads, build=build)

    def call(self, export: str, *args: float, quick: bool = False) -> None:
        wasm = self.wasm
        wasm.store_u32(self._cancel, 0)
        if quick:
            status = int(wasm.call_direct(export, *args))
        else:
            status = int(wasm.run(export, args, self._interrupt))
        if status != errors.OK:
            raise errors.status_error(export, status, self._strerror(status))

    def jit_load(self, wasm: bytes, nfuncs: int) -> int:
        module = self._jit.compile(wasm)
        ptr = self.alloc(len(wasm), False)
        self.write(ptr, memoryview(wasm))
        base = int(self.wasm.call_direct("jr_jit_add_module", ptr, len(wasm), nfuncs))
        if base < 0:
            self.free(ptr)
            raise errors.status_error("jit (registering a module)", base, self._strerror(base))
        self._jit.keep(base, module)  # the registry owns the bytes from now on
        return base

    def jit_call(self, main_slot: int, ctx: int) -> int:
        wasm = self.wasm
        wasm.store_u32(self._cancel, 0)
        try:
            status = int(wasm.run("jr_jit_call", (main_slot, ctx), self._interrupt))
        except KeyboardInterrupt:
            return abi.E_CANCELED
        if status == abi.E_LOAD:
            raise errors.PoolError(
                f"a pool thread could not load a jitted module ({self._jit.last_error}); "
                "restart the pool: jr.shutdown(), then call again"
            )
        return status

    def _interrupt(self) -> None:
        self.wasm.store_u32(self._cancel, 1)

    def alloc(self, nbytes: int, zero: bool) -> int:
        return self._alloc(nbytes, zero, "jr_alloc")

    def alloc_into(self, cell: int, nbytes: int, zero: bool) -> int:
        return self._alloc(nbytes, zero, "jr_alloc_into", cell)

    def _alloc(self, nbytes: int, zero: bool, export: str, *cell: int) -> int:
        if nbytes > _U32:
            raise errors.PoolMemoryError(
                f"{nbytes} bytes do not fit in the pool's 32-bit memory; work on smaller chunks"
            )
        ptr = int(self.wasm.call_direct(export, *cell, nbytes, 1 if zero else 0)) & _U32
        if not ptr:
            in_use = self.counters(threads=False).bytes_in_use
            raise errors.PoolMemoryError(_no_memory(nbytes, in_use, self.wasm.max_bytes))
        return ptr

    def free(self, ptr: int) -> None:
        self.wasm.call_direct("jr_free", ptr)

    def free_cell(self, cell: int) -> None:
        self.wasm.call_direct("jr_free_cell", cell)

    def load_u32(self, ptr: int) -> int:
        return self.wasm.load_u32(ptr)

    def free_soon(self, ptr: int) -> None:
        self.wasm.free_soon("jr_free", ptr)

    def write(self, ptr: int, data: memoryview) -> None:
        self.wasm.write(ptr, data)

    def read(self, ptr: int, nbytes: int) -> bytes:
        return self.wasm.read(ptr, nbytes)

    def read_into(self, ptr: int, out: memoryview) -> None:
        self.wasm.read_into(ptr, out)

    def store_u32(self, ptr: int, value: int) -> None:
        self.wasm.store_u32(ptr, value)

    def memory_size(self) -> int:
        return self.wasm.memory_size()

    def _strerror(self, status: int) -> str:
        return self.wasm.read_cstring(self.wasm.call_direct("jr_strerror", status) & _U32)

    def set_threads(self, n: int) -> None:
        status = self.wasm.call_direct("jr_set_threads", n)
        if status != errors.OK:
            raise errors.status_error("set_num_threads", status, self._strerror(status))

    def cpu_count(self) -> int:
        return os.cpu_count() or 1

    def isolation(self) -> dict[str, Any]:
        if self.threaded:
            return {"cross_origin_isolated": True, "shared_memory": True, "reason": "", "fix": ""}
        return {
            "cross_origin_isolated": True,
            "shared_memory": False,
            "reason": f"{BUILD_ENV}=st asks for the single-thread build",
            "fix": f"unset {BUILD_ENV} (or set it to mt) and start the pool again",
        }

    def close(self) -> None:
        try:
            if self.threaded and not self.wasm.closed:
                self.set_threads(1)
        finally:
            self.wasm.close()


def _no_memory(nbytes: int, in_use: int, maximum: int) -> str:
    """Why an allocation failed: the request alone, or the request with what is in use."""
    if nbytes + (4 << 20) > maximum:  # the runtime's own first pages always stay in use
        return (
            f"the pool cannot allocate {nbytes} bytes: that alone is more than its memory's "
            f"maximum ({maximum} bytes) can hold; work on smaller chunks"
        )
    return (
        f"the pool cannot allocate {nbytes} bytes: with the {in_use} bytes its arrays hold, "
        f"that exceeds its memory's maximum ({maximum} bytes); close arrays you no longer "
        "need (a.close() or del a) or use smaller arrays"
    )
