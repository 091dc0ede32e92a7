"""Pyodide backend: the pool runs in Web Workers started from JupyterLite's kernel worker.

The JS host (host/pool_host.mjs) and the pool modules (wasm/pool-*.wasm) are read from the
installed package through the Emscripten file system and started from a Blob URL, so nothing is
fetched over the network and no bundler is involved. Kernel calls are synchronous: Python calls
the caller instance's export, which does its share of the work and waits on futexes; that is
legal because the Pyodide kernel is itself a Worker.

Interrupts: while a call runs, its caller thread calls `env.host_poll` between chunks and every
20 ms while it waits (kernels/ABI.md); the poll reads the interrupt buffer without clearing it,
and when it holds a signal the call stops with E_CANCELED. JupyterLite's pyodide kernel 0.8.6
gives Pyodide no interrupt buffer, so on a cross-origin isolated page this backend makes one
(`install_interrupts`, run when jupyterlite_rayon is imported, before any pool), announces it to the page with `postMessage({type: INTERRUPT_MESSAGE,
buffer})` (the labextension stores SIGINT into it when the user interrupts the kernel) and makes
it Pyodide's own interrupt buffer while a cell runs, so pure-Python code stops with
KeyboardInterrupt too. Outside cells it is not Pyodide's: an interrupt sent while the kernel is
idle would otherwise raise inside the kernel's own code and wedge it; it is cleared when the
next cell starts instead. One reader at a time, so neither steals the other's signal: during a
pool call Pyodide's own check is off (a Python callback inside the call could take the signal
the poll waits for), and a cancelled call takes the signal out of the buffer before any Python
runs, then Python handles it as Python would (KeyboardInterrupt, or the user's SIGINT handler).
A page that is not isolated has no shared memory: nothing can reach a running call there.
A threaded pool also posts {type: POOL_MESSAGE, buffer: its shared memory, counters: address}
for the page's status bar.
"""

from __future__ import annotations

import re
import signal
import warnings
from importlib import resources
from typing import Any

import js  # type: ignore[import-not-found]
import pyodide_js  # type: ignore[import-not-found]
from pyodide.code import run_js  # type: ignore[import-not-found]
from pyodide.ffi import JsException, create_proxy, to_js  # type: ignore[import-not-found]

from .. import errors, isolation
from ..host import loader
from .base import Backend

_U32 = 0xFFFFFFFF
#: copies up to this many bytes go through strings, larger ones through a typed-array view
SMALL_COPY = 256
INTERRUPT_MESSAGE = "jupyterlite-rayon:interrupt-buffer"
POOL_MESSAGE = "jupyterlite-rayon:pool"

