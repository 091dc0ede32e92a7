"""Typed IR -> one wasm module per signature (the jit ABI of docs/jit.md).

Functions: `$main(ctx) -> status` (sequential parts, on the caller), one `$body_k(ctx, lo,
hi)` per prange loop (run by pool threads through jr_jit_for), one function per called
jitted function and signature (`callee(ctx, args...) -> value`, sequential), and small
helpers (Python's floor division and modulo, integer power, range trip counts, the error
recorder). Errors are recorded in the ctx frame (frame.py) and every function then leaves
at once; callers check err_code after every call. Every loop polls jr_jit_poll every 1024
iterations. Reductions run in fixed blocks of BLOCK iterations and combine pairwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..abi import (
    E_CANCELED,
    E_INDEX,
    E_NOMEM,
    E_VALUE,
    E_ZERODIV,
    MEMORY_MAX_PAGES,
    MEMORY_MIN_PAGES,
)
from . import frame as FR
from . import frontend as F
from . import lanes, parallel, vector
from .bounds import Facts
from .frame import Frame
from .typeinfer import ELEMENT, ArrayType, TypedFunc
from .wasm import Function, Module

BLOCK = 4096  # reduction block: fixed, never from the thread count
POLL_EVERY = 1024  # poll once per 1024 iterations of the function's loops, all counted together
MATH_IMPORTS = {
    "exp": 1,
    "log": 1,
    "log2": 1,
    "log10": 1,
    "sin": 1,
    "cos": 1,
    "tan": 1,
    "atan": 1,
    "atan2": 2,
    "sinh": 1,
    "cosh": 1,
    "tanh": 1,
    "pow": 2,
    "hypot": 2,
    "fmod": 2,
}
VT = {"i64": "i64", "i32": "i32", "f64": "f64", "f32": "f32", "bool": "i32"}
_LOAD = {
    "float64": ("f64.load", 3),
    "float32": ("f32.load", 2),
    "int64": ("i64.load", 3),
    "int32": ("i32.load", 2),
    "uint32": ("i64.load32_u", 2),
}
_STORE = {
    "float64": ("f64.store", 3, "f64"),
    "float32": ("f32.store", 2, "f32"),
    "int64": ("i64.store", 3, "i64"),
    "int32": ("i32.store", 2, "i32"),
    "uint32": ("i64.store32", 2, "i64"),
}
_ITEMSIZE = {"float64": 8, "float32": 4, "int64": 8, "int32": 4, "uint32": 4}
_CONV: dict[tuple[str, str], tuple[str, ...]] = {
    ("i64", "i32"): ("i32.wrap_i64",),
    ("i64", "f64"): ("f64.convert_i64_s",),
    ("i64", "f32"): ("f32.convert_i64_s",),
    ("i64", "bool"): ("i64.eqz", "i32.eqz"),
    ("i32", "i64"): ("i64.extend_i32_s",),
    ("i32", "f64"): ("f64.convert_i32_s",),
    ("i32", "f32"): ("f32.convert_i32_s",),
    ("i32", "bool"): ("i32.eqz", "i32.eqz"),
    ("f64", "i64"): ("i64.trunc_sat_f64_s",),
    ("f64", "i32"): ("i32.trunc_sat_f64_s",),
    ("f64", "f32"): ("f32.demote_f64",),
    ("f32", "i64"): ("i64.trunc_sat_f32_s",),
    ("f32", "i32"): ("i32.trunc_sat_f32_s",),
    ("f32", "f64"): ("f64.promote_f32",),
    ("bool", "i64"): ("i64.extend_i32_u",),
    ("bool", "i32"): (),
    ("bool", "f64"): ("f64.convert_i32_u",),
    ("bool", "f32"): ("f32.convert_i32_u",),
}
_CMP_INT = {"<": "lt_s", "<=": "le_s", ">": "gt_s", ">=": "ge_s", "==": "eq", "!=": "ne"}
_CMP_FLOAT = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}


@dataclass
class Site:
    """Where a runtime check sits, for the message the runtime builds."""

    kind: str  # index, zerodiv, value, cancel, nomem
    function: str
    filename: str
    line: int
    array: str = ""
    axis: int = 0
    detail: str = ""


@dataclass
class Lowered:
    module: Module
    frame: Frame
    sites: list[Site]
    nfuncs: int  # table slots the module fills: [main, body_0, ...]
    ret: Any
    wasm: bytes = b""
    imports: list[str] = field(default_factory=list)


@dataclass
class _Array:
    ptr: int
    shape: list[int]
    t: ArrayType


def lower(entry: TypedFunc, shared: bool, boundscheck: bool) -> Lowered:
    prog = _Program(entry, shared, boundscheck)
    return prog.build()


class _Program:
    def __init__(self, entry: TypedFunc, shared: bool, boundscheck: bool) -> None:
        self.entry = entry
        self.shared = shared
        self.boundscheck = boundscheck
        self.mod = Module()
        self.mod.import_memory(shared, MEMORY_MIN_PAGES, MEMORY_MAX_PAGES)
        self.mod.import_table()
        self.table_base = self.mod.import_global_i32("env", "table_base")
        self.frame = Frame.for_params(entry.ir.params, entry.argtypes)
        self.sites: list[Site] = [Site("cancel", entry.name, entry.ir.filename, 0)]
        self.elem = ["$main"]
        self.callees: dict[int, str] = {}
        self.helpers: dict[str, str] = {}

    def build(self) -> Lowered:
        parallel.plan(self.entry, allow_parallel=True)
        main = Function("$main", ["i32"], ["i32"])
        self.mod.add_function(main)
        _FuncLower(self, self.entry, "main", main).lower_main()
        self.mod.elem_global = self.table_base
        self.mod.elem_funcs = list(self.elem)
        self.mod.exports.append(("main", "$main"))
        out = Lowered(self.mod, self.frame, self.sites, len(self.elem), self.entry.ret)
        out.wasm = self.mod.encode()
        out.imports = [f"{i.module}.{i.name}" for i in self.mod.imports]
        return out

    def site(self, kind: str, tf: TypedFunc, line: int, **info: Any) -> int:
        self.sites.append(Site(kind, tf.name, tf.ir.filename, line, **info))
        return len(self.sites) - 1

    def pool(self, name: str) -> str:
        sigs: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
            "jr_jit_for": (("i32", "i32", "i64", "i64"), ("i32",)),
            "jr_jit_poll": ((), ("i32",)),
            "jr_alloc": (("i32", "i32"), ("i32",)),
            "jr_free": (("i32",), ()),
        }
        if name in sigs:
            params, results = sigs[name]
        else:
            params, results = ("f64",) * MATH_IMPORTS[name], ("f64",)
            name = f"jr_math_{name}"
        return self.mod.func_import("pool", name, params, results)

    def callee(self, tf: TypedFunc) -> str:
        key = self.callees.get(id(tf))
        if key is None:
            key = f"${tf.name}_{len(self.callees)}"
            self.callees[id(tf)] = key
            parallel.plan(tf, allow_parallel=False)
            params = ["i32"]
            for t in tf.argtypes:
                params += ["i32"] + ["i64"] * t.ndim if isinstance(t, ArrayType) else [VT[t]]
            fn = Function(key, params, [VT[tf.ret]] if tf.ret else [])
            self.mod.add_function(fn)
            _FuncLower(self, tf, "callee", fn).lower_callee()
        return key

    def body(self, tf: TypedFunc, loop: F.For, spill: dict[str, int]) -> int:
        key = f"$body_{len(self.elem) - 1}"
        fn = Function(key, ["i32", "i64", "i64"], [])
        self.elem.append(key)
        self.mod.add_function(fn)
        _FuncLower(self, tf, "body", fn).lower_body(loop, spill)
        return len(self.elem) - 1

    # -- helpers -----------------------------------------------------------------------
    def helper(self, name: str) -> str:
        key = self.helpers.get(name)
        if key is None:
            key = self.helpers[name] = f"${name}"
            getattr(self, f"_h_{name}")(key)
        return key

    def _h_rec(self, key: str) -> None:
        # rec(ctx, code, site, a, b): the first error wins (compare-exchange when shared).
        f = Function(key, ["i32", "i32", "i32", "i64", "i64"], [])
        if self.shared:
            head: tuple[tuple[object, ...], ...] = (
                ("local.get", 0),
                ("i32.const", 0),
                ("local.get", 1),
                ("i32.atomic.rmw.cmpxchg", 2, FR.ERR_CODE),
                ("i32.eqz",),
                ("if", None),
            )
        else:
            head = (
                ("local.get", 0),
                ("i32.load", 2, FR.ERR_CODE),
                ("i32.eqz",),
                ("if", None),
                ("local.get", 0),
                ("local.get", 1),
                ("i32.store", 2, FR.ERR_CODE),
            )
        for ins in (
            *head,
            ("local.get", 0),
            ("local.get", 2),
            ("i32.store", 2, FR.ERR_SITE),
            ("local.get", 0),
            ("local.get", 3),
            ("i64.store", 3, FR.ERR_A),
            ("local.get", 0),
            ("local.get", 4),
            ("i64.store", 3, FR.ERR_B),
            ("end",),
        ):
            f.op(*ins)  # type: ignore[arg-type]
        self.mod.add_function(f)

    def _h_floordiv_i64(self, key: str) -> None:
        # b != 0 checked by the caller; b == -1 negates (wrapping, like numpy, no trap).
        f = Function(key, ["i64", "i64"], ["i64"])
        q = f.local("i64")
        for ins in (
            ("local.get", 1),
            ("i64.const", -1),
            ("i64.eq",),
            ("if", "i64"),
            ("i64.const", 0),
            ("local.get", 0),
            ("i64.sub",),
            ("else",),
            ("local.get", 0),
            ("local.get", 1),
            ("i64.div_s",),
            ("local.tee", q),
            ("local.get", 0),
            ("local.get", q),
            ("local.get", 1),
            ("i64.mul",),
            ("i64.sub",),
            ("i64.const", 0),
            ("i64.ne",),
            ("local.get", 0),
            ("local.get", 1),
            ("i64.xor",),
            ("i64.const", 0),
            ("i64.lt_s",),
            ("i32.and",),
            ("i64.extend_i32_u",),
            ("i64.sub",),
            ("end",),
        ):
            f.op(*ins)  # type: ignore[arg-type]
        self.mod.add_function(f)

    def _h_mod_i64(self, key: str) -> None:
        f = Function(key, ["i64", "i64"], ["i64"])
        r = f.local("i64")
        for ins in (
            ("local.get", 0),
            ("local.get", 1),
            ("i64.rem_s",),
            ("local.tee", r),
            ("local.get", 1),
            ("i64.const", 0),
            ("local.get", r),
            ("i64.const", 0),
            ("i64.ne",),
            ("local.get", r),
            ("local.get", 1),
            ("i64.xor",),
            ("i64.const", 0),
            ("i64.lt_s",),
            ("i32.and",),
            ("select",),
            ("i64.add",),
        ):
            f.op(*ins)  # type: ignore[arg-type]
        self.mod.add_function(f)

    def _h_mod_f64(self, key: str) -> None:
        # CPython's float_rem: the sign of the divisor, -0.0/0.0 kept like Python.
        fmod = self.pool("fmod")
        f = Function(key, ["f64", "f64"], ["f64"])
        m = f.local("f64")
        for ins in (
            ("local.get", 0),
            ("local.get", 1),
            ("call", fmod),
            ("local.tee", m),
            ("f64.const", 0.0),
            ("f64.ne",),
            ("if", "f64"),
            ("local.get", m),
            ("local.get", 1),
            ("f64.add",),
            ("local.get", m),
            ("local.get", 1),
            ("f64.const", 0.0),
            ("f64.lt",),
            ("local.get", m),
            ("f64.const", 0.0),
            ("f64.lt",),
            ("i32.ne",),
            ("select",),
            ("else",),
            ("f64.const", 0.0),
            ("local.get", 1),
            ("f64.copysign",),
            ("end",),
        ):
            f.op(*ins)  # type: ignore[arg-type]
        self.mod.add_function(f)

    def _h_floordiv_f64(self, key: str) -> None:
        # CPython's float_floor_div (via _float_div_mod), step for step.
        fmod = self.pool("fmod")
        f = Function(key, ["f64", "f64"], ["f64"])
        m, d, fl = f.local("f64"), f.local("f64"), f.local("f64")
        for ins in (
            ("local.get", 0),
            ("local.get", 1),
            ("call", fmod),
            ("local.set", m),
            ("local.get", 0),
            ("local.get", m),
            ("f64.sub",),
            ("local.get", 1),
            ("f64.div",),
            ("local.set", d),
            ("local.get", m),
            ("f64.const", 0.0),
            ("f64.ne",),
            ("local.get", 1),
            ("f64.const", 0.0),
            ("f64.lt",),
            ("local.get", m),
            ("f64.const", 0.0),
            ("f64.lt",),
            ("i32.ne",),
            ("i32.and",),
            ("if", None),
            ("local.get", d),
            ("f64.const", 1.0),
            ("f64.sub",),
            ("local.set", d),
            ("end",),
            ("local.get", d),
            ("f64.const", 0.0),
            ("f64.ne",),
            ("if", "f64"),
            ("local.get", d),
            ("f64.floor",),
            ("local.set", fl),
            ("local.get", fl),
            ("f64.const", 1.0),
            ("f64.add",),
            ("local.get", fl),
            ("local.get", d),
            ("local.get", fl),
            ("f64.sub",),
            ("f64.const", 0.5),
            ("f64.gt",),
            ("select",),
            ("else",),
            ("f64.const", 0.0),
            ("local.get", 0),
            ("local.get", 1),
            ("f64.div",),
            ("f64.copysign",),
            ("end",),
        ):
            f.op(*ins)  # type: ignore[arg-type]
        self.mod.add_function(f)

    def _h_ipow(self, key: str) -> None:
        # exponent >= 0 checked by the caller; wraps like numpy int64.
        f = Function(key, ["i64", "i64"], ["i64"])
        r = f.local("i64")
        for ins in (
            ("i64.const", 1),
            ("local.set", r),
            ("block", None),
            ("loop", None),
            ("local.get", 1),
            ("i64.eqz",),
            ("br_if", 1),
            ("local.get", 1),
            ("i64.const", 1),
            ("i64.and",),
            ("i32.wrap_i64",),
            ("if", None),
            ("local.get", r),
            ("local.get", 0),
            ("i64.mul",),
            ("local.set", r),
            ("end",),
            ("local.get", 0),
            ("local.get", 0),
            ("i64.mul",),
            ("local.set", 0),
            ("local.get", 1),
            ("i64.const", 1),
            ("i64.shr_u",),
            ("local.set", 1),
            ("br", 0),
            ("end",),
            ("end",),
            ("local.get", r),
        ):
            f.op(*ins)  # type: ignore[arg-type]
        self.mod.add_function(f)

    def _h_trip(self, key: str) -> None:
        # len(range(start, stop, step)), step != 0 checked by the caller.
        f = Function(key, ["i64", "i64", "i64"], ["i64"])
        for ins in (
            ("local.get", 2),
            ("i64.const", 0),
            ("i64.gt_s",),
            ("if", "i64"),
            ("local.get", 1),
            ("local.get", 0),
            ("i64.le_s",),
            ("if", "i64"),
            ("i64.const", 0),
            ("else",),
            ("local.get", 1),
            ("local.get", 0),
            ("i64.sub",),
            ("i64.const", 1),
            ("i64.sub",),
            ("local.get", 2),
            ("i64.div_u",),
            ("i64.const", 1),
            ("i64.add",),
            ("end",),
            ("else",),
            ("local.get", 0),
            ("local.get", 1),
            ("i64.le_s",),
            ("if", "i64"),
            ("i64.const", 0),
            ("else",),
            ("local.get", 0),
            ("local.get", 1),
            ("i64.sub",),
            ("i64.const", 1),
            ("i64.sub",),
            ("i64.const", 0),
            ("local.get", 2),
            ("i64.sub",),
            ("i64.div_u",),
            ("i64.const", 1),
            ("i64.add",),
            ("end",),
            ("end",),
        ):
            f.op(*ins)  # type: ignore[arg-type]
        self.mod.add_function(f)


class _FuncLower:
    def __init__(self, prog: _Program, tf: TypedFunc, kind: str, fn: Function) -> None:
        self.prog = prog
        self.tf = tf
        self.kind = kind  # main, body, callee
        self.fn = fn
        self.vars: dict[str, Any] = {}
        self.labels: list[object] = []
        self.loops: list[tuple[object, object]] = []
        self.pc: int | None = None  # iterations left before the next poll (all loops share it)
        self.reuse_addr: int | None = None
        self.facts = Facts(tf)

    # -- plumbing ----------------------------------------------------------------------
    def op(self, name: str, *imm: object) -> None:
        self.fn.code.append((name, *imm))

    def tmp(self, t: str) -> int:
        return self.fn.local(VT[t])

    def var(self, name: str) -> int:
        local = self.vars.get(name)
        if local is None:
            local = self.vars[name] = self.tmp(self.tf.vars[name])
        return local  # type: ignore[no-any-return]

    def array(self, name: str) -> _Array:
        return self.vars[name]  # type: ignore[no-any-return]

    def open(self, kind: str, bt: str | None = None) -> object:
        label = object()
        self.op(kind, bt)
        self.labels.append(label)
        return label

    def close(self) -> None:
        self.op("end")
        self.labels.pop()

    def br(self, label: object, cond: bool = False) -> None:
        depth = len(self.labels) - 1 - self.labels.index(label)
        self.op("br_if" if cond else "br", depth)

    def const(self, t: str, value: float) -> None:
        if t in ("i64",):
            self.op("i64.const", int(value))
        elif t in ("i32", "bool"):
            self.op("i32.const", int(value))
        else:
            self.op(f"{t}.const", float(value))

    def conv(self, src: str, dst: str) -> None:
        if src == dst:
            return
        if dst == "bool" and src in ("f64", "f32"):
            self.op(f"{src}.const", 0.0)
            self.op(f"{src}.ne")
            return
        for name in _CONV[(src, dst)]:
            self.op(name)

    def ctx_load(self, t: str, offset: int) -> None:
        self.op("local.get", 0)
        align = 2 if VT[t] in ("i32", "f32") else 3
        self.op(f"{VT[t]}.load", align, offset)

    def exit(self) -> None:
        if self.kind == "main":
            self.ctx_load("i32", FR.ERR_CODE)
        elif self.kind == "callee" and self.tf.ret:
            self.const(self.tf.ret, 0)
        self.op("return")

    def fail(self, code: int, site: int, a: int | None = None, b: int | None = None) -> None:
        self.op("local.get", 0)
        self.op("i32.const", code)
        self.op("i32.const", site)
        for local in (a, b):
            if local is None:
                self.op("i64.const", 0)
            else:
                self.op("local.get", local)
        self.op("call", self.prog.helper("rec"))
        self.exit()

    def check_err(self) -> None:
        self.ctx_load("i32", FR.ERR_CODE)
        self.open("if")
        self.exit()
        self.close()

    def budget(self) -> int:
        if self.pc is None:
            self.pc = self.fn.local("i32")
        return self.pc

    def finish(self) -> None:
        """Start the poll budget full (a function that polls sets it first thing)."""
        if self.pc is not None:
            self.fn.code[0:0] = [("i32.const", POLL_EVERY), ("local.set", self.pc)]

    def spend(self, hot: object, passes: int = 1) -> None:
        """`passes` passes of the call-free loop `hot`: a decrement, and back to `hot` while
        budget is left (the caller polls after it: a call inside a loop makes Cranelift keep
        the loop's values on the stack).

        The budget may enter at 0 (a counted() chunk spends it to the last unit before its
        body runs), so "spent" is <= 0, never == 0: from 0 a decrement would count down
        through 2**32 passes before the next poll."""
        pc = self.budget()
        self.op("local.get", pc)
        self.op("i32.const", passes)
        self.op("i32.sub")
        self.op("local.tee", pc)
        self.op("i32.const", 0)
        self.op("i32.gt_s")
        self.br(hot, cond=True)

    def poll(self) -> None:
        """One iteration of a loop that polls per iteration: a decrement and a branch (a poll
        once the budget is <= 0, as in spend())."""
        pc = self.budget()
        self.op("local.get", pc)
        self.op("i32.const", 1)
        self.op("i32.sub")
        self.op("local.tee", pc)
        self.op("i32.const", 0)
        self.op("i32.le_s")
        self.open("if")
        self.poll_now()
        self.close()

    def poll_now(self) -> None:
        """Refill the budget and ask the pool whether the call was cancelled."""
        self.op("i32.const", POLL_EVERY)
        self.op("local.set", self.budget())
        self.op("call", self.prog.pool("jr_jit_poll"))
        self.open("if")
        self.fail(E_CANCELED, 0)
        self.close()
        if self.kind != "main":
            self.check_err()  # another thread failed: stop this chunk early

    def counted(self, k: int, end: int, set_var: Any, body: Any) -> None:
        """for k in [k, end) by 1: set_var(); body(), in chunks of the poll budget.

        The inner loop tests only `k < chunk_end` (no per-iteration poll arithmetic); the
        budget is charged per chunk and a poll runs when it is spent, so a loop polls every
        1024 iterations counted with its nested loops, as a per-iteration counter would.
        """
        pc = self.budget()
        chunk, cend = self.fn.local("i64"), self.fn.local("i64")
        out = self.open("block")
        top = self.open("loop")
        self.op("local.get", k)
        self.op("local.get", end)
        self.op("i64.ge_s")
        self.br(out, cond=True)
        # chunk = min(end - k, pc) (unsigned: end > k here), cend = k + chunk
        self.op("local.get", end)
        self.op("local.get", k)
        self.op("i64.sub")
        self.op("local.tee", chunk)
        self.op("local.get", pc)
        self.op("i64.extend_i32_u")
        self.op("local.get", chunk)
        self.op("local.get", pc)
        self.op("i64.extend_i32_u")
        self.op("i64.lt_u")
        self.op("select")
        self.op("local.tee", chunk)
        self.op("local.get", k)
        self.op("i64.add")
        self.op("local.set", cend)
        self.op("local.get", pc)
        self.op("local.get", chunk)
        self.op("i32.wrap_i64")
        self.op("i32.sub")
        self.op("local.set", pc)
        inner = self.open("loop")
        set_var()
        cont = self.open("block")
        self.loops.append((out, cont))
        body()
        self.loops.pop()
        self.close()
        self.op("local.get", k)
        self.op("i64.const", 1)
        self.op("i64.add")
        self.op("local.tee", k)
        self.op("local.get", cend)
        self.op("i64.lt_s")
        self.br(inner, cond=True)
        self.close()
        self.op("local.get", pc)
        self.op("i32.eqz")
        self.open("if")
        self.poll_now()
        self.close()
        self.br(top)
        self.close()
        self.close()

    def loop_body(self, loop: F.For) -> None:
        """loop.body with the bounds the loop proves active."""
        previous = self.facts.enter(loop)
        self.block(loop.body)
        self.facts.leave(loop, previous)

    # -- functions ---------------------------------------------------------------------
    def lower_main(self) -> None:
        frame = self.prog.frame
        for name, t in zip(self.tf.ir.params, self.tf.argtypes, strict=True):
            off = frame.args[name]
            if isinstance(t, ArrayType):
                self.vars[name] = self.load_array(t, off)
                continue
            store = "f64" if t in ("f64", "f32") else "i64"
            self.ctx_load(store, off)
            self.conv(store, self.tf.vars[name])
            self.op("local.set", self.var(name))
        self.block(self.tf.ir.body)
        if self.tf.ret:
            self.op("unreachable")  # typing proved every path returns
        else:
            self.op("i32.const", 0)
        self.finish()

    def load_array(self, t: ArrayType, off: int) -> _Array:
        ptr = self.fn.local("i32")
        self.ctx_load("i32", off)
        self.op("local.set", ptr)
        shape = []
        for d in range(t.ndim):
            s = self.fn.local("i64")
            self.ctx_load("i64", off + FR.SLOT * (1 + d))
            self.op("local.set", s)
            shape.append(s)
        return _Array(ptr, shape, t)

    def lower_callee(self) -> None:
        index = 1
        for name, t in zip(self.tf.ir.params, self.tf.argtypes, strict=True):
            if isinstance(t, ArrayType):
                self.vars[name] = _Array(index, list(range(index + 1, index + 1 + t.ndim)), t)
                index += 1 + t.ndim
                continue
            if self.tf.vars[name] == t:
                self.vars[name] = index
            else:
                self.op("local.get", index)
                self.conv(t, self.tf.vars[name])
                self.op("local.set", self.var(name))
            index += 1
        self.block(self.tf.ir.body)
        if self.tf.ret:
            self.op("unreachable")
        self.finish()

    def lower_body(self, loop: F.For, spill: dict[str, int]) -> None:
        self._lower_body(loop, spill)
        self.finish()

    def _lower_body(self, loop: F.For, spill: dict[str, int]) -> None:
        plan: parallel.ParallelPlan = loop.plan
        n, start, step = self.fn.local("i64"), self.fn.local("i64"), self.fn.local("i64")
        for local, key in ((n, "$n"), (start, "$start"), (step, "$step")):
            self.ctx_load("i64", spill[key])
            self.op("local.set", local)
        for name in plan.captured:
            t = self.tf.vars[name]
            if isinstance(t, ArrayType):
                self.vars[name] = self.load_array(t, spill[name])
            else:
                self.ctx_load(t, spill[name])
                self.op("local.set", self.var(name))
        k = self.fn.local("i64")
        if not plan.reductions:
            self.op("local.get", 1)
            self.op("local.set", k)
            self.k_loop(loop, k, 2, start, step)
            return
        parts = []
        for r in plan.reductions:
            p = self.fn.local("i32")
            self.ctx_load("i32", spill["$p:" + r.name])
            self.op("local.set", p)
            parts.append(p)
        b, kend = self.fn.local("i64"), self.fn.local("i64")
        lanes = vector.plan(self.tf, loop)
        self.op("local.get", 1)
        self.op("local.set", b)
        out = self.open("block")
        top = self.open("loop")
        self.op("local.get", b)
        self.op("local.get", 2)
        self.op("i64.ge_s")
        self.br(out, cond=True)
        for r in plan.reductions:
            t = self.tf.vars[r.name]
            self.const(t, _identity(r.op, t))
            self.op("local.set", self.var(r.name))
        self.op("local.get", b)
        self.op("i64.const", BLOCK)
        self.op("i64.mul")
        self.op("local.tee", k)
        self.op("i64.const", BLOCK)
        self.op("i64.add")
        self.op("local.set", kend)
        self.op("local.get", kend)
        self.op("local.get", n)
        self.op("local.get", kend)
        self.op("local.get", n)
        self.op("i64.lt_s")
        self.op("select")
        self.op("local.set", kend)
        if lanes is not None:
            vector.VecEmitter(self, loop, lanes).block(k, kend)
        self.k_loop(loop, k, kend, start, step)
        for r, p in zip(plan.reductions, parts, strict=True):
            self.elem_addr(p, b)
            t = self.tf.vars[r.name]
            self.op("local.get", self.var(r.name))
            self.op(f"{VT[t]}.store", 3 if VT[t] in ("i64", "f64") else 2, 0)
        self.op("local.get", b)
        self.op("i64.const", 1)
        self.op("i64.add")
        self.op("local.set", b)
        self.br(top)
        self.close()
        self.close()

    def k_loop(self, loop: F.For, k: int, end: int, start: int, step: int) -> None:
        """for k in [k, end): loop.var = start + k*step; body (the body of a prange chunk)."""
        c_start, c_step = _const_int(loop.start), _const_int(loop.step)

        def set_var(lane: int = 0) -> None:
            # start and step are the frame's copies; the IR's constants when it has them
            self.op("local.get", k)
            if lane:
                self.op("i64.const", lane)
                self.op("i64.add")
            if c_step is None:
                self.op("local.get", step)
                self.op("i64.mul")
            elif c_step != 1:
                self.op("i64.const", c_step)
                self.op("i64.mul")
            if c_start is None:
                self.op("local.get", start)
                self.op("i64.add")
            elif c_start != 0:
                self.op("i64.const", c_start)
                self.op("i64.add")
            self.conv("i64", self.tf.vars[loop.var])
            self.op("local.set", self.var(loop.var))

        previous = self.facts.enter(loop)
        lp = lanes.plan(self, loop)
        if lp is not None:
            lanes.emit(self, loop, lp, k, end, set_var)  # the rest runs below
        self.facts.leave(loop, previous)
        self.counted(k, end, set_var, lambda: self.loop_body(loop))

    def elem_addr(self, p: int, index: int) -> None:
        """p + index * 8 (a reduction partial)."""
        self.op("local.get", p)
        self.op("local.get", index)
        self.op("i32.wrap_i64")
        self.op("i32.const", 3)
        self.op("i32.shl")
        self.op("i32.add")

    # -- statements --------------------------------------------------------------------
    def block(self, stmts: list[F.Stmt]) -> None:
        for s in stmts:
            self.stmt(s)

    def stmt(self, s: F.Stmt) -> None:
        if isinstance(s, F.Assign):
            self.expr(s.value)
            self.conv(s.value.ty, self.tf.vars[s.target])
            self.op("local.set", self.var(s.target))
        elif isinstance(s, F.Unpack):
            arr = self.array(s.array)
            for name, local in zip(s.targets, arr.shape, strict=True):
                self.op("local.get", local)
                self.conv("i64", self.tf.vars[name])
                self.op("local.set", self.var(name))
        elif isinstance(s, F.Store):
            arr = self.array(s.array)
            self.expr(s.value)
            value = self.tmp(s.value.ty)
            self.op("local.set", value)
            self.address(arr, s.array, s.index, s.line)
            self.op("local.get", value)
            self.store(arr, s.value.ty)
        elif isinstance(s, F.AugStore):
            arr = self.array(s.array)
            self.address(arr, s.array, s.index, s.line)
            addr = self.fn.local("i32")
            self.op("local.tee", addr)
            self.reuse_addr = addr
            self.expr(s.value)
            self.store(arr, s.value.ty)
        elif isinstance(s, F.If):
            self.truth(s.test)
            self.open("if")
            self.block(s.body)
            if s.orelse:
                self.op("else")
                self.block(s.orelse)
            self.close()
        elif isinstance(s, F.While):
            out = self.open("block")
            top = self.open("loop")
            hot = self.open("loop")
            self.truth(s.test)
            self.op("i32.eqz")
            self.br(out, cond=True)
            cont = self.open("block")
            self.loops.append((out, cont))
            self.block(s.body)
            self.loops.pop()
            self.close()
            self.spend(hot)
            self.close()
            self.poll_now()
            self.br(top)
            self.close()
            self.close()
        elif isinstance(s, F.For):
            if s.parallel and s.plan is not None and self.kind == "main":
                self.prange(s)
            else:
                self.range_loop(s)
        elif isinstance(s, F.Break):
            self.br(self.loops[-1][0])
        elif isinstance(s, F.Continue):
            self.br(self.loops[-1][1])
        elif isinstance(s, F.Return):
            self.ret(s)
        elif isinstance(s, F.ExprStmt):
            self.expr(s.value)
            if s.value.ty not in (None, "none"):
                self.op("drop")

    def ret(self, s: F.Return) -> None:
        ret = self.tf.ret
        if self.kind == "main":
            if s.value is not None:
                store = "f64" if ret in ("f64", "f32") else "i64"
                self.op("local.get", 0)
                self.expr(s.value)
                self.conv(s.value.ty, ret)
                self.conv(ret, store)
                self.op(f"{store}.store", 3, FR.RESULT)
            self.op("i32.const", 0)
        elif s.value is not None:
            self.expr(s.value)
            self.conv(s.value.ty, ret)
        self.op("return")

    def store(self, arr: _Array, vt: str) -> None:
        name, align, want = _STORE[arr.t.dtype]
        self.conv(vt, want)
        self.op(name, align, 0)

    def range_args(self, s: F.For) -> tuple[int, int, int, int | None]:
        """Locals start, stop, step (evaluated once, in order) and the constant step."""
        locals_ = []
        for part in (s.start, s.stop, s.step):
            self.expr(part)
            self.conv(part.ty, "i64")
            local = self.fn.local("i64")
            self.op("local.set", local)
            locals_.append(local)
        const_step = s.step.value if isinstance(s.step, F.Const) else None
        if const_step is None:
            self.op("local.get", locals_[2])
            self.op("i64.eqz")
            self.open("if")
            site = self.prog.site("value", self.tf, s.line, detail="range() arg 3 must not be zero")
            self.fail(E_VALUE, site)
            self.close()
        return locals_[0], locals_[1], locals_[2], const_step  # type: ignore[return-value]

    def range_loop(self, s: F.For) -> None:
        start, stop, step, const_step = self.range_args(s)
        k = self.fn.local("i64")
        self.op("local.get", start)
        self.op("local.set", k)

        def set_var() -> None:
            self.op("local.get", k)
            self.conv("i64", self.tf.vars[s.var])
            self.op("local.set", self.var(s.var))

        if const_step == 1:
            previous = self.facts.enter(s)
            lp = lanes.plan(self, s)
            if lp is not None:

                def lane_var(lane: int) -> None:
                    self.op("local.get", k)
                    if lane:
                        self.op("i64.const", lane)
                        self.op("i64.add")
                    self.op("local.set", self.var(s.var))  # lanes.plan: s.var is int64

                lanes.emit(self, s, lp, k, stop, lane_var)  # the rest runs below
            self.facts.leave(s, previous)
            self.counted(k, stop, set_var, lambda: self.loop_body(s))
            return
        out = self.open("block")
        top = self.open("loop")
        if const_step is not None:
            self.op("local.get", k)
            self.op("local.get", stop)
            self.op("i64.ge_s" if const_step > 0 else "i64.le_s")
        else:
            self.op("local.get", k)
            self.op("local.get", stop)
            self.op("i64.ge_s")
            self.op("local.get", k)
            self.op("local.get", stop)
            self.op("i64.le_s")
            self.op("local.get", step)
            self.op("i64.const", 0)
            self.op("i64.gt_s")
            self.op("select")
        self.br(out, cond=True)
        set_var()
        cont = self.open("block")
        self.loops.append((out, cont))
        self.loop_body(s)
        self.loops.pop()
        self.close()
        self.op("local.get", k)
        self.op("local.get", step)
        self.op("i64.add")
        self.op("local.set", k)
        self.poll()
        self.br(top)
        self.close()
        self.close()

    def prange(self, s: F.For) -> None:
        plan: parallel.ParallelPlan = s.plan
        frame = self.prog.frame
        start, stop, step, _ = self.range_args(s)
        n = self.fn.local("i64")
        self.op("local.get", start)
        self.op("local.get", stop)
        self.op("local.get", step)
        self.op("call", self.prog.helper("trip"))
        self.op("local.tee", n)
        self.op("i64.const", 0)
        self.op("i64.gt_s")
        self.open("if")
        spill: dict[str, int] = {}
        for key, local in (("$n", n), ("$start", start), ("$step", step)):
            spill[key] = frame.slots(1)
            self.op("local.get", 0)
            self.op("local.get", local)
            self.op("i64.store", 3, spill[key])
        for name in plan.captured:
            t = self.tf.vars[name]
            if isinstance(t, ArrayType):
                arr = self.array(name)
                off = spill[name] = frame.slots(1 + t.ndim)
                self.op("local.get", 0)
                self.op("local.get", arr.ptr)
                self.op("i32.store", 2, off)
                for d, local in enumerate(arr.shape):
                    self.op("local.get", 0)
                    self.op("local.get", local)
                    self.op("i64.store", 3, off + FR.SLOT * (1 + d))
            else:
                off = spill[name] = frame.slots(1)
                self.op("local.get", 0)
                self.op("local.get", self.var(name))
                self.op(f"{VT[t]}.store", 3 if VT[t] in ("i64", "f64") else 2, off)
        count = n
        parts: list[int] = []
        if plan.reductions:
            count = self.fn.local("i64")
            self.op("local.get", n)
            self.op("i64.const", BLOCK - 1)
            self.op("i64.add")
            self.op("i64.const", BLOCK)
            self.op("i64.div_u")
            self.op("local.set", count)
            for r in plan.reductions:
                p = self.fn.local("i32")
                self.op("local.get", count)
                self.op("i32.wrap_i64")
                self.op("i32.const", 3)
                self.op("i32.shl")
                self.op("i32.const", 0)
                self.op("call", self.prog.pool("jr_alloc"))
                self.op("local.tee", p)
                self.op("i32.eqz")
                self.open("if")
                for q in parts:
                    self.op("local.get", q)
                    self.op("call", self.prog.pool("jr_free"))
                self.fail(E_NOMEM, self.prog.site("nomem", self.tf, s.line))
                self.close()
                parts.append(p)
                spill["$p:" + r.name] = frame.slots(1)
                self.op("local.get", 0)
                self.op("local.get", p)
                self.op("i32.store", 2, spill["$p:" + r.name])
        slot = self.prog.body(self.tf, s, spill)
        status = self.fn.local("i32")
        self.op("global.get", self.prog.table_base)
        self.op("i32.const", slot)
        self.op("i32.add")
        self.op("local.get", 0)
        self.op("local.get", count)
        self.op("i64.const", 1)
        self.op("call", self.prog.pool("jr_jit_for"))
        self.op("local.set", status)
        if plan.reductions:
            self.op("local.get", status)
            self.op("i32.eqz")
            self.ctx_load("i32", FR.ERR_CODE)
            self.op("i32.eqz")
            self.op("i32.and")
            self.open("if")
            for r, p in zip(plan.reductions, parts, strict=True):
                self.combine(r, p, count)
            self.close()
            for p in parts:
                self.op("local.get", p)
                self.op("call", self.prog.pool("jr_free"))
        self.op("local.get", status)
        self.open("if")
        self.fail(E_CANCELED, 0)
        self.close()
        self.check_err()
        self.close()

    def combine(self, r: parallel.Reduction, p: int, count: int) -> None:
        """Fold the block partials pairwise, level by level, then into the variable."""
        t = self.tf.vars[r.name]
        vt = VT[t]
        align = 3 if vt in ("i64", "f64") else 2
        m, h, j = self.fn.local("i64"), self.fn.local("i64"), self.fn.local("i64")
        idx = self.fn.local("i64")
        a, b = self.tmp(t), self.tmp(t)
        self.op("local.get", count)
        self.op("local.set", m)
        out = self.open("block")
        top = self.open("loop")
        self.op("local.get", m)
        self.op("i64.const", 1)
        self.op("i64.le_s")
        self.br(out, cond=True)
        self.op("local.get", m)
        self.op("i64.const", 1)
        self.op("i64.shr_u")
        self.op("local.set", h)
        self.op("i64.const", 0)
        self.op("local.set", j)
        inner_out = self.open("block")
        inner = self.open("loop")
        self.op("local.get", j)
        self.op("local.get", h)
        self.op("i64.ge_s")
        self.br(inner_out, cond=True)
        self.op("local.get", j)
        self.op("i64.const", 1)
        self.op("i64.shl")
        self.op("local.set", idx)
        self.elem_addr(p, idx)
        self.op(f"{vt}.load", align, 0)
        self.op("local.set", a)
        self.elem_addr(p, idx)
        self.op(f"{vt}.load", align, FR.SLOT)
        self.op("local.set", b)
        self.elem_addr(p, j)
        self.combine_op(r.op, t, a, b)
        self.op(f"{vt}.store", align, 0)
        self.op("local.get", j)
        self.op("i64.const", 1)
        self.op("i64.add")
        self.op("local.set", j)
        self.br(inner)
        self.close()
        self.close()
        self.op("local.get", m)
        self.op("i64.const", 1)
        self.op("i64.and")
        self.op("i32.wrap_i64")
        self.open("if")
        self.elem_addr(p, h)
        self.op("local.get", m)
        self.op("i64.const", 1)
        self.op("i64.sub")
        self.op("local.set", idx)
        self.elem_addr(p, idx)
        self.op(f"{vt}.load", align, 0)
        self.op(f"{vt}.store", align, 0)
        self.close()
        self.op("local.get", h)
        self.op("local.get", m)
        self.op("i64.const", 1)
        self.op("i64.and")
        self.op("i64.add")
        self.op("local.set", m)
        self.br(top)
        self.close()
        self.close()
        var = self.var(r.name)
        self.op("local.get", var)
        self.op("local.set", a)
        self.op("local.get", p)
        self.op(f"{vt}.load", align, 0)
        self.op("local.set", b)
        self.combine_op(r.op, t, a, b)
        self.op("local.set", var)

    def combine_op(self, op: str, t: str, a: int, b: int) -> None:
        if op in ("+", "*"):
            self.op("local.get", a)
            self.op("local.get", b)
            self.op(f"{VT[t]}.{'add' if op == '+' else 'mul'}")
        else:
            self.minmax(op, t, a, b)

    def minmax(self, op: str, t: str, a: int, b: int) -> None:
        """Python's min(a, b) = b if b < a else a; max(a, b) = b if b > a else a."""
        self.op("local.get", b)
        self.op("local.get", a)
        self.op("local.get", b)
        self.op("local.get", a)
        cmp = _CMP_FLOAT if t in ("f64", "f32") else _CMP_INT
        self.op(f"{VT[t]}.{cmp['<' if op == 'min' else '>']}")
        self.op("select")

    # -- expressions -------------------------------------------------------------------
    def truth(self, e: F.Expr) -> None:
        self.expr(e)
        self.conv(e.ty, "bool")

    def expr(self, e: F.Expr) -> None:
        t = e.ty
        if isinstance(e, F.Const):
            self.const(t, e.value)
        elif isinstance(e, F.Name):
            self.op("local.get", self.var(e.id))
        elif isinstance(e, F.Bin):
            self.binop(e)
        elif isinstance(e, F.Unary):
            if e.op == "not":
                self.truth(e.operand)
                self.op("i32.eqz")
            elif e.op == "~":
                self.expr(e.operand)
                self.conv(e.operand.ty, "i64")
                self.op("i64.const", -1)
                self.op("i64.xor")
            elif t == "i64":
                self.op("i64.const", 0)
                self.expr(e.operand)
                self.conv(e.operand.ty, "i64")
                self.op("i64.sub")
            else:
                self.expr(e.operand)
                self.op(f"{t}.neg")
        elif isinstance(e, F.Compare):
            self.compare(e)
        elif isinstance(e, F.BoolOp):
            self.boolop(e)
        elif isinstance(e, F.IfExp):
            self.truth(e.test)
            self.open("if", VT[t])
            self.expr(e.body)
            self.conv(e.body.ty, t)
            self.op("else")
            self.expr(e.orelse)
            self.conv(e.orelse.ty, t)
            self.close()
        elif isinstance(e, F.Load):
            arr = self.array(e.array)
            if e.reuse:
                self.op("local.get", self.reuse_addr)
            else:
                self.address(arr, e.array, e.index, e.line)
            name, align = _LOAD[arr.t.dtype]
            self.op(name, align, 0)
        elif isinstance(e, F.ShapeOf):
            self.op("local.get", self.array(e.array).shape[e.axis])
        elif isinstance(e, F.SizeOf):
            shape = self.array(e.array).shape
            self.op("local.get", shape[0])
            for local in shape[1:]:
                self.op("local.get", local)
                self.op("i64.mul")
        elif isinstance(e, F.NdimOf):
            self.op("i64.const", self.array(e.array).t.ndim)
        elif isinstance(e, F.Call):
            self.call(e)
        elif isinstance(e, F.JitCall):
            self.op("local.get", 0)
            for a in e.args:
                if isinstance(a.ty, ArrayType):
                    assert isinstance(a, F.Name)
                    arr = self.array(a.id)
                    self.op("local.get", arr.ptr)
                    for local in arr.shape:
                        self.op("local.get", local)
                else:
                    self.expr(a)
            self.op("call", self.prog.callee(e.target))
            self.check_err()

    def address(self, arr: _Array, name: str, index: list[F.Expr], line: int) -> None:
        """Leaves the i32 address of arr[index] (Python's negative wrap, bounds checked)."""
        raw = []
        for e in index:  # Python evaluates every index before the lookup
            self.expr(e)
            self.conv(e.ty, "i64")
            local = self.fn.local("i64")
            self.op("local.set", local)
            raw.append(local)
        fixed = []
        for axis, (e, local) in enumerate(zip(index, raw, strict=True)):
            length = arr.shape[axis]
            if self.facts.in_range(e, name, axis):
                fixed.append(local)  # proved 0 <= index < length by the enclosing loop
                continue
            if isinstance(e, F.Const) and e.value >= 0:
                wrapped = local
            else:
                wrapped = self.fn.local("i64")
                self.op("local.get", local)
                self.op("local.get", length)
                self.op("i64.add")
                self.op("local.get", local)
                self.op("local.get", local)
                self.op("i64.const", 0)
                self.op("i64.lt_s")
                self.op("select")
                self.op("local.set", wrapped)
            if self.prog.boundscheck:
                self.op("local.get", wrapped)
                self.op("local.get", length)
                self.op("i64.ge_u")
                self.open("if")
                site = self.prog.site("index", self.tf, line, array=name, axis=axis)
                self.fail(E_INDEX, site, local, length)
                self.close()
            fixed.append(wrapped)
        self.op("local.get", fixed[0])
        for axis in range(1, len(fixed)):
            self.op("local.get", arr.shape[axis])
            self.op("i64.mul")
            self.op("local.get", fixed[axis])
            self.op("i64.add")
        self.op("i32.wrap_i64")
        size = _ITEMSIZE[arr.t.dtype]
        self.op("i32.const", 3 if size == 8 else 2)
        self.op("i32.shl")
        self.op("local.get", arr.ptr)
        self.op("i32.add")

    def operands(self, e: F.Bin, t: str) -> tuple[int, int]:
        self.expr(e.left)
        self.conv(e.left.ty, t)
        a = self.tmp(t)
        self.op("local.set", a)
        self.expr(e.right)
        self.conv(e.right.ty, t)
        b = self.tmp(t)
        self.op("local.set", b)
        return a, b

    def zero_check(self, e: F.Bin, t: str, b: int) -> None:
        if isinstance(e.right, F.Const) and e.right.value != 0:
            return
        if self.facts.nonzero(e.right):
            return  # the stop of an enclosing range loop: >= 1 wherever its body runs
        self.op("local.get", b)
        if t in ("f64", "f32"):
            self.op(f"{t}.const", 0.0)
            self.op(f"{t}.eq")
        else:
            self.op("i64.eqz")
        self.open("if")
        what = {"/": "division", "//": "floor division", "%": "modulo"}[e.op]
        kind = "integer" if t == "i64" else "float"
        self.fail(
            E_ZERODIV, self.prog.site("zerodiv", self.tf, e.line, detail=f"{kind} {what} by zero")
        )
        self.close()

    def binop(self, e: F.Bin) -> None:
        t = e.opty
        op = e.op
        if op in ("+", "-", "*", "&", "|", "^"):
            self.expr(e.left)
            self.conv(e.left.ty, t)
            self.expr(e.right)
            self.conv(e.right.ty, t)
            name = {"+": "add", "-": "sub", "*": "mul", "&": "and", "|": "or", "^": "xor"}[op]
            self.op(f"{VT[t]}.{name}")
            return
        if op == "**" and t != "i64" and isinstance(e.right, F.Const) and e.right.value == 2:
            self.expr(e.left)
            self.conv(e.left.ty, t)
            a = self.tmp(t)
            self.op("local.tee", a)
            self.op("local.get", a)
            self.op(f"{t}.mul")
            return
        if self.by_power_of_two(e, t):
            return
        a, b = self.operands(e, t)
        if op == "**":
            if t == "i64":
                self.op("local.get", b)
                self.op("i64.const", 0)
                self.op("i64.lt_s")
                self.open("if")
                site = self.prog.site(
                    "value",
                    self.tf,
                    e.line,
                    detail="an integer raised to "
                    "a negative integer power: write float(base) ** exp",
                )
                self.fail(E_VALUE, site)
                self.close()
                self.op("local.get", a)
                self.op("local.get", b)
                self.op("call", self.prog.helper("ipow"))
            else:
                self.f64_call(t, a, b, self.prog.pool("pow"))
            return
        self.zero_check(e, t, b)
        if op == "/":
            self.op("local.get", a)
            self.op("local.get", b)
            self.op(f"{t}.div")
        elif t == "i64":
            self.op("local.get", a)
            self.op("local.get", b)
            self.op("call", self.prog.helper("floordiv_i64" if op == "//" else "mod_i64"))
        else:
            self.f64_call(t, a, b, self.prog.helper("floordiv_f64" if op == "//" else "mod_f64"))

    def by_power_of_two(self, e: F.Bin, t: str) -> bool:
        """`//`, `%` of an int by a constant 2**k > 0 (a shift, a mask: Python's floor
        semantics exactly, for negative operands too) and float `/` by a constant +-2**k
        (a multiply by the exact reciprocal: the same real quotient, rounded once, as the
        division gives). Emits the code and returns True, or emits nothing."""
        c = e.right.value if isinstance(e.right, F.Const) else None
        if c is None or isinstance(c, bool):
            return False
        if t == "i64" and e.op in ("//", "%") and type(c) is int and c > 0 and c & (c - 1) == 0:
            self.expr(e.left)
            self.conv(e.left.ty, t)
            if e.op == "//":
                self.op("i64.const", c.bit_length() - 1)
                self.op("i64.shr_s")
            else:
                self.op("i64.const", c - 1)
                self.op("i64.and")
            return True
        if t in ("f64", "f32") and e.op == "/" and c != 0 and abs(c) < 2.0**1000:
            mantissa, exp = math.frexp(float(c))
            if abs(mantissa) != 0.5 or abs(exp - 1) > (1022 if t == "f64" else 126):
                return False
            self.expr(e.left)
            self.conv(e.left.ty, t)
            self.op(f"{t}.const", 1.0 / float(c))
            self.op(f"{t}.mul")
            return True
        return False

    def f64_call(self, t: str, a: int, b: int, key: str) -> None:
        for local in (a, b):
            self.op("local.get", local)
            self.conv(t, "f64")
        self.op("call", key)
        self.conv("f64", t)

    def compare(self, e: F.Compare) -> None:
        temps: list[int] = []

        def operand(k: int) -> None:
            x = e.operands[k]
            self.expr(x)
            local = self.tmp(x.ty)
            self.op("local.set", local)
            temps.append(local)

        def pair(k: int) -> None:
            t = e.optys[k]
            for j in (k, k + 1):
                self.op("local.get", temps[j])
                self.conv(e.operands[j].ty, t)
            table = _CMP_FLOAT if t in ("f64", "f32") else _CMP_INT
            self.op(f"{VT[t]}.{table[e.ops[k]]}")

        operand(0)
        operand(1)
        pair(0)
        for k in range(1, len(e.ops)):
            self.open("if", "i32")
            operand(k + 1)
            pair(k)
            self.op("else")
            self.op("i32.const", 0)
            self.close()

    def boolop(self, e: F.BoolOp) -> None:
        t = e.ty
        first, rest = e.values[0], e.values[1:]
        if t == "bool":
            self.truth(first)
            for v in rest:
                self.open("if", "i32")
                if e.op == "and":
                    self.truth(v)
                    self.op("else")
                    self.op("i32.const", 0)
                else:
                    self.op("i32.const", 1)
                    self.op("else")
                    self.truth(v)
                self.close()
            return
        # Python's value semantics: `a and b` is a if a is falsy else b (here as type t).
        self.expr(first)
        self.conv(first.ty, t)
        for v in rest:
            keep = self.tmp(t)
            self.op("local.tee", keep)
            self.conv(t, "bool")
            self.open("if", VT[t])
            if e.op == "and":
                self.expr(v)
                self.conv(v.ty, t)
                self.op("else")
                self.op("local.get", keep)
            else:
                self.op("local.get", keep)
                self.op("else")
                self.expr(v)
                self.conv(v.ty, t)
            self.close()

    def call(self, e: F.Call) -> None:
        name, args, t = e.func, e.args, e.ty
        if name in ("min", "max"):
            acc = self.tmp(t)
            self.expr(args[0])
            self.conv(args[0].ty, t)
            self.op("local.set", acc)
            nxt = self.tmp(t)
            for a in args[1:]:
                self.expr(a)
                self.conv(a.ty, t)
                self.op("local.set", nxt)
                self.minmax(name, t, acc, nxt)
                self.op("local.set", acc)
            self.op("local.get", acc)
            return
        x = args[0]
        if name in ("int", "float", "bool"):
            self.expr(x)
            self.conv(x.ty, t)
            return
        if name == "abs":
            self.expr(x)
            self.conv(x.ty, t)
            if t in ("f64", "f32"):
                self.op(f"{t}.abs")
            else:
                v = self.tmp(t)
                self.op("local.set", v)
                self.op("i64.const", 0)
                self.op("local.get", v)
                self.op("i64.sub")
                self.op("local.get", v)
                self.op("local.get", v)
                self.op("i64.const", 0)
                self.op("i64.lt_s")
                self.op("select")
            return
        for a in args:
            self.expr(a)
            self.conv(a.ty, "f64")
        if name in ("sqrt", "floor", "ceil", "trunc", "fabs", "copysign"):
            self.op(
                {
                    "sqrt": "f64.sqrt",
                    "floor": "f64.floor",
                    "ceil": "f64.ceil",
                    "trunc": "f64.trunc",
                    "fabs": "f64.abs",
                    "copysign": "f64.copysign",
                }[name]
            )
            if name in ("floor", "ceil", "trunc"):
                self.op("i64.trunc_sat_f64_s")
        elif name in ("isnan", "isinf", "isfinite"):
            v = self.tmp("f64")
            self.op("local.tee", v)
            if name == "isnan":
                self.op("local.get", v)
                self.op("f64.ne")
            else:
                self.op("f64.abs")
                self.op("f64.const", math.inf)
                self.op("f64.eq" if name == "isinf" else "f64.lt")
        else:
            self.op("call", self.prog.pool(name))


def _const_int(e: F.Expr) -> int | None:
    return e.value if isinstance(e, F.Const) and type(e.value) is int else None


def _identity(op: str, t: str) -> float:
    if op == "+":
        return 0
    if op == "*":
        return 1
    big: float = math.inf if t in ("f64", "f32") else (1 << 63) - 1 if t == "i64" else (1 << 31) - 1
    if op == "min":
        return big
    return -big if t in ("f64", "f32") else -big - 1


# The element type a load gives, re-exported for the runtime's documentation tables.
LOADED_TYPE = ELEMENT
