"""Several iterations of an escape-time loop at once, in lanes of f64x2 / i64x2.

The shape is the Mandelbrot kernel's (also Newton iterations, orbit counts, ...):

    for i in range(lo, stop):          # step 1; also a prange loop's own chunk
        <S1: assignments>              # per-iteration set-up: cx = ..., zr = zi = 0.0, k = 0
        while <cond>:                  # pure arithmetic on float64 / int64 scalars
            <assignments and `if <test>: break`>
        <S2: statements>               # out[j, i] = k (stores, scalar updates, reductions)

Why lanes. The scalar `while` is latency-bound: each pass is a chain of dependent float ops
(zr*zr, then a sub, then an add), so a core does one pass per chain latency and its other
pipes idle. CPython needs about 60-70 ns per pass; to be 100x faster we need well under
1 ns, so several iterations i must be in flight per thread. 2 * GROUPS consecutive
iterations run together, in GROUPS v128 values of two lanes each, emitted interleaved so the
out-of-order core overlaps the groups' chains, and the test "is any lane still active" (an
OR of the masks, any_true and a branch) runs once every PASSES passes, not every pass.
Measured on the issue's Mandelbrot 800x600x300 (CPython, Cranelift, one thread, one run of
2026-12-02, ms): passes per test 1 / 2 / 4 / 8 at three groups 29.2 / 27.1 / 22.4 / 25.3,
four 30.4 / 22.3 / 20.4 / 25.6, five 27.9 / 21.0 / 20.7 / 26.0; the built-in jr.mandelbrot
(kernels/ops/mandelbrot.zig: four groups, a test every four passes, written by hand) 21.1.
On 80x60 (four passes per test), where lanes lose more passes to neighbours that escape
later: three groups 0.283, four 0.267, five 0.312, built-in 0.290. In Node's V8 (800x600, one
thread, same day): three groups testing every pass (the old emitter) 41.2, three or four
groups every four passes 20.6 / 20.0, the built-in 17.8. Four groups and four passes are the
choice (the built-in's): five groups gain nothing measurable and lose on small images, and at
eight passes lanes run on too long after the last one stopped.

How, exactly. For iterations i, i + 1, ..., S1 runs one iteration after the other in
the scalar code (each lane's values kept in copies), then one vector `while` runs all lanes:
a lane's mask turns off at its first failed `cond` (or `break`) and every later assignment
leaves that lane as it was (bitselect; a value read by nobody after the loop is left
unmasked, as the built-in kernel does), so each lane computes exactly the scalar sequence of
IEEE operations and stops on the same pass. `cond` is still evaluated in every lane on every
pass and ANDed into that lane's mask; only the exit test, "any lane still active", waits for
the end of a block of PASSES passes. The passes a block runs after its last lane stopped
change nothing: the body is pure and cannot trap (see below), masked values keep what they
were and a stopped lane's mask stays off. A counter `k < n` (below) is one pass count shared
by the active lanes, so it must never run past n: a block runs only when its last pass is
still allowed (PASSES more passes fit, checked exactly: no int64 overflow), and the last
passes before n run one per test, as the scalar loop does. Then S2 runs for i, i + 1, ...
in order, in the scalar code, each with its lane's values.

Why that reordering (S1 and the `while` of later iterations before S2 of earlier ones) is
unobservable: S1 and the `while` read no memory, call nothing that has effects and cannot
raise (a division only by a nonzero constant or by a range's stop the enclosing loop
proves >= 1), and S2 writes no variable that S1 or the `while` read (other than the lanes'
own state, which is restored per lane); S2 has no break, continue or return. Anything else
keeps the scalar loop, which raises and orders effects as Python does. What is left after
the groups (fewer than 2 * GROUPS iterations) runs in pairs, then at most one in the scalar
loop.

Savings inside the `while`, all exact: `2.0 * x` is `x + x` (the same IEEE result, one
cycle sooner on the chain); a counter test `k < n` (k set to a constant by
S1 and raised by `k += 1` once per pass, n invariant) has the same value in every active
lane, so it is one scalar compare of a pass count instead of a lane compare; and the
interrupt poll sits outside the hot loop (the budget charged PASSES per block, a call when
it is spent: every 1024 passes, as before), because a call in the loop makes Cranelift keep
every v128 value on the stack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import frontend as F
from .bounds import assigned

GROUPS = 4  # v128 values per lane variable (the module docstring says why four)
PASSES = 4  # passes of the while between two tests for a live lane (the docstring says why)
_LANE = {"f64": "f64x2", "i64": "i64x2"}
_BIN = {"+": "add", "-": "sub", "*": "mul"}
_CMP = {
    "f64": {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"},
    "i64": {"<": "lt_s", "<=": "le_s", ">": "gt_s", ">=": "ge_s", "==": "eq", "!=": "ne"},
}


@dataclass
class Counter:
    """The `k < n` conjunct of the while's test that a scalar pass count decides."""

    name: str  # k
    start: int  # the constant S1 gives k
    op: str  # < or <=
    limit: F.Expr  # n (invariant)
    test: F.Expr | None  # what is left of the test for the lanes (None: always true)


