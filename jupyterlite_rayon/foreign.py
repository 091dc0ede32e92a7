"""Bring your own wasi-threads module: load it, call its exports, keep arrays in its memory.

    mod = jr.load_module("psum.wasm")          # or the module's bytes
    x = mod.asarray(array.array("d", range(1000)))   # copied into the module's memory
    mod.parallel_sum(x, len(x), 4)             # PoolArrays are passed as pointers

The module must follow wasi-threads (Zig std.Thread on wasm32-wasi, C with wasi-sdk
pthreads, Rust wasm32-wasip1-threads): import a shared `env.memory`, import
`wasi.thread-spawn` to start threads and export `wasi_thread_start`. It gets its own shared
memory and its own threads (CPython: wasmtime; not yet available in the browser).
Provided WASI preview1: fd_write (stdout/stderr to sys.stdout/sys.stderr), clock_time_get,
clock_res_get, random_get, args/environ (empty), sched_yield, proc_exit (raises ProcExit);
every other WASI function returns ENOSYS. Arrays need an exported allocator: `malloc(size)`
and optionally `free(ptr)` (other names via load_module(alloc=..., free=...)).

Ctrl-C stops a long call at its next loop back-edge (wasmtime epochs) and the module stays
usable; a call blocked in a futex wait cannot be stopped, so after 2 s the module is given up
("load the module again"). Zig 0.17's std.Thread on WASI stores a thread's id into its handle
only after thread-spawn returns, so a thread that finishes first makes join() wait forever:
let spawned threads wait for a flag the parent sets after spawn (tests/fixtures/ shows how).
"""

from __future__ import annotations

import os
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

from . import dtypes
from .array import PoolArray, asarray, empty, zeros
from .errors import ForeignModuleError, PoolMemoryError, ProcExit, WasmTrap

ENOSYS = 52
EBADF = 8
EINVAL = 28
_U32 = 0xFFFFFFFF
_WASI = "wasi_snapshot_preview1"

# The WASI functions we implement, with their preview1 signatures.
_SIGNATURES: dict[str, tuple[list[str], list[str]]] = {
    "fd_write": (["i32", "i32", "i32", "i32"], ["i32"]),
    "clock_time_get": (["i32", "i64", "i32"], ["i32"]),
    "clock_res_get": (["i32", "i32"], ["i32"]),
    "random_get": (["i32", "i32"], ["i32"]),
    "args_sizes_get": (["i32", "i32"], ["i32"]),
    "args_get": (["i32", "i32"], ["i32"]),
    "environ_sizes_get": (["i32", "i32"], ["i32"]),
    "environ_get": (["i32", "i32"], ["i32"]),
    "sched_yield": ([], ["i32"]),
    "proc_exit": (["i32"], []),
}


def load_module(source: str | os.PathLike[str] | bytes | bytearray | memoryview, *,
                threads: int | None = None, alloc: str = "malloc", free: str = "free",
                stdout: Callable[[str], Any] | None = None,
                stderr: Callable[[str], Any] | None = None) -> ForeignModule:
    """Load a wasi-threads module from a path or bytes.

    threads: helper threads started up front (more start on demand); default: the cores.
    alloc/free: the module's allocator exports, used by empty/zeros/asarray.
    stdout/stderr: where fd_write output goes (default: sys.stdout / sys.stderr at call time).
    """
    if sys.platform == "emscripten":
        raise ForeignModuleError("load_module runs in CPython (wasmtime) only for now; in "
                                 "JupyterLite, call your module from JavaScript")
    if isinstance(source, (bytes, bytearray, memoryview)):
        wasm, name = bytes(source), "module"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"load_module: no file {str(path)!r}")
        wasm, name = path.read_bytes(), path.stem
    return ForeignModule(wasm, name, threads=threads, alloc=alloc, free=free, stdout=stdout,
                         stderr=stderr)


