"""Type inference over the IR: every expression and variable gets one type.

Scalars are "i64", "i32", "f64", "f32", "bool"; arrays are ArrayType(dtype, ndim).
Rules (numba's, with NEP 50's weak Python scalars; docs/jit.md lists them):
- integer arithmetic is int64 (int32 values widen, as numba does), wrapping like numpy;
- int / int, and anything with a float64 side, is float64;
- float32 with float32, or with an int or float *literal*, stays float32 (NEP 50); float32
  with an int64 or float64 variable is float64;
- bool in arithmetic counts as int64; comparisons give bool;
- a variable has one type: int32 and int64 unify to int64, float32 and float64 to float64,
  an int and a float to float64 (numba's unification, e.g. `s = 0` then `s += x[i]`);
  a bool and a number, or an array and anything else, is a JitError naming both lines;
- math functions return float64 (floor, ceil, trunc return int64, as in Python).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import frontend as F
from .errors import JitError

INTS = ("i64", "i32")
FLOATS = ("f64", "f32")
NUMERIC = ("i64", "i32", "f64", "f32", "bool")
TYPE_NAMES = {"i64": "int64", "i32": "int32", "f64": "float64", "f32": "float32", "bool": "bool"}
ELEMENT = {
    "float64": "f64",
    "float32": "f32",
    "int64": "i64",
    "int32": "i32",
    "uint32": "i64",
}  # uint32 loads zero-extend into int64


@dataclass(frozen=True)
class ArrayType:
    dtype: str
    ndim: int

    def __str__(self) -> str:
        return f"{self.dtype}[{', '.join(':' * self.ndim)}]"


def type_name(t: Any) -> str:
    return str(t) if isinstance(t, ArrayType) else TYPE_NAMES.get(t, str(t))


@dataclass(eq=False)
class TypedFunc:
    ir: F.FuncIR
    argtypes: tuple[Any, ...]
    vars: dict[str, Any]
    ret: Any  # a scalar type, or None for no value
    writes: set[str] = field(default_factory=set)  # array parameters stored to
    key: str = ""

    @property
    def name(self) -> str:
        return self.ir.name


Resolver = Callable[[Any, tuple[Any, ...], int, "Typer"], TypedFunc]


class _Unknown(Exception):
    """A variable's type is not known yet (an earlier pass will learn it)."""


