"""PoolArray: data resident in a wasm module's memory, and the ways to make one.

An array owns one block allocated in its module's memory (jr_alloc_into for the pool, the
module's malloc for a foreign module). The block is freed exactly once: by close(), by the
context manager, or by garbage collection (__del__). Using a closed array raises.
A pool array owns its block through a cell (cells.py) from before the block exists, so a
KeyboardInterrupt at any moment cannot leak it; a foreign module's malloc returns its address
like any call, so a Ctrl-C just after it can still leak that block.

Input conversion (`asarray`): any buffer-protocol object or a list. Buffers in a dtype the
pool lacks raise TypeError naming the dtypes it has; non-contiguous buffers (a strided
memoryview, a numpy slice with a step, a transposed array) are copied into C order first,
like numpy.ascontiguousarray; memory the pool cannot read in one piece is never passed.
numpy is optional and imported only when the input is a numpy array or to_numpy() is called.
"""

from __future__ import annotations

import _thread
import array as _pyarray
import math
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol, Self

from . import dtypes, pool
from .cells import Cells, Kept, read_cell
from .dtypes import DType
from .errors import PoolError, PoolMemoryError

_U32 = 0xFFFFFFFF


class Arena(Protocol):
    """Where arrays live: the pool (pool.py) or a foreign module (foreign.py).

    An owner's block: `alloc_owned(holder, nbytes, zero)` allocates it into `holder` (an empty
    list the owner keeps), `free_owned(holder, nbytes)` frees it now (close),
    `release_owned(holder, nbytes)` soon (the owner's finalizer; a no-op once the block was
    freed or the arena is gone).
    """

    name: str

    def alloc_owned(self, holder: list[int], nbytes: int, zero: bool) -> int: ...
    def free_owned(self, holder: list[int], nbytes: int) -> None: ...
    def release_owned(self, holder: list[int], nbytes: int) -> None: ...
    def write(self, ptr: int, data: memoryview) -> None: ...
    def read(self, ptr: int, nbytes: int) -> bytes: ...
    def read_into(self, ptr: int, out: memoryview) -> None: ...
    def alive(self) -> bool: ...


class PoolArena:
    """The running pool's memory, through its backend: blocks owned through cells, small
    freed ones kept for reuse (cells.py)."""

    name = "pool"

    def __init__(self, backend: Any, cells: Cells, kept: Kept) -> None:
        self.backend = backend
        self.cells = cells
        self.kept = kept

    def alloc_owned(self, holder: list[int], nbytes: int, zero: bool) -> int:
        if self.kept.take(holder, nbytes):
            ptr = read_cell(self.backend, holder[0])
            if ptr:
                if zero and nbytes:
                    self.backend.write(ptr, memoryview(bytes(nbytes)))
                return ptr
        else:
            self.cells.take(holder)
        try:
            return int(self.backend.alloc_into(holder[0], nbytes, zero))
        except PoolMemoryError:
            if not self.free_kept():
                raise
        return int(self.backend.alloc_into(holder[0], nbytes, zero))

    def free_owned(self, holder: list[int], nbytes: int) -> None:
        if holder and self.alive() and not self.kept.keep(holder, nbytes):
            self.backend.free_cell(holder[0])

    def release_owned(self, holder: list[int], nbytes: int) -> None:
        if not holder or not self.alive():
            return
        cell = holder[0]
        ptr = read_cell(self.backend, cell)
        if ptr:  # not closed: keep it, or free it (after the running call, if inside one)
            if self.kept.keep(holder, nbytes):
                return
            # Freed before the cell is cleared: cut short between the two, only the cell is lost.
            self.backend.free_soon(ptr)
            self.backend.store_u32(cell, 0)
        self.cells.give_back(holder)

    def free_kept(self) -> bool:
        """Free the blocks kept for reuse (memory ran short); True when there were some."""
        freed = False
        while True:
            adopter = Block.adopting(self)  # frees what it gets, interrupted or not
            nbytes = self.kept.take_any(adopter._holder)
            if nbytes is None:
                return freed
            adopter._nbytes = nbytes  # until then 0: too small a size never hands out too little
            self.backend.free_cell(adopter._holder[0])
            freed = True

    def write(self, ptr: int, data: memoryview) -> None:
        self.backend.write(ptr, data)

    def read(self, ptr: int, nbytes: int) -> bytes:
        return self.backend.read(ptr, nbytes)

    def read_into(self, ptr: int, out: memoryview) -> None:
        self.backend.read_into(ptr, out)

    def alive(self) -> bool:
        return pool.running_backend() is self.backend


