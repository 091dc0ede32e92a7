"""The seam to the pool: marshal arguments into a ctx frame, call, read the result back.

Backend-agnostic: it talks to a JitHost (its arena, read/write, load_module, call). The
frame's layout is frame.py's. Arrays:
- a PoolArray in the host's own memory is used in place (no copy);
- anything else (numpy arrays of any layout, other PoolArrays, buffers, lists) is copied into
  pool memory for the call and, when the compiled code writes that parameter, copied back
  (numpy arrays and writable buffers) -- also when the call fails, so the writes made before
  an error are visible, as in Python. A list the function writes is refused up front.
"""

from __future__ import annotations

import struct
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .. import dtypes, pool
from ..abi import E_CANCELED, E_INDEX, E_LOAD, E_NOMEM, E_VALUE, E_ZERODIV
from ..array import Block, PoolArray, asarray
from ..errors import PoolError, PoolMemoryError
from . import frame as FR
from .errors import quote, where
from .lower import Lowered
from .typeinfer import ArrayType, TypedFunc, type_name


class JitHost(Protocol):
    """What a compiled kernel needs from the pool it runs on (docs/jit.md, host protocol)."""

    shared: bool  # the pool's memory is shared (threaded build)
    arena: Any  # PoolArrays of this arena are used in place; frames and copies come from it

    def write(self, ptr: int, data: bytes | bytearray | memoryview) -> None: ...
    def read(self, ptr: int, nbytes: int) -> bytes: ...
    def load_module(self, wasm: bytes, nfuncs: int) -> int: ...  # -> table_base
    def call(self, main_slot: int, ctx: int) -> int: ...  # jr_jit_call -> status


_host: Callable[[], JitHost] | None = None


def set_host(host: JitHost | Callable[[], JitHost] | None) -> None:
    """Where jitted functions run: a JitHost, or a function returning the current one."""
    global _host
    if host is None or callable(host) and not hasattr(host, "load_module"):
        _host = host  # type: ignore[assignment]
    else:
        _host = lambda: host  # type: ignore[assignment, return-value]


def host_factory() -> Callable[[], JitHost] | None:
    """What set_host installed (tests put it back after pointing the jit elsewhere)."""
    return _host


def current_host() -> JitHost:
    if _host is None:
        raise PoolError(
            "no pool is set up to run jitted functions yet; start the pool "
            "(jr.init_thread_pool) or call jupyterlite_rayon.jit.runtime."
            "set_host(...)"
        )
    return _host()


# -- arguments ---------------------------------------------------------------------------
_NUMPY_SCALARS = {
    "float64": "f64",
    "float32": "f32",
    "int64": "i64",
    "int32": "i32",
    "bool": "bool",
    "uint32": "i64",
    "int16": "i64",
    "int8": "i64",
    "uint16": "i64",
    "uint8": "i64",
}


# The array dtypes jitted code loads and stores (typeinfer, lower); the pool has more (uint64).
_ARRAY_DTYPES = ("float64", "float32", "int64", "int32", "uint32")


def _jit_dtype(name: str) -> str:
    if name not in _ARRAY_DTYPES:
        raise TypeError(f"an array of dtype {name}; convert it first, e.g. x.astype('float64')")
    return name


@dataclass
class Arg:
    """One argument, classified: its jit type, and for arrays where its data comes from."""

    ty: Any
    value: Any = None  # scalars: the Python number
    array: Any = None  # arrays: the object the user passed
    pool: PoolArray | None = None  # ... or the PoolArray made from it / passed in
    owned: bool = False  # pool was made here and is closed after the call


