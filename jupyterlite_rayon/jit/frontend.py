"""Python source -> the jit's small IR, refusing every construct outside the subset.

The IR is typeless here (typing.py fills in `ty`). It is already normalised: constants
folded through unary minus, globals frozen to constants or resolved to builtins, math
functions and other jitted functions, tuple assignment split through temporaries ("$tN",
names a user cannot write), `a.shape[k]`/`len(a)` turned into ShapeOf, augmented
assignment kept as `Assign(aug=op)` so parallel.py can recognise reductions.
Every refusal is a JitError naming the function, file, line and construct, and saying
what to write instead.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import textwrap
from dataclasses import dataclass, field
from typing import Any

from .errors import JitError
from .prange import prange


# -- IR ----------------------------------------------------------------------------------
@dataclass(eq=False)
class Expr:
    line: int
    ty: Any = field(default=None, init=False)


@dataclass(eq=False)
class Const(Expr):
    value: int | float | bool


@dataclass(eq=False)
class Name(Expr):
    id: str


@dataclass(eq=False)
class Bin(Expr):
    op: str  # + - * / // % ** & | ^
    left: Expr
    right: Expr
    opty: Any = field(default=None, init=False)  # the type both operands are converted to


@dataclass(eq=False)
class Unary(Expr):
    op: str  # - not ~
    operand: Expr


@dataclass(eq=False)
class Compare(Expr):
    ops: list[str]
    operands: list[Expr]
    optys: list[Any] = field(default_factory=list, init=False)


@dataclass(eq=False)
class BoolOp(Expr):
    op: str  # and / or
    values: list[Expr]


@dataclass(eq=False)
class IfExp(Expr):
    test: Expr
    body: Expr
    orelse: Expr


@dataclass(eq=False)
class Call(Expr):
    func: str  # abs min max int float bool, or a math function name
    args: list[Expr]


@dataclass(eq=False)
class JitCall(Expr):
    dispatcher: Any
    args: list[Expr]
    target: Any = field(default=None, init=False)  # the typed callee (typing.py)


@dataclass(eq=False)
class Load(Expr):
    array: str
    index: list[Expr]
    reuse: bool = False  # the address computed by the enclosing AugStore


@dataclass(eq=False)
class ShapeOf(Expr):
    array: str
    axis: int


@dataclass(eq=False)
class SizeOf(Expr):
    array: str


@dataclass(eq=False)
class NdimOf(Expr):
    array: str


@dataclass(eq=False)
class Stmt:
    line: int


@dataclass(eq=False)
class Assign(Stmt):
    target: str
    value: Expr
    aug: str | None = None  # the operator of `x op= v` (value is then Bin(op, x, v))


@dataclass(eq=False)
class Unpack(Stmt):
    targets: list[str]
    array: str


@dataclass(eq=False)
class Store(Stmt):
    array: str
    index: list[Expr]
    value: Expr


@dataclass(eq=False)
class AugStore(Stmt):
    """`a[i] op= v`: value is Bin(op, Load(a, index, reuse=True), v)."""

    array: str
    index: list[Expr]
    value: Bin


@dataclass(eq=False)
class If(Stmt):
    test: Expr
    body: list[Stmt]
    orelse: list[Stmt]


@dataclass(eq=False)
class While(Stmt):
    test: Expr
    body: list[Stmt]


@dataclass(eq=False)
class For(Stmt):
    var: str
    start: Expr
    stop: Expr
    step: Expr
    body: list[Stmt]
    parallel: bool
    plan: Any = field(default=None, init=False)  # parallel.py's ParallelPlan


@dataclass(eq=False)
class Break(Stmt):
    pass


@dataclass(eq=False)
class Continue(Stmt):
    pass


@dataclass(eq=False)
class Return(Stmt):
    value: Expr | None


@dataclass(eq=False)
class ExprStmt(Stmt):
    value: Expr


@dataclass(eq=False)
class FuncIR:
    name: str
    filename: str
    firstline: int
    params: list[str]
    body: list[Stmt]
    py_func: Any


# -- what names can mean -----------------------------------------------------------------
MATH_FUNCS = {
    "sqrt": 1,
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
    "floor": 1,
    "ceil": 1,
    "trunc": 1,
    "fabs": 1,
    "pow": 2,
    "hypot": 2,
    "isnan": 1,
    "isinf": 1,
    "isfinite": 1,
    "copysign": 2,
    "fmod": 2,
}
BUILTIN_FUNCS = ("abs", "min", "max", "int", "float", "bool")
_MATH_BY_ID = {id(getattr(math, n)): n for n in MATH_FUNCS}
_BUILTIN_BY_ID = {id(getattr(builtins, n)): n for n in (*BUILTIN_FUNCS, "range", "len")}

_BINOPS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
}
_CMPOPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}

_ADVICE = {
    "List": "use an array argument (numpy array or jr.zeros) instead of a list",
    "Tuple": "tuples are only supported in assignments (a, b = x, y) and a.shape",
    "Dict": "dicts are not supported; use arrays",
    "Set": "sets are not supported; use arrays",
    "ListComp": "write a for loop that fills an array argument",
    "SetComp": "write a for loop",
    "DictComp": "write a for loop",
    "GeneratorExp": "write a for loop with a reduction variable (s += ...)",
    "Lambda": "define a top-level function decorated with @jr.jit and call it",
    "FunctionDef": "define it at top level, decorate it with @jr.jit and call it",
    "AsyncFunctionDef": "define a plain function at top level decorated with @jr.jit",
    "ClassDef": "define classes outside jitted functions",
    "Try": "check the condition with `if` before the operation instead",
    "Raise": "return a status value (e.g. -1) instead of raising",
    "With": "do the setup outside the jitted function",
    "Assert": "use an `if` instead",
    "Global": "pass the value as an argument",
    "Nonlocal": "pass the value as an argument",
    "Import": "import at module level (only `math` functions can be called)",
    "ImportFrom": "import at module level (only `math` functions can be called)",
    "Delete": "simply stop using the variable",
    "Yield": "write results into an array argument",
    "YieldFrom": "write results into an array argument",
    "Await": "call it outside",
    "Starred": "pass arguments one by one",
    "JoinedStr": "strings are not supported",
    "Slice": "index one element at a time in a loop (a[i], not a[i:j])",
    "Match": "use if/elif/else",
    "NamedExpr": "assign on a line of its own",
    "Subscript": "only arrays (a[i], a[i, j]) and a.shape[k] can be indexed",
}


def _construct(node: ast.AST) -> str:
    return type(node).__name__


class Frontend:
    """Builds the IR of one function (fresh IR for every compile, so typing can annotate)."""

    def __init__(self, py_func: Any, tree: ast.FunctionDef, filename: str, firstline: int) -> None:
        self.py_func = py_func
        self.tree = tree
        self.filename = filename
        self.firstline = firstline
        self.name = py_func.__name__
        self.locals = _assigned_names(tree)
        self._tmp = 0
        self._globals = dict(py_func.__globals__)
        code = py_func.__code__
        for name, cell in zip(code.co_freevars, py_func.__closure__ or (), strict=True):
            try:
                self._globals[name] = cell.cell_contents
            except ValueError:
                pass  # an empty cell: the name is not defined yet

    # -- errors ------------------------------------------------------------------------
    def line(self, node: ast.AST) -> int:
        return self.firstline + getattr(node, "lineno", 1) - 1

    def error(self, node: ast.AST, message: str, construct: str = "") -> JitError:
        return JitError(
            message,
            function=self.name,
            filename=self.filename,
            line=self.line(node),
            construct=construct or _construct(node),
        )

    def unsupported(self, node: ast.AST, what: str = "") -> JitError:
        kind = _construct(node)
        advice = _ADVICE.get(kind, "rewrite it with loops, scalars and array indexing")
        return self.error(
            node, f"{what or kind} is not supported in a jitted function: {advice}", kind
        )

    # -- entry -------------------------------------------------------------------------
    def build(self) -> FuncIR:
        args = self.tree.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
            raise self.error(
                self.tree,
                "*args, **kwargs, keyword-only and positional-only "
                "parameters are not supported: list the parameters plainly",
                "parameters",
            )
        params = [a.arg for a in args.args]
        body = list(self.tree.body)
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:]  # the docstring
        return FuncIR(
            self.name, self.filename, self.firstline, params, self.stmts(body), self.py_func
        )

    def tmp(self) -> str:
        self._tmp += 1
        return f"$t{self._tmp}"

    # -- statements --------------------------------------------------------------------
    def stmts(self, nodes: list[ast.stmt]) -> list[Stmt]:
        out: list[Stmt] = []
        for node in nodes:
            self.stmt(node, out)
        return out

    def stmt(self, node: ast.stmt, out: list[Stmt]) -> None:
        line = self.line(node)
        if isinstance(node, ast.Assign):
            self.assign(node, node.targets, node.value, out)
        elif isinstance(node, ast.AnnAssign):
            if node.value is None:
                return  # a bare annotation declares nothing at run time
            self.assign(node, [node.target], node.value, out)
        elif isinstance(node, ast.AugAssign):
            op = self.binop(node, node.op)
            value = self.expr(node.value)
            if isinstance(node.target, ast.Name):
                name = node.target.id
                out.append(Assign(line, name, Bin(line, op, Name(line, name), value), op))
            elif isinstance(node.target, ast.Subscript):
                array, index = self.subscript(node.target)
                load = Load(line, array, index, reuse=True)
                out.append(AugStore(line, array, index, Bin(line, op, load, value)))
            else:
                raise self.unsupported(node.target, "this augmented assignment target")
        elif isinstance(node, ast.If):
            out.append(
                If(line, self.expr(node.test), self.stmts(node.body), self.stmts(node.orelse))
            )
        elif isinstance(node, ast.While):
            if node.orelse:
                raise self.error(
                    node,
                    "while ... else is not supported: set a flag variable "
                    "before `break` and test it after the loop",
                    "while-else",
                )
            out.append(While(line, self.expr(node.test), self.stmts(node.body)))
        elif isinstance(node, ast.For):
            out.append(self.for_loop(node))
        elif isinstance(node, ast.Break):
            out.append(Break(line))
        elif isinstance(node, ast.Continue):
            out.append(Continue(line))
        elif isinstance(node, ast.Pass):
            pass
        elif isinstance(node, ast.Return):
            result = node.value
            if result is None or (isinstance(result, ast.Constant) and result.value is None):
                out.append(Return(line, None))
            else:
                out.append(Return(line, self.expr(result)))
        elif isinstance(node, ast.Expr):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return  # a string statement is a comment
            if not isinstance(node.value, ast.Call):
                raise self.error(
                    node,
                    "an expression statement does nothing: assign its value or remove it",
                    "expression statement",
                )
            out.append(ExprStmt(line, self.expr(node.value)))
        else:
            raise self.unsupported(node)

    def assign(
        self, node: ast.stmt, targets: list[ast.expr], value_node: ast.expr, out: list[Stmt]
    ) -> None:
        line = self.line(node)
        if len(targets) == 1 and isinstance(targets[0], ast.Tuple):
            self.tuple_assign(node, targets[0], value_node, out)
            return
        for t in targets:
            if isinstance(t, ast.Tuple):
                raise self.error(
                    t,
                    "chained assignment to a tuple is not supported: write "
                    "the unpacking on a line of its own",
                    "chained tuple assign",
                )
        value = self.expr(value_node)
        if len(targets) == 1:
            self.assign_one(targets[0], value, out)
            return
        tmp = self.tmp()  # `a = b = v`: evaluate v once
        out.append(Assign(line, tmp, value))
        for t in targets:
            self.assign_one(t, Name(line, tmp), out)

    def assign_one(self, target: ast.expr, value: Expr, out: list[Stmt]) -> None:
        line = self.line(target)
        if isinstance(target, ast.Name):
            out.append(Assign(line, target.id, value))
        elif isinstance(target, ast.Subscript):
            array, index = self.subscript(target)
            out.append(Store(line, array, index, value))
        else:
            raise self.unsupported(target, "this assignment target")

    def tuple_assign(
        self, node: ast.stmt, target: ast.Tuple, value_node: ast.expr, out: list[Stmt]
    ) -> None:
        line = self.line(node)
        if isinstance(value_node, ast.Attribute) and value_node.attr == "shape":
            array = self.array_name(value_node.value, "a.shape")
            names = []
            for t in target.elts:
                if not isinstance(t, ast.Name):
                    raise self.error(
                        t, "unpack a.shape into plain names: h, w = a.shape", "shape unpack"
                    )
                names.append(t.id)
            out.append(Unpack(line, names, array))
            return
        if not isinstance(value_node, ast.Tuple):
            raise self.error(
                value_node,
                "only a tuple (a, b = x, y) or an array's shape (h, w = a.shape) can be unpacked",
                "tuple unpack",
            )
        if len(value_node.elts) != len(target.elts):
            raise self.error(
                node,
                f"cannot unpack {len(value_node.elts)} values into {len(target.elts)} names",
                "tuple unpack",
            )
        temps = []
        for v in value_node.elts:  # Python evaluates the whole right side first
            tmp = self.tmp()
            out.append(Assign(line, tmp, self.expr(v)))
            temps.append(tmp)
        for t, tmp in zip(target.elts, temps, strict=True):
            self.assign_one(t, Name(line, tmp), out)

    def for_loop(self, node: ast.For) -> For:
        line = self.line(node)
        if node.orelse:
            raise self.error(
                node,
                "for ... else is not supported: set a flag variable before "
                "`break` and test it after the loop",
                "for-else",
            )
        if not isinstance(node.target, ast.Name):
            raise self.error(
                node.target,
                "a for loop needs one plain loop variable: for i in range(n)",
                "for target",
            )
        it = node.iter
        kind = self.resolve_call(it.func) if isinstance(it, ast.Call) else None
        if kind not in ("range", "prange"):
            raise self.error(
                it,
                "only `for i in range(...)` and `for i in jr.prange(...)` "
                "loops are supported: loop over indices and index the array",
                "for over an iterable",
            )
        assert isinstance(it, ast.Call)
        if it.keywords or not 1 <= len(it.args) <= 3:
            raise self.error(
                it,
                f"{kind}() takes 1 to 3 positional arguments: "
                f"{kind}(stop), {kind}(start, stop[, step])",
                kind,
            )
        args = [self.expr(a) for a in it.args]
        start: Expr
        step: Expr
        if len(args) == 1:
            start, stop, step = Const(line, 0), args[0], Const(line, 1)
        else:
            start, stop = args[0], args[1]
            step = args[2] if len(args) == 3 else Const(line, 1)
        return For(line, node.target.id, start, stop, step, self.stmts(node.body), kind == "prange")

    # -- expressions -------------------------------------------------------------------
    def binop(self, node: ast.AST, op: ast.operator) -> str:
        name = _BINOPS.get(type(op))
        if name is None:
            raise self.error(
                node,
                f"the operator {type(op).__name__} is not supported "
                "(supported: + - * / // % ** & | ^)",
                type(op).__name__,
            )
        return name

    def expr(self, node: ast.expr) -> Expr:
        line = self.line(node)
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, (bool, int, float)):
                if (
                    isinstance(v, int)
                    and not isinstance(v, bool)
                    and not -(1 << 63) <= v < (1 << 63)
                ):
                    raise self.error(
                        node, f"the integer {v} does not fit in int64", "integer literal"
                    )
                return Const(line, v)
            raise self.error(
                node,
                f"a {type(v).__name__} constant ({v!r}) is not supported: "
                "only int, float and bool values",
                "constant",
            )
        if isinstance(node, ast.Name):
            if node.id in self.locals:
                return Name(line, node.id)
            return self.global_value(node, self.lookup(node))
        if isinstance(node, ast.BinOp):
            return Bin(line, self.binop(node, node.op), self.expr(node.left), self.expr(node.right))
        if isinstance(node, ast.UnaryOp):
            operand = self.expr(node.operand)
            if isinstance(node.op, ast.UAdd):
                return operand
            if isinstance(node.op, ast.USub):
                if isinstance(operand, Const) and not isinstance(operand.value, bool):
                    return Const(line, -operand.value)
                return Unary(line, "-", operand)
            if isinstance(node.op, ast.Not):
                return Unary(line, "not", operand)
            return Unary(line, "~", operand)
        if isinstance(node, ast.BoolOp):
            return BoolOp(
                line,
                "and" if isinstance(node.op, ast.And) else "or",
                [self.expr(v) for v in node.values],
            )
        if isinstance(node, ast.Compare):
            ops = []
            for op in node.ops:
                name = _CMPOPS.get(type(op))
                if name is None:
                    raise self.error(
                        node,
                        f"the comparison {type(op).__name__} is not "
                        "supported: compare numbers with < <= > >= == !=",
                        type(op).__name__,
                    )
                ops.append(name)
            return Compare(
                line, ops, [self.expr(node.left)] + [self.expr(c) for c in node.comparators]
            )
        if isinstance(node, ast.IfExp):
            return IfExp(line, self.expr(node.test), self.expr(node.body), self.expr(node.orelse))
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Subscript):
            if isinstance(node.value, ast.Attribute) and node.value.attr == "shape":
                array = self.array_name(node.value.value, "a.shape[k]")
                axis = node.slice
                if not (isinstance(axis, ast.Constant) and type(axis.value) is int):
                    raise self.error(
                        node, "index a.shape with a constant: a.shape[0]", "a.shape[variable]"
                    )
                return ShapeOf(line, array, axis.value)
            array, index = self.subscript(node)
            return Load(line, array, index)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in self.locals:
                array = node.value.id
                if node.attr == "size":
                    return SizeOf(line, array)
                if node.attr == "ndim":
                    return NdimOf(line, array)
                if node.attr == "shape":
                    raise self.error(
                        node,
                        "a.shape can be unpacked (h, w = a.shape) or "
                        "indexed (a.shape[0]), not used as a value",
                        "a.shape",
                    )
                raise self.error(
                    node,
                    f"the attribute .{node.attr} is not supported (arrays "
                    "have .shape, .size and .ndim)",
                    f".{node.attr}",
                )
            return self.global_value(node, self.resolve(node))
        raise self.unsupported(node)

    def call(self, node: ast.Call) -> Expr:
        line = self.line(node)
        if node.keywords:
            raise self.error(
                node,
                "keyword arguments are not supported in calls inside a "
                "jitted function: pass them by position",
                "keyword argument",
            )
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.unsupported(a)
        kind = self.resolve_call(node.func)
        if kind in ("range", "prange"):
            raise self.error(node, f"{kind}() can only be used as the iterable of a for loop", kind)
        if kind == "len":
            if len(node.args) != 1:
                raise self.error(node, "len() takes one array", "len")
            return ShapeOf(line, self.array_name(node.args[0], "len(a)"), 0)
        args = [self.expr(a) for a in node.args]
        if isinstance(kind, str):
            return Call(line, kind, args)
        return JitCall(line, kind, args)

    def subscript(self, node: ast.Subscript) -> tuple[str, list[Expr]]:
        array = self.array_name(node.value, "indexing")
        sl = node.slice
        parts = sl.elts if isinstance(sl, ast.Tuple) else [sl]
        for p in parts:
            if isinstance(p, ast.Slice):
                raise self.unsupported(p, "slicing")
        return array, [self.expr(p) for p in parts]

    def array_name(self, node: ast.expr, what: str) -> str:
        if isinstance(node, ast.Name) and node.id in self.locals:
            return node.id
        raise self.error(node, f"{what} needs an array variable (a parameter) here", what)

    # -- globals -----------------------------------------------------------------------
    def lookup(self, node: ast.Name) -> Any:
        if node.id in self._globals:
            return self._globals[node.id]
        if hasattr(builtins, node.id):
            return getattr(builtins, node.id)
        raise self.error(
            node,
            f"the name {node.id!r} is not defined (not a parameter, a local variable or a global)",
            "undefined name",
        )

    def resolve(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Name):
            if node.id in self.locals:
                raise self.error(
                    node, f"{node.id!r} is a local variable, not a module", "attribute"
                )
            return self.lookup(node)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            try:
                return getattr(base, node.attr)
            except AttributeError:
                raise self.error(node, f"{ast.unparse(node)} does not exist", "attribute") from None
        raise self.unsupported(node)

    def resolve_call(self, func: ast.expr) -> Any:
        """'range', 'prange', 'len', a builtin or math name, or a jitted function."""
        if isinstance(func, ast.Name) and func.id in self.locals:
            raise self.error(func, f"{func.id!r} is a local variable and cannot be called", "call")
        obj = self.resolve(func)
        if (
            obj is prange
            or getattr(obj, "__name__", None) == "prange"
            and "numba" in type(obj).__module__
        ):
            return "prange"
        if id(obj) in _BUILTIN_BY_ID and obj is getattr(builtins, _BUILTIN_BY_ID[id(obj)]):
            return _BUILTIN_BY_ID[id(obj)]
        if id(obj) in _MATH_BY_ID and obj is getattr(math, _MATH_BY_ID[id(obj)]):
            return _MATH_BY_ID[id(obj)]
        if getattr(obj, "_jr_jit_dispatcher", False):
            return obj
        name = ast.unparse(func)
        raise self.error(
            func,
            f"{name} cannot be called from a jitted function: call math "
            "functions, abs/min/max/int/float/bool, or other @jr.jit functions "
            "(decorate it with @jr.jit)",
            f"call to {name}",
        )

    def global_value(self, node: ast.expr, value: Any) -> Expr:
        if isinstance(value, (bool, int, float)):
            return Const(self.line(node), value)  # frozen at compile time, as numba does
        raise self.error(
            node,
            f"{ast.unparse(node)} is a {type(value).__name__}; a global "
            "used as a value must be an int, float or bool (pass arrays as "
            "arguments)",
            "global value",
        )


def _assigned_names(tree: ast.FunctionDef) -> set[str]:
    names = {a.arg for a in tree.args.args}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


@dataclass
class Parsed:
    tree: ast.FunctionDef
    filename: str
    firstline: int


def parse(py_func: Any) -> Parsed:
    """The function's def node (read once per dispatcher)."""
    name = getattr(py_func, "__name__", "?")
    code = getattr(py_func, "__code__", None)
    if code is None:
        raise JitError(
            "only plain Python functions can be jitted", function=name, construct="not a function"
        )
    filename, firstline = code.co_filename, code.co_firstlineno
    try:
        source = inspect.getsource(py_func)
    except (OSError, TypeError):
        raise JitError(
            "its source code cannot be read (define it in a file or a notebook "
            "cell, not with exec or in a bare interactive prompt)",
            function=name,
            filename=filename,
            line=firstline,
            construct="source",
        ) from None
    module = ast.parse(textwrap.dedent(source))
    tree = module.body[0] if module.body else None
    if isinstance(tree, ast.AsyncFunctionDef):
        raise JitError(
            "async functions cannot be jitted",
            function=name,
            filename=filename,
            line=firstline,
            construct="async def",
        )
    if not isinstance(tree, ast.FunctionDef):
        raise JitError(
            "only functions defined with def can be jitted (not lambdas)",
            function=name,
            filename=filename,
            line=firstline,
            construct="lambda",
        )
    return Parsed(tree, filename, firstline)


def build_ir(py_func: Any, parsed: Parsed) -> FuncIR:
    return Frontend(py_func, parsed.tree, parsed.filename, parsed.firstline).build()
