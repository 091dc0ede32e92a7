"""The interface every backend implements; the Python API talks only to this.

A backend owns one instance of a pool module (pool-mt.wasm or pool-st.wasm, see
kernels/ABI.md) and the threads that run it. It moves bytes in and out of the pool's
memory and calls exports. It knows nothing about dtypes or kernels: that is the API's job.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable
from typing import Any


class Backend(abc.ABC):
    """One live pool: a module instance, its memory and its helper threads.

    Start one with the classmethod `start(threads)`: it returns the backend (wasmtime) or an
    awaitable of it (pyodide, whose workers must be running before any blocking call).
    """

    #: "wasmtime" or "pyodide"
    name: str
    #: True when the threaded build (pool-mt.wasm) runs, False for pool-st.wasm
    threaded: bool
    #: address of the counters block (jr_counters(), kernels/ABI.md)
    counters: int
    #: jr_max_threads() of the running build
    build_max_threads: int

    @classmethod
    @abc.abstractmethod
    def start(cls, threads: int) -> Backend | Awaitable[Backend]:
        """Start a pool of `threads` threads (caller included)."""

    @abc.abstractmethod
    def call(self, export: str, *args: float) -> int:
        """Call a kernel export synchronously and return its raw i32 status.

        Clears the cancel flag first. While the call runs, an interrupt (Ctrl-C in
        CPython, Pyodide's interrupt buffer in the browser) sets the cancel flag; the call
        then returns E_CANCELED and KeyboardInterrupt is raised (by the backend when it
        caught the signal itself, else by the API on E_CANCELED). A trap raises WasmTrap.
        """

    @abc.abstractmethod
    def call_value(self, export: str, *args: float) -> int:
        """Call a non-kernel export (jr_alloc, jr_free, jr_counters...) and return its value.

        i32 results come back signed, as wasm returns them: mask pointers with 0xFFFFFFFF.
        """

    @abc.abstractmethod
    def free_soon(self, ptr: int) -> None:
        """jr_free(ptr) now if the pool is idle, else right before the next call.

        Called from finalizers, which may run in the middle of another call; never raises
        because the pool is closed (the memory went with it).
        """

    @abc.abstractmethod
    def strerror(self, status: int) -> str:
        """The pool's message for a status code (jr_strerror)."""

    @abc.abstractmethod
    def store_u32(self, ptr: int, value: int) -> None:
        """Store a u32 into pool memory (used for the counters block's cancel flag)."""

    @abc.abstractmethod
    def write(self, ptr: int, data: memoryview) -> None:
        """Copy a C-contiguous byte buffer into pool memory at ptr."""

    @abc.abstractmethod
    def read(self, ptr: int, nbytes: int) -> bytes:
        """Copy nbytes of pool memory starting at ptr out into Python."""

    def read_into(self, ptr: int, out: memoryview) -> None:
        """Copy pool memory at ptr into a writable C-contiguous buffer (saves a copy)."""
        out.cast("B")[:] = self.read(ptr, out.nbytes)

    @abc.abstractmethod
    def memory_size(self) -> int:
        """Current size of the pool's memory in bytes."""

    @abc.abstractmethod
    def set_threads(self, n: int) -> None:
        """Resize the live pool to n threads (caller included). Raises on failure."""

    @abc.abstractmethod
    def cpu_count(self) -> int:
        """Cores the host offers (os.cpu_count, navigator.hardwareConcurrency)."""

    @abc.abstractmethod
    def isolation(self) -> dict[str, Any]:
        """Whether shared memory is available, and if not, why and how to fix it."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop every helper thread and drop the instance."""
