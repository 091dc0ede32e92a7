"""Bring your own wasi-threads module: load it, call its exports, keep arrays in its memory.

    mod = jr.load_module("psum.wasm")          # or the module's bytes
    x = mod.asarray(array.array("d", range(1000)))   # copied into the module's memory
    mod.parallel_sum(x, len(x), 4)             # PoolArrays are passed as pointers

The module must follow wasi-threads (Zig std.Thread on wasm32-wasi, C with wasi-sdk
pthreads, Rust wasm32-wasip1-threads): import a shared `env.memory`, import
`wasi.thread-spawn` to start threads and export `wasi_thread_start`. It gets its own shared
memory and its own threads (CPython: wasmtime, backends/wasi_threads.py; not yet available in
the browser), with minimal WASI preview1 (backends/wasi.py). Arrays need an exported allocator: `malloc(size)`
and optionally `free(ptr)` (other names via load_module(alloc=..., free=...)).

Ctrl-C stops a long call at its next loop back-edge (wasmtime epochs) and the module stays
usable; a call blocked in a futex wait cannot be stopped, so after 2 s the module is given up
("load the module again"). Zig 0.17's std.Thread on WASI stores a thread's id into its handle
only after thread-spawn returns, so a thread that finishes first makes join() wait forever:
let spawned threads wait for a flag the parent sets after spawn (tests/fixtures/ shows how).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from . import dtypes
from .array import PoolArray, asarray, empty, zeros
from .errors import ForeignModuleError, PoolMemoryError, WasmTrap

_U32 = 0xFFFFFFFF


def load_module(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    threads: int | None = None,
    alloc: str = "malloc",
    free: str = "free",
    stdout: Callable[[str], Any] | None = None,
    stderr: Callable[[str], Any] | None = None,
) -> ForeignModule:
    """Load a wasi-threads module from a path or bytes.

    threads: helper threads started up front (more start on demand); default: the cores.
    alloc/free: the module's allocator exports, used by empty/zeros/asarray.
    stdout/stderr: where fd_write output goes (default: sys.stdout / sys.stderr at call time).
    """
    if sys.platform == "emscripten":
        raise ForeignModuleError(
            "load_module runs in CPython (wasmtime) only for now; in "
            "JupyterLite, call your module from JavaScript"
        )
    if isinstance(source, (bytes, bytearray, memoryview)):
        wasm, name = bytes(source), "module"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"load_module: no file {str(path)!r}")
        wasm, name = path.read_bytes(), path.stem
    return ForeignModule(
        wasm, name, threads=threads, alloc=alloc, free=free, stdout=stdout, stderr=stderr
    )


class ForeignModule:
    """A loaded module: its exported functions are attributes; arrays live in its memory."""

    def __init__(
        self,
        wasm: bytes,
        name: str,
        *,
        threads: int | None,
        alloc: str,
        free: str,
        stdout: Callable[[str], Any] | None,
        stderr: Callable[[str], Any] | None,
    ) -> None:
        import wasmtime as W

        from .backends import wasi, wasi_threads

        if wasm[:4] != b"\0asm":
            raise ForeignModuleError(f"{name}: not a wasm module (it does not start with \\0asm)")
        eng = wasi_threads.engine(interruptible=True)
        try:
            module = wasi_threads.compile_module(eng, wasm, interruptible=True)
        except W.WasmtimeError as exc:
            raise ForeignModuleError(f"{name}: wasmtime cannot compile it: {exc}") from None
        wasi.check_imports(name, module)
        self.name = name
        self._wasi = wasi.Wasi(stdout, stderr)
        self._alloc_name, self._free_name = alloc, free
        helpers = threads if threads is not None else (os.cpu_count() or 1)
        self._host = wasi_threads.WasmThreads(
            module, eng, self._wasi.imports, helpers=helpers, name=name, interruptible=True
        )
        self._functions: dict[str, ForeignFunction] = {}
        self.max_memory_bytes = self._host.max_bytes

    # -- calls -----------------------------------------------------------------------------
    @property
    def exports(self) -> list[str]:
        """Names of the exported functions (not the wasi-threads entry point)."""
        import wasmtime as W

        return sorted(
            e.name
            for e in self._host.module.exports
            if isinstance(e.type, W.FuncType) and e.name != "wasi_thread_start"
        )

    def __getattr__(self, name: str) -> ForeignFunction:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.function(name)

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.exports]

    def function(self, name: str) -> ForeignFunction:
        fn = self._functions.get(name)
        if fn is None:
            if name not in self.exports:
                raise AttributeError(
                    f"module {self.name!r} has no exported function {name!r}; it exports: "
                    f"{', '.join(self.exports)}"
                )
            fn = self._functions[name] = ForeignFunction(self, name)
        return fn

    def _run(self, name: str, args: tuple[Any, ...]) -> Any:
        before = len(self._host.thread_errors)
        result = self._host.run(name, args, self._host.engine.increment_epoch, grace=2.0)
        if len(self._host.thread_errors) > before:
            raise WasmTrap(
                f"{self.name}.{name}: a thread trapped: {self._host.thread_errors[before]}"
            )
        return result

    # -- memory ----------------------------------------------------------------------------
    @property
    def memory_bytes(self) -> int:
        return self._host.memory_size()

    def alloc(self, nbytes: int, zero: bool) -> int:
        if self._alloc_name not in self.exports:
            raise ForeignModuleError(
                f"module {self.name!r} exports no {self._alloc_name!r}, so arrays cannot be "
                "made in its memory; export an allocator or pass load_module(alloc=<name>)"
            )
        if nbytes > _U32:
            raise PoolMemoryError(f"{nbytes} bytes do not fit in a 32-bit wasm memory")
        ptr = self._host.call_direct(self._alloc_name, nbytes) & _U32
        if not ptr:
            raise PoolMemoryError(
                f"module {self.name!r} cannot allocate {nbytes} bytes: its memory is at or "
                f"near its maximum ({self.max_memory_bytes} bytes); free arrays or use "
                "smaller ones"
            )
        if zero and nbytes:
            self._host.write(ptr, memoryview(bytes(nbytes)))
        return ptr

    def free(self, ptr: int) -> None:
        if self._free_name in self.exports:
            self._host.call_direct(self._free_name, ptr)

    def free_soon(self, ptr: int) -> None:
        if self._free_name in self.exports:
            self._host.free_soon(self._free_name, ptr)

    def write(self, ptr: int, data: memoryview) -> None:
        self._host.write(ptr, data)

    def read(self, ptr: int, nbytes: int) -> bytes:
        return self._host.read(ptr, nbytes)

    def read_into(self, ptr: int, out: memoryview) -> None:
        self._host.read_into(ptr, out)

    def alive(self) -> bool:
        return not self._host._closed

    def asarray(self, obj: Any, dtype: Any = None) -> PoolArray:
        """Copy obj (any buffer, list or PoolArray) into this module's memory."""
        return asarray(obj, dtype, arena=self)

    def empty(self, shape: int | tuple[int, ...], dtype: Any = "float64") -> PoolArray:
        return empty(shape, dtype, arena=self)

    def zeros(self, shape: int | tuple[int, ...], dtype: Any = "float64") -> PoolArray:
        return zeros(shape, dtype, arena=self)

    def close(self) -> None:
        """Stop the module's idle threads; its arrays become unusable."""
        self._host.close()

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
        export = module._host.export(name)
        self.params = ["i32", "i64", "f32", "f64"]
        self.params = [self.params[k] for k in export.params]

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