# JS helpers, built once per kernel. `poll` must stay cheap: it runs every 20 ms of a call.
JS = run_js(
    """
({
  importUrl: (url) => import(url),
  blobUrl: (bytes, type) => URL.createObjectURL(new Blob([bytes], { type })),
  // The interrupt buffer's readers (see the module docstring). `poll` is env.host_poll: it runs
  // every 20 ms of a call and must stay cheap. `wrap(fn, returnsStatus)` runs a pool call with
  // Pyodide's own check off and returns {ok, value | error, signal}: the signal a cancelled
  // call took out of the buffer (0 if none). `bare(fn)` is wrap(fn, false) returning a bare 0
  // when the call succeeded and took no signal, else undefined with that object in last():
  // Python then makes no proxy of a result object on the common path.
  signals: (api, module, own, canceled) => {
    let polled = null;
    let last = null;
    const readers = {
      poll: () => (polled !== null && polled[0] !== 0 ? 1 : 0),
      last: () => last,
      bare: (fn) => {
        const wrapped = readers.wrap(fn, false);
        return (...args) => {
          const result = wrapped(...args);
          if (result.ok && result.signal === 0) return 0;
          last = result;
          return undefined; // None in Python (null would be pyodide.ffi.jsnull)
        };
      },
      wrap: (fn, returnsStatus) => (...args) => {
        const buffer = own || module.Py_EmscriptenSignalBuffer || null;
        const attached = buffer !== null && module.Py_EmscriptenSignalBuffer === buffer;
        const outer = polled;
        if (attached) api.setInterruptBuffer(undefined);
        polled = buffer;
        let result;
        try {
          result = { ok: true, value: fn(...args), signal: 0 };
        } catch (error) {
          result = { ok: false, error, signal: 0 };
        } finally {
          polled = outer;
          if (attached) api.setInterruptBuffer(buffer);
        }
        const status = result.ok ? (returnsStatus ? result.value : 0) : result.error && result.error.code;
        if (status === canceled && buffer !== null) result.signal = Atomics.exchange(buffer, 0, 0);
        return result;
      },
    };
    return readers;
  },
  hasSignalBuffer: (module) => !!module.Py_EmscriptenSignalBuffer,
  newSignalBuffer: () => new Int32Array(new SharedArrayBuffer(4)),
  announce: (type, buffer) => self.postMessage({ type, buffer }),
  // The page's status bar reads threads/busy straight from the counters block.
  announcePool: (type, pool, counters) => {
    if (typeof SharedArrayBuffer !== 'undefined' && pool.memory.buffer instanceof SharedArrayBuffer) {
      self.postMessage({ type, buffer: pool.memory.buffer, counters });
    }
  },
  options: (wasm, threads, poll, stdout, stderr) => ({ wasm, threads, poll, stdout, stderr }),
  // A JS error thrown by the host, as a plain object Python can read.
  describe: (error) => ({
    name: String(error && error.name || 'Error'),
    message: String(error && error.message || error),
    code: error && typeof error.code === 'number' ? error.code : null,
    detail: String(error && (error.detail || '') || ''),
  }),
  // Small copies go through latin-1 strings: a new typed-array proxy per call costs far more.
  reader: (pool) => (ptr, n) => {
    const a = pool.view(Uint8Array, ptr, n);
    let s = '';
    for (let i = 0; i < n; i += 8192) s += String.fromCharCode.apply(null, a.subarray(i, i + 8192));
    return s;
  },
  writer: (pool) => (ptr, s) => {
    const a = pool.view(Uint8Array, ptr, s.length);
    for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
  },
  catching: (fn) => (...args) => {
    try { return { ok: true, value: fn(...args) }; } catch (error) { return { ok: false, error }; }
  },
})
"""
)

# One warning per kernel, however many pools are started.
_warned_fallback = False
# The interrupt buffer the page writes into, when this backend made it (see the docstring).
_own_signal: Any = None
# The buffer's readers for pool calls (JS.signals), made once per kernel by signals().
_signal_readers: Any = None


def _package_bytes(*parts: str) -> bytes:
    path = "/".join(parts)
    try:
        return resources.files("jupyterlite_rayon").joinpath(*parts).read_bytes()
    except FileNotFoundError:
        raise errors.PoolError(
            f"jupyterlite_rayon/{path} is missing from the installed package; reinstall "
            "jupyterlite-rayon (in JupyterLite: rebuild the site with the jupyterlite-rayon add-on)"
        ) from None


