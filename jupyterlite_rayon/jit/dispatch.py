"""The dispatcher: one compiled module per argument signature, like numba's.

At a call it classifies the arguments (runtime.classify), reuses the module compiled for
that signature or compiles a new one (frontend -> typeinfer -> parallel -> lower), and runs
it on the current host. Calls to other jitted functions are typed for their argument types
and compiled into the same module.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from . import frontend, runtime
from .errors import JitError
from .lower import lower
from .typeinfer import TypedFunc, Typer, infer, type_name

compile_count = 0  # modules compiled by every dispatcher (tests check a second call adds none)

NUMBA_OPTIONS = (
    "nopython",
    "nogil",
    "parallel",
    "fastmath",
    "cache",
    "error_model",
    "inline",
    "forceobj",
    "looplift",
    "debug",
    "no_cpython_wrapper",
)


class Dispatcher:
    """A jitted function. Call it like the Python function; `.py_func` is the original."""

    _jr_jit_dispatcher = True

    def __init__(self, py_func: Any, boundscheck: bool = True) -> None:
        if not inspect.isfunction(py_func):
            raise TypeError(f"jr.jit decorates functions, not {type(py_func).__name__}")
        functools.update_wrapper(self, py_func)
        self.py_func = py_func
        self.boundscheck = boundscheck
        self.compile_count = 0
        self._signature = inspect.signature(py_func)
        self._parsed: frontend.Parsed | None = None
        self._kernels: dict[tuple[tuple[Any, ...], bool], runtime.Kernel] = {}

    def __repr__(self) -> str:
        return f"<jitted function {self.py_func.__qualname__}>"

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self  # a jitted function stored on a class stays a plain function

    @property
    def signatures(self) -> list[tuple[str, ...]]:
        """The argument types compiled so far, e.g. [('float64[:, :]', 'int64')]."""
        seen = []
        for types, _ in self._kernels:
            sig = tuple(type_name(t) for t in types)
            if sig not in seen:
                seen.append(sig)
        return seen

    def inspect_wasm(self, signature: Any = None) -> str:
        """The WAT-like text of a compiled module (the first signature by default)."""
        kernel = self._find(signature)
        return kernel.text()

    def wasm_bytes(self, signature: Any = None) -> bytes:
        return self._find(signature).wasm

    def _find(self, signature: Any) -> runtime.Kernel:
        if not self._kernels:
            raise ValueError(f"{self.py_func.__name__} has not been compiled yet: call it once")
        if signature is None:
            return next(iter(self._kernels.values()))
        want = tuple(signature)
        for (types, _), kernel in self._kernels.items():
            if want in (types, tuple(type_name(t) for t in types)):
                return kernel
        raise ValueError(f"no compiled signature {want}; compiled: {self.signatures}")

    # -- calling -----------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.py_func.__name__}(): {exc}") from None
        bound.apply_defaults()
        host = runtime.current_host()
        classified = []
        for name, value in bound.arguments.items():
            try:
                classified.append(runtime.classify(value, host))
            except TypeError as exc:
                raise TypeError(self._no_signature(name, str(exc))) from None
        types = tuple(a.ty for a in classified)
        kernel = self._kernels.get((types, host.shared))
        if kernel is None:
            kernel = self.compile(types, host.shared)
        return kernel.run(host, classified)

    def _no_signature(self, name: str, got: str) -> str:
        have = "; ".join("(" + ", ".join(s) + ")" for s in self.signatures) or "none yet"
        return (
            f"{self.py_func.__name__}() cannot be compiled for argument {name!r}: it is "
            f"{got}. Jitted functions take ints, floats, bools and arrays (numpy arrays, "
            "PoolArrays, buffers) of float64, float32, int64, int32 or uint32 with 1 to 3 "
            f"dimensions. Compiled signatures: {have}"
        )

    def compile(self, types: tuple[Any, ...], shared: bool) -> runtime.Kernel:
        """Compile (or return) the module for these argument types."""
        global compile_count
        key = (types, shared)
        if key in self._kernels:
            return self._kernels[key]
        tf = self.typed(types, {}, [])
        lowered = lower(tf, shared, self.boundscheck)
        kernel = runtime.Kernel(tf, lowered, lowered.module.to_text)
        self._kernels[key] = kernel
        self.compile_count += 1
        compile_count += 1
        return kernel

    def parsed(self) -> frontend.Parsed:
        if self._parsed is None:
            self._parsed = frontend.parse(self.py_func)
        return self._parsed

    def typed(
        self, types: tuple[Any, ...], cache: dict[Any, TypedFunc], stack: list[Dispatcher]
    ) -> TypedFunc:
        """This function's IR typed for `types` (callees typed through `cache`)."""
        ir = frontend.build_ir(self.py_func, self.parsed())

        def resolve(
            callee: Dispatcher, argtypes: tuple[Any, ...], line: int, typer: Typer
        ) -> TypedFunc:
            if callee in stack or callee is self:
                raise typer.error(
                    line,
                    f"{callee.py_func.__name__} calls itself (directly or "
                    "through other functions): recursion is not supported; "
                    "write a loop",
                    "recursion",
                )
            if len(argtypes) != len(callee._signature.parameters):
                raise typer.error(
                    line,
                    f"{callee.py_func.__name__} takes "
                    f"{len(callee._signature.parameters)} arguments, "
                    f"{len(argtypes)} given",
                    "call",
                )
            key = (id(callee), argtypes)
            if key not in cache:
                cache[key] = callee.typed(argtypes, cache, [*stack, self])
            return cache[key]

        return infer(ir, types, resolve)


def jit(fn: Any = None, *, boundscheck: bool | None = True, **options: Any) -> Any:
    """Compile a function to WebAssembly that runs on the pool (`@jr.jit` or `@jr.jit(...)`).

    boundscheck: check every array index (IndexError naming array and index); default on.
    numba's options (nopython, nogil, parallel, fastmath, cache, ...) are accepted so numba
    code pastes in; they change nothing (code is always compiled, prange is always parallel).
    """
    for name in options:
        if name not in NUMBA_OPTIONS:
            raise TypeError(
                f"jr.jit got an unknown option {name!r}; it takes boundscheck= "
                f"and numba's {', '.join(NUMBA_OPTIONS)}"
            )
    if options.get("forceobj"):
        raise JitError(
            "forceobj=True (object mode) is not available: the jit compiles only",
            construct="forceobj",
        )
    check = True if boundscheck is None else bool(boundscheck)

    def wrap(f: Any) -> Dispatcher:
        return Dispatcher(f, check)

    if fn is None:
        return wrap
    if isinstance(fn, (str, tuple, list)):  # numba's explicit signatures: specialise lazily
        return wrap
    return wrap(fn)
