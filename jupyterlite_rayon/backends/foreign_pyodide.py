"""A user's wasi-threads module in JupyterLite: the ForeignEngine on the JS host.

`loadForeign({wasm, helpers, poll, stdout, stderr})` (host/foreign_host.mjs) gives the module
its own shared memory, helper workers that serve its `wasi.thread-spawn`, and a caller worker
that runs its exports; calls are synchronous (`host.call(name, ...)`), the kernel's worker waits
for them. WASI output goes to the cell (the caller's is printed by the waiting kernel, in order).

Interrupts use the kernel's interrupt buffer, the one pool calls use (pyodide_backend's
install_interrupts): a call runs through the same reader (`signals().wrap`), which turns
Pyodide's own check off during the call and takes the signal out of the buffer when the call
stops for it; the host's poll reads the buffer every 10 ms while the call runs. An interrupt
terminates the caller worker (a browser cannot stop wasm otherwise) and starts a new caller on
the same memory; helpers run on, as in CPython, until they finish or mod.close(). Chromium lets
a terminated worker run on for 2 s, so the next call or memory access after an interrupt waits
until then (the old caller would share the main stack and the memory with the new one).

What differs from CPython (wasmtime), said in the messages:
- Threads need shared memory, so the page must be cross-origin isolated; else loading fails
  with ForeignModuleError naming the fix for the page's host (isolation.fix_for_host).
- Helpers are Web Workers started up front (`threads`); a spawn beyond them fails.
- A helper's trap or proc_exit leaves the module unusable (the helper's worker is gone from the
  slot table); the message says to load it again. The caller's own trap or proc_exit does not:
  the caller gets a fresh instance, as in CPython.
- After an interrupt the new caller worker is ready asynchronously (about 2.5 s): a call or a
  memory access made before waits for it where Pyodide can block on a promise (JSPI, in a
  cell), else it says to run it again in a moment.
- close() terminates every worker; in Chromium one that runs wasm stops up to 2 s later.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from typing import Any

import js  # type: ignore[import-not-found]
from pyodide.ffi import JsException, create_proxy, to_js  # type: ignore[import-not-found]

from .. import errors
from . import pyodide_backend as pb
from .foreign_base import Fault, ForeignEngine, Signature

# A helper's note in the slot table (thread_runtime.mjs slotLoop): "pool thread N trapped: ...".
_HELPER_NOTE = re.compile(r"pool thread \d+ trapped:\s*(.*)$", re.DOTALL)
_EXIT = re.compile(r"proc_exit\((-?\d+)\)")
_AGAIN = "load the module again: mod = await jupyterlite_rayon.load_module(...)"


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
    survives_traps = False  # a helper's fault: its worker is gone (the caller's own trap is not)

    def __init__(self, host: Any, name: str, info: dict[str, Any], proxies: tuple[Any, ...]):
        self._host = host
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
        self._call = pb.signals().wrap(host.call.bind(host), False)
        self._read_small = pb.JS.reader(host)
        self._write_small = pb.JS.writer(host)
        self._dead: str | None = None  # why the module cannot run any more
        self._reported_note: str | None = None
        self._closed = False
        self._in_call = False
        self._deferred_frees: list[tuple[str, int]] = []

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
        pb.install_interrupts()  # before signals(): its readers must know the buffer
        cores = int(getattr(js.navigator, "hardwareConcurrency", 1) or 1)
        helpers = threads if threads is not None else cores
        out = create_proxy(stdout if stdout is not None else pb.output_writer("stdout"))
        err = create_proxy(stderr if stderr is not None else pb.output_writer("stderr"))
        options = to_js(
            {
                "wasm": to_js(wasm),
                "helpers": helpers,
                "poll": pb.signals().poll,
                "stdout": out,
                "stderr": err,
            },
            dict_converter=js.Object.fromEntries,
        )
        try:
            loaded = await host.loadForeign(options)
        except JsException as exc:
            out.destroy()
            err.destroy()
            error = pb.JS.describe(exc.js_error).to_py()
            raise errors.ForeignModuleError(f"{name}: cannot load it: {error['message']}") from None
        return cls(loaded, name, info, (out, err))

    @property
    def signatures(self) -> dict[str, Signature]:
        return self._signatures

    # -- calls ---------------------------------------------------------------------------
    def _check_usable(self, where: str) -> None:
        if self._closed:
            raise errors.PoolError(f"{self.name} is closed; load it again")
        if self._dead is not None:
            raise errors.ForeignModuleError(
                f"{where}: {self.name} cannot be used any more ({self._dead}); {_AGAIN}"
            )

    def _wait_for_caller(self, where: str) -> None:
        """After an interrupt the new caller worker becomes ready asynchronously, once the old
        one has surely stopped (host/foreign_host.mjs GONE_AFTER_MS): until then the old one may
        still run, on the memory too. Wait for it where Pyodide can block on a promise (JSPI),
        else say what to do."""
        if self._host.ready or self._closed or self._dead is not None or self._host.terminated:
            return
        try:
            from pyodide.ffi import can_run_sync, run_sync  # type: ignore[import-not-found]
        except ImportError:
            can_run_sync = None
        if can_run_sync is not None and can_run_sync():
            try:
                run_sync(self._host.whenReady())
            except JsException as exc:
                self._dead = f"its caller could not start again: {exc.message}"
                self._host.terminate()
                raise errors.ForeignModuleError(
                    f"{where}: {self.name} cannot be used any more ({self._dead}); {_AGAIN}"
                ) from None
            return
        raise errors.ForeignModuleError(
            f"{where}: {self.name}'s caller thread is still starting again after the interrupt; "
            "run the call again in a moment (e.g. in the next cell)"
        )

    def run(self, export: str, args: tuple[float, ...]) -> Any:
        where = f"{self.name}.{export}"
        self._check_usable(where)
        self._wait_for_caller(where)
        self._in_call = True
        try:
            self._drain_frees()
            result = self._call(export, *args)
        finally:
            self._in_call = False
        if result.ok:
            value = _to_py(result.value)
            # A JS number with an integral value arrives as an int: f32/f64 give floats, as in
            # CPython.
            floats = self._signatures[export].results in (("f64",), ("f32",))
            return float(value) if floats else value
        if result.signal:
            _handle_signal(int(result.signal))
        error = pb.JS.describe(result.error).to_py()
        kind, message = error["name"], error["message"]
        if kind == "Interrupted":
            raise KeyboardInterrupt  # foreign.py says what it means for the module
        if kind == "WasmTrap":
            raise errors.WasmTrap(f"{where} trapped: {_detail(error)}; the module keeps working")
        if kind == "ProcExit":
            found = _EXIT.search(message)
            code = int(found.group(1)) if found else 0
            raise errors.ProcExit(
                code, f"{where} called proc_exit({code}); the module keeps working"
            )
        if kind == "HelperFault":
            # The caller was stopped (it may have been joining that helper); take_faults() says
            # which helper and how.
            raise errors.WasmTrap(f"{where}: a helper thread failed: {message}")
        if kind == "Lost":
            self._dead = "its caller thread cannot run any more"
            raise errors.ForeignModuleError(f"{where}: {message}; {_AGAIN}")
        if kind == "Closed":
            raise errors.PoolError(f"{self.name} is closed; load it again")
        if kind in ("TypeError", "RangeError"):
            raise ValueError(f"{where}: {message}")
        raise errors.PoolError(f"{where}: {message}")

    def call_direct(self, export: str, *args: float) -> Any:
        # Interruptible too: an allocator whose lock an interrupted call held would spin forever.
        return self.run(export, args)

    def take_faults(self) -> list[Fault]:
        note = None if self._closed else self._host.fault
        if not note or note == self._reported_note:
            return []
        self._reported_note = note = str(note)
        found = _HELPER_NOTE.search(note)
        trap = found.group(1).strip() if found else note
        code = _EXIT.search(trap)
        self._dead = f"a helper thread failed: {trap}"
        self._host.terminate()  # its workers serve nothing any more (also helpers that loop)
        return [Fault(0, trap, int(code.group(1)) if code and "ProcExit" in trap else None)]

    def free_soon(self, export: str, ptr: int) -> None:
        # A finalizer may run inside a call (in an output callback): free before the next one.
        if self._closed or self._dead is not None or self._host.fault:
            return
        if self._in_call or not self._host.ready:
            self._deferred_frees.append((export, ptr))
            return
        self.run(export, (ptr,))

    def _drain_frees(self) -> None:
        while self._deferred_frees:
            export, ptr = self._deferred_frees.pop()
            result = self._call(export, ptr)
            if not result.ok:
                self._deferred_frees.clear()  # the module failed; the call that follows says why
                if result.signal:
                    _handle_signal(int(result.signal))
                    raise KeyboardInterrupt
                return

    # -- memory --------------------------------------------------------------------------
    def _view(self, ptr: int, nbytes: int) -> Any:
        self._wait_for_caller(f"{self.name} memory access")
        try:
            return self._host.view(js.Uint8Array, ptr, nbytes)
        except JsException as e:
            raise errors.PoolError(f"{self.name} memory access: {e.message}") from None

    def write(self, ptr: int, data: memoryview) -> None:
        data = memoryview(data).cast("B")
        if data.nbytes > pb.SMALL_COPY:
            self._view(ptr, data.nbytes).assign(data)
        elif data.nbytes:
            self._wait_for_caller(f"{self.name} memory access")
            self._write_small(ptr, bytes(data).decode("latin-1"))

    def read(self, ptr: int, nbytes: int) -> bytes:
        if nbytes == 0:
            return b""
        if nbytes > pb.SMALL_COPY:
            return bytes(self._view(ptr, nbytes).to_bytes())
        self._wait_for_caller(f"{self.name} memory access")
        return str(self._read_small(ptr, nbytes)).encode("latin-1")

    def read_into(self, ptr: int, out: memoryview) -> None:
        out = memoryview(out).cast("B")
        if out.nbytes > pb.SMALL_COPY:
            self._view(ptr, out.nbytes).assign_to(out)
        elif out.nbytes:
            out[:] = self.read(ptr, out.nbytes)

    def memory_size(self) -> int:
        return int(self._host.memory.buffer.byteLength)

    def live_workers(self) -> int:
        """Workers of the module still running (tests check close() and faults stop them)."""
        return int(self._host.workers)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._host.terminate()  # Worker.terminate() takes effect at once
        for proxy in self._proxies:
            proxy.destroy()


def _handle_signal(signum: int) -> None:
    """A call stopped for `signum`: a SIGINT handler of the user's runs, as Python would run
    it; KeyboardInterrupt is raised for the stopped call either way (as for pool calls)."""
    handler = signal.getsignal(signum)
    if callable(handler) and handler is not signal.default_int_handler:
        handler(signum, None)


def _to_py(value: Any) -> Any:
    """A wasm result: a number, a BigInt (i64, converted by Pyodide) or undefined (void)."""
    if value is None or isinstance(value, (int, float)):
        return value
    return value.to_py() if hasattr(value, "to_py") else value


def _detail(error: dict[str, Any]) -> str:
    return str(error.get("detail") or error["message"])
