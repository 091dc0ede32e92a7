"""`prange`: range() that marks a loop whose iterations the pool runs in parallel.

Called from plain Python (`.py_func`, or a jitted function's own fallback) it is `range`.
"""

from __future__ import annotations


def prange(*args: int) -> range:
    """Like range(start, stop, step); inside @jr.jit the loop's iterations run on the pool."""
    return range(*args)