class PyodideBackend(Backend):
    """The pool inside the Pyodide kernel worker; start it with `await start_async(n)`."""

    name = "pyodide"
    asynchronous = True

    def __init__(self, pool: Any, isolation: dict[str, Any]) -> None:
        # Use start_async(): creating the pool needs awaiting (its workers must run first).
        self._pool = pool
        self._isolation = isolation
        self.threaded = bool(pool.threaded)
        self.counters_address = int(pool.counters)
        self.build_max_threads = int(pool.maxThreads)
        # Bound once: a resident call's overhead is these calls into JS (issue 9 item 13).
        self._readers = signals()
        self._call = self._readers.bare(pool.call.bind(pool))
        self._call_quick = pool.call.bind(pool)
        self._alloc = pool.alloc.bind(pool)
        self._alloc_into = pool.allocInto.bind(pool)
        self._free = pool.free.bind(pool)
        self._free_cell = pool.freeCell.bind(pool)
        self._set_threads = JS.catching(pool.setThreads.bind(pool))
        self._read_small = JS.reader(pool)
        self._write_small = JS.writer(pool)
        self._closed = False
        self._proxies: tuple[Any, ...] = ()
        self._jit: tuple[Any, Any] | None = None  # host.jitLoad, host.jitCall (start_async)
        #: calls stopped by a Jupyter interrupt (each raised KeyboardInterrupt)
        self.interrupted_calls = 0

    @classmethod
    async def start_async(
        cls, threads: int, wasm: dict[str, bytes] | None = None
    ) -> PyodideBackend:
        """Start a pool of `threads` threads (caller included); returns once every helper runs.

        `wasm` = {"mt": bytes, "st": bytes} overrides the packaged builds (tests).
        """
        if wasm is None:
            wasm = {
                "mt": _package_bytes("wasm", "pool-mt.wasm"),
                "st": _package_bytes("wasm", "pool-st.wasm"),
            }
        host = await host_module()
        support = host.detectThreading().to_py()
        isolation = isolation_for(support)
        if isolation["shared_memory"]:
            install_interrupts()
        poll = signals().poll
        stdout = create_proxy(output_writer("stdout"))
        stderr = create_proxy(output_writer("stderr"))
        # Hand the builds over as Uint8Array copies: the host compiles them in this worker.
        builds = to_js({k: to_js(v) for k, v in wasm.items()}, dict_converter=js.Object.fromEntries)
        try:
            pool = await host.createPool(JS.options(builds, threads, poll, stdout, stderr))
        except JsException as e:
            raise _exception("init_thread_pool", JS.describe(e.js_error).to_py()) from None
        backend = cls(pool, isolation)
        backend._proxies = (stdout, stderr)
        backend._jit = (JS.catching(host.jitLoad), signals().wrap(host.jitCall, True))
        JS.announcePool(POOL_MESSAGE, pool, backend.counters_address)
        if not backend.threaded:
            _warn_fallback(isolation, str(pool.fallbackReason or ""))
        return backend

    # -- threads -------------------------------------------------------------------------
    async def resize(self, n: int) -> None:
        """Grow or shrink the live pool to n threads (growing starts and awaits new workers)."""
        self._check_open("init_thread_pool")
        try:
            await self._pool.resize(n)
        except JsException as e:
            raise _exception("init_thread_pool", JS.describe(e.js_error).to_py()) from None

    def set_threads(self, n: int) -> None:
        """Resize now: within the workers already running, else by waiting for new ones where
        Pyodide can block on a promise (JSPI, e.g. inside a cell); else NeedsAwait."""
        self._check_open("set_num_threads")
        if n - 1 <= int(self._pool.workers) or not self.threaded:
            _raise_if_failed("set_num_threads", self._set_threads(n))
            return
        try:
            from pyodide.ffi import can_run_sync, run_sync  # type: ignore[import-not-found]
        except ImportError:
            can_run_sync = None
        if can_run_sync is not None and can_run_sync():
            run_sync(self.resize(n))
            return
        raise errors.NeedsAwait(
            f"set_num_threads({n}): {int(self._pool.workers) + 1} threads' workers are running "
            f"and more can only start asynchronously here; run "
            f"`await jupyterlite_rayon.init_thread_pool({n})`"
        )

    # -- calls ---------------------------------------------------------------------------
    def call(self, export: str, *args: float, quick: bool = False) -> None:
        self._check_open(export)
        if quick:
            # Over in microseconds on this thread: nothing to interrupt, so no hand-off of the
            # interrupt buffer; a signal sent meanwhile stays in it for Pyodide's own check.
            try:
                self._call_quick(export, *args)
            except JsException as e:
                raise _exception(export, JS.describe(e.js_error).to_py()) from None
            return
        if self._call(export, *args) is not None:
            return
        result = self._readers.last()
        if result.signal:
            self._take_signal(int(result.signal))
        # E_CANCELED becomes KeyboardInterrupt (errors.status_error).
        raise _exception(export, JS.describe(result.error).to_py())

    def _take_signal(self, signum: int) -> None:
        """A call stopped for `signum`: handle it as Python would have. The default SIGINT
        handler returns here and the caller raises KeyboardInterrupt for the cancelled call."""
        self.interrupted_calls += 1
        handler = signal.getsignal(signum)
        if callable(handler) and handler is not signal.default_int_handler:
            handler(signum, None)

    # -- jitted modules ------------------------------------------------------------------
    def jit_load(self, wasm: bytes, nfuncs: int) -> int:
        self._check_open("jit")
        if self._jit is None:
            raise errors.PoolError("this pool was not started by start_async: it cannot run jit")
        result = self._jit[0](self._pool, to_js(wasm), nfuncs)
        if result.ok:
            return int(result.value)
        raise _exception("jit (registering a module)", JS.describe(result.error).to_py())

    def jit_call(self, main_slot: int, ctx: int) -> int:
        self._check_open("jit")
        assert self._jit is not None  # jit_load ran first
        result = self._jit[1](self._pool, main_slot, ctx)
        if not result.ok:
            raise _exception("jit", JS.describe(result.error).to_py())
        if result.signal:
            self._take_signal(int(result.signal))  # the jit runtime raises KeyboardInterrupt
        return int(result.value)

    # -- memory --------------------------------------------------------------------------
    def alloc(self, nbytes: int, zero: bool) -> int:
        return self._allocate(nbytes, lambda: self._alloc(nbytes, bool(zero)))

    def alloc_into(self, cell: int, nbytes: int, zero: bool) -> int:
        return self._allocate(nbytes, lambda: self._alloc_into(cell, nbytes, bool(zero)))

    def _allocate(self, nbytes: int, allocate: Any) -> int:
        self._check_open("alloc")
        if nbytes > _U32:
            raise errors.PoolMemoryError(
                f"{nbytes} bytes do not fit in the pool's 32-bit memory; work on smaller chunks"
            )
        try:
            return int(allocate())
        except JsException as e:
            error = JS.describe(e.js_error).to_py()
        if error["code"] == errors.E_NOMEM:
            in_use = self.counters(threads=False).bytes_in_use
            raise errors.PoolMemoryError(
                f"the pool cannot allocate {nbytes} bytes: with the {in_use} bytes its arrays "
                "hold, that exceeds its memory's maximum (2 GiB); close arrays you no longer "
                "need (a.close() or del a) or use smaller arrays"
            )
        raise _exception("alloc", error)

    def free(self, ptr: int) -> None:
        self.free_soon(ptr)

    def free_soon(self, ptr: int) -> None:
        # No other thread runs Python here, so a finalizer can free right away; the host makes
        # it a no-op once the pool is terminated.
        if not self._closed:
            self._free(ptr)

    def free_cell(self, cell: int) -> None:
        if not self._closed:
            self._free_cell(cell)

    def _view(self, ptr: int, nbytes: int) -> Any:
        # A fresh view every time: memory may have grown since the last one.
        try:
            return self._pool.view(js.Uint8Array, ptr, nbytes)
        except JsException as e:
            raise errors.PoolError(f"pool memory access: {e.message}") from None

    def write(self, ptr: int, data: memoryview) -> None:
        self._check_open("write")
        data = memoryview(data).cast("B")
        if data.nbytes > SMALL_COPY:
            self._view(ptr, data.nbytes).assign(data)
        elif data.nbytes:
            try:
                self._write_small(ptr, bytes(data).decode("latin-1"))
            except JsException as e:
                raise errors.PoolError(f"pool memory access: {e.message}") from None

    def read(self, ptr: int, nbytes: int) -> bytes:
        self._check_open("read")
        if nbytes == 0:
            return b""
        if nbytes > SMALL_COPY:
            return bytes(self._view(ptr, nbytes).to_bytes())
        try:
            return str(self._read_small(ptr, nbytes)).encode("latin-1")
        except JsException as e:
            raise errors.PoolError(f"pool memory access: {e.message}") from None

    def read_into(self, ptr: int, out: memoryview) -> None:
        self._check_open("read")
        out = memoryview(out).cast("B")
        if out.nbytes > SMALL_COPY:
            self._view(ptr, out.nbytes).assign_to(out)
        elif out.nbytes:
            out[:] = self.read(ptr, out.nbytes)

    def memory_size(self) -> int:
        return int(self._pool.memory.buffer.byteLength)

    # -- the host ------------------------------------------------------------------------
    def cpu_count(self) -> int:
        return int(getattr(js.navigator, "hardwareConcurrency", 1) or 1)

    def isolation(self) -> dict[str, Any]:
        return dict(self._isolation)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Worker.terminate() takes effect at once; the promise only reports completion.
        self._pool.terminate()
        for proxy in self._proxies:
            proxy.destroy()

    def _check_open(self, where: str) -> None:
        if self._closed:
            raise errors.PoolNotStarted(
                f"{where}: the pool was closed; run `await jupyterlite_rayon.init_thread_pool()` "
                "to start a new one"
            )