class ForeignModule:
    """A loaded module: its exported functions are attributes; arrays live in its memory."""

    def __init__(self, wasm: bytes, name: str, *, threads: int | None, alloc: str, free: str,
                 stdout: Callable[[str], Any] | None,
                 stderr: Callable[[str], Any] | None) -> None:
        import wasmtime as W

        from .backends import wasmtime_backend as wb

        if wasm[:4] != b"\0asm":
            raise ForeignModuleError(f"{name}: not a wasm module (it does not start with \\0asm)")
        eng = wb.engine(interruptible=True)
        try:
            module = wb.compile_module(eng, wasm, interruptible=True)
        except W.WasmtimeError as exc:
            raise ForeignModuleError(f"{name}: wasmtime cannot compile it: {exc}") from None
        _check_imports(name, module)
        self.name = name
        self._writers = {1: stdout, 2: stderr}
        self._alloc_name, self._free_name = alloc, free
        helpers = threads if threads is not None else (os.cpu_count() or 1)
        self._host = wb.WasmThreads(module, eng, self._imports, helpers=helpers, name=name,
                                    interruptible=True)
        self._functions: dict[str, ForeignFunction] = {}
        self.max_memory_bytes = self._host.max_bytes

    # -- imports ---------------------------------------------------------------------------
    def _imports(self, host: Any, store: Any) -> dict[tuple[str, str], Any]:
        import wasmtime as W

        kinds = {"i32": W.ValType.i32(), "i64": W.ValType.i64(), "f32": W.ValType.f32(),
                 "f64": W.ValType.f64()}
        out: dict[tuple[str, str], Any] = {}
        for imp in host.module.imports:
            if imp.module != _WASI:
                continue
            ty = imp.type
            impl = getattr(self, f"_wasi_{imp.name}", None) if imp.name in _SIGNATURES else None
            if impl is None:
                results = [str(r) for r in ty.results]
                out[(imp.module, imp.name)] = (ty, _enosys(imp.name, results))
            else:
                params, results = _SIGNATURES[imp.name]
                ty = W.FuncType([kinds[p] for p in params], [kinds[r] for r in results])
                out[(imp.module, imp.name)] = (ty, impl)
        return out

    def _u32(self, ptr: int) -> int:
        return struct.unpack("<I", self._host.read(ptr & _U32, 4))[0]

    def _put(self, ptr: int, fmt: str, *values: int) -> None:
        self._host.write(ptr & _U32, memoryview(struct.pack(fmt, *values)))

    def _wasi_fd_write(self, fd: int, iovs: int, count: int, nwritten: int) -> int:
        if fd not in (1, 2):
            return EBADF
        chunks = []
        for i in range(count):
            base, length = struct.unpack("<II", self._host.read((iovs & _U32) + 8 * i, 8))
            chunks.append(self._host.read(base, length))
        data = b"".join(chunks)
        writer = self._writers[fd]
        text = data.decode("utf-8", "replace")
        if writer is not None:
            writer(text)
        else:
            stream = sys.stdout if fd == 1 else sys.stderr
            stream.write(text)
            stream.flush()
        self._put(nwritten, "<I", len(data))
        return 0

    _CLOCKS: ClassVar[dict[int, Callable[[], int]]] = {
        0: time.time_ns, 1: time.monotonic_ns, 2: time.process_time_ns, 3: time.thread_time_ns,
    }

    def _wasi_clock_time_get(self, clock: int, precision: int, out: int) -> int:
        now = self._CLOCKS.get(clock)
        if now is None:
            return EINVAL
        self._put(out, "<Q", now())
        return 0

    def _wasi_clock_res_get(self, clock: int, out: int) -> int:
        if clock not in self._CLOCKS:
            return EINVAL
        self._put(out, "<Q", 1000)
        return 0

    def _wasi_random_get(self, buf: int, length: int) -> int:
        self._host.write(buf & _U32, memoryview(os.urandom(length & _U32)))
        return 0

    def _wasi_args_sizes_get(self, count: int, size: int) -> int:
        self._put(count, "<I", 0)
        self._put(size, "<I", 0)
        return 0

    def _wasi_args_get(self, argv: int, buf: int) -> int:
        return 0

    _wasi_environ_sizes_get = _wasi_args_sizes_get
    _wasi_environ_get = _wasi_args_get

    def _wasi_sched_yield(self) -> int:
        time.sleep(0)
        return 0

    def _wasi_proc_exit(self, code: int) -> None:
        self._host.exit_code = code & _U32
        raise ProcExit(code & _U32)  # unwinds the wasm code: becomes a trap

    # -- calls -----------------------------------------------------------------------------
    @property
    def exports(self) -> list[str]:
        """Names of the exported functions (not the wasi-threads entry point)."""
        import wasmtime as W

        return sorted(e.name for e in self._host.module.exports
                      if isinstance(e.type, W.FuncType) and e.name != "wasi_thread_start")

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
            raise WasmTrap(f"{self.name}.{name}: a thread trapped: "
                           f"{self._host.thread_errors[before]}")
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
            raise TypeError(f"{self.module.name}.{self.name} takes {len(self.params)} "
                            f"arguments ({', '.join(self.params)}), got {len(args)}")
        values = [self._convert(i, kind, a) for i, (kind, a) in
                  enumerate(zip(self.params, args, strict=True))]
        return self.module._run(self.name, tuple(values))

    def _convert(self, i: int, kind: str, value: Any) -> int | float:
        where = f"{self.module.name}.{self.name} argument {i + 1} ({kind})"
        if isinstance(value, PoolArray):
            if value.arena is not self.module:
                raise TypeError(f"{where}: the array lives in {value.arena.name!r}, not in this "
                                f"module; copy it with mod.asarray(array)")
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


