"""A user's wasi-threads module in JupyterLite: the ForeignEngine on the JS host.

`createPool({wasm: bytes, threaded: true, threads: helpers + 1})` gives the module its own
shared memory and helper workers that serve its `wasi.thread-spawn`; a module without the
pool's jr_ runtime exports is a foreign one to the host (no counters, no allocator of its own).
The caller instance runs in the kernel worker, like the pool's, so calls are synchronous:
`pool.value(name, ...)`. WASI output goes to the cell (the host's fd_write -> our writers).

What differs from CPython (wasmtime), said in the messages:
- Threads need shared memory, so the page must be cross-origin isolated; else loading fails
  with ForeignModuleError naming the fix for the page's host (isolation.fix_for_host).
- Helpers are Web Workers started up front (`threads`); a spawn beyond them fails.
- The host cannot re-instantiate after a trap: a trap or proc_exit (in any thread) leaves the
  module unusable; the message says to load it again.
- A call runs in the kernel worker, which nothing can preempt: it stops only when it returns
  (there are no epochs in a browser engine).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import js  # type: ignore[import-not-found]
from pyodide.ffi import JsException, create_proxy, to_js  # type: ignore[import-not-found]

from .. import errors
from . import pyodide_backend as pb
from .foreign_base import Fault, ForeignEngine, Signature

_HELPER_NOTE = re.compile(r"pool thread (\d+) trapped(?::|\s*\()\s*(.*?)\)?$", re.DOTALL)
_EXIT = re.compile(r"proc_exit\((-?\d+)\)")


def _check_memory(name: str, info: dict[str, Any] | None) -> None:
    memory = (info or {}).get("memory")
    if not memory or (memory.get("module"), memory.get("name")) != ("env", "memory"):
        raise errors.ForeignModuleError(
            f"{name} is not a wasi-threads module this host can run: it does not import "
            "env.memory (link with --import-memory --shared-memory)"
        )
    if not memory.get("shared"):
        raise errors.ForeignModuleError(
            f"{name} is not a wasi-threads module this host can run: env.memory must be a "
            "shared memory (link with --shared-memory)"
        )


class PyodideForeign(ForeignEngine):
    survives_traps = False

    def __init__(self, pool: Any, name: str, info: dict[str, Any], proxies: tuple[Any, ...]):
        self._pool = pool
        self.name = name
        self._proxies = proxies
        memory = info["memory"]
        pages = memory["maximum"] if memory.get("maximum") is not None else 65536
        self.max_memory_bytes = int(pages) * 65536
        self._signatures = {
            export: Signature(tuple(sig["params"]), tuple(sig["results"]))
            for export, sig in info.get("signatures", {}).items()
            if export != "wasi_thread_start"
        }
        self._value = pb.JS.catching(pool.value.bind(pool))
        self._read_small = pb.JS.reader(pool)
        self._write_small = pb.JS.writer(pool)
        self._dead: str | None = None  # why the module cannot run any more
        self._reported_note: str | None = None
        self._closed = False

    @classmethod
    async def load(
        cls,
        wasm: bytes,
        name: str,
        threads: int | None,
        stdout: Callable[[str], Any] | None,
        stderr: Callable[[str], Any] | None,
    ) -> PyodideForeign:
        host = await pb.host_module()
        info = host.readModuleInfo(to_js(wasm))
        info = info.to_py() if info is not None else None
        _check_memory(name, info)
        assert info is not None
        support = host.detectThreading().to_py()
        if not support.get("ok"):
            iso = pb.isolation_for(support)
            raise errors.ForeignModuleError(
                f"{name} is a wasi-threads module: its threads share one memory, which needs a "
                f"cross-origin isolated page, and {iso['reason'] or 'this page is not one'}. "
                f"To fix: {iso['fix']}"
            )
        cores = int(getattr(js.navigator, "hardwareConcurrency", 1) or 1)
        helpers = threads if threads is not None else cores
        out = create_proxy(stdout if stdout is not None else pb.output_writer("stdout"))
        err = create_proxy(stderr if stderr is not None else pb.output_writer("stderr"))
        options = to_js(
            {
                "wasm": to_js(wasm),
                "threads": helpers + 1,
                "threaded": True,
                "stdout": out,
                "stderr": err,
            },
            dict_converter=js.Object.fromEntries,
        )
        try:
            pool = await host.createPool(options)
        except JsException as exc:
            out.destroy()
            err.destroy()
            error = pb.JS.describe(exc.js_error).to_py()
            raise errors.ForeignModuleError(f"{name}: cannot load it: {error['message']}") from None
        return cls(pool, name, info, (out, err))

    @property
    def signatures(self) -> dict[str, Signature]:
        return self._signatures

    # -- calls ---------------------------------------------------------------------------
    def _check_usable(self, where: str) -> None:
        if self._closed:
            raise errors.PoolError(f"{self.name} is closed; load it again")
        if self._dead is not None:
            raise errors.ForeignModuleError(
                f"{where}: {self.name} cannot be used any more ({self._dead}); load the "
                "module again: mod = await jupyterlite_rayon.load_module(...)"
            )

    def run(self, export: str, args: tuple[float, ...]) -> Any:
        where = f"{self.name}.{export}"
        self._check_usable(where)
        result = self._value(export, *args)
        if result.ok:
            return _to_py(result.value)
        error = pb.JS.describe(result.error).to_py()
        kind, message = error["name"], error["message"]
        then = "the module cannot be used any more: load it again"
        if kind == "WasmTrap":
            self._dead = f"{export} trapped"
            raise errors.WasmTrap(f"{where} trapped: {_trap_text(error)}; {then}")
        if kind == "ProcExit":
            found = _EXIT.search(message)
            code = int(found.group(1)) if found else 0
            self._dead = f"{export} called proc_exit({code})"
            raise errors.ProcExit(code, f"{where} called proc_exit({code}); {then}")
        if kind == "PoolBroken":
            # A helper faulted (before or during this call): take_faults() says which.
            raise errors.WasmTrap(f"{where}: a helper thread failed: {message}")
        if kind in ("TypeError", "RangeError"):
            raise ValueError(f"{where}: {message}")
        raise errors.PoolError(f"{where}: {message}")

    def call_direct(self, export: str, *args: float) -> Any:
        return self.run(export, args)

    def take_faults(self) -> list[Fault]:
        note = None if self._closed else self._pool.broken
        if not note or note == self._reported_note:
            return []
        self._reported_note = note = str(note)
        found = _HELPER_NOTE.search(note)
        if found is None:
            return []  # the caller's own trap: its call raised it already
        trap = found.group(2).strip()
        code = _EXIT.search(trap)
        self._dead = f"a helper thread failed: {trap}"
        return [Fault(0, trap, int(code.group(1)) if code and "ProcExit" in trap else None)]

    def free_soon(self, export: str, ptr: int) -> None:
        # No other thread runs Python here: a finalizer never lands inside a call.
        if not self._closed and self._dead is None and not self._pool.broken:
            self._value(export, ptr)

    # -- memory --------------------------------------------------------------------------
    def _view(self, ptr: int, nbytes: int) -> Any:
        try:
            return self._pool.view(js.Uint8Array, ptr, nbytes)
        except JsException as e:
            raise errors.PoolError(f"{self.name} memory access: {e.message}") from None

    def write(self, ptr: int, data: memoryview) -> None:
        data = memoryview(data).cast("B")
        if data.nbytes > pb.SMALL_COPY:
            self._view(ptr, data.nbytes).assign(data)
        elif data.nbytes:
            self._write_small(ptr, bytes(data).decode("latin-1"))

    def read(self, ptr: int, nbytes: int) -> bytes:
        if nbytes == 0:
            return b""
        if nbytes > pb.SMALL_COPY:
            return bytes(self._view(ptr, nbytes).to_bytes())
        return str(self._read_small(ptr, nbytes)).encode("latin-1")

    def read_into(self, ptr: int, out: memoryview) -> None:
        out = memoryview(out).cast("B")
        if out.nbytes > pb.SMALL_COPY:
            self._view(ptr, out.nbytes).assign_to(out)
        elif out.nbytes:
            out[:] = self.read(ptr, out.nbytes)

    def memory_size(self) -> int:
        return int(self._pool.memory.buffer.byteLength)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.terminate()  # Worker.terminate() takes effect at once
        for proxy in self._proxies:
            proxy.destroy()


def _to_py(value: Any) -> Any:
    """A wasm result: a number, a BigInt (i64, converted by Pyodide) or undefined (void)."""
    if value is None or isinstance(value, (int, float)):
        return value
    return value.to_py() if hasattr(value, "to_py") else value


def _trap_text(error: dict[str, Any]) -> str:
    detail = str(error.get("detail") or error["message"])
    return detail.removeprefix("trapped: ")