async def host_module() -> Any:
    """The host's ES modules, imported once per kernel from Blob URLs of the packaged sources."""
    global _host
    if _host is None:
        urls = loader.link(lambda _name, source: JS.blobUrl(source, "text/javascript"))
        _host = await JS.importUrl(urls[loader.ENTRY])
    return _host


_host: Any = None


def isolation_for(support: dict[str, Any]) -> dict[str, Any]:
    coi = bool(getattr(js, "crossOriginIsolated", False))
    ok = bool(support.get("ok"))
    reason = support.get("reason") or ""
    fix = "" if ok else isolation.fix_for_host(str(js.location.hostname))
    return {"cross_origin_isolated": coi, "shared_memory": ok, "reason": reason, "fix": fix}


def _warn_fallback(isolation: dict[str, Any], why: str) -> None:
    global _warned_fallback
    if _warned_fallback:
        return
    _warned_fallback = True
    reason = isolation["reason"] or why or "threads are not available"
    warnings.warn(
        f"jupyterlite_rayon runs single-threaded: {reason}. Results are the same, only slower. "
        f"To get threads: {isolation['fix']}",
        RuntimeWarning,
        stacklevel=4,  # the user's `await init_thread_pool()`, through pool.py
    )


def signals() -> Any:
    """The interrupt buffer's readers for pool calls, made once the buffer is known."""
    global _signal_readers
    if _signal_readers is None:
        _signal_readers = JS.signals(pyodide_js, pyodide_js._module, _own_signal, errors.E_CANCELED)
    return _signal_readers