_arenas: dict[int, PoolArena] = {}


def pool_arena() -> PoolArena:
    """The arena of the running pool (started lazily in CPython)."""
    backend = pool.get_backend()
    arena = _arenas.get(id(backend))
    if arena is None or arena.backend is not backend:
        _arenas.clear()
        arena = _arenas[id(backend)] = PoolArena(backend, backend.cells, backend.kept)
    return arena


def _interrupt_again() -> None:
    """A Ctrl-C landed in a finalizer, where Python would print it as ignored and drop it: raise
    it again in the main thread once the finalizer returned (from another thread, which runs
    only when the main thread lets go of the GIL). Without threads (Pyodide) it stays dropped."""
    try:
        _thread.start_new_thread(_thread.interrupt_main, ())
    except RuntimeError:
        pass


class Block:
    """A block of an arena's memory, owned from before it exists (cells.py): freed once, by
    close() or by garbage collection, whatever an interrupt cuts short. A PoolArray is one;
    a jitted call's frame and copies are bare ones."""

    __slots__ = ("__weakref__", "_arena", "_closed", "_holder", "_nbytes", "_ptr")

    def __init__(self, arena: Arena, nbytes: int, zero: bool) -> None:
        self._closed = False
        self._ptr = 0
        self._nbytes = nbytes
        self._arena = arena
        # From here __del__ frees whatever the holder gets, whatever an interrupt cuts short
        # (a finalizer that exists before the block; __del__ costs nothing to set up).
        self._holder: list[int] = []
        self._ptr = arena.alloc_owned(self._holder, nbytes, zero)

    @classmethod
    def adopting(cls, arena: Arena) -> Block:
        """An owner with no block yet, for a cell moved into its holder (then freed)."""
        block = object.__new__(cls)
        block._closed, block._ptr, block._nbytes, block._arena = False, 0, 0, arena
        block._holder = []
        return block

    def __del__(self) -> None:
        holder = getattr(self, "_holder", None)  # unset if an interrupt came before it
        if holder:
            try:
                self._arena.release_owned(holder, self._nbytes)
            except KeyboardInterrupt:
                _interrupt_again()

    @property
    def ptr(self) -> int:
        return self._ptr

    def close(self) -> None:
        """Free the memory now (idempotent). The block cannot be used afterwards."""
        if not self._closed:
            self._closed = True  # first: interrupted before the free, the finalizer frees
            self._arena.free_owned(self._holder, self._nbytes)


