"""SIMD for prange reductions over contiguous 1-D data (v128: f64x2 / i64x2 lanes).

A prange body qualifies when it is straight-line: every statement is a `+=` / `-=` update of
a float64 or int64 reduction, or the assignment of a body-private scalar of that type; every
value is built from `a[i + c]` of 1-D arrays (the loop's own variable, constant offsets),
loop-invariant scalars, constants, `+ - *`, unary minus, `/` by a nonzero constant, `** 2`,
and for floats abs/fabs/sqrt/min/max, with no conversion between ints and floats in lanes
(float32 data widens to float64 as the scalar code does). Nothing in it can raise, so lanes
may run ahead of the sequential order.

Inside each fixed block of the reduction (lower.BLOCK iterations, never from the thread
count) the first multiple of LANES iterations run in LANES lanes: ACC accumulators of two
lanes, lane l taking the iterations l, l + LANES, ... of the block, combined in a FIXED
tree (neighbouring accumulators pairwise, level by level, then lane 0 + lane 1); the rest
of the block runs in the scalar code, in order, after that. Eight accumulators hide the
latency of the adds (four left the loop latency-bound at twice jr.dot's time). A block's partial therefore depends only on the
block, so the result is bit-identical for any thread count and in the single-thread build.
Float sums differ from .py_func's one-by-one order in the last bits (the reassociation
numba's fastmath allows); int sums wrap and are exact. A block whose indices are not all in
range (no loop proves them) runs entirely in the scalar code, which raises IndexError or
wraps negative indices as Python does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import frontend as F
from .typeinfer import ArrayType

ACC = 8  # accumulators of two lanes each
LANES = 2 * ACC  # iterations per step of the vector loop
_ITEMSIZE = {"float64": 8, "float32": 4, "int64": 8, "int32": 4, "uint32": 4}
# (element type of the lanes, array dtype) -> (load instruction, bytes it reads, widen op)
_VLOAD = {
    ("f64", "float64"): ("v128.load", None),
    ("f64", "float32"): ("v128.load64_zero", "f64x2.promote_low_f32x4"),
    ("i64", "int64"): ("v128.load", None),
    ("i64", "int32"): ("v128.load32x2_s", None),
    ("i64", "uint32"): ("v128.load32x2_u", None),
}
_BIN = {"+": "add", "-": "sub", "*": "mul"}


@dataclass
class VecPlan:
    t: str  # lane element type: f64 or i64
    stmts: list[F.Assign]
    reductions: dict[str, str]  # name -> "add" | "sub" (the lane update)
    private: set[str]
    loads: dict[str, list[int]] = field(default_factory=dict)  # array -> constant offsets


def plan(tf: Any, loop: F.For) -> VecPlan | None:
    """The vector plan of a prange loop with reductions, or None when it does not qualify."""
    p = loop.plan
    if p is None or not p.reductions or not loop.body:
        return None
    if _int(loop.step) != 1 or _int(loop.start) is None:
        return None
    types = {tf.vars[r.name] for r in p.reductions}
    if len(types) != 1 or types & {"f64", "i64"} != types or any(r.op != "+" for r in p.reductions):
        return None
    t = types.pop()
    vp = VecPlan(t, [], {}, set())
    names = {r.name for r in p.reductions}
    for s in loop.body:
        if not isinstance(s, F.Assign) or tf.vars.get(s.target) != t:
            return None
        v = s.value
        if s.target in names:
            if not (
                isinstance(v, F.Bin)
                and v.op in ("+", "-")
                and isinstance(v.left, F.Name)
                and v.left.id == s.target
                and v.opty == t
                and v.ty == t
            ):
                return None
            if not _ok(tf, loop, vp, v.right, t):
                return None
            vp.reductions[s.target] = _BIN[v.op]
        elif s.target in p.private and s.target != loop.var:
            if not _ok(tf, loop, vp, v, t):
                return None
            vp.private.add(s.target)
        else:
            return None
        vp.stmts.append(s)
    return vp


def _int(e: F.Expr) -> int | None:
    return e.value if isinstance(e, F.Const) and type(e.value) is int else None


def _offset(e: F.Expr, var: str) -> int | None:
    if isinstance(e, F.Name) and e.id == var:
        return 0
    if isinstance(e, F.Bin) and e.op in ("+", "-") and isinstance(e.left, F.Name):
        k = _int(e.right)
        if e.left.id == var and k is not None and e.ty == "i64":
            return k if e.op == "+" else -k
    return None


def _ok(tf: Any, loop: F.For, vp: VecPlan, e: F.Expr, t: str) -> bool:
    """Whether conv(e.ty, t)(e) can be computed in lanes of t, exactly as the scalar code."""
    if isinstance(e, F.Const):
        exact = ("f64", "i64", "i32") if t == "f64" else ("i64", "i32")
        return type(e.value) in (int, float) and e.ty in exact and (t == "f64" or e.ty != "f64")
    if isinstance(e, F.Name):
        if e.id == loop.var:
            return False
        if e.id in vp.private:
            return tf.vars.get(e.id) == t
        vt = tf.vars.get(e.id)
        if e.id in loop.plan.private or isinstance(vt, ArrayType) or e.id in vp.reductions:
            return False
        widens = ("f32", "i64", "i32", "bool") if t == "f64" else ("i32", "bool")
        return e.ty == t or e.ty in widens
    if isinstance(e, F.Load):
        at = tf.vars.get(e.array)
        if not isinstance(at, ArrayType) or at.ndim != 1 or (t, at.dtype) not in _VLOAD:
            return False
        c = _offset(e.index[0], loop.var)
        if c is None:
            return False
        vp.loads.setdefault(e.array, []).append(c)
        return True
    if isinstance(e, F.Bin):
        if e.opty != t or e.ty != t:
            return False
        if e.op == "**":
            return t == "f64" and _int(e.right) == 2 and _ok(tf, loop, vp, e.left, t)
        if e.op == "/":
            divisor = e.right.value if isinstance(e.right, F.Const) else 0
            if t != "f64" or isinstance(divisor, bool) or divisor == 0:
                return False
        elif e.op not in _BIN:
            return False
        return _ok(tf, loop, vp, e.left, t) and _ok(tf, loop, vp, e.right, t)
    if isinstance(e, F.Unary):
        return e.op == "-" and e.ty == t and _ok(tf, loop, vp, e.operand, t)
    if isinstance(e, F.Call):
        if t != "f64" or e.ty != "f64":
            return False
        if e.func in ("abs", "fabs", "sqrt", "float") and len(e.args) == 1:
            return _ok(tf, loop, vp, e.args[0], t)
        if e.func in ("min", "max") and len(e.args) >= 2:
            return all(_ok(tf, loop, vp, a, t) for a in e.args)
    return False


class VecEmitter:
    """Emits the vector part of one reduction block into the body function being lowered."""

    def __init__(self, fl: Any, loop: F.For, vp: VecPlan) -> None:
        self.fl = fl
        self.loop = loop
        self.vp = vp
        self.t = vp.t
        self.shape = "f64x2" if vp.t == "f64" else "i64x2"

    def op(self, name: str, *imm: object) -> None:
        self.fl.op(name, *imm)

    def block(self, k: int, kend: int) -> None:
        """Run lanes over [k, kvend), leave k = kvend and the reductions set from the lanes."""
        previous = self.fl.facts.enter(self.loop)
        self._block(k, kend)
        self.fl.facts.leave(self.loop, previous)

    def _block(self, k: int, kend: int) -> None:
        fl, vp = self.fl, self.vp
        start = _int(self.loop.start)
        assert start is not None
        kvend = fl.fn.local("i64")
        fl.op("local.get", kend)
        fl.op("local.get", k)
        fl.op("i64.sub")
        fl.op("i64.const", -LANES)
        fl.op("i64.and")
        fl.op("local.get", k)
        fl.op("i64.add")
        fl.op("local.set", kvend)
        # Each array read needs start + k + c >= 0 and start + kvend + c <= len for the whole
        # lane range; one not proved by the loop is tested here, and a block that fails runs
        # in the scalar code (kvend = k).
        tests = 0
        for name, offsets in vp.loads.items():
            length = fl.array(name).shape[0]
            for c in sorted({min(offsets), max(offsets)}):
                if fl.facts.in_range(_index(self.loop.var, c), name, 0):
                    continue
                fl.op("local.get", k)
                fl.op("i64.const", start + c)
                fl.op("i64.add")
                fl.op("i64.const", 0)
                fl.op("i64.ge_s")
                fl.op("local.get", kvend)
                fl.op("i64.const", start + c)
                fl.op("i64.add")
                fl.op("local.get", length)
                fl.op("i64.le_s")
                fl.op("i32.and")
                if tests:
                    fl.op("i32.and")
                tests += 1
        if tests:
            cond = fl.fn.local("i32")
            fl.op("local.set", cond)
            fl.op("local.get", kvend)
            fl.op("local.get", k)
            fl.op("local.get", cond)
            fl.op("select")
            fl.op("local.set", kvend)
        # Base address of each array at element start + k + min offset (a real address of
        # the array whenever the lanes run), so every lane load has a non-negative offset.
        bases: dict[str, tuple[int, int, int]] = {}
        for name, offsets in vp.loads.items():
            arr = fl.array(name)
            size = _ITEMSIZE[arr.t.dtype]
            low = min(offsets)
            base = fl.fn.local("i32")
            fl.op("local.get", k)
            fl.op("i64.const", start + low)
            fl.op("i64.add")
            fl.op("i32.wrap_i64")
            fl.op("i32.const", size)
            fl.op("i32.mul")
            fl.op("local.get", arr.ptr)
            fl.op("i32.add")
            fl.op("local.set", base)
            bases[name] = (base, size, low)
        self.bases = bases
        self.invariants: dict[object, int] = {}
        accs: dict[str, list[int]] = {}
        for name in vp.reductions:
            accs[name] = []
            for _ in range(ACC):
                acc = fl.fn.local("v128")
                self.splat_const(0)
                fl.op("local.set", acc)
                accs[name].append(acc)
        private = {(name, u): fl.fn.local("v128") for name in vp.private for u in range(ACC)}
        self.private = private
        loop_at = len(fl.fn.code)
        # if k < kvend: loop { step; k += LANES; br_if k < kvend } (one branch per step)
        fl.op("local.get", k)
        fl.op("local.get", kvend)
        fl.op("i64.lt_s")
        fl.open("if")
        top = fl.open("loop")
        prologue: list[tuple[object, ...]] = []
        for u in range(ACC):
            self.step_loads: dict[tuple[str, int], int] = {}
            for s in vp.stmts:
                if s.target in vp.reductions:
                    assert isinstance(s.value, F.Bin)
                    acc = accs[s.target][u]
                    fl.op("local.get", acc)
                    self.vexpr(s.value.right, u, prologue)
                    fl.op(f"{self.shape}.{vp.reductions[s.target]}")
                    fl.op("local.set", acc)
                else:
                    self.vexpr(s.value, u, prologue)
                    fl.op("local.set", private[(s.target, u)])
        for base, size, _ in bases.values():
            fl.op("local.get", base)
            fl.op("i32.const", LANES * size)
            fl.op("i32.add")
            fl.op("local.set", base)
        fl.op("local.get", k)
        fl.op("i64.const", LANES)
        fl.op("i64.add")
        fl.op("local.tee", k)
        fl.op("local.get", kvend)
        fl.op("i64.lt_s")
        fl.br(top, cond=True)
        fl.close()
        fl.close()
        # Loop-invariant splats sit before the loop (emitted as found, placed here).
        fl.fn.code[loop_at:loop_at] = prologue
        fl.poll()  # one poll-budget unit per block's lanes (at most BLOCK / LANES steps)
        for name, lanes in accs.items():
            # the fixed lane tree: pairs of neighbours, level by level
            level = list(lanes)
            while len(level) > 1:
                nxt = []
                for a, b in zip(level[::2], level[1::2], strict=True):
                    fl.op("local.get", a)
                    fl.op("local.get", b)
                    fl.op(self.shape + ".add")
                    m = fl.fn.local("v128")
                    fl.op("local.set", m)
                    nxt.append(m)
                level = nxt
            fl.op("local.get", level[0])
            v = fl.fn.local("v128")
            fl.op("local.tee", v)
            fl.op(f"{self.shape}.extract_lane", 0)
            fl.op("local.get", v)
            fl.op(f"{self.shape}.extract_lane", 1)
            fl.op(f"{self.t}.add")
            fl.op("local.set", fl.var(name))

    def splat_const(self, value: float) -> None:
        if self.t == "f64":
            self.op("f64.const", float(value))
        else:
            self.op("i64.const", int(value))
        self.op(f"{self.shape}.splat")

    def invariant(self, key: object, prologue: list[tuple[object, ...]], emit: Any) -> None:
        """local.get of a v128 splat computed once before the loop."""
        local = self.invariants.get(key)
        if local is None:
            local = self.invariants[key] = self.fl.fn.local("v128")
            code = self.fl.fn.code
            mark = len(code)
            emit()
            self.op(f"{self.shape}.splat")
            self.op("local.set", local)
            prologue.extend(code[mark:])
            del code[mark:]
        self.op("local.get", local)

    def vexpr(self, e: F.Expr, u: int, prologue: list[tuple[object, ...]]) -> None:
        """Leaves conv(e.ty, t)(e) for lanes 2u, 2u + 1 of this step."""
        fl, t, shape = self.fl, self.t, self.shape
        if isinstance(e, F.Const):
            value = e.value

            def const() -> None:
                if t == "f64":
                    self.op("f64.const", float(value))
                else:
                    self.op("i64.const", int(value))

            self.invariant(("const", t, float(value)), prologue, const)
        elif isinstance(e, F.Name):
            if e.id in self.vp.private:
                self.op("local.get", self.private[(e.id, u)])
                return
            name, ty = e.id, e.ty

            def scalar() -> None:
                fl.op("local.get", fl.var(name))
                fl.conv(ty, t)

            self.invariant(("name", name), prologue, scalar)
        elif isinstance(e, F.Load):
            c = _offset(e.index[0], self.loop.var)
            assert c is not None
            key = (e.array, c)
            cached = self.step_loads.get(key)
            if cached is not None:
                self.op("local.get", cached)
                return
            base, size, low = self.bases[e.array]
            dtype = fl.array(e.array).t.dtype
            load, widen = _VLOAD[(t, dtype)]
            fl.op("local.get", base)
            fl.op(load, 0, (2 * u + c - low) * size)
            if widen:
                fl.op(widen)
            local = fl.fn.local("v128")
            fl.op("local.tee", local)
            self.step_loads[key] = local
        elif isinstance(e, F.Bin):
            if e.op == "**":
                self.vexpr(e.left, u, prologue)
                local = fl.fn.local("v128")
                fl.op("local.tee", local)
                fl.op("local.get", local)
                fl.op(f"{shape}.mul")
                return
            self.vexpr(e.left, u, prologue)
            self.vexpr(e.right, u, prologue)
            fl.op(f"{shape}.{_BIN.get(e.op, 'div')}")
        elif isinstance(e, F.Unary):
            self.vexpr(e.operand, u, prologue)
            fl.op(f"{shape}.neg")
        elif isinstance(e, F.Call):
            if e.func == "float":
                self.vexpr(e.args[0], u, prologue)  # the widening is the lanes' own
                return
            if e.func in ("abs", "fabs", "sqrt"):
                self.vexpr(e.args[0], u, prologue)
                fl.op("f64x2.sqrt" if e.func == "sqrt" else "f64x2.abs")
                return
            # Python's min(a, b) is `b if b < a else a`: exactly f64x2.pmin(a, b).
            self.vexpr(e.args[0], u, prologue)
            for a in e.args[1:]:
                self.vexpr(a, u, prologue)
                fl.op("f64x2.pmin" if e.func == "min" else "f64x2.pmax")


def _index(var: str, c: int) -> F.Expr:
    """The index expression `var + c` as the bounds facts read it."""
    name = F.Name(0, var)
    if c == 0:
        return name
    right = F.Const(0, abs(c))
    return F.Bin(0, "+" if c > 0 else "-", name, right)