@dataclass
class LanePlan:
    s1: list[F.Assign]
    loop: F.While
    s2: list[F.Stmt]
    state: list[str]  # scalars kept per lane: the loop variable, S1's and the while's targets
    lanes: list[str]  # the state the while reads or writes (packed into v128 locals)
    masked: set[str]  # while targets whose final value is used (S2 or after the loop)
    counter: Counter | None


def _int(e: F.Expr) -> int | None:
    return e.value if isinstance(e, F.Const) and type(e.value) is int else None


def plan(fl: Any, loop: F.For) -> LanePlan | None:
    """The lane plan of a step-1 loop (facts of the loop active), or None."""
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
    if not all(isinstance(s, F.Assign) for s in s1) or not _plain(s2):
        return None
    if loop.var in assigned(body):
        return None
    s1_list = [s for s in s1 if isinstance(s, F.Assign)]
    s1_targets = [s.target for s in s1_list]
    w_targets = assigned(wl.body)
    state = [loop.var, *dict.fromkeys(s1_targets + w_targets)]
    if any(tf.vars.get(n) not in _LANE for n in state):
        return None
    # S1 reads only invariants, the loop variable, or what S1 assigned before (no carried
    # values from the previous iteration), and cannot fail.
    defined = {loop.var}
    carried = set(state) - {loop.var}
    for s in s1_list:
        if s.aug is not None or not _safe(fl, s.value, carried - defined):
            return None
        defined.add(s.target)
    # S2 runs after later lanes' S1 and while: it must not write what they read.
    w_reads = set(_names(wl.test)) | set(_reads(wl.body))
    s1_reads = {n for s in s1_list for n in _names(s.value)}
    if (set(assigned(s2)) - set(state)) & (w_reads | s1_reads):
        return None
    # A target of the while is set by S1, or is local to one pass of the while body (written
    # before any read, and dead after the loop): then its value entering the loop is unused.
    live = set(_reads(s2)) | set(_reads(tf.ir.body, skip=loop))
    for n in w_targets:
        if n not in defined and (n in live or not _written_first(n, wl)):
            return None
    lanes = [n for n in state if n in w_reads or n in w_targets]
    if not _lane_bool(fl, wl.test, lanes):
        return None
    for ws in wl.body:
        if isinstance(ws, F.Assign):
            if not _lane_value(fl, ws.value, tf.vars[ws.target], lanes):
                return None
        elif isinstance(ws, F.If) and not ws.orelse and len(ws.body) == 1:
            if not isinstance(ws.body[0], F.Break) or not _lane_bool(fl, ws.test, lanes):
                return None
        else:
            return None
    # A target that S2 does not read and that nothing outside this loop reads is dead after
    # the while: its escaped lanes may keep iterating unmasked, as the built-in kernel's do.
    masked = {n for n in w_targets if n in live and not n.startswith("$t")}
    counter = _counter(fl, s1_list, wl, lanes)
    return LanePlan(s1_list, wl, s2, state, lanes, masked, counter)


def _plain(stmts: list[F.Stmt]) -> bool:
    """No break, continue or return anywhere in stmts (S2 runs outside the loop's labels)."""
    for s in stmts:
        if isinstance(s, (F.Break, F.Continue, F.Return)):
            return False
        if isinstance(s, F.If) and not (_plain(s.body) and _plain(s.orelse)):
            return False
        if isinstance(s, (F.While, F.For)) and not _plain(s.body):
            return False
    return True


