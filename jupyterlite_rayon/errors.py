"""The exceptions of jupyterlite_rayon, and the mapping from pool status codes to them.

Every message says what went wrong and what to do about it.
"""

from __future__ import annotations

from . import abi
from .abi import (
    E_BUSY,
    E_CANCELED,
    E_DTYPE,
    E_EMPTY,
    E_INVAL,
    E_NOMEM,
    E_RANGE,
    E_THREADS,
    OK,
    STATUS_NAMES,
)


class PoolError(RuntimeError):
    """Base class of every error raised by the pool."""


class PoolNotStarted(PoolError):
    """A kernel was called before the pool was started (Pyodide)."""


class PoolMemoryError(PoolError, MemoryError):
    """The pool's memory reached its maximum size."""


class NeedsAwait(PoolError):
    """The engine starts threads asynchronously: `await init_thread_pool(n)` resizes."""


class ForeignModuleError(PoolError):
    """A bring-your-own wasm module does not fit the wasi-threads ABI or was misused."""


class WasmTrap(PoolError):
    """The wasm code trapped (unreachable, out-of-bounds access, a failed assertion)."""


class ProcExit(PoolError):
    """A foreign module called WASI proc_exit."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or f"the module called proc_exit({code})")
        self.code = code


def status_error(name: str, status: int, message: str) -> BaseException:
    """The exception for a failed call: `message` is the pool's jr_strerror text."""
    label = STATUS_NAMES.get(status, f"status {status}")
    text = f"{name}: {message} ({label})"
    advice = abi.STATUS_ADVICE.get(status)
    if advice:
        text += f"; {advice}"
    if status == E_NOMEM:
        return PoolMemoryError(text)
    if status == E_DTYPE:
        return TypeError(text)
    if status in (E_INVAL, E_EMPTY):
        return ValueError(text)
    if status == E_CANCELED:
        return KeyboardInterrupt(f"{name} was interrupted; the pool is ready for the next call")
    return PoolError(text)


__all__ = [
    "E_BUSY",
    "E_CANCELED",
    "E_DTYPE",
    "E_EMPTY",
    "E_INVAL",
    "E_NOMEM",
    "E_RANGE",
    "E_THREADS",
    "OK",
    "STATUS_NAMES",
    "ForeignModuleError",
    "NeedsAwait",
    "PoolError",
    "PoolMemoryError",
    "PoolNotStarted",
    "ProcExit",
    "WasmTrap",
    "status_error",
]