class PoolArray(Block):
    """A 1-D or 2-D array in a module's memory. Make one with asarray, empty or zeros."""

    __slots__ = ("_dtype", "_shape")

    def __init__(
        self, arena: Arena, shape: tuple[int, ...], dtype: DType, nbytes: int, zero: bool
    ) -> None:
        """A new array of `nbytes` (uninitialised unless `zero`) in `arena`."""
        self._shape = shape
        self._dtype = dtype
        super().__init__(arena, nbytes, zero)

    # -- properties --------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> str:
        return self._dtype.name

    @property
    def dtype_info(self) -> DType:
        return self._dtype

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return math.prod(self._shape)

    @property
    def nbytes(self) -> int:
        return self.size * self._dtype.itemsize

    @property
    def ptr(self) -> int:
        """Address in the module's memory (valid while the array is open)."""
        self._check_open()
        return self._ptr

    @property
    def arena(self) -> Arena:
        return self._arena

    @property
    def closed(self) -> bool:
        return self._closed or not self._arena.alive()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("this PoolArray is closed; make a new one with jr.asarray(...)")
        if not self._arena.alive():
            raise PoolError(
                f"this PoolArray belongs to a {self._arena.name} that was shut down; "
                "make a new array"
            )

    # -- lifetime ----------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- copying out -------------------------------------------------------------------
    def tobytes(self) -> bytes:
        self._check_open()
        return self._arena.read(self._ptr, self.nbytes)

    def tolist(self) -> list[Any]:
        data = memoryview(self.tobytes())
        if self.size == 0:
            return [] if self.ndim == 1 else [[] for _ in range(self._shape[0])]
        fmt: Any = self._dtype.format  # one of d f i q I Q
        return data.cast(fmt, self._shape).tolist()

    def astype(self, dtype: Any) -> PoolArray:
        """A new array of the values converted to dtype (always a copy, as numpy's astype)."""
        self._check_open()
        want = dtypes.get(dtype)
        if want == self._dtype:
            return _from_bytes(self._arena, self.tobytes(), self._shape, want)
        return asarray(self, want)

    def to_numpy(self) -> Any:
        """A numpy copy of the data."""
        import numpy as np

        self._check_open()
        out = np.empty(self._shape, dtype=self.dtype)
        if out.nbytes:
            flat: Any = out.reshape(-1).view(np.uint8)
            self._arena.read_into(self._ptr, memoryview(flat))
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        out = self.to_numpy()
        return out if dtype is None else out.astype(dtype)

    def __len__(self) -> int:
        return self._shape[0]

    def __iter__(self) -> Any:
        return iter(self.tolist())

    def __getitem__(self, key: int | slice) -> Any:
        self._check_open()
        rows = self._shape[0]
        row_items = self.size // rows if rows else 0
        item = self._dtype.itemsize
        if isinstance(key, slice):
            start, stop, step = key.indices(rows)
            picked = range(start, stop, step)
            if step == 1:
                raw = self._arena.read(
                    self._ptr + start * row_items * item, len(picked) * row_items * item
                )
            elif self.ndim == 1:
                # memoryview slices with a step in C, and tobytes() packs them.
                view = memoryview(self.tobytes()).cast(self._dtype.format)  # type: ignore[call-overload]
                raw = view[key].tobytes()
            else:
                whole = self.tobytes()
                width = row_items * item
                raw = b"".join(whole[i * width : (i + 1) * width] for i in picked)
            shape = (len(picked), *self._shape[1:])
            return _from_bytes(self._arena, raw, shape, self._dtype)
        if not isinstance(key, int) or isinstance(key, bool):
            raise TypeError(f"PoolArray indices must be int or slice, not {type(key).__name__}")
        index = key + rows if key < 0 else key
        if not 0 <= index < rows:
            raise IndexError(f"index {key} is out of bounds for length {rows}")
        raw = self._arena.read(self._ptr + index * row_items * item, row_items * item)
        if self.ndim == 1:
            return struct.unpack("<" + self._dtype.format, raw)[0]
        return _from_bytes(self._arena, raw, self._shape[1:], self._dtype)

    def __repr__(self) -> str:
        if self.closed:
            return f"PoolArray(<closed>, dtype={self.dtype})"
        values = self.tolist() if self.size <= 12 else (self[:6].tolist() + ["..."])
        return f"PoolArray({values}, shape={self._shape}, dtype={self.dtype})"

    # -- operators (computed by the pool) ----------------------------------------------
    def __add__(self, other: Any) -> PoolArray:
        return _OPERATORS["add"](self, other)

    def __radd__(self, other: Any) -> PoolArray:
        return _OPERATORS["add"](other, self)

    def __sub__(self, other: Any) -> PoolArray:
        return _OPERATORS["subtract"](self, other)

    def __rsub__(self, other: Any) -> PoolArray:
        return _OPERATORS["subtract"](other, self)

    def __mul__(self, other: Any) -> PoolArray:
        return _OPERATORS["multiply"](self, other)

    def __rmul__(self, other: Any) -> PoolArray:
        return _OPERATORS["multiply"](other, self)

    def __truediv__(self, other: Any) -> PoolArray:
        return _OPERATORS["divide"](self, other)

    def __rtruediv__(self, other: Any) -> PoolArray:
        return _OPERATORS["divide"](other, self)

    def __pow__(self, other: Any) -> PoolArray:
        return _OPERATORS["power"](self, other)

    def __rpow__(self, other: Any) -> PoolArray:
        return _OPERATORS["power"](other, self)

    def __neg__(self) -> PoolArray:
        return _OPERATORS["negative"](self)

    def __abs__(self) -> PoolArray:
        return _OPERATORS["abs"](self)

    def __matmul__(self, other: Any) -> PoolArray:
        return _OPERATORS["matmul"](self, other)


