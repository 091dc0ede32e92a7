"""Minimal WASI preview1 for wasi-threads modules on wasmtime (users' own modules).

Provided: fd_write (stdout/stderr to a callback or sys.stdout/sys.stderr), clock_time_get,
clock_res_get, random_get, args/environ (empty), sched_yield, proc_exit (raises ProcExit, which
unwinds the module's code); every other WASI function returns ENOSYS (or raises when it
returns nothing). `check_imports` says, before anything runs, why a module does not fit.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from collections.abc import Callable
from typing import Any, ClassVar

import wasmtime as W

from ..errors import ForeignModuleError, ProcExit

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


class Wasi:
    """The WASI imports of one module; `imports` is a wasi_threads.ImportsFn."""

    def __init__(
        self, stdout: Callable[[str], Any] | None = None, stderr: Callable[[str], Any] | None = None
    ) -> None:
        self._writers = {1: stdout, 2: stderr}
        self._host: Any = None

    def imports(self, host: Any, store: Any) -> dict[tuple[str, str], Any]:
        self._host = host
        kinds = {
            "i32": W.ValType.i32(),
            "i64": W.ValType.i64(),
            "f32": W.ValType.f32(),
            "f64": W.ValType.f64(),
        }
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

    # realtime, monotonic, process CPU, thread CPU (Pyodide has no thread clock: process CPU)
    _CLOCKS: ClassVar[dict[int, Callable[[], int]]] = {
        0: time.time_ns,
        1: time.monotonic_ns,
        2: time.process_time_ns,
        3: getattr(time, "thread_time_ns", time.process_time_ns),
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
        self._host.note_exit(code & _U32)
        raise ProcExit(code & _U32)  # unwinds the wasm code: becomes a trap


def check_imports(name: str, module: Any) -> None:
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
                    problems.append(
                        f"{key} has signature {got}, WASI preview1 has {(params, results)}"
                    )
        else:
            problems.append(
                f"{key} (the host provides only env.memory, wasi.thread-spawn and {_WASI}.*)"
            )
    exported = {e.name for e in module.exports}
    if not has_memory:
        problems.append("it does not import env.memory (link with --import-memory --shared-memory)")
    if "memory" in exported and not has_memory:
        problems.append("it exports its own memory instead of importing a shared one")
    if has_spawn and "wasi_thread_start" not in exported:
        problems.append("it imports wasi.thread-spawn but does not export wasi_thread_start")
    if problems:
        raise ForeignModuleError(
            f"{name} is not a wasi-threads module this host can run: " + "; ".join(problems)
        )


def _enosys(name: str, results: list[str]) -> Callable[..., Any]:
    def unsupported(*args: Any) -> Any:
        if results == ["i32"]:
            return ENOSYS
        raise ForeignModuleError(f"WASI {name} is not supported by this host")

    return unsupported