def _counter(fl: Any, s1: list[F.Assign], wl: F.While, lanes: list[str]) -> Counter | None:
    """The `k < n` conjunct of wl.test when every active lane has the same k on each pass.

    That holds when the last thing S1 does to k is `k = <int constant>` and the while body
    changes k only by one top-level `k += 1`: a lane still active at the top of pass p has
    run p increments, so its k is start + p, the same in all active lanes (wrapping alike).
    """
    conjuncts = (
        wl.test.values if isinstance(wl.test, F.BoolOp) and wl.test.op == "and" else [wl.test]
    )
    for pos, c in enumerate(conjuncts):
        if not (
            isinstance(c, F.Compare)
            and len(c.ops) == 1
            and c.ops[0] in ("<", "<=")
            and c.optys[0] == "i64"
            and isinstance(c.operands[0], F.Name)
        ):
            continue
        k, limit = c.operands[0].id, c.operands[1]
        if k not in lanes or fl.tf.vars.get(k) != "i64" or not _invariant_ok(fl, limit, lanes):
            continue
        if isinstance(limit, F.Const) and type(limit.value) is not int:
            continue
        starts = [_int(s.value) for s in s1 if s.target == k]
        if not starts or starts[-1] is None:
            continue
        writes = [s for s in wl.body if isinstance(s, F.Assign) and s.target == k]
        if len(writes) != 1 or not _is_increment(writes[0], k):
            continue
        rest = conjuncts[:pos] + conjuncts[pos + 1 :]
        left: F.Expr | None = None
        if len(rest) == 1:
            left = rest[0]
        elif rest:
            left = F.BoolOp(wl.test.line, "and", rest)
            left.ty = "bool"
        return Counter(k, starts[-1], c.ops[0], limit, left)
    return None


