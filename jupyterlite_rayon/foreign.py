"""Bring your own wasi-threads module: load it, call its exports, keep arrays in its memory.

    mod = jr.load_module("psum.wasm")          # or the module's bytes; in JupyterLite:
    mod = await jr.load_module(data)           #   await it (works in CPython too)
    x = mod.asarray(array.array("d", range(1000)))   # copied into the module's memory
    mod.parallel_sum(x, len(x), 4)             # PoolArrays are passed as pointers

The module must follow wasi-threads (Zig std.Thread on wasm32-wasi, C with wasi-sdk
pthreads, Rust wasm32-wasip1-threads): import a shared `env.memory`, import
`wasi.thread-spawn` to start threads and export `wasi_thread_start`. It gets its own shared
memory and its own threads, with minimal WASI preview1 (fd_write to the cell's output, clocks,
random, proc_exit). Arrays need an exported allocator: `malloc(size)` and optionally
`free(ptr)` (other names via load_module(alloc=..., free=...)).

This module is the API; an engine runs the module behind backends/foreign_base.ForeignEngine:
CPython: wasmtime (backends/foreign_wasmtime.py); JupyterLite: the JS host's workers
(backends/foreign_pyodide.py), which needs a cross-origin isolated page (shared memory).

Faults are exceptions, never hangs: a trap is WasmTrap, proc_exit is ProcExit, in the calling
thread or in any helper thread (named in the message). A helper's fault during a call ends the
call (also a caller waiting in join() for that helper); a fault after a call returned is raised
by the next call, which then does not run. Ctrl-C stops a call at its next loop back-edge or
futex wake-up; close() stops every thread, also helpers that loop forever. Zig 0.17's
std.Thread on WASI stores a thread's id into its handle only after thread-spawn returns, so a
thread that finishes first makes join() wait forever: let spawned threads wait for a flag the
parent sets after spawn (tests/fixtures/ shows how).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, Self

from . import dtypes
from .array import PoolArray, asarray, empty, zeros
from .backends.foreign_base import Fault, ForeignEngine
from .errors import ForeignModuleError, PoolMemoryError, ProcExit, WasmTrap

_U32 = 0xFFFFFFFF
_IN_BROWSER = sys.platform == "emscripten"

Output = Callable[[str], Any]


def load_module(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    threads: int | None = None,
    alloc: str = "malloc",
    free: str = "free",
    stdout: Output | None = None,
    stderr: Output | None = None,
) -> Any:
    """Load a wasi-threads module from a path or bytes.

    threads: helper threads started up front (CPython starts more on demand; the browser
    cannot, so there a spawn beyond them fails); default: the cores.
    alloc/free: the module's allocator exports, used by empty/zeros/asarray.
    stdout/stderr: where fd_write output goes (default: sys.stdout / sys.stderr at call time).

    CPython returns the ForeignModule (awaiting it gives it back); in JupyterLite it returns
    an awaitable: `mod = await jr.load_module(...)`.
    """
    wasm, name = _read_source(source)
    if wasm[:4] != b"\0asm":
        raise ForeignModuleError(f"{name}: not a wasm module (it does not start with \\0asm)")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
        raise TypeError(f"load_module: threads must be an int, got {type(threads).__name__}")
    if threads is not None and threads < 0:
        raise ValueError(f"load_module: threads must be 0 or more, got {threads}")
    if _IN_BROWSER:
        return _Loading(_load_in_browser(wasm, name, threads, alloc, free, stdout, stderr), name)
    from .backends.foreign_wasmtime import WasmtimeForeign

    helpers = threads if threads is not None else (os.cpu_count() or 1)
    engine = WasmtimeForeign(wasm, name, helpers, stdout, stderr)
    return ForeignModule(engine, alloc=alloc, free=free)


def _read_source(source: Any) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "module"
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"load_module: pass a path or the module's bytes, got {type(source).__name__}"
        )
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"load_module: no file {str(path)!r}")
    return path.read_bytes(), path.stem


async def _load_in_browser(
    wasm: bytes,
    name: str,
    threads: int | None,
    alloc: str,
    free: str,
    stdout: Output | None,
    stderr: Output | None,
) -> ForeignModule:
    from .backends import foreign_pyodide

    engine = await foreign_pyodide.PyodideForeign.load(wasm, name, threads, stdout, stderr)
    return ForeignModule(engine, alloc=alloc, free=free)


class _Loading:
    """What load_module returns in the browser: await it for the module."""

    def __init__(self, work: Any, name: str) -> None:
        self._work = work
        self._name = name

    def __await__(self) -> Generator[Any, None, ForeignModule]:
        return self._work.__await__()  # type: ignore[no-any-return]

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        raise ForeignModuleError(
            f"load_module({self._name!r}) has not finished: in JupyterLite loading starts "
            "Web Workers, which needs await: `mod = await jupyterlite_rayon.load_module(...)`"
        )

    def __repr__(self) -> str:
        return f"<loading {self._name!r}: use `await jupyterlite_rayon.load_module(...)`>"


def _fault_error(where: str, faults: list[Fault], when: str, survives: bool) -> BaseException:
    """The exception for helper faults: ProcExit if the first one exited, else WasmTrap."""
    first = faults[0]
    more = f" (and {len(faults) - 1} more helper faults)" if len(faults) > 1 else ""
    then = (
        "the module keeps working"
        if survives
        else "the module cannot be used any more: load it again"
    )
    text = f"{where}: {first} ({when}){more}; {then}"
    if first.exit_code is not None:
        return ProcExit(first.exit_code, text)
    return WasmTrap(text)


class ForeignModule:
    """A loaded module: its exported functions are attributes; arrays live in its memory."""

    def __init__(self, engine: ForeignEngine, *, alloc: str, free: str) -> None:
        self._engine = engine
        self.name = engine.name
        self._alloc_name, self._free_name = alloc, free
        self._functions: dict[str, ForeignFunction] = {}
        self.max_memory_bytes = engine.max_memory_bytes

    def __await__(self) -> Generator[Any, None, Self]:
        """`await jr.load_module(...)` works in CPython too (the module is already loaded)."""
        return self
        yield  # makes this a generator

    # -- calls -----------------------------------------------------------------------------
    @property
    def exports(self) -> list[str]:
        """Names of the exported functions (not the wasi-threads entry point)."""
        return sorted(self._engine.signatures)

    def __getattr__(self, name: str) -> ForeignFunction:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.function(name)

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.exports]

    def function(self, name: str) -> ForeignFunction:
        fn = self._functions.get(name)
        if fn is None:
            if name not in self._engine.signatures:
                raise AttributeError(
                    f"module {self.name!r} has no exported function {name!r}; it exports: "
                    f"{', '.join(self.exports)}"
                )
            fn = self._functions[name] = ForeignFunction(self, name)
        return fn

    def _run(self, name: str, args: tuple[Any, ...]) -> Any:
        engine = self._engine
        where = f"{self.name}.{name}"
        survives = engine.survives_traps
        earlier = engine.take_faults()
        if earlier:
            raise _fault_error(
                where, earlier, f"after an earlier call returned ({name} did not run)", survives
            )
        try:
            result = engine.run(name, args)
        except (WasmTrap, ProcExit) as exc:
            faults = engine.take_faults()
            if faults:
                raise _fault_error(where, faults, "during the call", survives) from None
            raise exc from None
        except KeyboardInterrupt as exc:
            if exc.args:
                raise
            # Helpers keep running: they may be a thread pool the module reuses.
            raise KeyboardInterrupt(
                f"{where} was interrupted; the module keeps working (threads it started run "
                "on until they finish or mod.close())"
            ) from None
        faults = engine.take_faults()
        if faults:
            raise _fault_error(where, faults, "during the call", survives)
        return result

    # -- memory ----------------------------------------------------------------------------
    @property
    def memory_bytes(self) -> int:
        return self._engine.memory_size()

    def alloc(self, nbytes: int, zero: bool) -> int:
        if self._alloc_name not in self._engine.signatures:
            raise ForeignModuleError(
                f"module {self.name!r} exports no {self._alloc_name!r}, so arrays cannot be "
                "made in its memory; export an allocator or pass load_module(alloc=<name>)"
            )
        if nbytes > _U32:
            raise PoolMemoryError(f"{nbytes} bytes do not fit in a 32-bit wasm memory")
        ptr = self._engine.call_direct(self._alloc_name, nbytes) & _U32
        if not ptr:
            raise PoolMemoryError(
                f"module {self.name!r} cannot allocate {nbytes} bytes: its memory is at or "
                f"near its maximum ({self.max_memory_bytes} bytes); free arrays or use "
                "smaller ones"
            )
        if zero and nbytes:
            self._engine.write(ptr, memoryview(bytes(nbytes)))
        return ptr

    def free(self, ptr: int) -> None:
        if self._free_name in self._engine.signatures:
            self._engine.call_direct(self._free_name, ptr)

    def free_soon(self, ptr: int) -> None:
        if self._free_name in self._engine.signatures:
            self._engine.free_soon(self._free_name, ptr)

    # The Arena protocol (array.py). malloc returns its address like any call: a Ctrl-C just
    # after it can leak that block (the pool's cells have no equivalent in a user's module).
    def alloc_owned(self, holder: list[int], nbytes: int, zero: bool) -> int:
        ptr = self.alloc(nbytes, zero)
        holder.append(ptr)
        return ptr

    def free_owned(self, holder: list[int], nbytes: int) -> None:
        if holder and self.alive():
            self.free(holder.pop())  # popped first: interrupted, it leaks, never frees twice

    def release_owned(self, holder: list[int], nbytes: int) -> None:
        if holder and self.alive():
            self.free_soon(holder[0])

    def write(self, ptr: int, data: memoryview) -> None:
        self._engine.write(ptr, data)

    def read(self, ptr: int, nbytes: int) -> bytes:
        return self._engine.read(ptr, nbytes)

    def read_into(self, ptr: int, out: memoryview) -> None:
        self._engine.read_into(ptr, out)

    def alive(self) -> bool:
        return not self._engine.closed

    def asarray(self, obj: Any, dtype: Any = None) -> PoolArray:
        """Copy obj (any buffer, list or PoolArray) into this module's memory."""
        return asarray(obj, dtype, arena=self)

    def empty(self, shape: int | tuple[int, ...], dtype: Any = "float64") -> PoolArray:
        return empty(shape, dtype, arena=self)

    def zeros(self, shape: int | tuple[int, ...], dtype: Any = "float64") -> PoolArray:
        return zeros(shape, dtype, arena=self)

    def close(self) -> None:
        """Stop every thread of the module (also running ones); its arrays become unusable."""
        self._engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ForeignModule {self.name!r}: {', '.join(self.exports)}>"


