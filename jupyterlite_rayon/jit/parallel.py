"""The prange pass: which loops run on the pool, and what their bodies share.

For each prange loop (outermost only: a prange inside a prange body runs sequentially in
the worker, as in numba; every prange in a function called from another jitted function
runs sequentially too) it decides, per variable of the body:
- reduction: numba's rule, a scalar assigned before the loop and only updated in the body
  by `x += e`, `x -= e`, `x *= e` (or `x = x + e` ...), `x = min(x, e)`, `x = max(x, e)`,
  with e not reading x and x read nowhere else in the body;
- private: first used in the body by an assignment and not read outside the loop;
- captured: only read in the body; main passes its value in the ctx frame.
Any other write of a variable that lives outside the body is a JitError that says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import frontend as F
from .errors import JitError
from .typeinfer import TypedFunc


@dataclass
class Reduction:
    name: str
    op: str  # "+", "*", "min", "max": how block partials combine
    line: int


@dataclass
class ParallelPlan:
    captured: list[str]
    private: set[str]
    reductions: list[Reduction] = field(default_factory=list)


def plan(tf: TypedFunc, allow_parallel: bool) -> None:
    """Set For.plan on every prange loop of tf that runs on the pool; others turn sequential."""
    for loop in _outer_pranges(tf.ir.body):
        if not allow_parallel:
            _sequential(loop)
            continue
        for inner in _loops(loop.body):
            _sequential(inner)
        loop.plan = _plan_loop(tf, loop)


def _sequential(loop: F.For) -> None:
    loop.parallel = False
    for inner in _loops(loop.body):
        inner.parallel = False


def _children(s: F.Stmt) -> list[list[F.Stmt]]:
    if isinstance(s, F.If):
        return [s.body, s.orelse]
    if isinstance(s, (F.While, F.For)):
        return [s.body]
    return []


def _loops(stmts: list[F.Stmt]) -> list[F.For]:
    out = []
    for s in stmts:
        if isinstance(s, F.For):
            out.append(s)
        for child in _children(s):
            out.extend(_loops(child))
    return out


def _outer_pranges(stmts: list[F.Stmt]) -> list[F.For]:
    out = []
    for s in stmts:
        if isinstance(s, F.For) and s.parallel:
            out.append(s)
            continue
        for child in _children(s):
            out.extend(_outer_pranges(child))
    return out


# -- reads and writes --------------------------------------------------------------------
def _expr_names(e: F.Expr, out: list[str]) -> None:
    if isinstance(e, F.Name):
        out.append(e.id)
    elif isinstance(e, (F.Load, F.ShapeOf, F.SizeOf, F.NdimOf)):
        out.append(e.array)
        if isinstance(e, F.Load):
            for i in e.index:
                _expr_names(i, out)
    elif isinstance(e, F.Bin):
        _expr_names(e.left, out)
        _expr_names(e.right, out)
    elif isinstance(e, F.Unary):
        _expr_names(e.operand, out)
    elif isinstance(e, F.Compare):
        for x in e.operands:
            _expr_names(x, out)
    elif isinstance(e, F.BoolOp):
        for x in e.values:
            _expr_names(x, out)
    elif isinstance(e, F.IfExp):
        for x in (e.test, e.body, e.orelse):
            _expr_names(x, out)
    elif isinstance(e, (F.Call, F.JitCall)):
        for x in e.args:
            _expr_names(x, out)


def _reduction_form(s: F.Stmt) -> tuple[str, F.Expr] | None:
    """(op class, the other operand) when s is `x op= e` / `x = min(x, e)` ..."""
    if not isinstance(s, F.Assign):
        return None
    x, v = s.target, s.value
    if (
        isinstance(v, F.Bin)
        and v.op in ("+", "-", "*")
        and isinstance(v.left, F.Name)
        and v.left.id == x
    ):
        other: F.Expr = v.right
        op = "*" if v.op == "*" else "+"
    elif isinstance(v, F.Call) and v.func in ("min", "max") and len(v.args) == 2:
        a, b = v.args
        if isinstance(a, F.Name) and a.id == x:
            other = b
        elif isinstance(b, F.Name) and b.id == x:
            other = a
        else:
            return None
        op = v.func
    else:
        return None
    names: list[str] = []
    _expr_names(other, names)
    return None if x in names else (op, other)


def _events(stmts: list[F.Stmt], out: list[tuple[str, str, F.Stmt]]) -> None:
    """(name, 'r' | 'w' | op-class-of-a-reduction-update, stmt) in evaluation order."""
    for s in stmts:
        names: list[str] = []
        if isinstance(s, F.Assign):
            red = _reduction_form(s)
            if red is not None:
                _expr_names(red[1], names)
                out.extend((n, "r", s) for n in names)
                out.append((s.target, red[0], s))
                continue
            _expr_names(s.value, names)
            out.extend((n, "r", s) for n in names)
            out.append((s.target, "w", s))
        elif isinstance(s, F.Unpack):
            out.append((s.array, "r", s))
            out.extend((t, "w", s) for t in s.targets)
        elif isinstance(s, (F.Store, F.AugStore)):
            _expr_names(s.value, names)
            for i in s.index:
                _expr_names(i, names)
            out.extend((n, "r", s) for n in [*names, s.array])
        elif isinstance(s, (F.If, F.While)):
            _expr_names(s.test, names)
            out.extend((n, "r", s) for n in names)
            _events(s.body, out)
            if isinstance(s, F.If):
                _events(s.orelse, out)
        elif isinstance(s, F.For):
            for part in (s.start, s.stop, s.step):
                _expr_names(part, names)
            out.extend((n, "r", s) for n in names)
            out.append((s.var, "w", s))
            _events(s.body, out)
        elif isinstance(s, (F.Return, F.ExprStmt)) and s.value is not None:
            _expr_names(s.value, names)
            out.extend((n, "r", s) for n in names)


def _walk(stmts: list[F.Stmt]) -> list[F.Stmt]:
    out = []
    for s in stmts:
        out.append(s)
        for child in _children(s):
            out.extend(_walk(child))
    return out


def _plan_loop(tf: TypedFunc, loop: F.For) -> ParallelPlan:
    ir = tf.ir

    def error(line: int, message: str, construct: str) -> JitError:
        return JitError(
            message, function=ir.name, filename=ir.filename, line=line, construct=construct
        )

    inside = set(map(id, _walk(loop.body)))
    for s in _walk(loop.body):
        if isinstance(s, F.Return):
            raise error(
                s.line,
                "return inside a prange loop is not supported: write the "
                "result into an array or a reduction variable",
                "return in prange",
            )
    for s in loop.body:
        if isinstance(s, F.Break):
            raise error(
                s.line,
                "break out of a prange loop is not supported (its iterations "
                "run in any order): use range(), or a while loop",
                "break in prange",
            )
    for s in _walk(loop.body):
        if isinstance(s, F.If):
            for b in (*s.body, *s.orelse):
                if isinstance(b, F.Break) and not _in_inner_loop(loop.body, b):
                    raise error(
                        b.line,
                        "break out of a prange loop is not supported (its "
                        "iterations run in any order): use range()",
                        "break in prange",
                    )
    events: list[tuple[str, str, F.Stmt]] = []
    _events(loop.body, events)
    # A body variable is live after the loop when the code that can run next reads it before
    # assigning it (e.g. `return last`); a later `for i in ...` reusing the name is not.
    read_outside: dict[str, int] = {}
    later: list[tuple[str, str, F.Stmt]] = []
    _events(_following(ir.body, loop) or [], later)
    for n, kind, s in later:
        if n not in read_outside:
            read_outside[n] = s.line if kind == "r" else 0
    read_outside = {n: line for n, line in read_outside.items() if line}
    assigned_outside = set(ir.params)
    for s in _walk(ir.body):
        if id(s) in inside:
            continue
        if isinstance(s, F.Assign):
            assigned_outside.add(s.target)
        elif isinstance(s, F.Unpack):
            assigned_outside.update(s.targets)
        elif isinstance(s, F.For) and s is not loop:
            assigned_outside.add(s.var)
    written = {n for n, kind, _ in events if kind != "r"}
    private: set[str] = {loop.var}
    reductions: list[Reduction] = []
    for name in sorted(written - {loop.var}):
        mine = [(kind, s) for n, kind, s in events if n == name]
        updates = [(kind, s) for kind, s in mine if kind in ("+", "*", "min", "max")]
        first_kind = mine[0][0]
        if len(updates) == len(mine) and name in assigned_outside:
            ops = {kind for kind, _ in updates}
            if len(ops) > 1:
                raise error(
                    updates[0][1].line,
                    f"the reduction variable {name!r} is updated "
                    f"with different operators ({', '.join(sorted(ops))}): use one "
                    "kind of update per variable",
                    "mixed reduction",
                )
            reductions.append(Reduction(name, ops.pop(), updates[0][1].line))
            continue
        if first_kind != "w" or name in read_outside:
            line = next(s.line for kind, s in mine if kind != "r")
            after = (
                f" (and read outside it at line {read_outside[name]})"
                if name in read_outside
                else ""
            )
            raise error(
                line,
                f"the prange loop at line {loop.line} writes the shared variable "
                f"{name!r}{after}, which is not a reduction: its iterations run at the "
                f"same time. Make it a reduction ({name} += ..., {name} = min({name}, "
                "...)) assigned before the loop, or a variable of the loop body (first "
                "assigned inside it and not used outside the loop)",
                "shared write",
            )
        private.add(name)
    reduced = {r.name for r in reductions}
    captured = sorted({n for n, kind, _ in events if kind == "r"} - private - reduced)
    return ParallelPlan(captured, private, reductions)


def _following(stmts: list[F.Stmt], target: F.Stmt) -> list[F.Stmt] | None:
    """The statements that can run after target, in order (an enclosing loop runs again)."""
    for idx, s in enumerate(stmts):
        if s is target:
            return stmts[idx + 1 :]
        for child in _children(s):
            rest = _following(child, target)
            if rest is not None:
                again = [s] if isinstance(s, (F.While, F.For)) else []
                return rest + again + stmts[idx + 1 :]
    return None


def _in_inner_loop(body: list[F.Stmt], target: F.Stmt) -> bool:
    for s in body:
        if isinstance(s, (F.For, F.While)) and any(x is target for x in _walk(s.body)):
            return True
        if isinstance(s, F.If) and _in_inner_loop(s.body + s.orelse, target):
            return True
    return False