# The operators are the kernels' functions (kernels.py registers them when it is imported, as
# the package does): arrays stay free of the kernels that compute on them, with no import circle.
_OPERATORS: dict[str, Callable[..., PoolArray]] = {}


def register_operators(**functions: Callable[..., PoolArray]) -> None:
    """Set the functions PoolArray's operators call (add, subtract, ..., matmul)."""
    _OPERATORS.update(functions)


# -- constructors ------------------------------------------------------------------------
def _shape_of(shape: int | Sequence[int]) -> tuple[int, ...]:
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    if not 1 <= len(dims) <= 2:
        raise ValueError(f"shape {shape!r}: PoolArrays are 1-D or 2-D")
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or d < 0:
            raise ValueError(f"shape {shape!r}: dimensions must be ints >= 0")
    return dims


def empty(
    shape: int | Sequence[int], dtype: Any = "float64", *, arena: Arena | None = None
) -> PoolArray:
    """An uninitialised array in pool memory."""
    return _new(shape, dtype, arena, zero=False)


def zeros(
    shape: int | Sequence[int], dtype: Any = "float64", *, arena: Arena | None = None
) -> PoolArray:
    """A zero-filled array in pool memory."""
    return _new(shape, dtype, arena, zero=True)


def _new(shape: int | Sequence[int], dtype: Any, arena: Arena | None, zero: bool) -> PoolArray:
    dims = _shape_of(shape)
    dt = dtypes.get(dtype)
    arena = arena if arena is not None else pool_arena()
    return PoolArray(arena, dims, dt, math.prod(dims) * dt.itemsize, zero)


def _from_bytes(
    arena: Arena, raw: bytes | memoryview, shape: tuple[int, ...], dt: DType
) -> PoolArray:
    out = PoolArray(arena, shape, dt, len(raw), False)
    try:
        arena.write(out._ptr, memoryview(raw))
    except BaseException:
        out.close()
        raise
    return out


def asarray(obj: Any, dtype: Any = None, *, arena: Arena | None = None) -> PoolArray:
    """A PoolArray holding obj's data (a copy, except for a PoolArray of the same dtype).

    obj: a PoolArray, any buffer-protocol object (array.array, memoryview, bytes with dtype,
    numpy arrays, JS typed arrays in Pyodide) or a (nested) list of numbers.
    """
    want = None if dtype is None else dtypes.get(dtype)
    if isinstance(obj, PoolArray):
        obj._check_open()
        target = arena if arena is not None else obj._arena
        if (want is None or want == obj._dtype) and target is obj._arena:
            return obj
        if want is None or want == obj._dtype:
            return _from_bytes(target, obj.tobytes(), obj.shape, obj._dtype)
        if "numpy" in sys.modules:  # a fast conversion when numpy is already in use
            return _from_numpy(obj.to_numpy(), want, target)
        obj = obj.tolist()
    arena = arena if arena is not None else pool_arena()
    if _is_numpy(obj):
        return _from_numpy(obj, want, arena)
    if isinstance(obj, (list, tuple)):
        return _from_list(obj, want, arena)
    if isinstance(obj, bytes):
        raise TypeError(
            "asarray: bytes are raw data, not numbers; use jr.frombuffer(data, "
            "dtype) to read them as an array (numpy.frombuffer does the same)"
        )
    js_buffer = _js_typed_array(obj)
    if js_buffer is not None:
        obj = js_buffer
    try:
        view = memoryview(obj)
    except TypeError:
        raise TypeError(
            f"cannot make a PoolArray from {type(obj).__name__}: pass a buffer (array.array, "
            "memoryview, numpy array) or a list of numbers"
        ) from None
    return _from_buffer(view, want, arena)


