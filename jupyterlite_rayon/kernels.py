"""The compute kernels: validate arguments, run a pool export, return arrays or scalars.

Every function accepts PoolArrays (used in place, no copy) or anything `asarray` accepts
(copied into pool memory for the call and freed afterwards). Results are new PoolArrays in
pool memory, or Python scalars. Semantics follow numpy; kernels/ABI.md has the details.
"""

from __future__ import annotations

import builtins
import ctypes
import math
import numbers
import os
import struct
import threading
import time
from typing import Any, Self

from . import abi, dtypes, numpy_order, pool, promotion
from .array import PoolArray, asarray, empty, pool_arena, register_operators
from .dtypes import DType

_F64 = struct.Struct("<d")
_I64 = struct.Struct("<q")
_FLOATS = frozenset({0, 1})
_NUMERIC = frozenset({0, 1, 2, 3, 4, 5})
_SORTABLE = frozenset({0, 1, 2, 3, 4, 5})
_INT_SAFE = 1 << 53
# Up to this many elements a linear kernel takes microseconds: it runs on the calling thread.
QUICK_ITEMS = 1 << 15
_lock = threading.RLock()  # one call at a time uses the shared scalar scratch block


def _new_lock_in_child() -> None:
    global _lock
    _lock = threading.RLock()  # a parent thread may have held it across os.fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