def classify(value: Any, host: JitHost) -> Arg:
    """The Arg for one value, or TypeError(reason) if no signature can take it."""
    if isinstance(value, bool):
        return Arg("bool", value)
    if isinstance(value, int):
        if not -(1 << 63) <= value < (1 << 63):
            raise OverflowError(f"{value} does not fit in int64")
        return Arg("i64", value)
    if isinstance(value, float):
        return Arg("f64", value)
    if isinstance(value, PoolArray):
        _check_ndim(value.ndim)
        return Arg(ArrayType(_jit_dtype(value.dtype), value.ndim), array=value, pool=value)
    module = type(value).__module__
    if module == "numpy" and hasattr(value, "dtype"):
        name = value.dtype.name
        if getattr(value, "ndim", 0) == 0:
            if name not in _NUMPY_SCALARS:
                raise TypeError(f"a numpy {name} scalar")
            t = _NUMPY_SCALARS[name]
            py = value.item()
            return Arg(t, py)
        _check_ndim(value.ndim)
        return Arg(ArrayType(_jit_dtype(name), value.ndim), array=value)
    if isinstance(value, (list, tuple)):
        pool = asarray(value, arena=host.arena)
        if pool.dtype not in _ARRAY_DTYPES:
            pool.close()
            _jit_dtype(pool.dtype)
        return Arg(ArrayType(pool.dtype, pool.ndim), array=value, pool=pool, owned=True)
    try:
        view = memoryview(value)
    except TypeError:
        raise TypeError(f"a {type(value).__name__}") from None
    dt = dtypes.from_format(view.format, view.itemsize)
    if dt is None:
        raise TypeError(f"a buffer of format {view.format!r}")
    _check_ndim(view.ndim)
    return Arg(ArrayType(_jit_dtype(dt.name), view.ndim), array=value)


def _check_ndim(ndim: int) -> None:
    if not 1 <= ndim <= 3:
        raise TypeError(f"a {ndim}-D array (jitted functions take 1-D to 3-D arrays)")


def describe(a: Arg) -> str:
    return type_name(a.ty)


# -- running -----------------------------------------------------------------------------
class Kernel:
    """One compiled signature: its module, frame layout and check sites."""

    def __init__(self, tf: TypedFunc, lowered: Lowered, text: Callable[[], str]) -> None:
        self.tf = tf
        self.lowered = lowered
        self.wasm = lowered.wasm
        self.text = text
        self.argtypes = tf.argtypes
        self.writes = tf.writes
        self._bases: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    def base(self, host: JitHost) -> int:
        base = self._bases.get(host)
        if base is None:
            base = self._bases[host] = host.load_module(self.wasm, self.lowered.nfuncs)
        return base

    def run(self, host: JitHost, args: list[Arg]) -> Any:
        frame = self.lowered.frame
        params = self.tf.ir.params
        for name, a in zip(params, args, strict=True):
            if isinstance(a.ty, ArrayType) and name in self.writes:
                _check_writable(self.tf.name, name, a)
        base = self.base(host)
        frame_block = _block(
            host,
            frame.size,
            True,
            "the pool has no memory left for a jitted call's frame; free arrays you no longer need",
        )
        ctx = frame_block.ptr
        copies: list[tuple[str, Arg, Block, int]] = []
        try:
            buf = bytearray(frame.size)
            for name, a in zip(params, args, strict=True):
                off = frame.args[name]
                if not isinstance(a.ty, ArrayType):
                    if a.ty in ("f64", "f32"):
                        struct.pack_into("<d", buf, off, float(a.value))
                    else:
                        struct.pack_into("<q", buf, off, int(a.value))
                    continue
                ptr, shape = self._array_in(host, name, a, copies)
                struct.pack_into("<I", buf, off, ptr)
                for d, extent in enumerate(shape):
                    struct.pack_into("<q", buf, off + FR.SLOT * (1 + d), extent)
            host.write(ctx, buf)
            start = time.perf_counter()
            status = host.call(base, ctx)
            pool.record_run(self.tf.name, time.perf_counter() - start)  # magics, widget
            if status != 0:
                record = host.read(ctx, FR.RESULT)
                raise self._error(status, record)
            if self.tf.ret is None:
                return None
            raw = host.read(ctx + FR.RESULT, 8)
            if self.tf.ret in ("f64", "f32"):
                return struct.unpack("<d", raw)[0]
            value = struct.unpack("<q", raw)[0]
            return bool(value) if self.tf.ret == "bool" else value
        finally:
            try:
                for name, a, block, nbytes in copies:
                    if name in self.writes:
                        _write_back(a, host.read(block.ptr, nbytes))
            finally:
                # An interrupt here leaves the rest to the blocks' finalizers.
                for _, _, block, _ in copies:
                    block.close()
                for a in args:
                    if a.owned and a.pool is not None:
                        a.pool.close()
                frame_block.close()

    def _array_in(
        self, host: JitHost, name: str, a: Arg, copies: list[tuple[str, Arg, Block, int]]
    ) -> tuple[int, tuple[int, ...]]:
        pool = a.pool
        if pool is not None and pool.arena is host.arena:
            return pool.ptr, pool.shape
        if pool is not None:
            data: bytes | memoryview = pool.tobytes()
            shape = pool.shape
        elif type(a.array).__module__ == "numpy":
            import numpy as np

            contiguous = np.ascontiguousarray(a.array)
            data = contiguous.reshape(-1).view(np.uint8).data
            shape = tuple(int(s) for s in contiguous.shape)
        else:
            view = memoryview(a.array)
            data = view.cast("B") if view.c_contiguous else view.tobytes()
            shape = tuple(view.shape or ())
        nbytes = len(data)
        block = _block(
            host,
            nbytes,
            False,
            f"the pool cannot hold a copy of {name!r} ({nbytes} bytes); "
            "pass a PoolArray (jr.asarray) or smaller arrays",
        )
        copies.append((name, a, block, nbytes))
        if nbytes:
            host.write(block.ptr, data)
        return block.ptr, shape

    def _error(self, status: int, record: bytes) -> BaseException:
        code, site_index, a, b = struct.unpack_from("<iiqq", record, 0)
        code = code or status
        sites = self.lowered.sites
        site = sites[site_index] if 0 <= site_index < len(sites) else sites[0]
        at = (
            where(site.function, site.filename, site.line)
            if site.line
            else f"in jitted function {site.function!r}"
        )
        src = quote(site.filename, site.line)
        if status == E_LOAD:
            return PoolError(
                f"a pool thread could not load the module of {self.tf.name!r}; restart "
                "the pool (jr.shutdown(), then call again)"
            )
        if status == E_CANCELED or code == E_CANCELED:
            return KeyboardInterrupt(f"{at}: interrupted; the pool is ready for the next call")
        if code == E_INDEX:
            return IndexError(
                f"index {a} is out of bounds for axis {site.axis} with size {b} "
                f"(array {site.array!r}) {at}{src}"
            )
        if code == E_ZERODIV:
            return ZeroDivisionError(f"{site.detail} {at}{src}")
        if code == E_VALUE:
            return ValueError(f"{site.detail} {at}{src}")
        if code == E_NOMEM:
            return PoolMemoryError(
                f"the pool ran out of memory for a prange reduction {at}: "
                "free arrays you no longer need"
            )
        return PoolError(f"jitted function {self.tf.name!r} failed with status {code}")