def _is_numpy(obj: Any) -> bool:
    return type(obj).__module__ == "numpy" and hasattr(obj, "__array_interface__")


def _from_numpy(obj: Any, want: DType | None, arena: Arena) -> PoolArray:
    import numpy as np

    if obj.ndim not in (1, 2):
        raise ValueError(f"a {obj.ndim}-D array: PoolArrays are 1-D or 2-D; reshape it first")
    if want is None:
        try:
            want = dtypes.get(obj.dtype.name)
        except TypeError:
            raise TypeError(
                f"numpy dtype {obj.dtype} is not supported by the pool; convert it, e.g. "
                f"jr.asarray(x, 'float64') or x.astype('int32') ({', '.join(dtypes.names())})"
            ) from None
    data = np.ascontiguousarray(obj, dtype=np.dtype(want.name).newbyteorder("<"))
    flat: Any = data.reshape(-1).view(np.uint8)
    return _from_bytes(arena, memoryview(flat), tuple(data.shape), want)


def _from_buffer(view: memoryview, want: DType | None, arena: Arena) -> PoolArray:
    if view.ndim not in (0, 1, 2):
        raise ValueError(f"a {view.ndim}-D buffer: PoolArrays are 1-D or 2-D")
    have = dtypes.from_format(view.format, view.itemsize)
    if have is None:
        if want is None or view.format.lstrip("@=<") not in _CONVERTIBLE:
            raise TypeError(
                f"buffer format {view.format!r} has no pool dtype; the pool supports "
                f"{', '.join(dtypes.names())}: pass dtype=... to convert the values (or "
                "jr.frombuffer(data, dtype) to reinterpret raw bytes)"
            )
        # int8, uint8, int16, float16, bool...: convert the values, as numpy does, whatever
        # the container (array.array, memoryview, bytearray, numpy).
        return _from_list(_values(view), want, arena)
    if view.ndim == 0:
        raise ValueError("a 0-D buffer: PoolArrays are 1-D or 2-D")
    shape = tuple(view.shape or ())
    if want is not None and want != have:
        return _from_list(view.tolist(), want, arena)
    # tobytes() copies any layout (strided, non-contiguous) into C order.
    raw: bytes | memoryview = (
        view.cast("B") if view.c_contiguous and view.nbytes else view.tobytes()
    )
    return _from_bytes(arena, raw, shape, have)


# struct formats of numbers the pool has no dtype for, which asarray(..., dtype) converts
_CONVERTIBLE = frozenset("bBhHiIlLqQnNefd?")


def _values(view: memoryview) -> list[Any]:
    """A buffer's values as a (nested) list; memoryview.tolist() cannot read float16."""
    if view.format.lstrip("@=<") != "e":
        return view.tolist()  # type: ignore[no-any-return]
    flat = [v for (v,) in struct.iter_unpack("<e", view.tobytes())]
    if view.ndim == 2:
        width = view.shape[1] if view.shape else 0
        return [flat[i : i + width] for i in range(0, len(flat), width)] if width else []
    return flat


