"""A sequential stand-in for the pool side of the jit ABI, on wasmtime.

It provides exactly what docs/jit.md's "The jit ABI" asks of the pool: env.memory (plain or
shared, 64..32768 pages), env.table (funcref), env.table_base, pool.jr_jit_for (bodies run
over [0, n) split into `pieces` chunks, in forward or reverse order, to mimic threads),
pool.jr_jit_poll, pool.jr_alloc / jr_free (a first-fit allocator over the memory) and
pool.jr_math_* (Python's math). `call` runs main through the table, as the pool's
jr_jit_call does. When the real pool exists, a JitHost over it replaces this class and the
same tests run on it.
"""

from __future__ import annotations

import ctypes
import itertools
import math
from typing import Any

import wasmtime as W

from jupyterlite_rayon.array import PoolArray
from jupyterlite_rayon.backends import wasmtime_backend  # noqa: F401  (SharedMemory fix)
from jupyterlite_rayon.errors import PoolMemoryError

PAGE = 65536
_MATH1 = ("exp", "log", "log2", "log10", "sin", "cos", "tan", "atan", "sinh", "cosh", "tanh")
_MATH2 = ("atan2", "pow", "hypot", "fmod")


def _math(name: str) -> Any:
    fn = getattr(math, name)

    def safe(*args: float) -> float:
        try:
            return float(fn(*args))
        except (ValueError, OverflowError):
            # C's libm answers nan/inf where Python's math raises (as the Zig exports will).
            if name == "log" or name in ("log2", "log10"):
                x = args[0]
                return -math.inf if x == 0 else math.nan
            if name in ("exp", "sinh", "cosh"):
                return math.inf if args[0] > 0 or name == "cosh" else -math.inf
            if name == "pow":
                try:
                    return float(math.pow(*args))
                except (ValueError, OverflowError):
                    return math.nan if args[0] < 0 else math.inf
            return math.nan

    return safe


class StandInArena:
    """PoolArrays in the stand-in's memory (array.py's Arena protocol)."""

    name = "jit stand-in"

    def __init__(self, host: StandIn) -> None:
        self.host = host

    def alloc_owned(self, holder: list[int], nbytes: int, zero: bool) -> int:
        ptr = self.host.alloc(nbytes, zero)
        if not ptr:
            raise PoolMemoryError(f"the stand-in cannot allocate {nbytes} bytes")
        holder.append(ptr)
        return ptr

    def free_owned(self, holder: list[int], nbytes: int) -> None:
        if holder:
            self.host.free(holder.pop())

    def release_owned(self, holder: list[int], nbytes: int) -> None:
        self.free_owned(holder, nbytes)

    def write(self, ptr: int, data: memoryview) -> None:
        self.host.write(ptr, data)

    def read(self, ptr: int, nbytes: int) -> bytes:
        return self.host.read(ptr, nbytes)

    def read_into(self, ptr: int, out: memoryview) -> None:
        out.cast("B")[:] = self.host.read(ptr, out.nbytes)

    def alive(self) -> bool:
        return True


