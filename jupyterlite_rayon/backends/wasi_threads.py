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

Modules loaded with `interruptible=True` (users' own) can always be stopped: every Store has
an epoch deadline callback (wasmtime_compat.on_epoch_deadline) that traps it when its module
is closed or, for the caller, when its call must stop (Ctrl-C, or a helper thread that trapped
or called proc_exit: the caller may be joining it). A thread blocked in `memory.atomic.wait32`
reaches no epoch check, so stopping also wakes every waiter of the memory (spurious wake-ups
are allowed by the futex contract), and the woken thread traps at its next loop back-edge.
A helper's trap or proc_exit is kept as a `Fault` until `take_faults()` hands it over, so the
call it happened during, or else the next call, raises it.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmtime as W

from .. import errors
from .foreign_base import Fault
from .wasmtime_compat import (
    Export,
    TrapError,
    clear_callback_exception,
    on_epoch_deadline,
    short_trap,
)

PAGE = 65536
#: how often a stopping call's waiter wakes the memory's waiters again (a thread may have been
#: between its last epoch check and its wait when the previous wake-up went by)
WAKE_EVERY = 0.25
#: how long close() waits for the module's threads to stop
CLOSE_WAIT = 2.0

# Wakes every waiter of a shared memory: memory.atomic.notify at each aligned address of
# [lo, hi) (about 4 ns an address). Returns how many waiters it woke.
_WAKE_WAT = """
(module
  (import "env" "memory" (memory 0 65536 shared))
  (func (export "wake") (param $lo i32) (param $hi i32) (result i32)
    (local $n i32)
    (block
      (loop
        (br_if 1 (i32.ge_u (local.get $lo) (local.get $hi)))
        (local.set $n
          (i32.add (local.get $n) (memory.atomic.notify (local.get $lo) (i32.const -1))))
        (local.set $lo (i32.add (local.get $lo) (i32.const 4)))
        (br 0)))
    (local.get $n)))
"""
_wake_modules: dict[int, W.Module] = {}

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
        self.thread_errors: list[str] = []  # helpers that could not start
        self._faults: list[Fault] = []
        self._reported = 0  # faults handed over by take_faults()
        self._exit = threading.local()  # .code: proc_exit's code on this thread
        self._closed = False
        self._stopping = False  # close(): every thread of the module traps at its next check
        self._stop_call: str | None = None  # why the running call must stop (the caller only)
        self._wake: Export | None = None
        self._wake_lock = threading.Lock()
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
        self._ran = 0  # the last seq the caller thread took (it runs each one once)
        self._done = threading.Lock()  # released by the caller thread when a result is ready
        self._done.acquire()
        self._result: tuple[int, bool, Any] = (0, True, None)
        self._caller = threading.Thread(
            target=self._caller_loop, name=f"{name}-caller", daemon=True
        )
        self._caller.start()

    # -- instances -----------------------------------------------------------------------
    def instantiate(self, caller: bool = False) -> tuple[W.Store, W.Instance]:
        store = self._store if self._store is not None else W.Store(self.engine)
        if self.interruptible:
            on_epoch_deadline(store, self._caller_stop if caller else self._helper_stop)
            store.set_epoch_deadline(1)
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

    def _helper_stop(self) -> str | None:
        return f"{self.name} was closed" if self._stopping else None

    def _caller_stop(self) -> str | None:
        return f"{self.name} was closed" if self._stopping else self._stop_call

    def _new_caller_instance(self) -> None:
        store, instance = self.instantiate(caller=True)
        self.store = store
        self.instance = instance
        self._exports: dict[str, Export] = {}
        for start in ("_initialize", "_start"):
            if start in self.export_names():
                # Not call_direct: this also runs on the caller thread while run() holds _lock.
                self.export(start)()
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
            if not count_idle:  # started for a spawn that now never runs: the call must know
                with self._spawn_lock:
                    self._faults.append(Fault(0, f"a helper thread could not start: {exc}"))
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
            if self._stopping:
                return  # closed while this spawn waited: the module is gone, do not start it
            self._exit.code = None
            if self.interruptible:
                store.set_epoch_deadline(1)
            try:
                start(tid, arg)
            except TrapError as exc:
                clear_callback_exception()
                if self._stopping:
                    return  # stopped by close(): not the module's fault
                fault = Fault(tid, short_trap(str(exc)), self._take_exit())
                with self._spawn_lock:
                    self._faults.append(fault)
                # The instance's stack pointer and TLS may be garbage now: start fresh.
                try:
                    store, instance = self.instantiate()
                except errors.ForeignModuleError:
                    return  # reported as the fault above; the other helpers serve spawns
                start = Export(store, instance.exports(store)["wasi_thread_start"])  # type: ignore
            with self._spawn_lock:
                self._idle += 1

    def note_exit(self, code: int) -> None:
        """WASI proc_exit on this thread: the trap that follows is an exit with `code`."""
        self._exit.code = code

    def _take_exit(self) -> int | None:
        code: int | None = getattr(self._exit, "code", None)
        self._exit.code = None
        return code

    def take_faults(self) -> list[Fault]:
        """Helper faults not handed over yet (each is handed over once)."""
        with self._spawn_lock:
            new = self._faults[self._reported :]
            self._reported = len(self._faults)
        return new

    # -- calls ---------------------------------------------------------------------------
    def call_direct(self, name: str, *args: float) -> Any:
        """Call an export on the calling thread (for short calls); raises WasmTrap."""
        with self._lock:
            self._stop_call = None
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
        self._exit.code = None
        if self.interruptible:
            self.store.set_epoch_deadline(1)
        try:
            return fn(*args)
        except TrapError as exc:
            clear_callback_exception()
            code = self._take_exit()
            if self._stopping:
                raise errors.PoolError(f"{self.name} was closed during {name}") from None
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
            raise errors.WasmTrap(f"{self.name}.{name} trapped: {short_trap(str(exc))}") from None

    def run(
        self,
        name: str,
        args: tuple[Any, ...],
        on_interrupt: Callable[[], None] | None = None,
        grace: float | None = None,
    ) -> Any:
        """Call an export on the caller thread; the calling thread waits interruptibly.

        On KeyboardInterrupt, on_interrupt() asks the code to stop (an interruptible module's
        call is also stopped by its epoch); we then wait for the call to return (at most
        `grace` seconds if given) and re-raise KeyboardInterrupt. An interruptible module's
        call is stopped the same way when a helper faults during it (the caller may be joining
        that helper): it then raises WasmTrap, and take_faults() says what happened.
        """
        with self._lock:
            if self._closed:
                raise errors.PoolError(f"{self.name} is closed; start it again")
            self._drain_frees()
            self._seq += 1
            seq = self._seq
            request = (seq, name, args)
            mark = len(self._faults)
            self._stop_call = None
            # A KeyboardInterrupt can land at any bytecode that checks for signals: just after
            # the put (the call would run with nobody to stop it, and the next call wait behind
            # it forever), just after the acquire took the result's wake-up, or at a loop's
            # back edge. So the wait loop sits whole inside the try, the handler only notes the
            # interrupt (its body has no point where a signal is checked) and the next pass
            # acts on it, posting the request again in case the first put never happened (the
            # caller runs each seq once), and the wait ends on the result, the lock being only
            # a wake-up. Only a second Ctrl-C at the outer loop's back edge, right after the
            # first was handled, can still leave early.
            posted = False
            pending = False  # an interrupt the next pass acts on
            interrupted = False
            stop_at: float | None = None  # when the call was asked to stop
            next_wake = 0.0
            while True:
                try:
                    if pending:
                        pending = False
                        interrupted = True
                        if on_interrupt is not None:
                            on_interrupt()
                        self._requests.put(request)
                        if stop_at is None:
                            stop_at = next_wake = time.monotonic()
                            if self.interruptible:
                                self._stop_caller("interrupted (KeyboardInterrupt)")
                    if not posted:
                        posted = True
                        self._requests.put(request)
                    while self._result[0] != seq:
                        if self._done.acquire(timeout=0.05):
                            continue  # this call's result, or the late one of an abandoned call
                        now = time.monotonic()
                        if stop_at is None and self.interruptible and len(self._faults) > mark:
                            stop_at = next_wake = now
                            self._stop_caller(f"stopped because {self._faults[mark]}")
                        if stop_at is None:
                            continue
                        if grace is not None and now - stop_at > grace:
                            self.close(timeout=0.5)
                            what = (
                                "was interrupted"
                                if interrupted
                                else f"stopped ({self._faults[mark]})"
                            )
                            message = (
                                f"{self.name}.{name} {what} but did not stop within {grace:g} "
                                "s (blocked outside wasm); the module was closed: load the "
                                "module again"
                            )
                            if interrupted:
                                raise KeyboardInterrupt(message)
                            raise errors.WasmTrap(message)
                        if self.interruptible and now >= next_wake:
                            next_wake = now + WAKE_EVERY
                            self._wake_waiters()
                    break
                except KeyboardInterrupt:
                    if interrupted and self._closed:
                        raise
                    pending = True
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
            if seq <= self._ran:
                continue  # a copy run() posted again after an interrupt: already run
            self._ran = seq
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

    def load_u32(self, ptr: int) -> int:
        self._check(ptr, 4)
        return int(ctypes.c_uint32.from_address(self.base + ptr).value)

    def read_cstring(self, ptr: int) -> str:
        self._check(ptr, 1)
        return ctypes.string_at(self.base + ptr).decode("utf-8", "replace")

    @property
    def closed(self) -> bool:
        return self._closed

    # -- stopping ------------------------------------------------------------------------
    def _stop_caller(self, reason: str) -> None:
        """The caller traps with `reason` at its next epoch check, also out of a futex wait."""
        self._stop_call = reason
        self.engine.increment_epoch()
        self._wake_waiters()

    def _wake_waiters(self) -> int:
        """Wake every thread waiting on this memory; returns how many were waiting."""
        if not self.shared:
            return 0
        with self._wake_lock:
            if self._wake is None:
                key = id(self.engine)
                module = _wake_modules.get(key)
                if module is None:
                    module = _wake_modules[key] = W.Module(
                        self.engine, bytes(W.wat2wasm(_WAKE_WAT))
                    )
                store = W.Store(self.engine)
                store.set_epoch_deadline(1 << 62)  # no callback: it must always finish
                linker = W.Linker(self.engine)
                linker.define(store, "env", "memory", self.memory)
                instance = linker.instantiate(store, module)
                self._wake = Export(store, instance.exports(store)["wake"])  # type: ignore[arg-type]
            return int(self._wake(0, self._data_len()))

    def threads_alive(self) -> list[str]:
        """Names of this module's threads that are still running."""
        threads = [*self._helpers, getattr(self, "_caller", None)]
        return [t.name for t in threads if t is not None and t.is_alive()]

    def close(self, timeout: float = CLOSE_WAIT) -> None:
        """Stop every thread: idle ones at once, running ones at their next epoch check (also
        out of a futex wait). Waits up to `timeout` seconds for them (interruptible modules)."""
        with self._spawn_lock:
            if self._stopping:
                return
            self._stopping = True
            self._closed = True
        self._requests.put(None)
        for _ in self._helpers:
            self._spawns.put(None)
        if not self.interruptible:
            return  # the pool's helpers leave when the runtime retires them
        self.engine.increment_epoch()
        me = threading.current_thread()
        threads = [t for t in [*self._helpers, self._caller] if t is not me]
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(0.01)
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            # Again each round: a helper that was still starting set its deadline after the
            # first increment, and only a later one reaches its epoch check.
            self.engine.increment_epoch()
            self._wake_waiters()
            for t in threads:
                t.join(0.02)


def _imports_spawn(module: W.Module) -> bool:
    return any((imp.module, imp.name) == ("wasi", "thread-spawn") for imp in module.imports)


def _memory_import(module: W.Module) -> W.MemoryType:
    for imp in module.imports:
        if (imp.module, imp.name) == ("env", "memory") and isinstance(imp.type, W.MemoryType):
            return imp.type
    raise errors.ForeignModuleError(
        "the module does not import env.memory; build it with --import-memory --shared-memory"
    )
