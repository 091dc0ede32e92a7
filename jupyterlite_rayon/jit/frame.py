"""The ctx frame: the one definition of its layout (runtime.py writes it, lower.py reads it).

Little-endian, 8-byte slots, allocated by the host with jr_alloc (16-byte aligned):

| offset | type | field |
|---|---|---|
| 0 | i32 | err_code: 0, or the status main returns (E_INDEX -9, E_ZERODIV -10, ...) |
| 4 | i32 | err_site: which check failed (an index into the kernel's site table) |
| 8 | i64 | err_a: the index that was out of range |
| 16 | i64 | err_b: the length of that axis |
| 24 | i64 / f64 | result: the return value (ints and bools as i64, floats as f64) |
| 32 | ... | the arguments in order: a scalar is one slot (i64, or f64 for floats); an array is a slot with its data pointer (i32) then one i64 slot per dimension |
| ... | ... | spill slots of each prange loop: main stores the loop's n, start, step, the scalars and arrays the body reads, and the reduction partials' pointers before jr_jit_for |

The first error wins (compare-exchange of err_code from 0), then the winner writes the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERR_CODE = 0
ERR_SITE = 4
ERR_A = 8
ERR_B = 16
RESULT = 24
ARGS = 32
SLOT = 8


@dataclass
class Frame:
    """Offsets of one compiled signature's frame."""

    args: dict[str, int] = field(default_factory=dict)  # parameter -> its first slot
    size: int = ARGS

    def slots(self, count: int) -> int:
        offset = self.size
        self.size += SLOT * count
        return offset

    @classmethod
    def for_params(cls, params: list[str], types: tuple[Any, ...]) -> Frame:
        frame = cls()
        for name, t in zip(params, types, strict=True):
            ndim = getattr(t, "ndim", None)
            frame.args[name] = frame.slots(1 if ndim is None else 1 + ndim)
        return frame
