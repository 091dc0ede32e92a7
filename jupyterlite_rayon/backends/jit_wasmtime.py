"""Jitted modules on the wasmtime pool: registering them and loading them into each thread.

kernels/ABI.md ("Jitted modules"): the host writes a module's bytes into pool memory and
registers them (jr_jit_add_module); each pool thread, before it runs jitted code, calls
`env.host_load_modules` when its table is shorter than the registry's table_end. Here that
import is a host function with access to its caller (wasmtime-py's `access_caller`), so it
instantiates the missing modules into the calling thread's own Store, with that instance's
table and exports. Compiled modules are kept per entry, so a thread only instantiates.
"""

from __future__ import annotations

import struct
import threading
from typing import Any

import wasmtime as W

from .. import errors
from .wasmtime_compat import clear_callback_exception

_U32 = 0xFFFFFFFF
_HEADER = struct.Struct("<IIII")  # count, table_end, table_start, lock
_ENTRY = struct.Struct("<IIII")  # ptr, len, table_base, nfuncs
_TABLE = "__indirect_function_table"


class JitModules:
    """The compiled jitted modules of one pool and the env.host_load_modules import."""

    def __init__(self, engine: W.Engine) -> None:
        self.engine = engine
        self.memory: Any = None  # the pool's Memory or SharedMemory, set once the pool runs
        self.reader: Any = None  # reads pool memory (WasmThreads)
        self.registry = 0  # jr_jit_modules()
        self._compiled: dict[int, W.Module] = {}  # table_base -> module
        self._lock = threading.Lock()
        self.last_error = ""  # why the last load failed, for the E_LOAD message

    def compile(self, wasm: bytes) -> W.Module:
        """The module compiled for this pool's engine, or PoolError saying why it is invalid."""
        try:
            return W.Module(self.engine, wasm)
        except W.WasmtimeError as exc:
            raise errors.PoolError(
                f"the pool's engine refused a jitted module: {exc}; please report this "
                "with the function that was compiled"
            ) from None

    def keep(self, table_base: int, module: W.Module) -> None:
        with self._lock:
            self._compiled[table_base] = module

    def import_func(self, store: W.Store) -> W.Func:
        """env.host_load_modules for one thread's Store."""
        ty = W.FuncType([], [W.ValType.i32()])
        return W.Func(store, ty, self._load, access_caller=True)

    # -- in a pool thread, from inside wasm ----------------------------------------------
    def _load(self, caller: W.Caller) -> int:
        try:
            return self._load_missing(caller)
        except Exception as exc:  # noqa: BLE001 -- an exception cannot cross into wasm
            clear_callback_exception()
            self.last_error = f"{type(exc).__name__}: {exc}"
            return -1

    def _load_missing(self, caller: W.Caller) -> int:
        count, _end, _start, _lock = _HEADER.unpack(self.reader.read(self.registry, 16))
        entries = self.reader.read(self.registry + 16, 16 * count) if count else b""
        table = caller.get(_TABLE)
        if not isinstance(table, W.Table):
            raise errors.PoolError(f"the pool module does not export {_TABLE}")
        exports: dict[str, Any] = {}
        for i in range(count):
            ptr, nbytes, base, nfuncs = _ENTRY.unpack_from(entries, 16 * i)
            size = table.size(caller)
            if base + nfuncs <= size:
                continue  # this instance has it
            if size < base:
                table.grow(caller, base - size, None)
            module = self._module(base, ptr, nbytes)
            if table.grow(caller, nfuncs, None) != base:
                raise errors.PoolError("a jitted module's table slots moved")
            imports: list[Any] = []
            for imp in module.imports:
                key = (imp.module, imp.name or "")
                if key == ("env", "memory"):
                    imports.append(self.memory)
                elif key == ("env", "table"):
                    imports.append(table)
                elif key == ("env", "table_base"):
                    ty = W.GlobalType(W.ValType.i32(), False)
                    imports.append(W.Global(caller, ty, W.Val.i32(base)))
                elif key[0] == "pool":
                    if key[1] not in exports:
                        exports[key[1]] = caller.get(key[1])
                    item = exports[key[1]]
                    if item is None:
                        raise errors.PoolError(f"the pool module lacks pool.{key[1]}")
                    imports.append(item)
                else:
                    raise errors.PoolError(f"a jitted module imports {key[0]}.{key[1]}")
            W.Instance(caller, module, imports)
        return count

    def _module(self, base: int, ptr: int, nbytes: int) -> W.Module:
        with self._lock:
            module = self._compiled.get(base)
        if module is None:  # registered by another host object: compile from pool memory
            module = self.compile(self.reader.read(ptr, nbytes))
            self.keep(base, module)
        return module
