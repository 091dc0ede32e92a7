"""A user's wasi-threads module on wasmtime (CPython): the ForeignEngine of foreign.py.

Its own shared memory and threads (wasi_threads.WasmThreads, with epoch interruption, so any
call and any thread can be stopped), minimal WASI preview1 (wasi.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wasmtime as W

from ..errors import ForeignModuleError
from . import wasi, wasi_threads
from .foreign_base import Fault, ForeignEngine, Signature

#: how long a stopped call may take to return before the module is given up
GRACE = 2.0


class WasmtimeForeign(ForeignEngine):
    survives_traps = True  # a trap gets a fresh caller instance on the same memory

    def __init__(
        self,
        wasm: bytes,
        name: str,
        helpers: int,
        stdout: Callable[[str], Any] | None,
        stderr: Callable[[str], Any] | None,
    ) -> None:
        eng = wasi_threads.engine(interruptible=True)
        try:
            module = wasi_threads.compile_module(eng, wasm, interruptible=True)
        except W.WasmtimeError as exc:
            raise ForeignModuleError(f"{name}: wasmtime cannot compile it: {exc}") from None
        wasi.check_imports(name, module)
        self.name = name
        self._wasi = wasi.Wasi(stdout, stderr)
        self._host = wasi_threads.WasmThreads(
            module, eng, self._wasi.imports, helpers=helpers, name=name, interruptible=True
        )
        self.max_memory_bytes = self._host.max_bytes
        kinds = {"i32": "i32", "i64": "i64", "f32": "f32", "f64": "f64"}
        self._signatures = {
            e.name: Signature(
                tuple(kinds.get(str(p), str(p)) for p in e.type.params),
                tuple(kinds.get(str(r), str(r)) for r in e.type.results),
            )
            for e in module.exports
            if isinstance(e.type, W.FuncType) and e.name != "wasi_thread_start"
        }

    @property
    def signatures(self) -> dict[str, Signature]:
        return self._signatures

    def run(self, export: str, args: tuple[float, ...]) -> Any:
        return self._host.run(export, args, grace=GRACE)

    def call_direct(self, export: str, *args: float) -> Any:
        return self._host.call_direct(export, *args)

    def take_faults(self) -> list[Fault]:
        return self._host.take_faults()

    def free_soon(self, export: str, ptr: int) -> None:
        self._host.free_soon(export, ptr)

    def write(self, ptr: int, data: memoryview) -> None:
        self._host.write(ptr, data)

    def read(self, ptr: int, nbytes: int) -> bytes:
        return self._host.read(ptr, nbytes)

    def read_into(self, ptr: int, out: memoryview) -> None:
        self._host.read_into(ptr, out)

    def memory_size(self) -> int:
        return self._host.memory_size()

    @property
    def closed(self) -> bool:
        return self._host.closed

    def close(self) -> None:
        self._host.close()

    def threads_alive(self) -> list[str]:
        """Names of the module's Python threads still running (tests check close())."""
        return self._host.threads_alive()