class ForeignFunction:
    """One export: call it with ints, floats and PoolArrays of its module (as pointers)."""

    def __init__(self, module: ForeignModule, name: str) -> None:
        self.module = module
        self.name = name
        self.params = list(module._engine.signatures[name].params)

    def __call__(self, *args: Any) -> Any:
        if len(args) != len(self.params):
            raise TypeError(
                f"{self.module.name}.{self.name} takes {len(self.params)} "
                f"arguments ({', '.join(self.params)}), got {len(args)}"
            )
        values = [
            self._convert(i, kind, a)
            for i, (kind, a) in enumerate(zip(self.params, args, strict=True))
        ]
        return self.module._run(self.name, tuple(values))

    def _convert(self, i: int, kind: str, value: Any) -> int | float:
        where = f"{self.module.name}.{self.name} argument {i + 1} ({kind})"
        if isinstance(value, PoolArray):
            if value.arena is not self.module:
                raise TypeError(
                    f"{where}: the array lives in {value.arena.name!r}, not in this "
                    f"module; copy it with mod.asarray(array)"
                )
            if kind != "i32":
                raise TypeError(f"{where}: an array is passed as an i32 pointer")
            return value.ptr
        if isinstance(value, bool):
            value = int(value)
        if kind in ("i32", "i64"):
            if not isinstance(value, int):
                raise TypeError(f"{where}: expected an int, got {type(value).__name__}")
            bits = 32 if kind == "i32" else 64
            if not -(1 << (bits - 1)) <= value < (1 << bits):
                raise OverflowError(f"{where}: {value} does not fit in {bits} bits")
            return value
        if not isinstance(value, (int, float)):
            raise TypeError(f"{where}: expected a number, got {type(value).__name__}")
        return float(value)

    def __repr__(self) -> str:
        return f"<{self.module.name}.{self.name}({', '.join(self.params)})>"


__all__ = ["ForeignFunction", "ForeignModule", "dtypes", "load_module"]