def _check_writable(func: str, name: str, a: Arg) -> None:
    target = a.array
    if isinstance(target, (list, tuple)):
        raise TypeError(
            f"{func} writes to its argument {name!r}, but a {type(target).__name__} "
            "was passed: pass a numpy array or a PoolArray (jr.asarray) to see "
            "the results"
        )
    if type(target).__module__ == "numpy":
        if not target.flags.writeable:
            raise TypeError(
                f"{func} writes to its argument {name!r}, but that numpy array is read-only"
            )
        return
    if isinstance(target, PoolArray):
        return
    if memoryview(target).readonly:
        raise TypeError(f"{func} writes to its argument {name!r}, but that buffer is read-only")


def _write_back(a: Arg, data: bytes) -> None:
    target = a.array
    if isinstance(target, PoolArray):
        target.arena.write(target.ptr, memoryview(data))
    elif type(target).__module__ == "numpy":
        import numpy as np

        target[...] = np.frombuffer(data, dtype=target.dtype).reshape(target.shape)
    else:
        view = memoryview(target)
        if view.c_contiguous:
            view.cast("B")[:] = data
        else:  # a strided buffer: element by element through a C-ordered copy
            flat = memoryview(bytearray(data)).cast(view.format, view.shape)  # type: ignore[call-overload]
            _copy_nd(flat, view)


def _copy_nd(src: memoryview, dst: memoryview) -> None:
    if dst.ndim == 1:
        for i in range(dst.shape[0] if dst.shape else 0):
            dst[i] = src[i]
        return
    raise TypeError(
        "writing results back into a strided multi-dimensional buffer is not "
        "supported: pass a numpy array or a contiguous buffer"
    )


def _block(host: JitHost, nbytes: int, zero: bool, no_memory: str) -> Block:
    """A block of the host's arena for one call (freed once, even if an interrupt lands)."""
    try:
        return Block(host.arena, nbytes, zero)
    except PoolMemoryError as e:
        raise PoolMemoryError(no_memory) from e