class _Call:
    """One kernel call: converts inputs, frees temporaries, runs the export, times it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.temps: list[PoolArray] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        for t in self.temps:
            t.close()

    def array(self, obj: Any, dtype: Any = None) -> PoolArray:
        arena = pool_arena()
        if isinstance(obj, PoolArray):
            obj._check_open()
            if obj.arena is arena and (dtype is None or dtypes.get(dtype) == obj.dtype_info):
                return obj
        converted = asarray(obj, dtype, arena=arena)
        if converted is not obj:
            self.temps.append(converted)
        return converted

    def run(self, export: str, *args: float, items: int | None = None) -> None:
        """Run the export; `items` (elements touched, for kernels linear in them) lets a small
        call skip the hand-off that makes long calls interruptible: it is over at once."""
        backend = pool.get_backend()
        start = time.perf_counter()
        backend.call(export, *args, quick=items is not None and items <= QUICK_ITEMS)
        pool.record_run(self.name, time.perf_counter() - start)


def _need(name: str, x: PoolArray, codes: frozenset[int]) -> None:
    if x.dtype_info.code not in codes:
        allowed = ", ".join(d.name for d in dtypes.ALL if d.code in codes)
        raise TypeError(
            f"{name}: dtype {x.dtype} is not supported (use {allowed}); convert "
            f"with jr.asarray(x, '{'float64' if 0 in codes else allowed}')"
        )


def _need_1d(name: str, x: PoolArray) -> None:
    if x.ndim != 1:
        raise ValueError(f"{name}: expects a 1-D array, got shape {x.shape}")


def _scalar_out(result_is_float: bool) -> Any:
    raw = pool.get_backend().read(pool.scratch(), 8)
    return (_F64 if result_is_float else _I64).unpack(raw)[0]


def _as_count(
    name: str, value: object, what: str, minimum: int = 0, maximum: int = 0xFFFFFFFF
) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name}: {what} must be an int, got {value!r}")
    value = int(value)  # numpy integers too
    if not minimum <= value <= maximum:
        raise ValueError(f"{name}: {what} must be between {minimum} and {maximum}, got {value}")
    return value


def _as_float(name: str, value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {what} must be a number, got {value!r}")
    return float(value)


# -- reductions --------------------------------------------------------------------------
def _reduce(name: str, op: int, a: Any) -> Any:
    if op in (0, 3) and numpy_order.is_numpy_array(a):
        # Sums and means of numpy arrays in numpy's order: its iterator's walk, and its
        # buffer's chunks when it has to buffer (integer sums are exact in any order).
        casting = op == 3 and a.dtype.kind != "f"
        a, pieces = numpy_order.iteration_order(a, casting)
        if pieces is not None and (a.dtype.kind == "f" or op == 3):
            return _chunked_sum(name, op, a, pieces)
    with _lock, _Call(name) as c:
        x = c.array(a)
        _need(name, x, _NUMERIC)
        c.run("jr_reduce", op, x.dtype_info.code, x.ptr, x.size, pool.scratch(), items=x.size)
        value = _scalar_out(x.dtype_info.is_float or op == 3)
        if x.dtype_info.is_unsigned and op != 3:
            # The kernel's u64 (numpy sums uint32 and uint64 as uint64, wrapping at 2**64).
            return _wrapped(dtypes.UINT64, value)
        return _rounded(x.dtype_info, value)


def _chunked_sum(name: str, op: int, flat: Any, pieces: list[int]) -> Any:
    """numpy's buffered sum (or mean) of `flat`: total = 0, then total += the pairwise sum of
    each piece in turn, in the float dtype (float64 for the mean of ints, which numpy's buffer
    casts element by element, as astype does)."""
    with _lock, _Call(name) as c:
        x = c.array(flat)
        _need(name, x, _NUMERIC)
        if not x.dtype_info.is_float:
            x = c.array(flat.astype("float64"))
        step = x.dtype_info.itemsize
        total, lo = 0.0, 0
        for n in pieces:
            c.run("jr_reduce", 0, x.dtype_info.code, x.ptr + lo * step, n, pool.scratch(), items=n)
            # float32: the float64 sum of two float32 values rounds to their float32 sum
            total = _rounded(x.dtype_info, total + _scalar_out(True))
            lo += n
        if op == 3:
            total = _rounded(x.dtype_info, total / x.size)
        return total


def _wrapped(dtype: DType, value: int) -> int:
    """An integer result in dtype's width, wrapping as numpy's fixed-width integers do (the
    kernels' 8-byte results are read as int64)."""
    if dtype == dtypes.INT32:
        return (value + (1 << 31)) % (1 << 32) - (1 << 31)
    if dtype.is_unsigned:
        return value % (1 << (8 * dtype.itemsize))
    return value


def _rounded(dtype: DType, value: Any) -> Any:
    """float32 results are float32 values, as numpy's are. Exact for a float32 sum (the
    kernel's 8-byte result is a float32 value widened); for dot (summed in float64) and the
    chunked sums' steps it is the one rounding to float32."""
    return ctypes.c_float(value).value if dtype == dtypes.FLOAT32 else value


def sum(a: Any) -> Any:
    """Sum of all elements: a float for float dtypes, an int for ints, numpy's value bit for
    bit (floats in numpy's pairwise order in the dtype, float32 in float32; signed ints sum as
    int64, unsigned as uint64, each wrapping). numpy arrays of any shape, order or strides."""
    return _reduce("sum", 0, a)


def min(a: Any) -> Any:
    """Smallest element; NaN if any element is NaN; ValueError for an empty array."""
    return _reduce("min", 1, a)


def max(a: Any) -> Any:
    """Largest element; NaN if any element is NaN; ValueError for an empty array."""
    return _reduce("max", 2, a)


def mean(a: Any) -> float:
    """Arithmetic mean, numpy's value bit for bit: the sum in numpy's order (ints in float64)
    divided by the count; float32 stays a float32 value. NaN for an empty array."""
    return float(_reduce("mean", 3, a))


def dot(a: Any, b: Any) -> Any:
    """numpy.dot for 1-D and 2-D arrays: the inner product of two vectors (a scalar), else the
    matrix product ((m, k) . (k, n), (m, k) . (k,), (k,) . (k, n)) of float arrays."""
    with _lock, _Call("dot") as c:
        x, y = c.array(a), c.array(b)
        if x.ndim == 2 or y.ndim == 2:
            return _matrix_dot(c, x, y)
        work = promotion.result_type(x.dtype_info, y.dtype_info)
        # numpy's dot keeps the dtype: int32 and uint32 products wrap at 32 bits. The int64
        # kernel wraps at 64, which agrees modulo 2**32.
        kernel = dtypes.INT64 if work == dtypes.UINT32 else work
        x, y = c.array(x, kernel), c.array(y, kernel)
        _need("dot", x, _NUMERIC)
        _same("dot", x, y)
        c.run("jr_dot", x.dtype_info.code, x.ptr, y.ptr, x.size, pool.scratch(), items=x.size)
        value = _scalar_out(x.dtype_info.is_float)
        return _rounded(work, value) if work.is_float else _wrapped(work, value)


def _matrix_dot(c: _Call, x: PoolArray, y: PoolArray) -> PoolArray:
    """dot with a 2-D operand is a matrix product; a 1-D operand is a row or a column."""
    work = promotion.result_type(x.dtype_info, y.dtype_info)
    if not work.is_float:
        raise TypeError(
            f"dot: matrix products of {work.name} arrays are not supported; "
            "convert to floats first with jr.asarray(x, 'float64')"
        )
    x, y = c.array(x, work), c.array(y, work)
    m, k = x.shape if x.ndim == 2 else (1, x.shape[0])
    k2, n = y.shape if y.ndim == 2 else (y.shape[0], 1)
    if k != k2:
        raise ValueError(
            f"dot: shapes {x.shape} and {y.shape} not aligned: {k} (dim "
            f"{x.ndim - 1}) != {k2} (dim 0)"
        )
    shape = (m, n) if x.ndim == 2 and y.ndim == 2 else (m,) if x.ndim == 2 else (n,)
    out = empty(shape, work)
    try:
        c.run("jr_matmul", work.code, x.ptr, y.ptr, out.ptr, m, k, n)
    except BaseException:
        out.close()
        raise
    return out


def _same(name: str, x: PoolArray, y: PoolArray) -> None:
    if x.dtype != y.dtype:
        raise TypeError(
            f"{name}: the arrays have different dtypes ({x.dtype} and {y.dtype}); "
            f"convert one, e.g. jr.asarray(y, '{x.dtype}')"
        )
    if x.shape != y.shape:
        raise ValueError(
            f"{name}: shapes {x.shape} and {y.shape} differ; pass arrays of the same shape"
        )


# -- element-wise ------------------------------------------------------------------------
_UNARY = {"sqrt": 0, "exp": 1, "log": 2, "sin": 3, "cos": 4, "abs": 5, "negative": 6}
_FLOAT_ONLY_UNARY = {"sqrt", "exp", "log", "sin", "cos"}


def _unary(name: str, a: Any) -> PoolArray:
    with _Call(name) as c:
        x = c.array(a)
        if name in _FLOAT_ONLY_UNARY and not x.dtype_info.is_float:
            x = c.array(x, "float64")  # numpy: integer input gives float64
        out = empty(x.shape, x.dtype_info)
        try:
            c.run(
                "jr_map_unary",
                _UNARY[name],
                x.dtype_info.code,
                x.ptr,
                out.ptr,
                x.size,
                items=x.size,
            )
        except BaseException:
            out.close()
            raise
        return out


def sqrt(a: Any) -> PoolArray:
    return _unary("sqrt", a)


def exp(a: Any) -> PoolArray:
    return _unary("exp", a)


def log(a: Any) -> PoolArray:
    return _unary("log", a)


def sin(a: Any) -> PoolArray:
    return _unary("sin", a)


def cos(a: Any) -> PoolArray:
    return _unary("cos", a)


def abs(a: Any) -> PoolArray:
    return _unary("abs", a)


def negative(a: Any) -> PoolArray:
    return _unary("negative", a)


_BINARY = {
    "add": 0,
    "subtract": 1,
    "multiply": 2,
    "divide": 3,
    "power": 4,
    "minimum": 5,
    "maximum": 6,
}


# The integer ops the pool computes itself; the others go through float64 as numpy does
# (true division) or are refused (integer power).
_INT_OPS = frozenset({"add", "subtract", "multiply", "minimum", "maximum"})


def _binary(name: str, a: Any, b: Any) -> PoolArray:
    op = _BINARY[name]
    with _Call(name) as c:
        a_scalar, b_scalar = promotion.is_scalar(a), promotion.is_scalar(b)
        if a_scalar and b_scalar:
            raise TypeError(f"{name}: at least one argument must be an array")
        if a_scalar or b_scalar:
            swap = a_scalar
            s = a if swap else b
            x = c.array(b if swap else a)
            result = promotion.with_scalar(x.dtype_info, s, name)
            work = _work_dtype(name, result)
            x = c.array(x, work)
            value = promotion.scalar_value(s, work)
            if not work.is_float and builtins.abs(value) >= _INT_SAFE:
                # The kernel takes the scalar as a double: a big int goes as an array instead.
                y = c.array(_filled(value, x.size, work))
                return _run_binary(c, op, (y, x) if swap else (x, y), x.shape)
            return _run_scalar(c, op, x, value, swap)
        x, y = c.array(a), c.array(b)
        if x.shape != y.shape:
            raise ValueError(
                f"{name}: shapes {x.shape} and {y.shape} differ (the pool does not broadcast); "
                "pass arrays of the same shape"
            )
        work = _work_dtype(name, promotion.result_type(x.dtype_info, y.dtype_info))
        return _run_binary(c, op, (c.array(x, work), c.array(y, work)), x.shape)


def _work_dtype(name: str, result: DType) -> DType:
    """The dtype the kernel computes in: the result's, or float64 for int true division."""
    if result.is_float or name in _INT_OPS:
        return result
    if name == "divide":
        return dtypes.FLOAT64  # numpy: true division of integers is float64
    raise TypeError(
        f"{name}: integer arrays are not supported; convert to floats first "
        "with jr.asarray(x, 'float64')"
    )


def _filled(value: float, n: int, dtype: DType) -> PoolArray:
    """A 1-D array of n copies of value."""
    raw = memoryview(struct.pack(f"<{dtype.format}", value) * n)
    return asarray(raw.cast(dtype.format), dtype)  # type: ignore[call-overload]


def _run_scalar(c: _Call, op: int, x: PoolArray, value: float, swap: bool) -> PoolArray:
    out = empty(x.shape, x.dtype_info)
    try:
        c.run(
            "jr_map_scalar",
            op,
            x.dtype_info.code,
            x.ptr,
            float(value),
            out.ptr,
            x.size,
            1 if swap else 0,
            items=x.size,
        )
    except BaseException:
        out.close()
        raise
    return out


def _run_binary(
    c: _Call, op: int, xy: tuple[PoolArray, PoolArray], shape: tuple[int, ...]
) -> PoolArray:
    x, y = xy
    out = empty(shape, x.dtype_info)
    try:
        c.run("jr_map_binary", op, x.dtype_info.code, x.ptr, y.ptr, out.ptr, x.size, items=x.size)
    except BaseException:
        out.close()
        raise
    return out


def add(a: Any, b: Any) -> PoolArray:
    return _binary("add", a, b)


def subtract(a: Any, b: Any) -> PoolArray:
    return _binary("subtract", a, b)


def multiply(a: Any, b: Any) -> PoolArray:
    return _binary("multiply", a, b)


def divide(a: Any, b: Any) -> PoolArray:
    """True division (integer inputs give float64, like numpy)."""
    return _binary("divide", a, b)


def power(a: Any, b: Any) -> PoolArray:
    return _binary("power", a, b)


def minimum(a: Any, b: Any) -> PoolArray:
    """Element-wise minimum (NaN propagates, like numpy.minimum)."""
    return _binary("minimum", a, b)


def maximum(a: Any, b: Any) -> PoolArray:
    """Element-wise maximum (NaN propagates, like numpy.maximum)."""
    return _binary("maximum", a, b)


def clip(a: Any, lo: Any, hi: Any) -> PoolArray:
    """min(max(a, lo), hi) like numpy.clip (dtype by NEP 50); None is unbounded on that side."""
    with _Call("clip") as c:
        x = c.array(a)
        _need("clip", x, _NUMERIC)
        if lo is None and hi is None:
            raise ValueError("clip: give lo, hi or both")
        result = x.dtype_info
        for bound in (lo, hi):
            if bound is not None:
                if not promotion.is_scalar(bound):
                    raise TypeError(f"clip: bounds must be numbers or None, got {bound!r}")
                result = promotion.result_type(result, _clip_bound_dtype(x.dtype_info, bound))
        x = c.array(x, result)
        if result.is_float:
            low = -math.inf if lo is None else float(promotion.scalar_value(lo, result))
            high = math.inf if hi is None else float(promotion.scalar_value(hi, result))
            return _run_clip(c, x, low, high)
        # Integers: numpy compares exactly, so a bound beyond the dtype saturates, and a bound
        # a double cannot hold exactly goes through exact element-wise max/min instead.
        top, bottom = promotion.int_range(result)
        low_i = bottom if lo is None else _int_bound(lo, result, "lo", below_ok=True)
        high_i = top if hi is None else _int_bound(hi, result, "hi", below_ok=False)
        if builtins.max(builtins.abs(low_i), builtins.abs(high_i)) < _INT_SAFE:
            return _run_clip(c, x, float(low_i), float(high_i))
        y = c.array(_filled(low_i, x.size, result))
        raised = c.array(_run_binary(c, _BINARY["maximum"], (x, y), x.shape))
        z = c.array(_filled(high_i, x.size, result))
        return _run_binary(c, _BINARY["minimum"], (raised, z), x.shape)


def _int_bound(bound: Any, dtype: DType, what: str, below_ok: bool) -> int:
    """numpy.clip's integer bound: beyond the dtype on the side that changes nothing, it
    saturates; beyond it on the other side, numpy raises OverflowError, and so do we."""
    value = int(promotion.scalar_value(bound, dtype))
    top, bottom = promotion.int_range(dtype)
    if bottom <= value <= top:
        return value
    if (value < bottom) == below_ok:
        return bottom if value < bottom else top
    raise OverflowError(
        f"clip: Python integer {value} out of bounds for {dtype.name} (numpy "
        f"raises too): {what} must lie within the dtype's range"
    )


def _clip_bound_dtype(array: DType, bound: Any) -> DType:
    """A Python int bound never changes an integer array's dtype in numpy.clip."""
    if promotion.is_numpy_scalar(bound) or isinstance(bound, float):
        return promotion.with_scalar(array, bound, "clip")
    return array


def _run_clip(c: _Call, x: PoolArray, low: float, high: float) -> PoolArray:
    out = empty(x.shape, x.dtype_info)
    try:
        c.run("jr_clip", x.dtype_info.code, x.ptr, low, high, out.ptr, x.size, items=x.size)
    except BaseException:
        out.close()
        raise
    return out


def cumsum(a: Any) -> PoolArray:
    """Inclusive prefix sum of a 1-D array, numpy's bit for bit (numpy's dtype: int64 for
    signed integer input, uint64 for unsigned; floats add in order in their dtype, on one
    thread, since any parallel order would round differently)."""
    with _Call("cumsum") as c:
        x = c.array(a)
        _need("cumsum", x, _NUMERIC)
        _need_1d("cumsum", x)
        out = empty(x.shape, _cumsum_dtype(x.dtype_info))
        try:
            c.run("jr_cumsum", x.dtype_info.code, x.ptr, out.ptr, x.size, items=x.size)
        except BaseException:
            out.close()
            raise
        return out


def _cumsum_dtype(dtype: DType) -> DType:
    if dtype.is_float:
        return dtype
    return dtypes.UINT64 if dtype.is_unsigned else dtypes.INT64


def sort(a: Any) -> PoolArray:
    """Stable ascending sort of a 1-D array (NaN last, like numpy)."""
    return _sort("sort", a)


def argsort(a: Any) -> PoolArray:
    """int64 indices that sort a 1-D array (numpy's kind="stable" result)."""
    return _sort("argsort", a)


def _sort(name: str, a: Any) -> PoolArray:
    with _Call(name) as c:
        x = c.array(a)
        _need(name, x, _SORTABLE)
        _need_1d(name, x)
        out = empty(x.shape, x.dtype_info if name == "sort" else dtypes.INT64)
        try:
            c.run(f"jr_{name}", x.dtype_info.code, x.ptr, out.ptr, x.size)
        except BaseException:
            out.close()
            raise
        return out


def matmul(a: Any, b: Any) -> PoolArray:
    """Matrix product of 2-D float64 or float32 arrays: (m, k) @ (k, n) -> (m, n)."""
    with _Call("matmul") as c:
        x, y = c.array(a), c.array(b)
        _need("matmul", x, _FLOATS)
        if x.ndim != 2 or y.ndim != 2:
            raise ValueError(f"matmul: expects 2-D arrays, got shapes {x.shape} and {y.shape}")
        if x.dtype != y.dtype:
            raise TypeError(
                f"matmul: dtypes {x.dtype} and {y.dtype} differ; convert one with "
                f"jr.asarray(b, '{x.dtype}')"
            )
        (m, k), (k2, n) = x.shape, y.shape
        if k != k2:
            raise ValueError(f"matmul: shapes {x.shape} and {y.shape} do not align ({k} != {k2})")
        out = empty((m, n), x.dtype_info)
        try:
            c.run("jr_matmul", x.dtype_info.code, x.ptr, y.ptr, out.ptr, m, k, n)
        except BaseException:
            out.close()
            raise
        return out


def mandelbrot(
    width: int,
    height: int,
    xmin: float = -2.0,
    xmax: float = 1.0,
    ymin: float = -1.5,
    ymax: float = 1.5,
    max_iter: int = 256,
) -> PoolArray:
    """Escape iteration counts, uint32 of shape (height, width) (formula in kernels/ABI.md)."""
    name = "mandelbrot"
    w = _as_count(name, width, "width")
    h = _as_count(name, height, "height")
    it = _as_count(name, max_iter, "max_iter")
    bounds = [
        _as_float(name, v, what)
        for v, what in ((xmin, "xmin"), (xmax, "xmax"), (ymin, "ymin"), (ymax, "ymax"))
    ]
    with _Call(name) as c:
        out = empty((h, w), dtypes.UINT32)
        try:
            c.run("jr_mandelbrot", out.ptr, w, h, *bounds, it)
        except BaseException:
            out.close()
            raise
        return out


def histogram(
    a: Any, bins: int = 10, range: tuple[float, float] | None = None
) -> tuple[PoolArray, PoolArray]:
    """numpy.histogram(a, bins, range): (int64 counts, bins + 1 edges), the edges float32 for
    float32 input and float64 otherwise, as numpy's. The kernel computes the edges and bins by
    them in numpy's arithmetic, so counts and edges always agree (kernels/ABI.md)."""
    name = "histogram"
    nbins = _as_count(name, bins, "bins", minimum=1)
    with _Call(name) as c:
        x = c.array(a)
        _need(name, x, _NUMERIC)
        denom, flags = 0.0, 0  # 0: hi - lo, in the arithmetic the kernel picks
        if range is None:
            # The kernel takes numpy's range from the data in the same call (one pass).
            lo, hi, flags = 0.0, 0.0, abi.HISTOGRAM_AUTO_RANGE
        else:
            if len(range) != 2:
                raise ValueError(f"{name}: range must be (lo, hi)")
            lo, hi = (_as_float(name, v, "range") for v in range)
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"{name}: range {range} must be finite")
            if lo > hi:
                raise ValueError(f"{name}: range {range}: lo must be <= hi")
            if lo == hi:
                lo, hi = lo - 0.5, hi + 0.5  # numpy widens an empty range the same way
            _check_span(nbins, lo, hi)
        counts = empty(nbins, dtypes.INT64)
        edge_dtype = dtypes.FLOAT32 if x.dtype_info == dtypes.FLOAT32 else dtypes.FLOAT64
        edges = empty(nbins + 1, edge_dtype)
        try:
            c.run(
                "jr_histogram",
                x.dtype_info.code,
                x.ptr,
                x.size,
                nbins,
                lo,
                hi,
                counts.ptr,
                edges.ptr,
                denom,
                flags,
                items=x.size + nbins // 8,  # a bin (an edge, a zero) costs less than a value
            )
        except ValueError as err:
            counts.close()
            edges.close()
            if range is None:  # say why the data's range was refused (min and max again)
                lo, hi = _auto_range(x)
                _check_span(nbins, lo, hi)
            # the range is valid, so the edges did not increase
            raise ValueError(
                f"{name}: too many bins for the data range: cannot create {nbins} "
                f"finite-sized bins in [{lo}, {hi}] in {x.dtype}; use fewer bins or a wider range"
            ) from err
        except BaseException:
            counts.close()
            edges.close()
            raise
        return counts, edges