class Typer:
    def __init__(self, ir: F.FuncIR, argtypes: tuple[Any, ...], resolver: Resolver) -> None:
        self.ir = ir
        self.resolver = resolver
        self.vars: dict[str, Any] = dict(zip(ir.params, argtypes, strict=True))
        self.first: dict[str, int] = {p: ir.firstline for p in ir.params}
        self.argtypes = argtypes
        self.strict = False
        self.returns: list[tuple[Any, int]] = []
        self.writes: set[str] = set()

    def error(self, line: int, message: str, construct: str) -> JitError:
        return JitError(
            message,
            function=self.ir.name,
            filename=self.ir.filename,
            line=line,
            construct=construct,
        )

    def run(self) -> TypedFunc:
        for _ in range(50):
            before = dict(self.vars)
            self.returns = []
            self.block(self.ir.body)
            if before == self.vars:
                break
        self.strict = True
        self.returns = []
        self.block(self.ir.body)
        return TypedFunc(self.ir, self.argtypes, self.vars, self.return_type(), self.writes)

    def return_type(self) -> Any:
        values = [(t, line) for t, line in self.returns if t is not None]
        bare = [line for t, line in self.returns if t is None]
        if not values:
            return None
        if bare:
            raise self.error(
                bare[0],
                "this function returns a value elsewhere (line "
                f"{values[0][1]}) but nothing here: return a value on every path",
                "return",
            )
        ret = values[0][0]
        for t, line in values[1:]:
            ret = self.unify(ret, t, line, "the return value", values[0][1])
        if not _always_returns(self.ir.body):
            last = self.ir.body[-1].line if self.ir.body else self.ir.firstline
            raise self.error(
                last,
                "this function returns a value, but it can also reach its "
                "end without a return: add a return at the end",
                "return",
            )
        return ret

    # -- unification -------------------------------------------------------------------
    def unify(self, a: Any, b: Any, line: int, what: str, first_line: int) -> Any:
        if a == b:
            return a
        if isinstance(a, ArrayType) or isinstance(b, ArrayType) or "bool" in (a, b):
            raise self.error(
                line,
                f"{what} is {type_name(a)} at line {first_line} but "
                f"{type_name(b)} here: a variable keeps one type in a jitted "
                "function; use a new name, or convert with int(), float() or "
                "bool()",
                "type change",
            )
        if a in INTS and b in INTS:
            return "i64"
        if a in FLOATS and b in FLOATS:
            return "f64"
        return "f64"

    def assign(self, name: str, t: Any, line: int) -> None:
        if isinstance(t, ArrayType):
            raise self.error(
                line,
                f"an array cannot be assigned to a variable ({name} = ...): "
                "index the array parameter directly",
                "array assignment",
            )
        if t is None:
            return
        if t == "none":
            raise self.error(line, f"the call assigned to {name!r} returns nothing", "call")
        old = self.vars.get(name)
        if old is None:
            self.vars[name] = t
            self.first[name] = line
        else:
            self.vars[name] = self.unify(
                old, t, line, f"the variable {name!r}", self.first.get(name, line)
            )

    # -- statements --------------------------------------------------------------------
    def block(self, stmts: list[F.Stmt]) -> None:
        for s in stmts:
            self.stmt(s)

    def stmt(self, s: F.Stmt) -> None:
        if isinstance(s, F.Assign):
            self.assign(s.target, self.expr_or_none(s.value), s.line)
        elif isinstance(s, F.Unpack):
            arr = self.array(s.array, s.line)
            if len(s.targets) != arr.ndim:
                raise self.error(
                    s.line,
                    f"{s.array} is {arr.ndim}-D, so its shape has "
                    f"{arr.ndim} entries, not {len(s.targets)}",
                    "shape unpack",
                )
            for t in s.targets:
                self.assign(t, "i64", s.line)
        elif isinstance(s, (F.Store, F.AugStore)):
            arr = self.array(s.array, s.line)
            self.writes.add(s.array)
            self.index(s.array, arr, s.index, s.line)
            t = self.expr_or_none(s.value)
            if t is not None:
                self.scalar(t, s.line, "the value stored")
        elif isinstance(s, F.If):
            self.expr_or_none(s.test)
            self.block(s.body)
            self.block(s.orelse)
        elif isinstance(s, F.While):
            self.expr_or_none(s.test)
            self.block(s.body)
        elif isinstance(s, F.For):
            for part in (s.start, s.stop, s.step):
                t = self.expr_or_none(part)
                if t is not None and t not in ("i64", "i32"):
                    raise self.error(
                        part.line,
                        f"range() needs integers, not {type_name(t)}: convert with int(...)",
                        "range argument",
                    )
            if isinstance(s.step, F.Const) and s.step.value == 0:
                raise self.error(s.line, "range() step must not be zero", "range step")
            self.assign(s.var, "i64", s.line)
            self.block(s.body)
        elif isinstance(s, F.Return):
            rt = None if s.value is None else self.expr_or_none(s.value)
            if s.value is not None and rt is None:
                return
            if isinstance(rt, ArrayType):
                raise self.error(
                    s.line,
                    "a jitted function returns a scalar or nothing, not "
                    "an array: write the result into an array argument",
                    "return",
                )
            self.returns.append((rt, s.line))
        elif isinstance(s, F.ExprStmt):
            self.expr_or_none(s.value)

    # -- expressions -------------------------------------------------------------------
    def expr_or_none(self, e: F.Expr) -> Any:
        try:
            return self.expr(e)
        except _Unknown:
            return None

    def array(self, name: str, line: int) -> ArrayType:
        t = self.vars.get(name)
        if t is None:
            if self.strict:
                raise self.error(line, f"{name!r} is used before it is assigned", "name")
            raise _Unknown
        if not isinstance(t, ArrayType):
            raise self.error(line, f"{name!r} is a {type_name(t)}, not an array", "indexing")
        return t

    def scalar(self, t: Any, line: int, what: str) -> Any:
        if isinstance(t, ArrayType):
            raise self.error(
                line,
                f"{what} is an array; whole-array operations are not "
                "compiled: loop over the elements (or use jr.add, jr.sum...)",
                "array operation",
            )
        return t

    def index(self, name: str, arr: ArrayType, index: list[F.Expr], line: int) -> None:
        if len(index) != arr.ndim:
            want = ", ".join("ijk"[: arr.ndim])
            raise self.error(
                line,
                f"{name} is {arr.ndim}-D: index it with {arr.ndim} indices, {name}[{want}]",
                "indexing",
            )
        for e in index:
            t = self.expr(e)
            if t not in INTS:
                raise self.error(
                    e.line,
                    f"array indices must be integers, not {type_name(t)}: convert with int(...)",
                    "index type",
                )

    def expr(self, e: F.Expr) -> Any:
        t = self._expr(e)
        e.ty = t
        return t

    def _expr(self, e: F.Expr) -> Any:
        if isinstance(e, F.Const):
            v = e.value
            return "bool" if isinstance(v, bool) else "i64" if isinstance(v, int) else "f64"
        if isinstance(e, F.Name):
            t = self.vars.get(e.id)
            if t is None:
                if self.strict:
                    raise self.error(
                        e.line, f"the variable {e.id!r} is used before it is assigned", "name"
                    )
                raise _Unknown
            return t
        if isinstance(e, F.Bin):
            return self.binop(e)
        if isinstance(e, F.Unary):
            t = self.scalar(self.expr(e.operand), e.line, "the operand")
            if e.op == "not":
                return "bool"
            if e.op == "~":
                if t in FLOATS:
                    raise self.error(e.line, "~ needs an integer", "~")
                return "i64"
            return "i64" if t in ("bool", "i32") else t
        if isinstance(e, F.Compare):
            types = [self.scalar(self.expr(x), e.line, "a compared value") for x in e.operands]
            e.optys = [
                _promote(types[k], types[k + 1], e.operands[k], e.operands[k + 1])
                for k in range(len(e.ops))
            ]
            return "bool"
        if isinstance(e, F.BoolOp):
            types = [self.scalar(self.expr(v), e.line, "an operand") for v in e.values]
            if all(t == "bool" for t in types):
                return "bool"
            if "bool" in types:
                raise self.error(
                    e.line,
                    f"`{e.op}` mixes bool and number operands (its value "
                    "would be one or the other): compare explicitly, e.g. "
                    "(x != 0)",
                    e.op,
                )
            out = types[0]
            for t in types[1:]:
                out = self.unify(out, t, e.line, f"an operand of `{e.op}`", e.line)
            return out
        if isinstance(e, F.IfExp):
            self.scalar(self.expr(e.test), e.line, "the condition")
            a = self.scalar(self.expr(e.body), e.line, "a branch")
            b = self.scalar(self.expr(e.orelse), e.line, "a branch")
            return self.unify(a, b, e.line, "the conditional expression's first branch", e.line)
        if isinstance(e, F.Load):
            arr = self.array(e.array, e.line)
            self.index(e.array, arr, e.index, e.line)
            return ELEMENT[arr.dtype]
        if isinstance(e, F.ShapeOf):
            arr = self.array(e.array, e.line)
            if not 0 <= e.axis < arr.ndim:
                raise self.error(
                    e.line, f"{e.array} is {arr.ndim}-D: it has no axis {e.axis}", "shape"
                )
            return "i64"
        if isinstance(e, (F.SizeOf, F.NdimOf)):
            self.array(e.array, e.line)
            return "i64"
        if isinstance(e, F.Call):
            return self.call(e)
        if isinstance(e, F.JitCall):
            types = []
            for a in e.args:
                t = self.expr(a)
                if isinstance(t, ArrayType) and not isinstance(a, F.Name):
                    raise self.error(e.line, "pass arrays to jitted functions by name", "call")
                types.append(t)
            target = self.resolver(e.dispatcher, tuple(types), e.line, self)
            e.target = target
            for k, a in enumerate(e.args):  # an array the callee writes is written here
                if isinstance(a, F.Name) and target.ir.params[k] in target.writes:
                    self.writes.add(a.id)
            if target.ret is None:
                return "none"
            return target.ret
        raise self.error(e.line, f"cannot type {type(e).__name__}", "expression")

    def binop(self, e: F.Bin) -> Any:
        a = self.scalar(self.expr(e.left), e.line, "the left operand")
        b = self.scalar(self.expr(e.right), e.line, "the right operand")
        for t in (a, b):
            if t == "none":
                raise self.error(e.line, "this call returns nothing", "call")
        if e.op in ("&", "|", "^"):
            if a in FLOATS or b in FLOATS:
                raise self.error(e.line, f"{e.op} needs integers or bools", e.op)
            e.opty = "bool" if a == b == "bool" else "i64"
            return e.opty
        t = _promote(a, b, e.left, e.right)
        if e.op == "/" and t == "i64":
            t = "f64"
        e.opty = t
        return t

    def call(self, e: F.Call) -> Any:
        types = [self.scalar(self.expr(a), e.line, "an argument") for a in e.args]
        name = e.func
        if name in F.MATH_FUNCS:
            if len(types) != F.MATH_FUNCS[name]:
                raise self.error(
                    e.line, f"math.{name} takes {F.MATH_FUNCS[name]} argument(s)", f"math.{name}"
                )
            if name in ("floor", "ceil", "trunc"):
                return "i64"
            if name in ("isnan", "isinf", "isfinite"):
                return "bool"
            return "f64"
        if name in ("int", "float", "bool"):
            if len(types) != 1:
                raise self.error(e.line, f"{name}() takes one number here", name)
            return {"int": "i64", "float": "f64", "bool": "bool"}[name]
        if name == "abs":
            if len(types) != 1:
                raise self.error(e.line, "abs() takes one number", "abs")
            return "i64" if types[0] in ("bool", "i32") else types[0]
        if len(types) < 2:  # min / max
            raise self.error(
                e.line,
                f"{name}() of one value (an array?) is not compiled: "
                f"pass two or more numbers, or loop (or use jr.{name})",
                name,
            )
        out = types[0]
        for k in range(1, len(types)):
            out = _promote(out, types[k], e.args[0] if k == 1 else None, e.args[k])
        return out


