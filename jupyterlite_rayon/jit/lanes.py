"""Two iterations of an escape-time loop at once, in the two lanes of f64x2 / i64x2.

The shape is the Mandelbrot kernel's (and kernels/ops/mandelbrot.zig does the same by hand):

    for i in range(lo, stop):          # step 1
        <S1: assignments>              # per-iteration set-up: cx = ..., zr = zi = 0.0, k = 0
        while <cond>:                  # pure arithmetic on float64 / int64 scalars
            <assignments and `if <test>: break`>
        <S2: array stores>             # out[j, i] = k

Iterations i and i + 1 run S1 one after the other in the scalar code (each lane's values are
kept in copies), then one vector `while` runs both lanes: a lane's mask turns off at its first
failed `cond` (or `break`) and every later assignment leaves that lane as it was (bitselect),
so each lane computes exactly the scalar sequence of IEEE operations and stops on the same
iteration. Then S2 runs for i, then for i + 1, in the scalar code, in order. An odd last
iteration runs in the ordinary scalar loop.

That reordering (S1 of i + 1 before S2 of i) is unobservable because S1 and the `while` touch
no memory, call nothing and cannot raise (a division only by a nonzero constant or by a
range's stop the enclosing loop proves >= 1), and S2 only stores. Anything else keeps the
scalar loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import frontend as F
from .bounds import assigned

_LANE = {"f64": "f64x2", "i64": "i64x2"}
_BIN = {"+": "add", "-": "sub", "*": "mul"}
_CMP = {
    "f64": {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"},
    "i64": {"<": "lt_s", "<=": "le_s", ">": "gt_s", ">=": "ge_s", "==": "eq", "!=": "ne"},
}


@dataclass
class PairPlan:
    s1: list[F.Assign]
    loop: F.While
    s2: list[F.Stmt]
    state: list[str]  # scalars kept per lane: the loop variable, S1's and the while's targets
    lanes: list[str]  # the state the while reads or writes (packed into v128 locals)
    masked: set[str]  # while targets whose final value is used (S2 or after the loop)


def _int(e: F.Expr) -> int | None:
    return e.value if isinstance(e, F.Const) and type(e.value) is int else None


def plan(fl: Any, loop: F.For) -> PairPlan | None:
    """The pair plan of a sequential range loop (facts of the loop active), or None."""
    if _int(loop.step) != 1:
        return None
    body = loop.body
    whiles = [k for k, s in enumerate(body) if isinstance(s, F.While)]
    if len(whiles) != 1:
        return None
    w = whiles[0]
    s1, wl, s2 = body[:w], body[w], body[w + 1 :]
    assert isinstance(wl, F.While)
    tf = fl.tf
    if not all(isinstance(s, F.Assign) for s in s1) or not all(isinstance(s, F.Store) for s in s2):
        return None
    if loop.var in assigned(body):
        return None
    s1_targets = [s.target for s in s1 if isinstance(s, F.Assign)]
    w_targets = assigned(wl.body)
    state = [loop.var, *dict.fromkeys(s1_targets + w_targets)]
    if any(tf.vars.get(n) not in _LANE for n in state):
        return None
    # S1 reads only invariants, the loop variable, or what S1 assigned before (no carried
    # values from the previous iteration), and cannot fail.
    defined = {loop.var}
    carried = set(state) - {loop.var}
    for s in s1:
        assert isinstance(s, F.Assign)
        if s.aug is not None or not _safe(fl, s.value, carried - defined):
            return None
        defined.add(s.target)
    # A target of the while is set by S1, or is local to one pass of the while body (written
    # before any read, and dead after the loop): then its value entering the loop is unused.
    live = set(_reads(s2)) | set(_reads(tf.ir.body, skip=loop))
    for n in w_targets:
        if n not in defined and (n in live or not _written_first(n, wl)):
            return None
    lanes = [n for n in state if n in defined or n in w_targets]
    if not _lane_bool(fl, wl.test, lanes):
        return None
    for s in wl.body:
        if isinstance(s, F.Assign):
            if not _lane_value(fl, s.value, tf.vars[s.target], lanes):
                return None
        elif isinstance(s, F.If) and not s.orelse and len(s.body) == 1:
            if not isinstance(s.body[0], F.Break) or not _lane_bool(fl, s.test, lanes):
                return None
        else:
            return None
    # A target that S2 does not read and that nothing outside this loop reads is dead after
    # the while: its escaped lanes may keep iterating unmasked, as the built-in kernel's do.
    masked = {n for n in w_targets if n in live and not n.startswith("$t")}
    s1_list = [s for s in s1 if isinstance(s, F.Assign)]
    return PairPlan(s1_list, wl, s2, state, lanes, masked)


def _written_first(name: str, wl: F.While) -> bool:
    """name is written in the while body before anything there (or the test) reads it."""
    if name in _names(wl.test):
        return False
    for s in wl.body:
        reads = _names(s.value) if isinstance(s, F.Assign) else _reads([s])
        if name in reads:
            return False
        if isinstance(s, F.Assign) and s.target == name:
            return True
    return False


def _reads(stmts: list[F.Stmt], skip: F.Stmt | None = None) -> list[str]:
    """Every name read by stmts (tests, range arguments and nested bodies), except inside
    the statement `skip`."""
    out: list[str] = []
    for s in stmts:
        if s is skip:
            continue
        if isinstance(s, (F.Assign, F.ExprStmt)):
            out += _names(s.value)
        elif isinstance(s, (F.Store, F.AugStore)):
            out += _names(s.value)
            for e in s.index:
                out += _names(e)
        elif isinstance(s, F.Return) and s.value is not None:
            out += _names(s.value)
        elif isinstance(s, F.If):
            out += _names(s.test) + _reads(s.body, skip) + _reads(s.orelse, skip)
        elif isinstance(s, F.While):
            out += _names(s.test) + _reads(s.body, skip)
        elif isinstance(s, F.For):
            for e in (s.start, s.stop, s.step):
                out += _names(e)
            out += _reads(s.body, skip)
    return out


def _names(e: F.Expr) -> list[str]:
    out: list[str] = []
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, F.Name):
            out.append(x.id)
        elif isinstance(x, F.Bin):
            stack += [x.left, x.right]
        elif isinstance(x, F.Unary):
            stack.append(x.operand)
        elif isinstance(x, F.Compare):
            stack += x.operands
        elif isinstance(x, F.BoolOp):
            stack += x.values
        elif isinstance(x, F.IfExp):
            stack += [x.test, x.body, x.orelse]
        elif isinstance(x, (F.Call, F.JitCall)):
            stack += x.args
        elif isinstance(x, F.Load):
            stack += x.index
    return out


def _safe(fl: Any, e: F.Expr, forbidden: set[str]) -> bool:
    """e reads no memory, calls no jitted function, cannot raise, reads no forbidden name."""
    if isinstance(e, (F.Const, F.ShapeOf, F.SizeOf, F.NdimOf)):
        return True
    if isinstance(e, F.Name):
        return e.id not in forbidden
    if isinstance(e, F.Bin):
        if e.op in ("/", "//", "%"):
            c = e.right.value if isinstance(e.right, F.Const) else 0
            if (isinstance(c, bool) or c == 0) and not fl.facts.nonzero(e.right):
                return False
        if e.op == "**" and e.opty == "i64":
            return False
        return _safe(fl, e.left, forbidden) and _safe(fl, e.right, forbidden)
    if isinstance(e, (F.Unary, F.Compare, F.BoolOp, F.IfExp, F.Call)):
        return all(_safe(fl, x, forbidden) for x in _children(e))
    return False


def _children(e: F.Expr) -> list[F.Expr]:
    if isinstance(e, F.Unary):
        return [e.operand]
    if isinstance(e, F.Compare):
        return list(e.operands)
    if isinstance(e, F.BoolOp):
        return list(e.values)
    if isinstance(e, F.IfExp):
        return [e.test, e.body, e.orelse]
    if isinstance(e, F.Call):
        return list(e.args)
    return []


def _invariant_ok(fl: Any, e: F.Expr, lanes: list[str]) -> bool:
    """A loop-invariant scalar value (splatted once per pair)."""
    if isinstance(e, F.Const):
        return type(e.value) in (int, float)
    return (
        isinstance(e, F.Name)
        and e.id not in lanes
        and fl.tf.vars.get(e.id)
        in (
            "f64",
            "i64",
            "i32",
            "f32",
        )
    )


def _lane_value(fl: Any, e: F.Expr, t: str, lanes: list[str]) -> bool:
    """conv(e.ty, t)(e) computable in lanes of t, exactly as the scalar code computes it."""
    if t not in _LANE:
        return False
    if isinstance(e, (F.Const, F.Name)) and _invariant_ok(fl, e, lanes):
        return True
    if isinstance(e, F.Name):
        return e.id in lanes and e.ty == t
    if isinstance(e, F.Bin):
        if e.ty != t or e.opty != t:
            return False
        if e.op == "/":
            ok = t == "f64" and isinstance(e.right, F.Const) and e.right.value not in (0, False)
            return ok and _lane_value(fl, e.left, t, lanes)
        if e.op == "**":
            two = _int(e.right) == 2
            return t == "f64" and two and _lane_value(fl, e.left, t, lanes)
        if e.op not in _BIN:
            return False
        return _lane_value(fl, e.left, t, lanes) and _lane_value(fl, e.right, t, lanes)
    if isinstance(e, F.Unary):
        return e.op == "-" and e.ty == t and _lane_value(fl, e.operand, t, lanes)
    if isinstance(e, F.Call) and t == "f64" and e.ty == "f64":
        if e.func in ("abs", "fabs", "sqrt") and len(e.args) == 1:
            return _lane_value(fl, e.args[0], t, lanes)
        if e.func in ("min", "max") and len(e.args) >= 2:
            return all(_lane_value(fl, a, t, lanes) for a in e.args)
    return False


def _lane_bool(fl: Any, e: F.Expr, lanes: list[str]) -> bool:
    """A condition computable as a lane mask."""
    if isinstance(e, F.Compare):
        return len(e.ops) == 1 and all(
            e.optys[0] in _LANE and _lane_value(fl, x, e.optys[0], lanes) for x in e.operands
        )
    if isinstance(e, F.BoolOp):
        return e.ty == "bool" and all(_lane_bool(fl, v, lanes) for v in e.values)
    if isinstance(e, F.Unary) and e.op == "not":
        return _lane_bool(fl, e.operand, lanes)
    return False


def _key(e: F.Expr) -> str:
    """A structural key of a lane expression (names, constants with their types, ops)."""
    if isinstance(e, F.Name):
        return e.id
    if isinstance(e, F.Const):
        return f"{e.ty}{e.value!r}"
    if isinstance(e, F.Bin):
        return f"({_key(e.left)}{e.op}{e.opty}{_key(e.right)})"
    if isinstance(e, F.Unary):
        return f"({e.op}{_key(e.operand)})"
    if isinstance(e, F.Call):
        return f"{e.func}(" + ",".join(_key(a) for a in e.args) + ")"
    return f"?{id(e)}"


class PairEmitter:
    """Emits the paired loop for one `for` (the caller emits the scalar loop for the rest)."""

    def __init__(self, fl: Any, loop: F.For, pp: PairPlan) -> None:
        self.fl = fl
        self.loop = loop
        self.pp = pp

    def op(self, name: str, *imm: object) -> None:
        self.fl.op(name, *imm)

    def run(self, k: int, stop: int) -> None:
        """Pairs while k + 1 < stop; leaves k at the first iteration not run."""
        fl, pp, tf = self.fl, self.pp, self.fl.tf
        copies = {(n, lane): fl.tmp(tf.vars[n]) for n in pp.state for lane in (0, 1)}
        self.v = {n: fl.fn.local("v128") for n in pp.lanes}
        self.active = fl.fn.local("v128")
        out = fl.open("block")
        top = fl.open("loop")
        # stop - k >= 2 (unsigned: k < stop here or the loop is done)
        self.op("local.get", stop)
        self.op("local.get", k)
        self.op("i64.sub")
        self.op("i64.const", 2)
        self.op("i64.lt_s")
        fl.br(out, cond=True)
        for lane in (0, 1):
            self.op("local.get", k)
            if lane:
                self.op("i64.const", 1)
                self.op("i64.add")
            self.op("local.set", fl.var(self.loop.var))
            fl.block(pp.s1)
            for n in pp.state:
                self.op("local.get", fl.var(n))
                self.op("local.set", copies[(n, lane)])
        for n in pp.lanes:
            shape = _LANE[tf.vars[n]]
            self.op("local.get", copies[(n, 0)])
            self.op(f"{shape}.splat")
            self.op("local.get", copies[(n, 1)])
            self.op(f"{shape}.replace_lane", 1)
            self.op("local.set", self.v[n])
        self.vector_while()
        for n in pp.lanes:
            shape = _LANE[tf.vars[n]]
            for lane in (0, 1):
                self.op("local.get", self.v[n])
                self.op(f"{shape}.extract_lane", lane)
                self.op("local.set", copies[(n, lane)])
        for lane in (0, 1):
            for n in pp.state:
                self.op("local.get", copies[(n, lane)])
                self.op("local.set", fl.var(n))
            fl.block(pp.s2)
        self.op("local.get", k)
        self.op("i64.const", 2)
        self.op("i64.add")
        self.op("local.set", k)
        fl.poll()
        fl.br(top)
        fl.close()
        fl.close()

    def vector_while(self) -> None:
        fl, wl, pp = self.fl, self.pp.loop, self.pp
        self.op("i64.const", -1)
        self.op("i64x2.splat")
        self.op("local.set", self.active)
        # Invariant splats are computed here, before the loop, as the lanes ask for them.
        self.hoist_at = len(fl.fn.code)
        self.splats: dict[object, int] = {}
        out = fl.open("block")
        top = fl.open("loop")
        inner = fl.open("loop")
        self.cse: dict[str, tuple[int, set[str]]] = {}  # this iteration's lane values
        self.mask(wl.test)
        self.op("local.get", self.active)
        self.op("v128.and")
        self.op("local.tee", self.active)
        self.op("v128.any_true")
        self.op("i32.eqz")
        fl.br(out, cond=True)
        for s in wl.body:
            if isinstance(s, F.If):  # if test: break -> the lane stops here
                self.op("local.get", self.active)
                self.mask(s.test)
                self.op("v128.andnot")
                self.op("local.set", self.active)
                continue
            assert isinstance(s, F.Assign)
            t = fl.tf.vars[s.target]
            v = s.value
            if (
                s.target in pp.masked
                and t == "i64"
                and isinstance(v, F.Bin)
                and v.op == "+"
                and isinstance(v.left, F.Name)
                and v.left.id == s.target
                and _int(v.right) == 1
            ):
                # k += 1 in the active lanes: the mask is -1 there, 0 elsewhere
                self.op("local.get", self.v[s.target])
                self.op("local.get", self.active)
                self.op("i64x2.sub")
                self.op("local.set", self.v[s.target])
                self.forget(s.target)
                continue
            self.value(v, t)
            if s.target in pp.masked:
                self.op("local.get", self.v[s.target])
                self.op("local.get", self.active)
                self.op("v128.bitselect")
            self.op("local.set", self.v[s.target])  # a dead target needs no mask
            self.forget(s.target)
        pc = fl.budget()
        self.op("local.get", pc)
        self.op("i32.const", 1)
        self.op("i32.sub")
        self.op("local.tee", pc)
        fl.br(inner, cond=True)
        fl.close()
        fl.poll_now()
        fl.br(top)
        fl.close()
        fl.close()

    def splat(self, e: F.Expr, t: str) -> None:
        """local.get of the invariant scalar e splatted to lanes of t (computed once)."""
        key = (
            t,
            e.id if isinstance(e, F.Name) else ("const", e.ty, repr(getattr(e, "value", None))),
        )
        local = self.splats.get(key)
        if local is None:
            fl = self.fl
            local = self.splats[key] = fl.fn.local("v128")
            code = fl.fn.code
            mark = len(code)
            fl.expr(e)  # converted as the scalar code would
            fl.conv(e.ty, t)
            self.op(f"{_LANE[t]}.splat")
            self.op("local.set", local)
            hoisted = code[mark:]
            del code[mark:]
            code[self.hoist_at : self.hoist_at] = hoisted
            self.hoist_at += len(hoisted)
        self.op("local.get", local)

    def forget(self, name: str) -> None:
        """An assignment to name: drop the remembered values that read it."""
        self.cse = {k: v for k, v in self.cse.items() if name not in v[1]}

    def value(self, e: F.Expr, t: str) -> None:
        """Leaves conv(e.ty, t)(e) in lanes; a repeated subexpression is computed once."""
        if isinstance(e, (F.Bin, F.Unary, F.Call)):
            key = f"{t}:{_key(e)}"
            known = self.cse.get(key)
            if known is not None:
                self.op("local.get", known[0])
                return
            self._value(e, t)
            local = self.fl.fn.local("v128")
            self.op("local.tee", local)
            self.cse[key] = (local, set(_names(e)))
            return
        self._value(e, t)

    def _value(self, e: F.Expr, t: str) -> None:
        fl, shape = self.fl, _LANE[t]
        if isinstance(e, F.Name) and e.id in self.v:
            self.op("local.get", self.v[e.id])
        elif isinstance(e, (F.Const, F.Name)):
            self.splat(e, t)
        elif isinstance(e, F.Bin):
            if e.op == "**":
                self.value(e.left, t)
                tmp = fl.fn.local("v128")
                self.op("local.tee", tmp)
                self.op("local.get", tmp)
                self.op(f"{shape}.mul")
                return
            self.value(e.left, t)
            self.value(e.right, t)
            self.op(f"{shape}.{_BIN.get(e.op, 'div')}")
        elif isinstance(e, F.Unary):
            self.value(e.operand, t)
            self.op(f"{shape}.neg")
        elif isinstance(e, F.Call):
            self.value(e.args[0], t)
            if e.func in ("abs", "fabs", "sqrt"):
                self.op("f64x2.sqrt" if e.func == "sqrt" else "f64x2.abs")
                return
            for a in e.args[1:]:  # Python's min(a, b) = b if b < a else a: f64x2.pmin
                self.value(a, t)
                self.op("f64x2.pmin" if e.func == "min" else "f64x2.pmax")

    def mask(self, e: F.Expr) -> None:
        if isinstance(e, F.Compare):
            t = e.optys[0]
            self.value(e.operands[0], t)
            self.value(e.operands[1], t)
            self.op(f"{_LANE[t]}.{_CMP[t][e.ops[0]]}")
        elif isinstance(e, F.BoolOp):
            self.mask(e.values[0])
            for v in e.values[1:]:
                self.mask(v)
                self.op("v128.and" if e.op == "and" else "v128.or")
        else:
            assert isinstance(e, F.Unary)
            self.mask(e.operand)
            self.op("v128.not")