def _check_span(nbins: int, lo: float, hi: float) -> None:
    if not math.isfinite(hi - lo):
        raise ValueError(
            f"histogram: the range [{lo}, {hi}] is too wide for finite-sized "
            "bins; pass a narrower range=(lo, hi)"
        )
    if not lo < hi:  # one huge value: +-0.5 vanished in rounding (numpy refuses too)
        raise ValueError(
            f"histogram: cannot make {nbins} finite-sized bins around {lo}; "
            "pass range=(lo, hi) with lo < hi"
        )


def _auto_range(x: PoolArray) -> tuple[float, float]:
    """numpy's range from the data, as the kernel takes it (HISTOGRAM_AUTO_RANGE): worked out
    again with min and max only to explain why the kernel refused it. float32 data keeps
    float32 bounds (numpy computes in float32 then)."""
    if x.size == 0:
        return 0.0, 1.0
    lo, hi = float(min(x)), float(max(x))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(
            f"histogram: autodetected range of [{lo}, {hi}] is not finite; "
            "pass range=(lo, hi) or remove NaN/inf values"
        )
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
        if x.dtype_info == dtypes.FLOAT32:
            lo, hi = _f32(lo), _f32(hi)
    return lo, hi


def _f32(v: float) -> float:
    return struct.unpack("<f", struct.pack("<f", v))[0]


