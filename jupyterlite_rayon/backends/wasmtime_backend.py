"""CPython backend: the pool module on wasmtime, with real threads on one shared memory.

Every thread of the wasm program is a Python thread with its own Store and Instance, all
importing one SharedMemory (wasmtime Stores are not shared between threads). Wasm calls go
through ctypes, which releases the GIL, so the threads run in parallel.

- Helper threads serve `wasi.thread-spawn`: they are started and instantiated ahead of time,
  so a spawn only queues (tid, arg) and never blocks; more are started if all are busy.
- Kernel calls run on one dedicated caller thread that owns the caller instance. The Python
  thread that asked waits in short, interruptible waits; Ctrl-C sets the pool's cancel flag,
  the call returns E_CANCELED, and KeyboardInterrupt is raised with the pool intact.
- Short control calls (jr_alloc, jr_free, jr_set_threads) run directly on the calling thread
  on the same instance, under the same lock: a thread hand-off costs more than they do.

`WasmThreads` is the generic part (any wasi-threads module); foreign.py reuses it.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import queue
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import wasmtime as W
from wasmtime import _ffi as ffi

from .. import errors
from .base import Backend

PAGE = 65536
_U32 = 0xFFFFFFFF

# wasmtime-py 50.0.1 passes a pointer-to-pointer in SharedMemory._as_extern, so a shared
# memory cannot be given to a Linker; this is the corrected method.
W.SharedMemory._as_extern = lambda self: ffi.wasmtime_extern_t(  # type: ignore[method-assign]
    ffi.WASMTIME_EXTERN_SHAREDMEMORY, ffi.wasmtime_extern_union(sharedmemory=self.ptr())
)

_engines: dict[bool, W.Engine] = {}
_engines_lock = threading.Lock()


def engine(interruptible: bool = False) -> W.Engine:
    """The process-wide engine. `interruptible` adds epoch checks (foreign modules only)."""
    with _engines_lock:
        if interruptible not in _engines:
            cfg = W.Config()
            cfg.wasm_threads = True
            cfg.shared_memory = True
            cfg.wasm_simd = True
            cfg.wasm_bulk_memory = True
            cfg.epoch_interruption = interruptible
            _engines[interruptible] = W.Engine(cfg)
        return _engines[interruptible]


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jupyterlite-rayon"


def compile_module(eng: W.Engine, wasm: bytes, interruptible: bool = False) -> W.Module:
    """Compile wasm, reusing a compiled copy from the user cache dir (Cranelift takes seconds)."""
    key = hashlib.sha256(wasm + f"{W.__name__}{interruptible}".encode()).hexdigest()[:32]
    version = getattr(W, "__version__", "")
    path = _cache_dir() / f"{key}-{version}.cwasm"
    try:
        if path.exists():
            return W.Module.deserialize_file(eng, str(path))
    except (W.WasmtimeError, OSError):
        pass  # stale or foreign cache entry: compile again
    module = W.Module(eng, wasm)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(module.serialize())
        tmp.replace(path)
    except OSError:
        pass  # a read-only home is fine: we only lose the cache
    return module


_KINDS = {"i32": 0, "i64": 1, "f32": 2, "f64": 3}


class Export:
    """A fast caller for one exported function of one instance.

    Func.__call__ of wasmtime-py looks up the type and boxes every value on each call; this
    precomputes the signature and uses wasmtime_func_call_unchecked on a reused raw array.
    Not thread-safe: an Export belongs to the thread that owns its Store.
    """

    def __init__(self, store: W.Store, func: W.Func) -> None:
        ty = func.type(store)
        self.params = [_KINDS[str(p)] for p in ty.params]
        self.results = [_KINDS[str(r)] for r in ty.results]
        self._store = store
        self._ctx = store._context()
        self._func = ctypes.byref(func._func)
        self._keep = func
        self._raw = (ffi.wasmtime_val_raw_t * max(1, len(self.params), len(self.results)))()
        self._trap = ctypes.POINTER(ffi.wasm_trap_t)()
        self._n = len(self._raw)

    def __call__(self, *args: float) -> Any:
        params = self.params
        if len(args) != len(params):
            raise TypeError(f"expected {len(params)} arguments, got {len(args)}")
        raw = self._raw
        for i, (kind, value) in enumerate(zip(params, args, strict=True)):
            slot = raw[i]
            if kind == 0:
                slot.i32 = _to_i32(value)
            elif kind == 1:
                slot.i64 = _to_i64(value)
            elif kind == 2:
                slot.f32 = float(value)
            else:
                slot.f64 = float(value)
        trap = self._trap
        error = ffi.wasmtime_func_call_unchecked(
            self._ctx, self._func, raw, self._n, ctypes.byref(trap)
        )
        if error:
            raise _TrapError(str(W.WasmtimeError._from_ptr(error)))
        if trap:
            message = W.Trap._from_ptr(trap).message
            self._trap = ctypes.POINTER(ffi.wasm_trap_t)()
            raise _TrapError(_short_trap(message))
        if not self.results:
            return None
        kind = self.results[0]
        first = raw[0]
        if kind == 0:
            return first.i32
        if kind == 1:
            return first.i64
        if kind == 2:
            return first.f32
        return first.f64


def _to_i32(value: float) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an int for an i32 parameter, got {type(value).__name__}")
    if not -(1 << 31) <= value <= _U32:
        raise OverflowError(f"{value} does not fit in 32 bits")
    return value


def _to_i64(value: float) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an int for an i64 parameter, got {type(value).__name__}")
    if not -(1 << 63) <= value < (1 << 64):
        raise OverflowError(f"{value} does not fit in 64 bits")
    return value


def _short_trap(message: str) -> str:
    """wasmtime's trap text without the backtrace: the cause lines, e.g. 'out of bounds'."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if "Caused by:" in lines:
        causes = lines[lines.index("Caused by:") + 1 :]
        return "; ".join(c.split(": ", 1)[-1] if c[:1].isdigit() else c for c in causes)
    return lines[-1] if lines else "trap"


