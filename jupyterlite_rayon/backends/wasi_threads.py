"""A wasi-threads host on wasmtime: one shared memory, one Store+Instance per thread.

Any module that follows wasi-threads (imports a shared `env.memory` and `wasi.thread-spawn`,
exports `wasi_thread_start`) runs here: the pool module (wasmtime_backend.py) and users' own
modules (foreign.py). Every thread of the wasm program is a Python thread with its own Store
and Instance, all importing one SharedMemory (wasmtime Stores are not shared between threads).
Wasm calls go through ctypes, which releases the GIL, so the threads run in parallel.

- Helper threads serve `wasi.thread-spawn`: they are started and instantiated ahead of time,
  so a spawn only queues (tid, arg) and never blocks; more are started if all are busy.
- Long calls (`run`) go to one dedicated caller thread that owns the caller instance. The
  Python thread that asked waits in short, interruptible waits, so Ctrl-C reaches it.
- Short calls (`call_direct`) run on the calling thread on the same instance, under the same
  lock: a thread hand-off costs more than they do.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmtime as W

from .. import errors
from .wasmtime_compat import Export, TrapError, clear_callback_exception

PAGE = 65536

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
        self.shared = bool(mem_type.is_shared)
        self.max_bytes = (limits.max if limits.max is not None else 65536) * PAGE
        self._store: W.Store | None = None
        if self.shared:
            self.memory: W.SharedMemory | W.Memory = W.SharedMemory(
                eng, W.MemoryType(W.Limits(limits.min, limits.max), shared=True)
            )
            self.base = ctypes.cast(self.memory.data_ptr(), ctypes.c_void_p).value or 0
        elif helpers == 0 and not _imports_spawn(module):
            # A single-threaded build (pool-st.wasm): its one instance owns a plain memory, in
            # the one Store every call uses.
            self._store = W.Store(eng)
            self.memory = W.Memory(self._store, W.MemoryType(W.Limits(limits.min, limits.max)))
            self.base = ctypes.cast(self.memory.data_ptr(self._store), ctypes.c_void_p).value or 0
        else:
            raise errors.ForeignModuleError(
                f"{name}: env.memory is not shared; build with --shared-memory "
                "(and --import-memory) for wasi-threads"
            )
        # wasmtime reserves a 32-bit memory's whole range up front, so the base never moves.
        self._size = self._data_len()
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
        self._caller = threading.Thread(
            target=self._caller_loop, name=f"{name}-caller", daemon=True
        )
        self._caller.start()

    # -- instances -----------------------------------------------------------------------
    def instantiate(self) -> tuple[W.Store, W.Instance]:
        store = self._store if self._store is not None else W.Store(self.engine)
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
        thread = threading.Thread(
            target=self._helper_loop,
            args=(count_idle,),
            name=f"{self.name}-thread-{len(self._helpers) + 1}",
            daemon=True,
        )
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
            except TrapError as exc:
                clear_callback_exception()
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
        except TrapError as exc:
            clear_callback_exception()
            code = self.exit_code
            if not self.shared:
                # A new instance would re-apply the module's data segments over the live
                # memory (its allocator, its counters): this one is done.
                self._closed = True
                raise errors.WasmTrap(
                    f"{self.name}.{name} trapped: {exc}; the single-thread "
                    "module cannot continue: start it again"
                ) from None
            # The trapped frames left the stack pointer moved: a fresh instance is clean.
            self._new_caller_instance()
            if code is not None:
                raise errors.ProcExit(code) from None
            raise errors.WasmTrap(f"{self.name}.{name} trapped: {exc}") from None

    def run(
        self,
        name: str,
        args: tuple[Any, ...],
        on_interrupt: Callable[[], None],
        grace: float | None = None,
    ) -> Any:
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
    def _data_len(self) -> int:
        if isinstance(self.memory, W.SharedMemory):
            return int(self.memory.data_len())
        assert self._store is not None
        return int(self.memory.data_len(self._store))

    def memory_size(self) -> int:
        self._size = self._data_len()
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

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._spawn_lock:
            if self._closed:
                return
            self._closed = True
        self._requests.put(None)
        for _ in self._helpers:
            self._spawns.put(None)


def _imports_spawn(module: W.Module) -> bool:
    return any((imp.module, imp.name) == ("wasi", "thread-spawn") for imp in module.imports)


def _memory_import(module: W.Module) -> W.MemoryType:
    for imp in module.imports:
        if (imp.module, imp.name) == ("env", "memory") and isinstance(imp.type, W.MemoryType):
            return imp.type
    raise errors.ForeignModuleError(
        "the module does not import env.memory; build it with --import-memory --shared-memory"
    )