def _check_imports(name: str, module: Any) -> None:
    import wasmtime as W

    problems = []
    has_memory = has_spawn = False
    for imp in module.imports:
        key = f"{imp.module}.{imp.name}"
        if (imp.module, imp.name) == ("env", "memory"):
            has_memory = True
            if not isinstance(imp.type, W.MemoryType) or not imp.type.is_shared:
                problems.append("env.memory must be a shared memory (link with --shared-memory)")
        elif (imp.module, imp.name) == ("wasi", "thread-spawn"):
            has_spawn = True
        elif imp.module == _WASI:
            if not isinstance(imp.type, W.FuncType):
                problems.append(f"{key} is not a function")
            elif imp.name in _SIGNATURES:
                params, results = _SIGNATURES[imp.name]
                got = ([str(p) for p in imp.type.params], [str(r) for r in imp.type.results])
                if got != (params, results):
                    problems.append(f"{key} has signature {got}, WASI preview1 has "
                                    f"{(params, results)}")
        else:
            problems.append(f"{key} (the host provides only env.memory, wasi.thread-spawn "
                            f"and {_WASI}.*)")
    exported = {e.name for e in module.exports}
    if not has_memory:
        problems.append("it does not import env.memory (link with --import-memory "
                        "--shared-memory)")
    if "memory" in exported and not has_memory:
        problems.append("it exports its own memory instead of importing a shared one")
    if has_spawn and "wasi_thread_start" not in exported:
        problems.append("it imports wasi.thread-spawn but does not export wasi_thread_start")
    if problems:
        raise ForeignModuleError(f"{name} is not a wasi-threads module this host can run: "
                                 + "; ".join(problems))


def _enosys(name: str, results: list[str]) -> Callable[..., Any]:
    def unsupported(*args: Any) -> Any:
        if results == ["i32"]:
            return ENOSYS
        raise ForeignModuleError(f"WASI {name} is not supported by this host")

    return unsupported


__all__ = ["ForeignFunction", "ForeignModule", "dtypes", "load_module"]
