"""The dtypes the pool understands: names, ABI codes, item sizes and struct formats."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DType:
    name: str
    code: int  # the dtype code of kernels/ABI.md
    itemsize: int
    format: str  # struct / memoryview format character
    is_float: bool

    @property
    def is_unsigned(self) -> bool:
        return self.name.startswith("uint")


FLOAT64 = DType("float64", 0, 8, "d", True)
FLOAT32 = DType("float32", 1, 4, "f", True)
INT32 = DType("int32", 2, 4, "i", False)
INT64 = DType("int64", 3, 8, "q", False)
UINT32 = DType("uint32", 4, 4, "I", False)
UINT64 = DType("uint64", 5, 8, "Q", False)

ALL = (FLOAT64, FLOAT32, INT32, INT64, UINT32, UINT64)
BY_NAME = {d.name: d for d in ALL}

# Buffer-protocol format characters -> dtype. 'l'/'L' are 8 bytes on 64-bit Linux/macOS and
# 4 bytes on wasm32 and Windows, so they are resolved by item size.
_FORMATS = {"d": FLOAT64, "f": FLOAT32, "i": INT32, "q": INT64, "I": UINT32, "Q": UINT64}
_BY_KIND_SIZE = {
    ("f", 8): FLOAT64,
    ("f", 4): FLOAT32,
    ("i", 4): INT32,
    ("i", 8): INT64,
    ("u", 4): UINT32,
    ("u", 8): UINT64,
}
_INT_FORMATS = {"b", "h", "i", "l", "q", "n"}
_UINT_FORMATS = {"B", "H", "I", "L", "Q", "N"}


# numpy's other spellings of the pool's dtypes (type codes are those of little-endian 64-bit
# numpy; 'l', 'L' and 'uint' are left out: they mean 32 bits on wasm32 and Windows, 64 elsewhere)
_SPELLINGS = {
    "f8": "float64",
    "d": "float64",
    "double": "float64",
    "float": "float64",
    "f4": "float32",
    "f": "float32",
    "single": "float32",
    "i4": "int32",
    "i": "int32",
    "intc": "int32",
    "i8": "int64",
    "q": "int64",
    "longlong": "int64",
    "int": "int64",
    "u4": "uint32",
    "I": "uint32",
    "uintc": "uint32",
    "u8": "uint64",
    "Q": "uint64",
    "ulonglong": "uint64",
}


def names() -> list[str]:
    return [d.name for d in ALL]


def get(dtype: object) -> DType:
    """The DType for a name ("float64"), a DType, a numpy dtype or a Python type (float, int)."""
    if isinstance(dtype, DType):
        return dtype
    if dtype is float:
        return FLOAT64
    if dtype is int:
        return INT64
    name = getattr(dtype, "name", None)  # numpy dtype or numpy scalar type's dtype
    if name is None and isinstance(dtype, type):
        name = getattr(getattr(dtype, "dtype", None), "name", None) or dtype.__name__
    key = name if isinstance(name, str) else dtype
    if isinstance(key, str):
        key = _SPELLINGS.get(key.lstrip("<=|") if key[:1] in "<=|" else key, key)
        if key in BY_NAME:
            return BY_NAME[key]
    raise TypeError(f"unsupported dtype {dtype!r}; use one of {', '.join(names())}")


def from_format(fmt: str, itemsize: int) -> DType | None:
    """The DType of a buffer's format string, or None if the pool has no such dtype."""
    char = fmt.lstrip("@=<")  # native or little-endian only: wasm is little-endian
    if len(char) != 1:
        return None
    if char in _FORMATS and _FORMATS[char].itemsize == itemsize:
        return _FORMATS[char]
    if char in _INT_FORMATS:
        return _BY_KIND_SIZE.get(("i", itemsize))
    if char in _UINT_FORMATS:
        return _BY_KIND_SIZE.get(("u", itemsize))
    if char in {"d", "f"}:
        return _BY_KIND_SIZE.get(("f", itemsize))
    return None
