"""What foreign.py needs from an engine that runs a user's wasi-threads module.

One implementation per engine: foreign_wasmtime.py (CPython) and foreign_pyodide.py (the
browser, on the JS host). foreign.py is the one user-facing API on top; it never imports an
engine's modules itself except to start one. Nothing here imports wasmtime or js.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fault:
    """A helper thread that trapped or called proc_exit (exit_code is then its code).

    tid is the wasi-threads thread id (0 when the engine does not know it)."""

    tid: int
    trap: str
    exit_code: int | None = None

    def __str__(self) -> str:
        who = f"thread {self.tid}" if self.tid else "a helper thread"
        if self.exit_code is not None:
            return f"{who} called proc_exit({self.exit_code})"
        return f"{who} trapped: {self.trap}"


@dataclass(frozen=True)
class Signature:
    """An export's wasm value types, e.g. params ('i32', 'f64'), results ('f64',)."""

    params: tuple[str, ...]
    results: tuple[str, ...]


class ForeignEngine(ABC):
    """One loaded module: its own memory, its own threads, calls into its exports."""

    #: the module's name (from the file name), used in every message
    name: str
    #: the most bytes its memory may grow to
    max_memory_bytes: int
    #: what a trap leaves: True if the module keeps working (a fresh caller instance), False
    #: if it must be loaded again
    survives_traps: bool

    @property
    @abstractmethod
    def signatures(self) -> dict[str, Signature]:
        """Exported functions by name (without wasi_thread_start)."""

    @abstractmethod
    def run(self, export: str, args: tuple[float, ...]) -> Any:
        """A call: raises WasmTrap / ProcExit for the calling thread's own trap or exit, and
        KeyboardInterrupt when interrupted. A helper fault during the call stops it (WasmTrap);
        take_faults() then says why."""

    @abstractmethod
    def call_direct(self, export: str, *args: float) -> Any:
        """A short call (the allocator): no interrupt handling."""

    @abstractmethod
    def take_faults(self) -> list[Fault]:
        """Helper faults not reported yet (each is returned once)."""

    @abstractmethod
    def free_soon(self, export: str, ptr: int) -> None:
        """export(ptr) now, or before the next call if a call runs (finalizers)."""

    @abstractmethod
    def write(self, ptr: int, data: memoryview) -> None: ...

    @abstractmethod
    def read(self, ptr: int, nbytes: int) -> bytes: ...

    @abstractmethod
    def read_into(self, ptr: int, out: memoryview) -> None: ...

    @abstractmethod
    def memory_size(self) -> int:
        """The memory's current size in bytes."""

    @property
    @abstractmethod
    def closed(self) -> bool: ...

    @abstractmethod
    def close(self) -> None:
        """Stop every thread of the module; its memory becomes unusable."""