class _TrapError(Exception):
    """Internal: the wasm code trapped (message from wasmtime)."""


def _clear_callback_exception() -> None:
    # wasmtime-py parks an exception raised in a host function in a module global and
    # re-raises it from the next Func.__call__ anywhere; we record our own, so drop it.
    from wasmtime import _func

    _func.LAST_EXCEPTION = None


ImportsFn = Callable[["WasmThreads", W.Store], dict[tuple[str, str], Any]]


class WasmThreads:
    """One wasi-threads module: one shared memory, helper threads, one caller thread.

    `imports(host, store)` returns the extra imports of one instance (everything except
    env.memory and wasi.thread-spawn), e.g. WASI functions or env.host_poll.
    """

    def __init__(
        self,
        module: W.Module,
        eng: W.Engine,
        imports: ImportsFn,
        helpers: int,
        name: str = "module",
        interruptible: bool = False,
    ) -> None:
        self.module = module
        self.engine = eng
        self.name = name
        self.interruptible = interruptible
        self._imports = imports
        mem_type = _memory_import(module)
        limits = mem_type.limits
        if not mem_type.is_shared:
            raise errors.ForeignModuleError(
                f"{name}: env.memory is not shared; build with --shared-memory "
                "(and --import-memory) for wasi-threads"
            )
        self.max_bytes = (limits.max if limits.max is not None else 65536) * PAGE
        self.memory = W.SharedMemory(eng, W.MemoryType(W.Limits(limits.min, limits.max),
                                                       shared=True))
        # A shared memory never moves (wasmtime reserves its maximum), so the base is fixed.
        self.base = ctypes.cast(self.memory.data_ptr(), ctypes.c_void_p).value or 0
        self._size = self.memory.data_len()
        self._lock = threading.Lock()  # guards the caller instance
        self._spawns: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self._spawn_lock = threading.Lock()
        self._next_tid = 1
        self._idle = 0
        self._helpers: list[threading.Thread] = []
        self.thread_errors: list[str] = []
        self.exit_code: int | None = None
        self._closed = False
        self._deferred_frees: list[tuple[str, int]] = []
        self._ready = threading.Semaphore(0)
        for _ in range(helpers):
            self._start_helper()
        for _ in range(helpers):
            self._ready.acquire()
        if self.thread_errors:
            raise errors.ForeignModuleError(f"{name}: {self.thread_errors[0]}")
        self._new_caller_instance()
        self._requests: queue.SimpleQueue[tuple[int, str, tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        # Each request has a number; a result is taken only by the waiter of that number, so
        # a call abandoned by an ill-timed interrupt can never hand its result to the next.
        self._seq = 0
        self._done = threading.Lock()  # released by the caller thread when a result is ready
        self._done.acquire()
        self._result: tuple[int, bool, Any] = (0, True, None)
        self._caller = threading.Thread(target=self._caller_loop, name=f"{name}-caller",
                                        daemon=True)
        self._caller.start()

    # -- instances -----------------------------------------------------------------------
    def instantiate(self) -> tuple[W.Store, W.Instance]:
        store = W.Store(self.engine)
        if self.interruptible:
            store.set_epoch_deadline(1 << 62)
        linker = W.Linker(self.engine)
        linker.define(store, "env", "memory", self.memory)
        spawn_type = W.FuncType([W.ValType.i32()], [W.ValType.i32()])
        linker.define_func("wasi", "thread-spawn", spawn_type, self._spawn)
        for (mod, field), item in self._imports(self, store).items():
            if isinstance(item, tuple):
                linker.define_func(mod, field, item[0], item[1])
            else:
                linker.define(store, mod, field, item)
        try:
            instance = linker.instantiate(store, self.module)
        except W.WasmtimeError as exc:
            raise errors.ForeignModuleError(f"{self.name}: cannot instantiate: {exc}") from None
        return store, instance

    def _new_caller_instance(self) -> None:
        store, instance = self.instantiate()
        self.store = store
        self.instance = instance
        self._exports: dict[str, Export] = {}
        for start in ("_initialize", "_start"):
            if start in self.export_names():
                self.call_direct(start)
                break

    def export_names(self) -> list[str]:
        return [e.name for e in self.module.exports]

    def export(self, name: str) -> Export:
        fn = self._exports.get(name)
        if fn is None:
            item = self.instance.exports(self.store).get(name)
            if not isinstance(item, W.Func):
                raise AttributeError(f"{self.name} has no exported function {name!r}")
            fn = self._exports[name] = Export(self.store, item)
        return fn

    # -- threads -------------------------------------------------------------------------
    def _spawn(self, arg: int) -> int:
        with self._spawn_lock:
            if self._closed:
                return -1
            tid = self._next_tid
            self._next_tid = self._next_tid % 0x1FFFFFFE + 1  # wasi-threads: 1..2^29-1
            start_helper = self._idle == 0
            if not start_helper:
                self._idle -= 1
        if start_helper:
            try:
                self._start_helper(count_idle=False)
            except RuntimeError:
                return -1
        self._spawns.put((tid, arg))
        return tid

    def _start_helper(self, count_idle: bool = True) -> None:
        thread = threading.Thread(target=self._helper_loop, args=(count_idle,),
                                  name=f"{self.name}-thread-{len(self._helpers) + 1}",
                                  daemon=True)
        self._helpers.append(thread)
        thread.start()

    def _helper_loop(self, count_idle: bool) -> None:
        try:
            store, instance = self.instantiate()
            start = Export(store, instance.exports(store)["wasi_thread_start"])  # type: ignore
        except Exception as exc:  # noqa: BLE001 -- reported by the constructor or next call
            self.thread_errors.append(f"a helper thread could not start: {exc}")
            self._ready.release()
            return
        if count_idle:
            with self._spawn_lock:
                self._idle += 1
            self._ready.release()
        while True:
            item = self._spawns.get()
            if item is None:
                return
            tid, arg = item
            try:
                start(tid, arg)
            except _TrapError as exc:
                _clear_callback_exception()
                self.thread_errors.append(f"thread {tid} trapped: {exc}")
                # The instance's stack pointer and TLS may be garbage now: start fresh.
                store, instance = self.instantiate()
                start = Export(store, instance.exports(store)["wasi_thread_start"])  # type: ignore
            with self._spawn_lock:
                self._idle += 1

    # -- calls ---------------------------------------------------------------------------
    def call_direct(self, name: str, *args: float) -> Any:
        """Call an export on the calling thread (for short calls); raises WasmTrap."""
        with self._lock:
            self._drain_frees()
            return self._invoke(name, args)

    def free_soon(self, name: str, ptr: int) -> None:
        """Call export `name(ptr)` now if the instance is free, else before the next call.

        For finalizers: they may run in the middle of a call on this same thread.
        """
        if self._closed:
            return
        if self._lock.acquire(blocking=False):
            try:
                self._drain_frees()
                self._invoke(name, (ptr,))
            finally:
                self._lock.release()
        else:
            self._deferred_frees.append((name, ptr))

    def _drain_frees(self) -> None:
        while self._deferred_frees:
            name, ptr = self._deferred_frees.pop()
            self._invoke(name, (ptr,))

    def _invoke(self, name: str, args: tuple[Any, ...]) -> Any:
        if self._closed:
            raise errors.PoolError(f"{self.name} is closed; start it again")
        fn = self.export(name)
        self.exit_code = None
        if self.interruptible:
            self.store.set_epoch_deadline(1)
        try:
            return fn(*args)
        except _TrapError as exc:
            _clear_callback_exception()
            code = self.exit_code
            # The trapped frames left the stack pointer moved: a fresh instance is clean.
            self._new_caller_instance()
            if code is not None:
                raise errors.ProcExit(code) from None
            raise errors.WasmTrap(f"{self.name}.{name} trapped: {exc}") from None

    def run(self, name: str, args: tuple[Any, ...], on_interrupt: Callable[[], None],
            grace: float | None = None) -> Any:
        """Call an export on the caller thread; the calling thread waits interruptibly.

        On KeyboardInterrupt, on_interrupt() asks the code to stop; we then wait for the call
        to return (at most `grace` seconds if given) and re-raise KeyboardInterrupt.
        """
        with self._lock:
            if self._closed:
                raise errors.PoolError(f"{self.name} is closed; start it again")
            self._drain_frees()
            self._seq += 1
            seq = self._seq
            self._requests.put((seq, name, args))
            interrupted = False
            waited = 0.0
            while True:
                try:
                    if self._done.acquire(timeout=0.05):
                        if self._result[0] == seq:
                            break
                        continue  # the late result of an abandoned call
                    if interrupted:
                        waited += 0.05
                        if grace is not None and waited > grace:
                            self._closed = True
                            raise KeyboardInterrupt(
                                f"{self.name}.{name} did not stop; load the module again"
                            )
                except KeyboardInterrupt:
                    if interrupted and self._closed:
                        raise
                    interrupted = True
                    on_interrupt()
            _, ok, value = self._result
        if interrupted:
            raise KeyboardInterrupt
        if not ok:
            raise value
        return value

    def _caller_loop(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            seq, name, args = request
            try:
                self._result = (seq, True, self._invoke(name, args))
            except BaseException as exc:  # noqa: BLE001 -- re-raised in the waiting thread
                self._result = (seq, False, exc)
            try:
                self._done.release()
            except RuntimeError:
                pass  # already released for an abandoned call: _result now holds this one

    # -- memory --------------------------------------------------------------------------
    def memory_size(self) -> int:
        self._size = self.memory.data_len()
        return self._size

    def _check(self, ptr: int, nbytes: int) -> None:
        if ptr < 0 or nbytes < 0 or ptr + nbytes > self._size:
            if ptr >= 0 and nbytes >= 0 and ptr + nbytes <= self.memory_size():
                return
            raise errors.PoolError(
                f"{self.name}: bytes [{ptr}, {ptr + nbytes}) are outside memory "
                f"({self._size} bytes)"
            )

    def write(self, ptr: int, data: memoryview) -> None:
        n = data.nbytes
        self._check(ptr, n)
        if n:
            dst = (ctypes.c_ubyte * n).from_address(self.base + ptr)
            memoryview(dst).cast("B")[:] = data.cast("B") if data.format != "B" else data

    def read(self, ptr: int, nbytes: int) -> bytes:
        self._check(ptr, nbytes)
        return ctypes.string_at(self.base + ptr, nbytes)

    def read_into(self, ptr: int, out: memoryview) -> None:
        n = out.nbytes
        self._check(ptr, n)
        if n:
            src = (ctypes.c_ubyte * n).from_address(self.base + ptr)
            out.cast("B")[:] = memoryview(src).cast("B")

    def store_u32(self, ptr: int, value: int) -> None:
        self._check(ptr, 4)
        ctypes.c_uint32.from_address(self.base + ptr).value = value

    def read_cstring(self, ptr: int) -> str:
        self._check(ptr, 1)
        return ctypes.string_at(self.base + ptr).decode("utf-8", "replace")

    def close(self) -> None:
        with self._spawn_lock:
            if self._closed:
                return
            self._closed = True
        self._requests.put(None)
        for _ in self._helpers:
            self._spawns.put(None)


def _memory_import(module: W.Module) -> W.MemoryType:
    for imp in module.imports:
        if (imp.module, imp.name) == ("env", "memory") and isinstance(imp.type, W.MemoryType):
            return imp.type
    raise errors.ForeignModuleError(
        "the module does not import env.memory; build it with --import-memory --shared-memory"
    )


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


class WasmtimeBackend(Backend):
    """The pool module (pool-mt.wasm) on wasmtime."""

    name = "wasmtime"
    threaded = True

    def __init__(self, threads: int, wasm: bytes | None = None) -> None:
        eng = engine()
        module = compile_module(eng, wasm if wasm is not None else _package_wasm("pool-mt.wasm"))
        # Pre-start as many helper threads as the pool will use, so spawns never wait.
        self.wasm = WasmThreads(module, eng, self._pool_imports, helpers=max(threads - 1, 0),
                                name="pool")
        version = self.wasm.call_direct("jr_abi_version")
        if version != 1:
            raise errors.PoolError(f"pool-mt.wasm has ABI version {version}, expected 1; "
                                   "rebuild it with `python kernels/build.py`")
        self.counters = self.wasm.call_direct("jr_counters") & _U32
        self.build_max_threads = self.wasm.call_direct("jr_max_threads") & _U32
        self._cancel = self.counters + 16
        self.set_threads(threads)

    @staticmethod
    def _pool_imports(host: WasmThreads, store: W.Store) -> dict[tuple[str, str], Any]:
        # The cancel flag is set by run()'s interrupt handler, so polling has nothing to add.
        # The caller polls every few tasks: a wasm function keeps that free, where a Python
        # callback would cost microseconds each time.
        poll = W.Instance(store, _no_poll_module(host.engine), [])
        return {("env", "host_poll"): poll.exports(store)["host_poll"]}

    @classmethod
    def start(cls, threads: int) -> WasmtimeBackend:
        return cls(threads)

    def call(self, export: str, *args: float) -> int:
        wasm = self.wasm
        wasm.store_u32(self._cancel, 0)
        return int(wasm.run(export, args, self._interrupt))

    def _interrupt(self) -> None:
        self.wasm.store_u32(self._cancel, 1)

    def call_value(self, export: str, *args: float) -> int:
        value = self.wasm.call_direct(export, *args)
        return 0 if value is None else int(value)

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

    def strerror(self, status: int) -> str:
        return self.wasm.read_cstring(self.call_value("jr_strerror", status) & _U32)

    def set_threads(self, n: int) -> None:
        status = self.call_value("jr_set_threads", n)
        if status != 0:
            raise errors.status_error("set_num_threads", status, self.strerror(status))

    def cpu_count(self) -> int:
        return os.cpu_count() or 1

    def isolation(self) -> dict[str, Any]:
        return {"cross_origin_isolated": True, "shared_memory": True, "reason": "",
                "fix": ""}

    def close(self) -> None:
        try:
            self.set_threads(1)
        finally:
            self.wasm.close()
