"""The exceptions of jupyterlite_rayon, and the mapping from pool status codes to them.

Every message says what went wrong and what to do about it.
"""

from __future__ import annotations

OK = 0
E_INVAL = -1
E_NOMEM = -2
E_CANCELED = -3
E_EMPTY = -4
E_DTYPE = -5
E_RANGE = -6
E_THREADS = -7
E_BUSY = -8

STATUS_NAMES = {
    OK: "OK",
    E_INVAL: "E_INVAL",
    E_NOMEM: "E_NOMEM",
    E_CANCELED: "E_CANCELED",
    E_EMPTY: "E_EMPTY",
    E_DTYPE: "E_DTYPE",
    E_RANGE: "E_RANGE",
    E_THREADS: "E_THREADS",
    E_BUSY: "E_BUSY",
}


class PoolError(RuntimeError):
    """Base class of every error raised by the pool."""


class PoolCancelled(PoolError):
    """A call was cancelled before it finished."""


class PoolNotStarted(PoolError):
    """A kernel was called before the pool was started (Pyodide)."""


class PoolMemoryError(PoolError, MemoryError):
    """The pool's memory reached its maximum size."""


class ForeignModuleError(PoolError):
    """A bring-your-own wasm module does not fit the wasi-threads ABI or was misused."""


class WasmTrap(PoolError):
    """The wasm code trapped (unreachable, out-of-bounds access, a failed assertion)."""


class ProcExit(PoolError):
    """A foreign module called WASI proc_exit."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the module called proc_exit({code})")
        self.code = code


_ADVICE = {
    E_INVAL: "check the arguments against the function's documentation",
    E_NOMEM: (
        "free arrays you no longer need (PoolArray.close() or del), or work on smaller chunks"
    ),
    E_EMPTY: "the array is empty; this reduction has no identity, pass a non-empty array",
    E_DTYPE: "convert the input to a supported dtype first (e.g. jr.asarray(x, 'float64'))",
    E_RANGE: "an array lies outside pool memory: this is a bug, please report it",
    E_THREADS: "the host could not start more threads; use fewer threads",
    E_BUSY: "another call is running on this pool; wait for it to finish",
}


def status_error(name: str, status: int, message: str) -> Exception:
    """The exception for a failed call: `message` is the pool's jr_strerror text."""
    label = STATUS_NAMES.get(status, f"status {status}")
    text = f"{name}: {message} ({label})"
    advice = _ADVICE.get(status)
    if advice:
        text += f"; {advice}"
    if status == E_NOMEM:
        return PoolMemoryError(text)
    if status == E_DTYPE:
        return TypeError(text)
    if status in (E_INVAL, E_EMPTY):
        return ValueError(text)
    if status == E_CANCELED:
        return PoolCancelled(text)
    return PoolError(text)