def _promote(a: Any, b: Any, left: F.Expr | None, right: F.Expr | None) -> str:
    """The type both operands of an arithmetic operator or comparison are converted to."""
    a = "i64" if a in ("bool", "i32") else a
    b = "i64" if b in ("bool", "i32") else b
    if a == "i64" and b == "i64":
        return "i64"
    if a == "f32" and (b == "f32" or _weak(right)):
        return "f32"
    if b == "f32" and _weak(left):
        return "f32"
    return "f64"


def _weak(e: F.Expr | None) -> bool:
    """A Python number literal: it adapts to float32 (NEP 50)."""
    return isinstance(e, F.Const) and not isinstance(e.value, bool)


def _always_returns(stmts: list[F.Stmt]) -> bool:
    for s in stmts:
        if isinstance(s, F.Return):
            return True
        if isinstance(s, F.If) and _always_returns(s.body) and _always_returns(s.orelse):
            return True
        if (
            isinstance(s, F.While)
            and isinstance(s.test, F.Const)
            and s.test.value is True
            and not _has_break(s.body)
        ):
            return True
    return False


def _has_break(stmts: list[F.Stmt]) -> bool:
    for s in stmts:
        if isinstance(s, F.Break):
            return True
        if isinstance(s, F.If) and (_has_break(s.body) or _has_break(s.orelse)):
            return True
    return False


def infer(ir: F.FuncIR, argtypes: tuple[Any, ...], resolver: Resolver) -> TypedFunc:
    return Typer(ir, argtypes, resolver).run()