def _is_increment(s: F.Assign, k: str) -> bool:
    v = s.value
    return (
        isinstance(v, F.Bin)
        and v.op == "+"
        and v.opty == "i64"
        and isinstance(v.left, F.Name)
        and v.left.id == k
        and _int(v.right) == 1
    )


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
    """A loop-invariant scalar value (splatted once per set of lanes)."""
    if isinstance(e, F.Const):
        return type(e.value) in (int, float)
    return (
        isinstance(e, F.Name)
        and e.id not in lanes
        and fl.tf.vars.get(e.id) in ("f64", "i64", "i32", "f32")
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


def _doubles(e: F.Bin) -> F.Expr | None:
    """x for `2.0 * x` / `x * 2.0` in float64: x + x is the same IEEE result, one op sooner."""
    if e.op != "*" or e.opty != "f64":
        return None
    for c, x in ((e.left, e.right), (e.right, e.left)):
        if isinstance(c, F.Const) and type(c.value) in (int, float) and c.value == 2:
            return x
    return None


def emit(fl: Any, loop: F.For, lp: LanePlan, k: int, stop: int, set_var: Any) -> None:
    """The lane loops of `loop` over [k, stop): GROUPS groups at a time, then pairs for what
    is left; k ends at the one iteration (or none) left for the caller's scalar loop."""
    LaneEmitter(fl, loop, lp, GROUPS).run(k, stop, set_var)
    if GROUPS > 1:
        LaneEmitter(fl, loop, lp, 1).run(k, stop, set_var)


class LaneEmitter:
    """Emits the lane loop for one `for` (the caller emits the scalar loop for the rest)."""

    def __init__(self, fl: Any, loop: F.For, lp: LanePlan, groups: int = GROUPS) -> None:
        self.fl = fl
        self.loop = loop
        self.lp = lp
        self.groups = groups
        self.width = 2 * groups  # iterations run together

    def op(self, name: str, *imm: object) -> None:
        self.fl.op(name, *imm)

    def run(self, k: int, stop: int, set_var: Callable[[int], None]) -> None:
        """self.width iterations at a time while k + self.width <= stop; leaves k at the first
        one not run. set_var(l) sets the loop variable to that of iteration k + l."""
        fl, lp, tf = self.fl, self.lp, self.fl.tf
        copies = {(n, lane): fl.tmp(tf.vars[n]) for n in lp.state for lane in range(self.width)}
        self.v = {(n, g): fl.fn.local("v128") for n in lp.lanes for g in range(self.groups)}
        self.active = [fl.fn.local("v128") for _ in range(self.groups)]
        out = fl.open("block")
        top = fl.open("loop")
        # stop - k < width: done (also when k >= stop already)
        self.op("local.get", stop)
        self.op("local.get", k)
        self.op("i64.sub")
        self.op("i64.const", self.width)
        self.op("i64.lt_s")
        fl.br(out, cond=True)
        for lane in range(self.width):
            set_var(lane)
            fl.block(lp.s1)
            for n in lp.state:
                self.op("local.get", fl.var(n))
                self.op("local.set", copies[(n, lane)])
        for n in lp.lanes:
            shape = _LANE[tf.vars[n]]
            for g in range(self.groups):
                self.op("local.get", copies[(n, 2 * g)])
                self.op(f"{shape}.splat")
                self.op("local.get", copies[(n, 2 * g + 1)])
                self.op(f"{shape}.replace_lane", 1)
                self.op("local.set", self.v[(n, g)])
        self.vector_while()
        for n in lp.lanes:
            if n not in lp.masked:
                continue  # set by S1 and not changed, or dead after the while
            shape = _LANE[tf.vars[n]]
            for lane in range(self.width):
                self.op("local.get", self.v[(n, lane // 2)])
                self.op(f"{shape}.extract_lane", lane % 2)
                self.op("local.set", copies[(n, lane)])
        for lane in range(self.width):
            for n in lp.state:
                self.op("local.get", copies[(n, lane)])
                self.op("local.set", fl.var(n))
            fl.block(lp.s2)
        self.op("local.get", k)
        self.op("i64.const", self.width)
        self.op("i64.add")
        self.op("local.set", k)
        fl.poll()
        fl.br(top)
        fl.close()
        fl.close()

    def vector_while(self) -> None:
        """The `while` over all lanes: PASSES passes per test for a live lane, then one pass
        per test for the last few passes a counter allows (the module docstring says why)."""
        fl, lp = self.fl, self.lp
        for g in range(self.groups):
            self.op("i64.const", -1)
            self.op("i64x2.splat")
            self.op("local.set", self.active[g])
        test: F.Expr | None = lp.loop.test
        self.passes = self.limit = -1
        if lp.counter is not None:
            test = lp.counter.test
            self.passes, self.limit = fl.fn.local("i64"), fl.fn.local("i64")
            self.op("i64.const", lp.counter.start)
            self.op("local.set", self.passes)
            fl.expr(lp.counter.limit)
            fl.conv(lp.counter.limit.ty, "i64")
            self.op("local.set", self.limit)
        # Invariant splats are computed here, before the loop, as the lanes ask for them.
        self.hoist_at = len(fl.fn.code)
        self.splats: dict[object, int] = {}
        out = fl.open("block")
        top = fl.open("loop")
        spent = fl.open("block")
        hot = fl.open("loop")  # no call in here: every v128 value can stay in a register
        if PASSES > 1 or lp.counter is None:
            single = fl.open("block") if lp.counter is not None else None
            if single is not None:
                self.room(PASSES, single)
            for _ in range(PASSES):
                self.one_pass(test)
            if lp.counter is not None:
                self.count(PASSES)
            self.any_active(out)
            fl.spend(hot, PASSES)  # the budget counts passes; a poll when it is spent
            if single is not None:
                fl.br(spent)
                fl.close()
        if lp.counter is not None:
            # Fewer than PASSES passes left: one pass per test, as the scalar loop runs.
            self.room(1, out)
            self.one_pass(test, lambda: self.any_active(out))
            self.count(1)
            fl.spend(hot)
        fl.close()
        fl.close()
        fl.poll_now()
        fl.br(top)
        fl.close()
        fl.close()

    def room(self, n: int, leave: object) -> None:
        """Leave to `leave` unless the counter allows n more passes: passes .. passes + n - 1
        all pass `passes op limit`. In exact arithmetic: passes op limit, and limit - passes
        >= n (or n - 1 for <=), the difference taken unsigned because it may not fit in i64;
        no pass count past the limit ever runs, so an active lane never counts too far."""
        lp = self.lp
        assert lp.counter is not None
        less = lp.counter.op == "<"
        self.op("local.get", self.passes)
        self.op("local.get", self.limit)
        self.op("i64.lt_s" if less else "i64.le_s")
        if n > 1:
            self.op("local.get", self.limit)
            self.op("local.get", self.passes)
            self.op("i64.sub")
            self.op("i64.const", n if less else n - 1)
            self.op("i64.ge_u")
            self.op("i32.and")
        self.op("i32.eqz")
        self.fl.br(leave, cond=True)

    def count(self, n: int) -> None:
        self.op("local.get", self.passes)
        self.op("i64.const", n)
        self.op("i64.add")
        self.op("local.set", self.passes)

    def any_active(self, leave: object) -> None:
        """Leave to `leave` when no lane is active."""
        for g in range(self.groups):
            self.op("local.get", self.active[g])
            if g:
                self.op("v128.or")
        self.op("v128.any_true")
        self.op("i32.eqz")
        self.fl.br(leave, cond=True)

    def one_pass(self, test: F.Expr | None, then: Callable[[], None] | None = None) -> None:
        """One pass in every lane: `test` turns off the lanes it fails (each lane decides
        every pass itself), `then()` if given, then the body, masked for the lanes that are
        off (a repeated subexpression of the test and the body is computed once)."""
        self.cse: dict[str, tuple[int, set[str]]] = {}  # this pass's lane values
        if test is not None:
            for g in range(self.groups):
                self.mask(test, g)
                self.op("local.get", self.active[g])
                self.op("v128.and")
                self.op("local.set", self.active[g])
        if then is not None:
            then()
        for s in self.lp.loop.body:
            if isinstance(s, F.If):  # if test: break -> the lane stops here
                for g in range(self.groups):
                    self.op("local.get", self.active[g])
                    self.mask(s.test, g)
                    self.op("v128.andnot")
                    self.op("local.set", self.active[g])
                continue
            assert isinstance(s, F.Assign)
            t = self.fl.tf.vars[s.target]
            for g in range(self.groups):
                self.assign(s, t, g)
            self.forget(s.target)

    def assign(self, s: F.Assign, t: str, g: int) -> None:
        lp, v = self.lp, s.value
        target = self.v[(s.target, g)]
        if s.target in lp.masked and t == "i64" and _is_increment(s, s.target):
            # k += 1 in the active lanes: the mask is -1 there, 0 elsewhere
            self.op("local.get", target)
            self.op("local.get", self.active[g])
            self.op("i64x2.sub")
            self.op("local.set", target)
            return
        self.value(v, t, g)
        if s.target in lp.masked:
            self.op("local.get", target)
            self.op("local.get", self.active[g])
            self.op("v128.bitselect")
        self.op("local.set", target)  # a dead target needs no mask

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

    def value(self, e: F.Expr, t: str, g: int) -> None:
        """Leaves conv(e.ty, t)(e) in lanes of group g; a repeated subexpression is computed
        once per pass."""
        if isinstance(e, (F.Bin, F.Unary, F.Call)):
            key = f"{g}:{t}:{_key(e)}"
            known = self.cse.get(key)
            if known is not None:
                self.op("local.get", known[0])
                return
            self._value(e, t, g)
            local = self.fl.fn.local("v128")
            self.op("local.tee", local)
            self.cse[key] = (local, set(_names(e)))
            return
        self._value(e, t, g)

    def _value(self, e: F.Expr, t: str, g: int) -> None:
        fl, shape = self.fl, _LANE[t]
        if isinstance(e, F.Name) and (e.id, g) in self.v:
            self.op("local.get", self.v[(e.id, g)])
        elif isinstance(e, (F.Const, F.Name)):
            self.splat(e, t)
        elif isinstance(e, F.Bin):
            if e.op == "**":
                self.value(e.left, t, g)
                tmp = fl.fn.local("v128")
                self.op("local.tee", tmp)
                self.op("local.get", tmp)
                self.op(f"{shape}.mul")
                return
            doubled = _doubles(e)
            if doubled is not None:
                self.value(doubled, t, g)
                tmp = fl.fn.local("v128")
                self.op("local.tee", tmp)
                self.op("local.get", tmp)
                self.op("f64x2.add")
                return
            self.value(e.left, t, g)
            self.value(e.right, t, g)
            self.op(f"{shape}.{_BIN.get(e.op, 'div')}")
        elif isinstance(e, F.Unary):
            self.value(e.operand, t, g)
            self.op(f"{shape}.neg")
        elif isinstance(e, F.Call):
            self.value(e.args[0], t, g)
            if e.func in ("abs", "fabs", "sqrt"):
                self.op("f64x2.sqrt" if e.func == "sqrt" else "f64x2.abs")
                return
            for a in e.args[1:]:  # Python's min(a, b) = b if b < a else a: f64x2.pmin
                self.value(a, t, g)
                self.op("f64x2.pmin" if e.func == "min" else "f64x2.pmax")

    def mask(self, e: F.Expr, g: int) -> None:
        if isinstance(e, F.Compare):
            t = e.optys[0]
            self.value(e.operands[0], t, g)
            self.value(e.operands[1], t, g)
            self.op(f"{_LANE[t]}.{_CMP[t][e.ops[0]]}")
        elif isinstance(e, F.BoolOp):
            self.mask(e.values[0], g)
            for v in e.values[1:]:
                self.mask(v, g)
                self.op("v128.and" if e.op == "and" else "v128.or")
        else:
            assert isinstance(e, F.Unary)
            self.mask(e.operand, g)
            self.op("v128.not")
