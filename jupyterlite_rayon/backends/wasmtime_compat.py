"""Everything we take from wasmtime-py's internals, in one place (pinned: wasmtime==50.0.1).

wasmtime-py's public API is too slow for a per-call hot path, has one bug we must work
around and lacks epoch deadline callbacks, so four internals are used:

- `SharedMemory._as_extern` passes a pointer-to-pointer in 50.0.1, so a shared memory cannot be
  given to a Linker; `apply()` installs the corrected method.
- `_ffi.wasmtime_func_call_unchecked` on a reused raw array: `Func.__call__` looks up the type
  and boxes every value on each call (tens of microseconds); `Export` precomputes that.
- `_func.LAST_EXCEPTION`: an exception raised in a host function is parked there and re-raised
  from the next `Func.__call__` anywhere; we report our own, so `clear_callback_exception` drops it.
- `_ffi.wasmtime_store_epoch_deadline_callback`: lets a store decide, when an epoch tick
  reaches it, whether to trap or run on (`on_epoch_deadline`), so one engine's epoch can stop
  one module's threads without touching another's.

`check()` asserts that these internals still exist with the shapes we use; the test suite
calls it, so a wasmtime upgrade that moves them fails one clear test instead of many odd ones.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import wasmtime as W
from wasmtime import _ffi as ffi
from wasmtime import _func

PINNED = "50.0.1"

_U32 = 0xFFFFFFFF
_KINDS = {"i32": 0, "i64": 1, "f32": 2, "f64": 3}


def _shared_memory_as_extern(self: W.SharedMemory) -> Any:
    return ffi.wasmtime_extern_t(
        ffi.WASMTIME_EXTERN_SHAREDMEMORY, ffi.wasmtime_extern_union(sharedmemory=self.ptr())
    )


def apply() -> None:
    """Install the SharedMemory fix (idempotent)."""
    W.SharedMemory._as_extern = _shared_memory_as_extern  # type: ignore[method-assign]


def check() -> list[str]:
    """What is missing from the internals this module relies on (empty when all is well)."""
    missing = []
    for name in (
        "wasmtime_func_call_unchecked",
        "wasmtime_val_raw_t",
        "wasm_trap_t",
        "wasmtime_extern_t",
        "wasmtime_extern_union",
        "WASMTIME_EXTERN_SHAREDMEMORY",
        "wasmtime_store_epoch_deadline_callback",
        "wasmtime_error_new",
        "wasmtime_context_t",
        "wasmtime_update_deadline_kind_t",
    ):
        if not hasattr(ffi, name):
            missing.append(f"wasmtime._ffi.{name}")
    if not hasattr(_func, "LAST_EXCEPTION"):
        missing.append("wasmtime._func.LAST_EXCEPTION")
    for cls, attr in (
        (W.Store, "_context"),
        (W.Store, "ptr"),
        (W.SharedMemory, "ptr"),
        (W.WasmtimeError, "_from_ptr"),
        (W.Trap, "_from_ptr"),
    ):
        if not hasattr(cls, attr):
            missing.append(f"wasmtime.{cls.__name__}.{attr}")
    store = W.Store()
    func = W.Func(store, W.FuncType([], []), lambda: None)
    if not hasattr(func, "_func"):
        missing.append("wasmtime.Func()._func")
    return missing


def clear_callback_exception() -> None:
    """Forget an exception a host function raised (we have recorded it ourselves)."""
    _func.LAST_EXCEPTION = None


_DEADLINE_CONTINUE = 0  # wasmtime_update_deadline_kind_t: run on, deadline = now + delta
_DeadlineCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.POINTER(ffi.wasmtime_context_t),
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ffi.wasmtime_update_deadline_kind_t),
)
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()


def on_epoch_deadline(store: W.Store, stop: Callable[[], str | None]) -> None:
    """When an epoch tick reaches `store`'s deadline, trap with `stop()`'s text, or (None) run
    on until the next tick. Set the deadline with `store.set_epoch_deadline(1)`."""

    def decide(_ctx: Any, _data: Any, delta: Any, kind: Any) -> int:
        try:
            reason = stop()
        except Exception as exc:  # noqa: BLE001 -- an exception cannot cross into wasm
            reason = f"the interrupt check failed: {exc}"
        if reason is None:
            delta[0] = 1
            kind[0] = _DEADLINE_CONTINUE
            return 0
        error = ffi.wasmtime_error_new(reason.encode("utf-8", "replace"))
        return ctypes.cast(error, ctypes.c_void_p).value or 0

    callback = _DeadlineCallback(decide)
    store._jr_epoch_callback = callback  # type: ignore[attr-defined]  # lives as long as the store
    ffi.wasmtime_store_epoch_deadline_callback(store.ptr(), callback, None, _NO_FINALIZER)


class TrapError(Exception):
    """The wasm code trapped (the message is wasmtime's, without the backtrace)."""


class Export:
    """A fast caller for one exported function of one instance.

    Not thread-safe: an Export belongs to the thread that owns its Store.
    """

    def __init__(self, store: W.Store, func: W.Func) -> None:
        ty = func.type(store)
        self.params = [_KINDS[str(p)] for p in ty.params]
        self.results = [_KINDS[str(r)] for r in ty.results]
        self._ctx = store._context()
        self._func = ctypes.byref(func._func)
        self._keep = (store, func)
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
            raise TrapError(str(W.WasmtimeError._from_ptr(error)))
        if trap:
            message = W.Trap._from_ptr(trap).message
            self._trap = ctypes.POINTER(ffi.wasm_trap_t)()
            raise TrapError(short_trap(message))
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


def short_trap(message: str) -> str:
    """wasmtime's trap text without the backtrace: the cause lines, e.g. 'out of bounds'."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if "Caused by:" in lines:
        causes = lines[lines.index("Caused by:") + 1 :]
        return "; ".join(c.split(": ", 1)[-1] if c[:1].isdigit() else c for c in causes)
    return lines[-1] if lines else "trap"


apply()
