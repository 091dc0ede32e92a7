"""The interface every backend implements; the Python API talks only to this.

A backend owns one instance of a pool module (pool-mt.wasm or pool-st.wasm, see
kernels/ABI.md) and the threads that run it. It starts the pool, resizes it, runs exports,
allocates and moves bytes in pool memory. It knows nothing about dtypes or kernels: that is the
API's job. A failed status becomes a Python exception here, once (`errors.status_error`).
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from .. import counters


class Backend(abc.ABC):
    """One live pool: a module instance, its memory and its helper threads."""

    #: "wasmtime" or "pyodide"
    name: ClassVar[str]
    #: True when the engine starts threads asynchronously: start with `await start_async(n)`
    #: (pyodide: workers must be running before any blocking call); False: `start(n)`.
    asynchronous: ClassVar[bool] = False
    #: True when the threaded build (pool-mt.wasm) runs, False for pool-st.wasm
    threaded: bool
    #: address of the counters block (jr_counters(), kernels/ABI.md)
    counters_address: int
    #: jr_max_threads() of the running build (1 for st)
    build_max_threads: int
    #: the pool's ownership cells (jupyterlite_rayon/cells.py), made when pool.py installs it
    cells: Any = None
    #: the small freed blocks kept for reuse (cells.Kept), made with the cells
    kept: Any = None

    # -- life ----------------------------------------------------------------------------
    @classmethod
    def start(cls, threads: int) -> Backend:
        """Start a pool of `threads` threads (caller included), synchronously."""
        raise NotImplementedError(f"the {cls.name} backend starts with `await start_async(n)`")

    @classmethod
    async def start_async(cls, threads: int) -> Backend:
        """Start a pool of `threads` threads; for engines whose threads start asynchronously."""
        return cls.start(threads)

    def set_threads(self, n: int) -> None:
        """Resize the live pool to n threads (caller included) now, or raise PoolError.

        n is already checked against the limits (pool.py). An engine that cannot start threads
        synchronously raises errors.NeedsAwait when n needs more than it has running.
        """
        raise NotImplementedError

    async def resize(self, n: int) -> None:
        """Grow or shrink the live pool to n threads, starting threads as the engine needs."""
        self.set_threads(n)

    @abc.abstractmethod
    def close(self) -> None:
        """Stop every helper thread and drop the instance."""

    # -- calls ---------------------------------------------------------------------------
    @abc.abstractmethod
    def call(self, export: str, *args: float, quick: bool = False) -> None:
        """Run a kernel export (it returns a status) synchronously; raise if it failed.

        quick: the caller knows the work is tiny; an engine may then skip what makes long
        calls interruptible (CPython: the hand-off to the caller thread) to save overhead.

        Clears the cancel flag first. While the call runs, an interrupt (Ctrl-C in CPython, the
        page's interrupt buffer in the browser) sets the cancel flag; the call then returns
        E_CANCELED and KeyboardInterrupt is raised with the pool intact. Any other failed
        status raises errors.status_error(export, status, detail); a trap raises WasmTrap.
        """

    # -- jitted modules (jupyterlite_rayon/jit, kernels/ABI.md "Jitted modules") --------
    def jit_load(self, wasm: bytes, nfuncs: int) -> int:
        """Register a jitted module (every pool thread loads it before running its code);
        returns its table_base. Raises PoolError when the engine refuses the module."""
        raise NotImplementedError(f"the {self.name} backend cannot run jitted functions")

    def jit_call(self, main_slot: int, ctx: int) -> int:
        """Run a jitted main (jr_jit_call) like `call` runs a kernel, but return its status
        (the jit runtime turns the jit's codes into exceptions); E_CANCELED when interrupted."""
        raise NotImplementedError(f"the {self.name} backend cannot run jitted functions")

    # -- memory --------------------------------------------------------------------------
    @abc.abstractmethod
    def alloc(self, nbytes: int, zero: bool) -> int:
        """jr_alloc: a 16-byte aligned block; PoolMemoryError when memory cannot grow."""

    @abc.abstractmethod
    def alloc_into(self, cell: int, nbytes: int, zero: bool) -> int:
        """jr_alloc_into: alloc, with the address stored into the u32 at `cell` inside the
        call (jupyterlite_rayon/cells.py says why); PoolMemoryError when memory cannot grow."""

    @abc.abstractmethod
    def free(self, ptr: int) -> None:
        """jr_free now (not during a call on this thread: see free_soon)."""

    @abc.abstractmethod
    def free_cell(self, cell: int) -> None:
        """jr_free_cell now: free the block the cell holds and set it to 0, in one step."""

    def load_u32(self, ptr: int) -> int:
        """The u32 at ptr (a cell, a block header), without entering wasm."""
        return int.from_bytes(self.read(ptr, 4), "little")

    def store_u32(self, ptr: int, value: int) -> None:
        """Store a u32 at ptr, without entering wasm (a finalizer may run inside a call)."""
        self.write(ptr, memoryview(value.to_bytes(4, "little")))

    @abc.abstractmethod
    def free_soon(self, ptr: int) -> None:
        """jr_free(ptr) now if the pool is idle, else right before the next call.

        Called from finalizers, which may run in the middle of another call; never raises
        because the pool is closed (the memory went with it).
        """

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

    def counters(self, threads: bool = True) -> counters.Counters:
        """The counters block now (never calls into the pool, never blocks)."""
        return counters.read(self, threads)

    # -- the host ------------------------------------------------------------------------
    @abc.abstractmethod
    def cpu_count(self) -> int:
        """Cores the host offers (os.cpu_count, navigator.hardwareConcurrency)."""

    @abc.abstractmethod
    def isolation(self) -> dict[str, Any]:
        """{cross_origin_isolated, shared_memory, reason, fix}: why threads are (not) here."""
