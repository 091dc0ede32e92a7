"""Everything we take from wasmtime-py's internals, in one place (pinned: wasmtime==50.0.1).

wasmtime-py's public API is too slow for a per-call hot path and has one bug we must work
around, so three internals are used:

- `SharedMemory._as_extern` passes a pointer-to-pointer in 50.0.1, so a shared memory cannot be
  given to a Linker; `apply()` installs the corrected method.
- `_ffi.wasmtime_func_call_unchecked` on a reused raw array: `Func.__call__` looks up the type
  and boxes every value on each call (tens of microseconds); `Export` precomputes that.
- `_func.LAST_EXCEPTION`: an exception raised in a host function is parked there and re-raised
  from the next `Func.__call__` anywhere; we report our own, so `clear_callback_exception` drops it.

`check()` asserts that these internals still exist with the shapes we use; the test suite
calls it, so a wasmtime upgrade that moves them fails one clear test instead of many odd ones.
"""

from __future__ import annotations

import ctypes
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
    ):
        if not hasattr(ffi, name):
            missing.append(f"wasmtime._ffi.{name}")
    if not hasattr(_func, "LAST_EXCEPTION"):
        missing.append("wasmtime._func.LAST_EXCEPTION")
    for cls, attr in (
        (W.Store, "_context"),
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