class StandIn:
    """A JitHost (jupyterlite_rayon.jit.runtime) running everything on one thread."""

    def __init__(self, shared: bool = False, pieces: int = 1, reverse: bool = False) -> None:
        cfg = W.Config()
        cfg.wasm_threads = True
        cfg.shared_memory = True
        cfg.wasm_bulk_memory = True
        self.engine = W.Engine(cfg)
        self.store = W.Store(self.engine)
        self.shared = shared
        self.pieces = pieces
        self.reverse = reverse
        limits = W.Limits(64, 32768)
        self.memory: Any
        if shared:
            self.memory = W.SharedMemory(self.engine, W.MemoryType(limits, shared=True))
        else:
            self.memory = W.Memory(self.store, W.MemoryType(limits))
        self.table = W.Table(self.store, W.TableType(W.ValType.funcref(), W.Limits(0, None)), None)
        self.arena = StandInArena(self)
        self.blocks: dict[int, int] = {}  # live allocations: ptr -> size
        self.free_list: list[tuple[int, int]] = []
        self.top = 1024
        self.for_calls: list[tuple[int, int]] = []  # (n, min_len) of every jr_jit_for
        self.loaded = 0
        self._funcs = self._pool_funcs()

    # -- memory ------------------------------------------------------------------------
    def _base(self) -> int:
        if self.shared:
            ptr = self.memory.data_ptr()
        else:
            ptr = self.memory.data_ptr(self.store)
        return ctypes.cast(ptr, ctypes.c_void_p).value or 0

    def _size(self) -> int:
        return self.memory.data_len() if self.shared else self.memory.data_len(self.store)

    def alloc(self, nbytes: int, zero: bool) -> int:
        size = max(16, (nbytes + 15) & ~15)
        for i, (ptr, have) in enumerate(self.free_list):
            if have >= size:
                del self.free_list[i]
                if have > size:
                    self.free_list.append((ptr + size, have - size))
                break
        else:
            ptr = self.top
            end = ptr + size
            if end > self._size():
                pages = (end - self._size() + PAGE - 1) // PAGE
                if self._size() // PAGE + pages > 32768:
                    return 0
                if self.shared:
                    self.memory.grow(pages)
                else:
                    self.memory.grow(self.store, pages)
            self.top = end
        self.blocks[ptr] = size
        if zero:
            ctypes.memset(self._base() + ptr, 0, size)
        return ptr

    def free(self, ptr: int) -> None:
        if ptr:
            self.free_list.append((ptr, self.blocks.pop(ptr)))

    def write(self, ptr: int, data: bytes | bytearray | memoryview) -> None:
        raw = bytes(data)
        assert ptr + len(raw) <= self._size()
        ctypes.memmove(self._base() + ptr, raw, len(raw))

    def read(self, ptr: int, nbytes: int) -> bytes:
        assert ptr + nbytes <= self._size()
        return ctypes.string_at(self._base() + ptr, nbytes)

    # -- the pool's imports ------------------------------------------------------------
    def _pool_funcs(self) -> dict[str, W.Func]:
        i32, i64, f64 = W.ValType.i32(), W.ValType.i64(), W.ValType.f64()
        store = self.store

        def jit_for(slot: int, ctx: int, n: int, min_len: int) -> int:
            self.for_calls.append((n, min_len))
            body = self.table.get(store, slot)
            k = max(1, min(self.pieces, n))
            bounds = [n * i // k for i in range(k + 1)]
            chunks = list(itertools.pairwise(bounds))
            if self.reverse:
                chunks.reverse()
            for lo, hi in chunks:
                if self.polls_cancel():
                    return -3
                body(store, ctx, lo, hi)
            return 0

        def alloc(nbytes: int, zero: int) -> int:
            return self.alloc(nbytes & 0xFFFFFFFF, bool(zero))

        def free(ptr: int) -> None:
            self.free(ptr & 0xFFFFFFFF)

        funcs = {
            "jr_jit_for": W.Func(store, W.FuncType([i32, i32, i64, i64], [i32]), jit_for),
            "jr_jit_poll": self._poll_export(),
            "jr_alloc": W.Func(store, W.FuncType([i32, i32], [i32]), alloc),
            "jr_free": W.Func(store, W.FuncType([i32], []), free),
        }
        for name in _MATH1:
            funcs[f"jr_math_{name}"] = W.Func(store, W.FuncType([f64], [f64]), _math(name))
        for name in _MATH2:
            funcs[f"jr_math_{name}"] = W.Func(store, W.FuncType([f64, f64], [f64]), _math(name))
        return funcs

    def _poll_export(self) -> Any:
        # A tiny wasm function, as the pool's will be: a Python callback costs microseconds
        # per call, which would dominate any timing of compiled loops.
        wat = """(module
          (global $polls (export "polls") (mut i32) (i32.const 0))
          (global $limit (export "limit") (mut i32) (i32.const -1))
          (func (export "poll") (result i32)
            global.get $polls i32.const 1 i32.add global.set $polls
            global.get $polls global.get $limit i32.ge_u))"""
        inst = W.Instance(self.store, W.Module(self.engine, W.wat2wasm(wat)), [])
        exports = inst.exports(self.store)
        self._polls, self._limit = exports["polls"], exports["limit"]
        return exports["poll"]

    @property
    def polls(self) -> int:
        return int(self._polls.value(self.store))

    @polls.setter
    def polls(self, value: int) -> None:
        self._polls.set_value(self.store, value)

    @property
    def cancel_after(self) -> int | None:
        limit = int(self._limit.value(self.store)) & 0xFFFFFFFF
        return None if limit == 0xFFFFFFFF else limit

    @cancel_after.setter
    def cancel_after(self, value: int | None) -> None:
        self._limit.set_value(self.store, -1 if value is None else value)

    def polls_cancel(self) -> bool:
        limit = self.cancel_after
        return limit is not None and self.polls >= limit

    # -- the host protocol -------------------------------------------------------------
    def load_module(self, wasm: bytes, nfuncs: int) -> int:
        W.Module.validate(self.engine, wasm)
        module = W.Module(self.engine, wasm)
        base = self.table.size(self.store)
        self.table.grow(self.store, nfuncs, None)
        table_base = W.Global(self.store, W.GlobalType(W.ValType.i32(), False), base)
        imports: list[Any] = []
        for imp in module.imports:
            key = (imp.module, imp.name)
            if key == ("env", "memory"):
                imports.append(self.memory)
            elif key == ("env", "table"):
                imports.append(self.table)
            elif key == ("env", "table_base"):
                imports.append(table_base)
            elif imp.module == "pool" and imp.name in self._funcs:
                imports.append(self._funcs[imp.name])
            else:
                raise AssertionError(f"the module imports {key}, which the jit ABI lacks")
        W.Instance(self.store, module, imports)
        self.loaded += 1
        return base

    def call(self, main_slot: int, ctx: int) -> int:
        self.polls = 0
        main = self.table.get(self.store, main_slot)
        return int(main(self.store, ctx))

    def pool_array(self, data: Any) -> PoolArray:
        """A PoolArray in this stand-in's memory (used in place by jitted calls)."""
        from jupyterlite_rayon.array import asarray

        return asarray(data, arena=self.arena)
