"""numpy's type promotion (NEP 50) for the pool's dtypes.

Arrays and numpy scalars are strongly typed: their dtypes meet by numpy's `result_type`.
Python scalars are weak: a Python int takes the array's dtype (and must fit it, as numpy 2
raises OverflowError otherwise), a Python float takes a float array's dtype and makes an
integer array float64, a Python bool is weakest of all. A result dtype the pool lacks (int8,
complex, ...) is refused with a TypeError rather than computed differently.
"""

from __future__ import annotations

import ctypes
import math
from typing import Any

from . import dtypes
from .dtypes import FLOAT32, FLOAT64, INT64, UINT64, DType

_INT_RANGE = {
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint32": (0, (1 << 32) - 1),
    "uint64": (0, (1 << 64) - 1),
}


def result_type(a: DType, b: DType) -> DType:
    """numpy.result_type of two pool dtypes (always a pool dtype)."""
    if a == b:
        return a
    if FLOAT64 in (a, b):
        return FLOAT64
    if FLOAT32 in (a, b):
        return FLOAT64  # float32 with any integer dtype (numpy: float64)
    if a.is_unsigned and b.is_unsigned:
        return UINT64  # uint32 with uint64
    if UINT64 in (a, b):
        return FLOAT64  # uint64 with a signed dtype: no integer dtype holds both (numpy: float64)
    # The other pairs of different integer dtypes: int32 with uint32 or int64, uint32 with int64.
    return INT64


def is_python_scalar(v: object) -> bool:
    return isinstance(v, (bool, int, float)) and not _is_numpy(v)


def is_numpy_scalar(v: object) -> bool:
    return _is_numpy(v) and getattr(v, "ndim", None) == 0 and hasattr(v, "dtype")


def is_scalar(v: object) -> bool:
    return is_python_scalar(v) or is_numpy_scalar(v)


def _is_numpy(v: object) -> bool:
    return type(v).__module__ == "numpy"


def with_scalar(array: DType, scalar: Any, op: str) -> DType:
    """The result dtype of `array op scalar` (either order), by NEP 50."""
    if is_numpy_scalar(scalar):
        import numpy as np  # a numpy scalar means numpy is here

        got = np.result_type(np.dtype(array.name), scalar.dtype)
        if got.name not in dtypes.BY_NAME:
            raise TypeError(
                f"{op}: {array.name} with a {scalar.dtype} scalar gives {got}, "
                f"which the pool does not have (it has {', '.join(dtypes.names())})"
            )
        return dtypes.BY_NAME[got.name]
    if isinstance(scalar, bool):
        return array
    if isinstance(scalar, int):
        if op == "divide" and not array.is_float:
            return FLOAT64  # numpy's true division of integers runs in float64, int and all
        if not array.is_float:
            lo, hi = _INT_RANGE[array.name]
            if not lo <= scalar <= hi:
                raise OverflowError(
                    f"{op}: Python integer {scalar} out of bounds for "
                    f"{array.name} (numpy raises too); convert the array "
                    "first, e.g. jr.asarray(x, 'int64') or 'float64'"
                )
        return array
    if isinstance(scalar, float):
        return array if array.is_float else FLOAT64
    raise TypeError(f"{op}: expected a number or an array, got {type(scalar).__name__}")


def int_range(dtype: DType) -> tuple[int, int]:
    """(largest, smallest) value of an integer dtype."""
    lo, hi = _INT_RANGE[dtype.name]
    return hi, lo


def scalar_value(scalar: Any, dtype: DType) -> int | float:
    """The scalar as the kernel sees it: converted to dtype as numpy casts it."""
    value = scalar.item() if is_numpy_scalar(scalar) else scalar
    if dtype.is_float:
        f = float(value)
        return ctypes.c_float(f).value if dtype == FLOAT32 else f
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} cannot be an integer bound")
        return int(value)
    return int(value)


__all__ = [
    "int_range",
    "is_numpy_scalar",
    "is_scalar",
    "result_type",
    "scalar_value",
    "with_scalar",
]
