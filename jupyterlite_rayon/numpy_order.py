"""The order in which numpy's sum visits a numpy array's elements, and how it chunks them.

np.sum (and np.mean, which sums first) walks an array through numpy's iterator: axes ordered
by |stride|, largest outermost (an insertion sort from C order in which zero strides compare
with nothing; negative strides are kept, so a reversed axis is walked reversed), and axes that
continue one another merged into one run. When one run is left, numpy's pairwise sum sees all
elements at once. Otherwise its buffer (np.getbufsize() elements, 8192 by default) takes
whole "cores" (the runs inside the outermost one, or as many inner runs as fit) up to the end
of the run around them, and the pairwise sum of each buffer is added to the total in turn. A
casting sum (np.mean of ints sums float64 values; byte-swapped or misaligned data) goes
through the buffer even for one run. Checked against numpy 2.4 for 0-D to 5-D arrays in C and
F order, with steps, transposes, reversed axes, broadcasts, byte-swapped and misaligned data
(tests/python/test_numpy_order.py).

numpy is optional: it is imported only here, for an input that is a numpy array.
"""

from __future__ import annotations

import builtins
import math
from typing import Any

# numpy's default buffer size (np.getbufsize()): the pool's kernel buffers int means so.
BUFFER = 8192


def is_numpy_array(obj: Any) -> bool:
    """A numpy array or numpy scalar (they carry the array interface)."""
    return type(obj).__module__ == "numpy" and hasattr(obj, "__array_interface__")


def iteration_order(arr: Any, casting: bool) -> tuple[Any, list[int] | None]:
    """arr's elements as a 1-D numpy array in the order np.sum visits them, and the lengths of
    the consecutive pieces numpy's iterator hands its pairwise sum, or None when numpy sums
    the way the pool's kernel does by itself (one run: whole, or in BUFFER-long chunks for a
    casting sum). `casting`: the sum converts the elements (np.mean of ints: to float64)."""
    import numpy as np  # the input is a numpy array, so numpy is there

    buffer = int(np.getbufsize())  # np.setbufsize changes numpy's pieces
    if arr.ndim == 0 or arr.size == 0:
        return arr.reshape(-1), None
    perm = _axis_order(arr)
    flat = arr.transpose(perm[::-1]).reshape(-1)
    runs: list[tuple[int, int]] = []  # (length, stride in bytes), innermost first
    for i in perm:
        length, stride = arr.shape[i], _stride(arr, i)
        if runs and (runs[-1][0] * runs[-1][1] == stride or length == 1 or runs[-1][0] == 1):
            inner_len, inner_stride = runs[-1]
            runs[-1] = (inner_len * length, inner_stride or stride)
        else:
            runs.append((length, stride))
    size = flat.size
    native = arr.dtype.isnative and arr.flags.aligned
    if len(runs) <= 1:
        if native and (not casting or buffer == BUFFER):
            return flat, None  # the kernel's own rule: all at once, or BUFFER-long when casting
        # byte-swapped or misaligned data is cast in the buffer too
        return flat, _cut(size, size, buffer)
    lengths = [length for length, _ in runs]
    # The buffer takes whole "cores": the inner runs below the outermost one, or as many of
    # them as fit in it; it fills with whole cores up to the end of the run around them.
    for j in range(len(lengths) - 1, 0, -1):
        core = math.prod(lengths[:j])
        if core <= buffer:
            period = math.prod(lengths[: j + 1]) if j + 1 < len(lengths) else size
            return flat, _cut(size, period, (buffer // core) * core)
    # Inner runs longer than the buffer: each run on its own, cut into buffers when casting.
    inner = lengths[0]
    return flat, _cut(size, inner, buffer if casting or not native else inner)


def _stride(arr: Any, axis: int) -> int:
    """numpy's iterator gives length-1 axes stride 0."""
    return 0 if arr.shape[axis] == 1 else int(arr.strides[axis])


def _axis_order(arr: Any) -> list[int]:
    """The axes innermost first, as numpy's iterator orders them: starting from C order, a
    stable insertion sort by |stride|, where a zero stride (broadcast, length 1) compares with
    nothing (numpy's npyiter_find_best_axis_ordering with one operand)."""
    perm = list(range(arr.ndim))[::-1]
    for i0 in range(1, len(perm)):
        axis = perm[i0]
        s0, pos = abs(_stride(arr, axis)), i0
        for i1 in range(i0 - 1, -1, -1):
            s1 = abs(_stride(arr, perm[i1]))
            if s0 == 0 or s1 == 0:
                continue  # ambiguous: look further in
            if s1 <= s0:
                break
            pos = i1
        if pos != i0:
            del perm[i0]
            perm.insert(pos, axis)
    return perm


def _cut(size: int, period: int, piece: int) -> list[int]:
    """Lengths of `size` elements cut into `period`-long runs, each cut into `piece`-long
    pieces (the last of a run shorter)."""
    out: list[int] = []
    for start in range(0, size, period):
        run = builtins.min(period, size - start)
        full, rest = divmod(run, piece)
        out.extend([piece] * full)
        if rest:
            out.append(rest)
    return out
