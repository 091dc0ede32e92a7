"""Pyodide backend: the pool runs in Web Workers started from JupyterLite's kernel worker.

The JS host (host/pool_host.mjs) and the pool modules (wasm/pool-*.wasm) are read from the
installed package through the Emscripten file system and started from a Blob URL, so nothing is
fetched over the network and no bundler is involved. Kernel calls are synchronous: Python calls
the caller instance's export, which does its share of the work and waits on futexes; that is
legal because the Pyodide kernel is itself a Worker.

Interrupts: while a call runs, its caller thread calls `env.host_poll` between chunks and every
20 ms while it waits (kernels/ABI.md). If Pyodide has an interrupt buffer, the poll reads it
without clearing it; when it holds SIGINT the call stops with E_CANCELED and
`pyodide.checkInterrupt()` lets Python itself take the signal, which raises KeyboardInterrupt
(or runs the user's SIGINT handler). JupyterLite's pyodide kernel 0.8.6 gives
Pyodide no interrupt buffer, so on a cross-origin isolated page this backend makes one of its own
and announces it to the page with `postMessage({type: INTERRUPT_MESSAGE, buffer})`; the page
side (the labextension) stores 2 into it when the user interrupts the kernel. Only pool calls
read that buffer: were it Pyodide's, an interrupt sent while the kernel is idle would raise
inside the kernel's own code at the next cell and wedge it. It is cleared when a cell starts.
A page that is not isolated has no shared memory: nothing can reach a running call there.
A threaded pool also posts {type: POOL_MESSAGE, buffer: its shared memory, counters: address}
for the page's status bar.
"""

from __future__ import annotations

import re
import warnings
from importlib import resources
from typing import Any

import js  # type: ignore[import-not-found]
import pyodide_js  # type: ignore[import-not-found]
from pyodide.code import run_js  # type: ignore[import-not-found]
from pyodide.ffi import JsException, create_proxy, to_js  # type: ignore[import-not-found]

from .. import abi, errors, isolation
from .base import Backend

_U32 = 0xFFFFFFFF
#: copies up to this many bytes go through strings, larger ones through a typed-array view
SMALL_COPY = 256
INTERRUPT_MESSAGE = "jupyterlite-rayon:interrupt-buffer"
POOL_MESSAGE = "jupyterlite-rayon:pool"