def frombuffer(data: Any, dtype: Any = "float64", *, arena: Arena | None = None) -> PoolArray:
    """A 1-D PoolArray of the raw bytes of data, read as dtype (little-endian), like
    numpy.frombuffer: no value conversion. The byte count must be a multiple of the itemsize."""
    want = dtypes.get(dtype)
    try:
        blob = memoryview(data).tobytes()
    except TypeError:
        raise TypeError(f"frombuffer: {type(data).__name__} is not a buffer") from None
    if len(blob) % want.itemsize:
        raise ValueError(
            f"frombuffer: {len(blob)} bytes are not a whole number of {want.name} items "
            f"({want.itemsize} bytes each)"
        )
    target = arena if arena is not None else pool_arena()
    return _from_bytes(target, blob, (len(blob) // want.itemsize,), want)


def _from_list(values: Sequence[Any], want: DType | None, arena: Arena) -> PoolArray:
    rows = list(values)
    if rows and all(isinstance(r, (list, tuple)) for r in rows):
        width = len(rows[0])
        if any(len(r) != width for r in rows):
            raise ValueError("rows of different lengths: a 2-D PoolArray needs equal rows")
        flat = [v for r in rows for v in r]
        shape: tuple[int, ...] = (len(rows), width)
    else:
        flat = rows
        shape = (len(rows),)
    fast = _fast_array(flat, want)
    if fast is not None:
        data, want = fast
        return _from_bytes(arena, memoryview(data).cast("B"), shape, want)
    for v in flat:
        if isinstance(v, (list, tuple)):
            raise ValueError("a ragged or >2-D list: PoolArrays are 1-D or 2-D")  # noqa: TRY004
        if not isinstance(v, (int, float)):
            raise TypeError(f"list item {v!r} is not a number")
    if want is None:
        want = _list_dtype(flat)
    if not want.is_float:
        flat = [_checked_int(v, want) for v in flat]
    try:
        data = _pyarray.array(_array_code(want), flat)
    except OverflowError:
        raise OverflowError(f"a value does not fit in {want.name}") from None
    return _from_bytes(arena, memoryview(data).cast("B"), shape, want)


def _list_dtype(flat: list[Any]) -> DType:
    """numpy's dtype for a list of Python numbers: float64 with any float in it; else int64
    when every int fits it, uint64 when every int is above int64 (numpy reads those as uint64),
    float64 for a mix of the two. An int beyond uint64 is refused (numpy makes an object array)."""
    if any(isinstance(v, float) for v in flat):
        return dtypes.FLOAT64
    big = [v for v in flat if v >= 1 << 63]
    if not big:
        return dtypes.INT64
    if max(big) >= 1 << 64:
        raise OverflowError(
            f"{max(big)} does not fit in uint64, the widest integer dtype (numpy makes "
            "an object array of it); pass dtype='float64' to store it as a float"
        )
    return dtypes.UINT64 if len(big) == len(flat) else dtypes.FLOAT64


def _fast_array(flat: list[Any], want: DType | None) -> tuple[_pyarray.array[Any], DType] | None:
    """The C conversion of array.array when it gives numpy's answer; None: take the checked
    path (which says what is wrong, or converts what array.array refuses)."""
    if want is None and not flat:
        return _pyarray.array("d"), dtypes.FLOAT64  # numpy: an empty list is float64
    tries = [dtypes.INT64, dtypes.FLOAT64] if want is None else [want]
    for dtype in tries:
        try:
            return _pyarray.array(_array_code(dtype), flat), dtype
        except TypeError:
            continue  # a float among ints (then float64), or not a number (checked path)
        except OverflowError:
            return None
    return None


def _checked_int(v: float, want: DType) -> int:
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{v} cannot be stored in {want.name}")
        v = int(v)
    bits = want.itemsize * 8
    lo, hi = (0, 1 << bits) if want.name.startswith("u") else (-(1 << bits - 1), 1 << bits - 1)
    if not lo <= v < hi:
        raise OverflowError(f"{v} does not fit in {want.name}")
    return v


def _array_code(dt: DType) -> str:
    return dt.format  # d f i q I Q: the same characters in struct and array.array


def _js_typed_array(obj: Any) -> Any:
    """In Pyodide, a JS typed array proxy: its bytes as a Python buffer, else None."""
    if type(obj).__module__ != "pyodide.ffi" and "JsProxy" not in type(obj).__name__:
        return None
    to_memoryview = getattr(obj, "to_memoryview", None)
    return to_memoryview() if to_memoryview is not None else None