def install_interrupts() -> None:
    """Make interrupts reach this kernel on an isolated page, unless Pyodide already has an
    interrupt buffer: make one, give it to the page, and make it Pyodide's while cells run."""
    global _own_signal, _signal_readers
    if _own_signal is not None or JS.hasSignalBuffer(pyodide_js._module):
        return
    if not bool(getattr(js, "crossOriginIsolated", False)):
        return  # no shared memory: the page could not write into a buffer this worker reads
    _own_signal = JS.newSignalBuffer()
    _signal_readers = None  # readers made before now knew no buffer
    JS.announce(INTERRUPT_MESSAGE, _own_signal)
    _attach_during_cells(_own_signal)


def _attach_during_cells(buffer: Any) -> None:
    """Pyodide's interrupt buffer from the start to the end of each cell (this one included);
    cleared at the start, so an interrupt sent while the kernel was idle stops nothing."""
    pyodide_js.setInterruptBuffer(buffer)
    try:
        from IPython import get_ipython
    except ImportError:
        return  # plain Pyodide: no kernel code to protect, the buffer stays Pyodide's
    shell = get_ipython()
    if shell is None:
        return

    def attach(*_: Any) -> None:
        js.Atomics.store(buffer, 0, 0)
        pyodide_js.setInterruptBuffer(buffer)

    def detach(*_: Any) -> None:
        pyodide_js.setInterruptBuffer(None)  # undefined: Pyodide stops checking

    shell.events.register("pre_run_cell", attach)
    shell.events.register("post_run_cell", detach)


def output_writer(stream: str) -> Any:
    """A pool module's WASI output goes to the cell's stdout/stderr."""
    import sys

    def write(text: str) -> None:
        getattr(sys, stream).write(text)

    return write


def _raise_if_failed(where: str, result: Any) -> None:
    if not result.ok:
        raise _exception(where, JS.describe(result.error).to_py())


def _exception(where: str, error: dict[str, Any]) -> BaseException:
    """The one conversion of a host error into a Python exception."""
    code, name, detail = error["code"], error["name"], error["detail"] or error["message"]
    if isinstance(code, int) and code in errors.STATUS_NAMES and code != errors.OK:
        return errors.status_error(where, code, detail)
    if name == "WasmTrap":
        return errors.WasmTrap(f"{where}: {detail}")
    if name == "ProcExit":
        found = re.search(r"proc_exit\((-?\d+)\)", error["message"])
        return errors.ProcExit(int(found.group(1))) if found else errors.PoolError(detail)
    if name in ("TypeError", "RangeError"):
        return ValueError(f"{where}: {error['message']}")
    return errors.PoolError(f"{where}: {error['message']}")
