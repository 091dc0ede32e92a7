"""Indices proved in range, so lower.py can drop their negative wrap and bounds check.

The proof is structural and local to one loop: a loop `for i in range(lo, stop, step)` with
`lo >= 0` and `step > 0` constants, `stop` one of `a.shape[d]`, `len(a)`, `a.size` of a 1-D
array, or such a length minus a constant `m >= 0` (also through a name bound to that length
exactly once in the function, as `h, w = a.shape` or `n = len(a)` do), and `i` never assigned
in the body, gives `lo <= i < a.shape[d] - m` everywhere in the body. Then `a[i + c]` on
axis d is in range when `lo + c >= 0` and `c <= m`. Array arguments cannot be rebound and
their shapes do not change during a call, so the fact holds for the whole body, also in a
prange body (main computes the trip count from the same shape). Everything else keeps its
wrap and check, so `boundscheck=True` stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import frontend as F
from .typeinfer import ArrayType, TypedFunc


@dataclass(frozen=True)
class Bound:
    """lo <= var < shape(array, axis) - margin, for the whole body of one loop."""

    array: str
    axis: int
    lo: int
    margin: int


Length = tuple[str, int]  # (array, axis): a value equal to that array's length on that axis


def _int(e: F.Expr) -> int | None:
    return e.value if isinstance(e, F.Const) and type(e.value) is int else None


def assigned(stmts: list[F.Stmt]) -> list[str]:
    """Every name written in stmts (with repeats): assignments, unpacks and loop variables."""
    out: list[str] = []
    for s in stmts:
        if isinstance(s, F.Assign):
            out.append(s.target)
        elif isinstance(s, F.Unpack):
            out.extend(s.targets)
        elif isinstance(s, F.For):
            out.append(s.var)
            out.extend(assigned(s.body))
        elif isinstance(s, F.If):
            out.extend(assigned(s.body))
            out.extend(assigned(s.orelse))
        elif isinstance(s, F.While):
            out.extend(assigned(s.body))
    return out


class Facts:
    """The bounds the enclosing loops prove, for one function being lowered."""

    def __init__(self, tf: TypedFunc) -> None:
        self.tf = tf
        self.active: dict[str, Bound] = {}
        self.positive: list[str] = []  # names each enclosing loop proves >= 1 (may repeat)
        writes = assigned(tf.ir.body)
        once = {n for n in writes if writes.count(n) == 1} - set(tf.ir.params)
        self.lengths: dict[str, Length] = {}
        self._find_lengths(tf.ir.body, once)

    def _find_lengths(self, stmts: list[F.Stmt], once: set[str]) -> None:
        for s in stmts:
            if isinstance(s, F.Unpack):
                for axis, name in enumerate(s.targets):
                    if name in once:
                        self.lengths[name] = (s.array, axis)
            elif isinstance(s, F.Assign) and s.aug is None and s.target in once:
                length = self._length(s.value, aliases=False)
                if length is not None:
                    self.lengths[s.target] = length
            for child in _children(s):
                self._find_lengths(child, once)

    def _length(self, e: F.Expr, aliases: bool = True) -> Length | None:
        if isinstance(e, F.ShapeOf):
            return (e.array, e.axis)
        if isinstance(e, F.SizeOf):
            t = self.tf.vars.get(e.array)
            return (e.array, 0) if isinstance(t, ArrayType) and t.ndim == 1 else None
        if aliases and isinstance(e, F.Name):
            return self.lengths.get(e.id)
        return None

    def loop_bound(self, loop: F.For) -> Bound | None:
        """The bound loop.var has in loop.body, or None when nothing is proved."""
        lo, step = _int(loop.start), _int(loop.step)
        if lo is None or lo < 0 or step is None or step <= 0:
            return None
        if self.tf.vars.get(loop.var) != "i64" or loop.var in assigned(loop.body):
            return None
        stop, margin = loop.stop, 0
        if isinstance(stop, F.Bin) and stop.op == "-":
            m = _int(stop.right)
            if m is None or m < 0:
                return None
            stop, margin = stop.left, m
        length = self._length(stop)
        if length is None:
            return None
        return Bound(length[0], length[1], lo, margin)

    def _stop_name(self, loop: F.For) -> str | None:
        """`n` of `range(lo, n)` (lo >= 0, step > 0, n not assigned in the body): the body
        runs only when n > lo >= 0, so n >= 1 (nonzero) throughout it."""
        lo, step = _int(loop.start), _int(loop.step)
        if lo is None or lo < 0 or step is None or step <= 0:
            return None
        stop = loop.stop
        if not isinstance(stop, F.Name) or self.tf.vars.get(stop.id) != "i64":
            return None
        return None if stop.id in assigned(loop.body) else stop.id

    def nonzero(self, e: F.Expr) -> bool:
        """True when e is a name that an enclosing loop proves >= 1 (its range's stop)."""
        return isinstance(e, F.Name) and e.id in self.positive

    def enter(self, loop: F.For) -> Bound | None:
        """Make the loop's bound active for its body; returns what it replaced (for leave)."""
        self.positive.append(self._stop_name(loop) or "")
        previous = self.active.get(loop.var)
        bound = self.loop_bound(loop)
        if bound is None:
            self.active.pop(loop.var, None)
        else:
            self.active[loop.var] = bound
        return previous

    def leave(self, loop: F.For, previous: Bound | None) -> None:
        self.positive.pop()
        if previous is None:
            self.active.pop(loop.var, None)
        else:
            self.active[loop.var] = previous

    def in_range(self, index: F.Expr, array: str, axis: int) -> bool:
        """True when 0 <= index < array.shape[axis] holds wherever this index is evaluated."""
        var, c = None, 0
        if isinstance(index, F.Name):
            var = index.id
        elif isinstance(index, F.Bin) and index.op in ("+", "-") and isinstance(index.left, F.Name):
            k = _int(index.right)
            if k is None:
                return False
            var, c = index.left.id, k if index.op == "+" else -k
        bound = self.active.get(var) if var is not None else None
        if bound is None or bound.array != array or bound.axis != axis:
            return False
        return bound.lo + c >= 0 and c <= bound.margin


def _children(s: F.Stmt) -> list[list[F.Stmt]]:
    if isinstance(s, F.If):
        return [s.body, s.orelse]
    if isinstance(s, (F.While, F.For)):
        return [s.body]
    return []