# JS helpers, built once per kernel. `poll` must stay cheap: it runs every 20 ms of a call.
_JS = run_js(
    """
({
  importUrl: (url) => import(url),
  blobUrl: (bytes, type) => URL.createObjectURL(new Blob([bytes], { type })),
  // Non-zero while the interrupt buffer (ours, else Pyodide's) holds a signal; read, never cleared.
  makePoll: (module, own) => () => {
    const buffer = own || module.Py_EmscriptenSignalBuffer;
    return buffer && buffer[0] !== 0 ? 1 : 0;
  },
  signalPending: (module) => {
    const buffer = module.Py_EmscriptenSignalBuffer;
    return !!(buffer && buffer[0] !== 0);
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
    """The pool inside the Pyodide kernel worker. Start it with `await PyodideBackend.start(n)`."""

    name = "pyodide"
    asynchronous = True

    def __init__(self, pool: Any, isolation: dict[str, Any]) -> None:
        # Use start(): creating the pool needs awaiting (helper workers must be running first).
        self._pool = pool
        self._isolation = isolation
        self.threaded = bool(pool.threaded)
        self.exports = pool.exports
        self.counters_address = int(self.exports.jr_counters()) & _U32
        self.build_max_threads = int(self.exports.jr_max_threads())
        self._call = _JS.catching(pool.call.bind(pool))
        self._read_small = _JS.reader(pool)
        self._write_small = _JS.writer(pool)
        self._closed = False
        self._proxies: tuple[Any, ...] = ()
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
        host = await _host_module()
        support = host.detectThreading().to_py()
        isolation = _isolation(support)
        if isolation["shared_memory"]:
            _install_interrupt_buffer()
        poll = _JS.makePoll(pyodide_js._module, _own_signal)
        stdout = create_proxy(_writer("stdout"))
        stderr = create_proxy(_writer("stderr"))
        # Hand the builds over as Uint8Array copies: the host compiles them in this worker.
        builds = to_js({k: to_js(v) for k, v in wasm.items()}, dict_converter=js.Object.fromEntries)
        try:
            pool = await host.createPool(_JS.options(builds, threads, poll, stdout, stderr))
        except JsException as e:
            raise _host_error("init_thread_pool", e) from None
        backend = cls(pool, isolation)
        backend._proxies = (stdout, stderr)
        _JS.announcePool(POOL_MESSAGE, pool, backend.counters_address)
        if not backend.threaded:
            _warn_fallback(isolation, str(pool.fallbackReason or ""))
        return backend

    async def resize(self, n: int) -> None:
        """Grow or shrink the live pool to n threads (growing starts and awaits new workers)."""
        self._check_open("init_thread_pool")
        if not self.threaded and n != 1:
            # The single-thread build always runs one thread; the warning already said why.
            return
        try:
            await self._pool.resize(n)
        except JsException as e:
            raise _host_error("init_thread_pool", e) from None

    def call(self, export: str, *args: float) -> None:
        self._check_open(export)
        result = self._call(export, *args)
        if result.ok:
            return
        error = _JS.describe(result.error).to_py()
        code = error["code"]
        if code == errors.E_CANCELED:
            if _own_signal is not None and _own_signal[0] != 0:
                js.Atomics.store(_own_signal, 0, 0)
                self.interrupted_calls += 1
                raise KeyboardInterrupt(f"{export} was interrupted; the pool is ready")
            if _JS.signalPending(pyodide_js._module):
                # Python takes the signal itself: KeyboardInterrupt, or the user's SIGINT handler.
                self.interrupted_calls += 1
                pyodide_js.checkInterrupt()
        if isinstance(code, int) and error["name"] in errors.STATUS_NAMES.values():
            raise errors.status_error(export, code, error["detail"] or error["message"])
        raise _error_from(export, error)

    def alloc(self, nbytes: int, zero: bool) -> int:
        if nbytes > _U32:
            raise errors.PoolMemoryError(
                f"{nbytes} bytes do not fit in the pool's 32-bit memory; work on smaller chunks"
            )
        ptr = self._value("jr_alloc", nbytes, 1 if zero else 0) & _U32
        if not ptr:
            in_use = self.counters(threads=False).bytes_in_use
            raise errors.PoolMemoryError(
                f"the pool cannot allocate {nbytes} bytes: with the {in_use} bytes its arrays "
                "hold, that exceeds its memory's maximum; close arrays you no longer need "
                "(a.close() or del a) or use smaller arrays"
            )
        return ptr

    def free(self, ptr: int) -> None:
        self.free_soon(ptr)

    def _value(self, export: str, *args: float) -> int:
        self._check_open(export)
        fn = getattr(self.exports, export, None)
        if fn is None:
            raise errors.PoolError(f"the pool module has no export {export!r}")
        try:
            value = fn(*args)
        except JsException as e:
            raise _host_error(export, e) from None
        return 0 if value is None else int(value)

    def free_soon(self, ptr: int) -> None:
        # No other thread runs Python here, so a finalizer can free right away.
        if not self._closed:
            self.exports.jr_free(ptr)

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

    def store_u32(self, ptr: int, value: int) -> None:
        self._check_open("write")
        js.Atomics.store(self._pool.view(js.Uint32Array, ptr, 1), 0, value)

    def memory_size(self) -> int:
        return int(self._pool.memory.buffer.byteLength)

    def set_threads(self, n: int) -> None:
        """Resize within the workers already running (no await possible here).

        Growing past them needs `await init_thread_pool(n)`, which starts more workers.
        """
        self._check_open("set_num_threads")
        if not self.threaded:
            if n != 1:
                raise ValueError(
                    "this pool runs the single-thread build (the page is not cross-origin "
                    f"isolated), so it has exactly 1 thread; to fix: {self._isolation['fix']}"
                )
            return
        before = int(self._pool.threads)
        status = self._value("jr_set_threads", n)
        if status == errors.E_THREADS:
            # Keep the pool as it was rather than with however many threads happened to start.
            self._value("jr_set_threads", before)
            raise ValueError(
                f"set_num_threads({n}): the pool's workers were started for fewer threads; "
                f"run `await jupyterlite_rayon.init_thread_pool({n})` to start more"
            )
        if status != 0:
            raise errors.status_error("set_num_threads", status, abi.STATUS_MEANING.get(status, ""))

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


async def _host_module() -> Any:
    """The host module, imported once per kernel from a Blob URL of the packaged source."""
    global _host
    if _host is None:
        source = _package_bytes("host", "pool_host.mjs")
        url = _JS.blobUrl(to_js(source), "text/javascript")
        _host = await _JS.importUrl(url)
    return _host


_host: Any = None


def _isolation(support: dict[str, Any]) -> dict[str, Any]:
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


def _install_interrupt_buffer() -> None:
    """Give the page a buffer to store SIGINT into, unless Pyodide already has one."""
    global _own_signal
    if _own_signal is not None or _JS.hasSignalBuffer(pyodide_js._module):
        return
    _own_signal = _JS.newSignalBuffer()
    _JS.announce(INTERRUPT_MESSAGE, _own_signal)
    _clear_at_cell_start(_own_signal)


def _clear_at_cell_start(buffer: Any) -> None:
    """An interrupt sent while the kernel was idle must not cancel the next cell's pool call."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def clear(*_: Any) -> None:
        js.Atomics.store(buffer, 0, 0)

    shell.events.register("pre_run_cell", clear)


def _writer(stream: str) -> Any:
    """A pool module's WASI output goes to the cell's stdout/stderr."""
    import sys

    def write(text: str) -> None:
        getattr(sys, stream).write(text)

    return write


def _error_from(export: str, error: dict[str, Any]) -> Exception:
    name, message = error["name"], error["message"]
    if name == "WasmTrap":
        return errors.WasmTrap(message)
    if name == "ProcExit":
        code = re.search(r"proc_exit\((-?\d+)\)", message)
        return errors.ProcExit(int(code.group(1))) if code else errors.PoolError(message)
    if name in ("TypeError", "RangeError"):
        return ValueError(message)
    return errors.PoolError(message)


def _host_error(where: str, e: JsException) -> Exception:
    name = getattr(e, "name", "") or ""
    message = getattr(e, "message", "") or str(e)
    if name in ("TypeError", "RangeError"):
        return ValueError(f"{where}: {message}")
    if name == "ThreadsUnavailable":
        return errors.PoolError(f"{where}: {message}")
    return errors.PoolError(f"{where}: {message}")