# jr_pi counts hits in an i64 and its RNG counter 2i+1 must stay below 2**48 (kernels/ABI.md).
_PI_MAX_SAMPLES = 1 << 47


def monte_carlo_pi(samples: int, seed: int = 0) -> float:
    """Estimate pi from `samples` points of the counter-based RNG of kernels/ABI.md."""
    name = "monte_carlo_pi"
    if isinstance(samples, numbers.Integral) and samples > _PI_MAX_SAMPLES:
        raise ValueError(
            f"{name}: samples={samples} is more than one call can draw (at most "
            "2**47); average several calls with different seeds instead"
        )
    n = _as_count(name, samples, "samples", minimum=1, maximum=_PI_MAX_SAMPLES)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name}: seed must be an int, got {seed!r}")
    seed = int(seed)
    seed64 = (seed + (1 << 63)) % (1 << 64) - (1 << 63)  # any int, as wrapping u64 bits
    with _lock, _Call(name) as c:
        c.run("jr_pi", n, seed64, pool.scratch())
        hits = _scalar_out(False)
    return 4.0 * hits / n


def bench_fib(n: int) -> int:
    """fib(n) by recursive fork-join (a scheduler benchmark, not a way to compute fib)."""
    k = _as_count("bench_fib", n, "n", maximum=50)  # the kernel refuses more (kernels/ABI.md)
    with _lock, _Call("bench_fib") as c:
        c.run("jr_bench_fib", k, pool.scratch())
        return int(_scalar_out(False))


def bench_for(n: int) -> int:
    """An empty parallel-for over n items; returns the number of chunks run."""
    k = _as_count("bench_for", n, "n")
    with _lock, _Call("bench_for") as c:
        c.run("jr_bench_for", k, pool.scratch())
        return int(_scalar_out(False))


register_operators(
    add=add,
    subtract=subtract,
    multiply=multiply,
    divide=divide,
    power=power,
    negative=negative,
    abs=abs,
    matmul=matmul,
)

__all__ = [
    "abs",
    "add",
    "argsort",
    "bench_fib",
    "bench_for",
    "clip",
    "cos",
    "cumsum",
    "divide",
    "dot",
    "exp",
    "histogram",
    "log",
    "mandelbrot",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "monte_carlo_pi",
    "multiply",
    "negative",
    "power",
    "sin",
    "sort",
    "sqrt",
    "subtract",
    "sum",
]
