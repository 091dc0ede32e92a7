"""A small WebAssembly binary encoder and text printer (only what the jit emits).

Functions are built as lists of (opcode name, immediates); `Module.encode()` writes the
binary (types, imports, functions, exports, element segment, code; LEB128 throughout) and
`Module.to_text()` prints the same instructions as WAT-like text for `.inspect_wasm()`.
Calls name their target by key ("$main", "pool.jr_jit_poll") and are resolved at encode time,
because imports must precede defined functions in the index space and the lowering only
learns which imports it needs as it goes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

VALTYPES = {"i32": 0x7F, "i64": 0x7E, "f32": 0x7D, "f64": 0x7C, "v128": 0x7B}
FUNCREF = 0x70

# name -> (opcode bytes, immediate kind). Kinds: "" none, "u" uleb (index/label),
# "bt" block type, "mem" memarg (align, offset), "s32"/"s64" sleb, "f32"/"f64" IEEE bytes,
# "call" a function key resolved at encode time.
_OPS: dict[str, tuple[bytes, str]] = {
    "unreachable": (b"\x00", ""),
    "nop": (b"\x01", ""),
    "block": (b"\x02", "bt"),
    "loop": (b"\x03", "bt"),
    "if": (b"\x04", "bt"),
    "else": (b"\x05", ""),
    "end": (b"\x0b", ""),
    "br": (b"\x0c", "u"),
    "br_if": (b"\x0d", "u"),
    "return": (b"\x0f", ""),
    "call": (b"\x10", "call"),
    "drop": (b"\x1a", ""),
    "select": (b"\x1b", ""),
    "local.get": (b"\x20", "u"),
    "local.set": (b"\x21", "u"),
    "local.tee": (b"\x22", "u"),
    "global.get": (b"\x23", "u"),
    "i32.load": (b"\x28", "mem"),
    "i64.load": (b"\x29", "mem"),
    "f32.load": (b"\x2a", "mem"),
    "f64.load": (b"\x2b", "mem"),
    "i64.load32_s": (b"\x34", "mem"),
    "i64.load32_u": (b"\x35", "mem"),
    "i32.store": (b"\x36", "mem"),
    "i64.store": (b"\x37", "mem"),
    "f32.store": (b"\x38", "mem"),
    "f64.store": (b"\x39", "mem"),
    "i64.store32": (b"\x3e", "mem"),
    "i32.const": (b"\x41", "s32"),
    "i64.const": (b"\x42", "s64"),
    "f32.const": (b"\x43", "f32"),
    "f64.const": (b"\x44", "f64"),
    "i32.atomic.rmw.cmpxchg": (b"\xfe\x48", "mem"),
}


def _fill(base: int, names: str) -> None:
    for i, name in enumerate(names.split()):
        _OPS[name] = (bytes([base + i]), "")


_fill(
    0x45,
    "i32.eqz i32.eq i32.ne i32.lt_s i32.lt_u i32.gt_s i32.gt_u i32.le_s i32.le_u "
    "i32.ge_s i32.ge_u i64.eqz i64.eq i64.ne i64.lt_s i64.lt_u i64.gt_s i64.gt_u i64.le_s "
    "i64.le_u i64.ge_s i64.ge_u f32.eq f32.ne f32.lt f32.gt f32.le f32.ge f64.eq f64.ne "
    "f64.lt f64.gt f64.le f64.ge i32.clz i32.ctz i32.popcnt i32.add i32.sub i32.mul "
    "i32.div_s i32.div_u i32.rem_s i32.rem_u i32.and i32.or i32.xor i32.shl i32.shr_s "
    "i32.shr_u i32.rotl i32.rotr i64.clz i64.ctz i64.popcnt i64.add i64.sub i64.mul "
    "i64.div_s i64.div_u i64.rem_s i64.rem_u i64.and i64.or i64.xor i64.shl i64.shr_s "
    "i64.shr_u i64.rotl i64.rotr f32.abs f32.neg f32.ceil f32.floor f32.trunc f32.nearest "
    "f32.sqrt f32.add f32.sub f32.mul f32.div f32.min f32.max f32.copysign f64.abs f64.neg "
    "f64.ceil f64.floor f64.trunc f64.nearest f64.sqrt f64.add f64.sub f64.mul f64.div "
    "f64.min f64.max f64.copysign i32.wrap_i64 i32.trunc_f32_s i32.trunc_f32_u "
    "i32.trunc_f64_s i32.trunc_f64_u i64.extend_i32_s i64.extend_i32_u i64.trunc_f32_s "
    "i64.trunc_f32_u i64.trunc_f64_s i64.trunc_f64_u f32.convert_i32_s f32.convert_i32_u "
    "f32.convert_i64_s f32.convert_i64_u f32.demote_f64 f64.convert_i32_s f64.convert_i32_u "
    "f64.convert_i64_s f64.convert_i64_u f64.promote_f32 i32.reinterpret_f32 "
    "i64.reinterpret_f64 f32.reinterpret_i32 f64.reinterpret_i64",
)
for _sub, _op in enumerate(
    [
        "i32.trunc_sat_f32_s",
        "i32.trunc_sat_f32_u",
        "i32.trunc_sat_f64_s",
        "i32.trunc_sat_f64_u",
        "i64.trunc_sat_f32_s",
        "i64.trunc_sat_f32_u",
        "i64.trunc_sat_f64_s",
        "i64.trunc_sat_f64_u",
    ]
):
    _OPS[_op] = (b"\xfc" + bytes([_sub]), "")


# SIMD (prefix 0xfd, then the opcode as uleb): the subset the vectorised loops use.
_SIMD: dict[str, tuple[int, str]] = {
    "v128.load": (0x00, "mem"),
    "v128.load32x2_s": (0x05, "mem"),
    "v128.load32x2_u": (0x06, "mem"),
    "v128.store": (0x0B, "mem"),
    "i64x2.splat": (0x12, ""),
    "f64x2.splat": (0x14, ""),
    "i64x2.extract_lane": (0x1D, "lane"),
    "i64x2.replace_lane": (0x1E, "lane"),
    "f64x2.extract_lane": (0x21, "lane"),
    "f64x2.replace_lane": (0x22, "lane"),
    "f64x2.eq": (0x47, ""),
    "f64x2.ne": (0x48, ""),
    "f64x2.lt": (0x49, ""),
    "f64x2.gt": (0x4A, ""),
    "f64x2.le": (0x4B, ""),
    "f64x2.ge": (0x4C, ""),
    "v128.not": (0x4D, ""),
    "v128.and": (0x4E, ""),
    "v128.andnot": (0x4F, ""),
    "v128.or": (0x50, ""),
    "v128.xor": (0x51, ""),
    "v128.bitselect": (0x52, ""),
    "v128.any_true": (0x53, ""),
    "v128.load64_zero": (0x5D, "mem"),
    "f64x2.promote_low_f32x4": (0x5F, ""),
    "i64x2.neg": (0xC1, ""),
    "i64x2.all_true": (0xC3, ""),
    "i64x2.add": (0xCE, ""),
    "i64x2.sub": (0xD1, ""),
    "i64x2.mul": (0xD5, ""),
    "i64x2.eq": (0xD6, ""),
    "i64x2.ne": (0xD7, ""),
    "i64x2.lt_s": (0xD8, ""),
    "i64x2.gt_s": (0xD9, ""),
    "i64x2.le_s": (0xDA, ""),
    "i64x2.ge_s": (0xDB, ""),
    "f64x2.abs": (0xEC, ""),
    "f64x2.neg": (0xED, ""),
    "f64x2.sqrt": (0xEF, ""),
    "f64x2.add": (0xF0, ""),
    "f64x2.sub": (0xF1, ""),
    "f64x2.mul": (0xF2, ""),
    "f64x2.div": (0xF3, ""),
    "f64x2.pmin": (0xF6, ""),
    "f64x2.pmax": (0xF7, ""),
}


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


for _simd_name, (_code, _kind) in _SIMD.items():
    _OPS[_simd_name] = (b"\xfd" + uleb(_code), _kind)


def _vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def _name(s: str) -> bytes:
    raw = s.encode()
    return uleb(len(raw)) + raw


@dataclass
class Function:
    """One defined function: its signature, extra locals and instruction list."""

    key: str
    params: list[str]
    results: list[str]
    locals: list[str] = field(default_factory=list)
    code: list[tuple[object, ...]] = field(default_factory=list)

    def local(self, valtype: str) -> int:
        self.locals.append(valtype)
        return len(self.params) + len(self.locals) - 1

    def op(self, name: str, *imm: object) -> None:
        self.code.append((name, *imm))


@dataclass
class _Import:
    module: str
    name: str
    kind: str  # func, table, memory, global
    params: tuple[str, ...] = ()
    results: tuple[str, ...] = ()
    shared: bool = False


class Module:
    """A module being built: imports in order of first use, then defined functions."""

    def __init__(self) -> None:
        self.imports: list[_Import] = []
        self._func_imports: dict[str, _Import] = {}
        self.functions: list[Function] = []
        self.exports: list[tuple[str, str]] = []
        self.elem_global: int | None = None
        self.elem_funcs: list[str] = []

    # -- building ----------------------------------------------------------------------
    def import_memory(self, shared: bool, min_pages: int, max_pages: int) -> None:
        self.imports.append(
            _Import("env", "memory", "memory", (str(min_pages),), (str(max_pages),), shared)
        )

    def import_table(self) -> None:
        self.imports.append(_Import("env", "table", "table"))

    def import_global_i32(self, module: str, name: str) -> int:
        index = sum(1 for i in self.imports if i.kind == "global")
        self.imports.append(_Import(module, name, "global", ("i32",)))
        return index

    def func_import(
        self, module: str, name: str, params: tuple[str, ...], results: tuple[str, ...]
    ) -> str:
        """The call key of an imported function, importing it on first use."""
        key = f"{module}.{name}"
        if key not in self._func_imports:
            imp = _Import(module, name, "func", params, results)
            self._func_imports[key] = imp
            self.imports.append(imp)
        return key

    def add_function(self, fn: Function) -> None:
        self.functions.append(fn)

    def function_index(self) -> dict[str, int]:
        index: dict[str, int] = {}
        for imp in self.imports:
            if imp.kind == "func":
                index[f"{imp.module}.{imp.name}"] = len(index)
        for fn in self.functions:
            index[fn.key] = len(index)
        return index

    # -- binary ------------------------------------------------------------------------
    def encode(self) -> bytes:
        types: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}

        def type_index(params: tuple[str, ...], results: tuple[str, ...]) -> int:
            return types.setdefault((params, results), len(types))

        funcs = self.function_index()
        imports = []
        for imp in self.imports:
            head = _name(imp.module) + _name(imp.name)
            if imp.kind == "func":
                imports.append(head + b"\x00" + uleb(type_index(imp.params, imp.results)))
            elif imp.kind == "table":
                imports.append(head + bytes([0x01, FUNCREF, 0x00]) + uleb(0))
            elif imp.kind == "memory":
                flag = 0x03 if imp.shared else 0x01
                imports.append(
                    head
                    + bytes([0x02, flag])
                    + uleb(int(imp.params[0]))
                    + uleb(int(imp.results[0]))
                )
            else:
                imports.append(head + bytes([0x03, VALTYPES["i32"], 0x00]))
        func_types = [uleb(type_index(tuple(f.params), tuple(f.results))) for f in self.functions]
        bodies = [self._encode_body(f, funcs) for f in self.functions]
        type_sec = [
            b"\x60"
            + _vec([bytes([VALTYPES[p]]) for p in params])
            + _vec([bytes([VALTYPES[r]]) for r in results])
            for (params, results) in types
        ]
        out = bytearray(b"\x00asm\x01\x00\x00\x00")

        def section(sid: int, payload: bytes) -> None:
            out.append(sid)
            out.extend(uleb(len(payload)))
            out.extend(payload)

        section(1, _vec(type_sec))
        section(2, _vec(imports))
        section(3, _vec(func_types))
        section(7, _vec([_name(name) + b"\x00" + uleb(funcs[key]) for name, key in self.exports]))
        if self.elem_global is not None and self.elem_funcs:
            offset = b"\x23" + uleb(self.elem_global) + b"\x0b"
            seg = b"\x00" + offset + _vec([uleb(funcs[k]) for k in self.elem_funcs])
            section(9, _vec([seg]))
        section(10, _vec([uleb(len(b)) + b for b in bodies]))
        return bytes(out)

    @staticmethod
    def _encode_body(fn: Function, funcs: dict[str, int]) -> bytes:
        groups: list[bytes] = []
        run_type, run = None, 0
        for vt in fn.locals:
            if vt == run_type:
                run += 1
                continue
            if run_type is not None:
                groups.append(uleb(run) + bytes([VALTYPES[run_type]]))
            run_type, run = vt, 1
        if run_type is not None:
            groups.append(uleb(run) + bytes([VALTYPES[run_type]]))
        code = bytearray(_vec(groups))
        ops = _OPS
        for ins in fn.code:
            opcode, kind = ops[ins[0]]  # type: ignore[index]
            code.extend(opcode)
            if not kind:
                continue
            arg = ins[1]
            if kind == "u":
                code.extend(uleb(arg))  # type: ignore[arg-type]
            elif kind == "s64" or kind == "s32":
                code.extend(sleb(arg))  # type: ignore[arg-type]
            elif kind == "mem":
                code.extend(uleb(arg))  # type: ignore[arg-type]
                code.extend(uleb(ins[2]))  # type: ignore[arg-type]
            elif kind == "bt":
                code.append(0x40 if arg is None else VALTYPES[arg])  # type: ignore[index]
            elif kind == "call":
                code.extend(uleb(funcs[arg]))  # type: ignore[index]
            elif kind == "lane":
                code.append(arg)  # type: ignore[arg-type]
            elif kind == "f64":
                code.extend(struct.pack("<d", arg))
            else:
                code.extend(struct.pack("<f", arg))
        code.append(0x0B)
        return bytes(code)

    # -- text --------------------------------------------------------------------------
    def to_text(self) -> str:
        lines = ["(module"]
        for imp in self.imports:
            head = f'  (import "{imp.module}" "{imp.name}"'
            if imp.kind == "func":
                lines.append(
                    f"{head} (func ${imp.module}.{imp.name}{_sig(imp.params, imp.results)}))"
                )
            elif imp.kind == "table":
                lines.append(f"{head} (table 0 funcref))")
            elif imp.kind == "memory":
                shared = " shared" if imp.shared else ""
                lines.append(f"{head} (memory {imp.params[0]} {imp.results[0]}{shared}))")
            else:
                lines.append(f"{head} (global i32))")
        if self.elem_funcs:
            names = " ".join(self.elem_funcs)
            lines.append(f"  (elem (global.get {self.elem_global}) func {names})")
        for fn in self.functions:
            lines.append(f"  (func {fn.key}{_sig(tuple(fn.params), tuple(fn.results))}")
            if fn.locals:
                lines.append("    (local " + " ".join(fn.locals) + ")")
            depth = 2
            for ins in fn.code:
                name = str(ins[0])
                if name in ("end", "else"):
                    depth -= 1
                imm = ins[1:]
                if name in ("block", "loop", "if"):
                    text = name + (f" (result {imm[0]})" if imm[0] is not None else "")
                elif imm:
                    text = name + " " + " ".join(str(i) for i in imm)
                else:
                    text = name
                lines.append("  " * depth + text)
                if name in ("block", "loop", "if", "else"):
                    depth += 1
            lines.append("  )")
        for name, key in self.exports:
            lines.append(f'  (export "{name}" (func {key}))')
        lines.append(")")
        return "\n".join(lines)


def _sig(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    text = ""
    if params:
        text += " (param " + " ".join(params) + ")"
    if results:
        text += " (result " + " ".join(results) + ")"
    return text
