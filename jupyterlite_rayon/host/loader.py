"""Loading the JS host's ES modules in a browser without a bundler: one Blob URL per module.

A module imported from a Blob URL has no base URL, so its relative imports (`'./errors.mjs'`)
cannot resolve. `module_graph()` lists the host's modules with their sources, dependencies
first; `rewrite()` replaces each relative specifier by the URL of a module made before it;
`link()` does both with a URL maker and returns every module's URL. In the Pyodide backend:

    urls = loader.link(lambda name, source: blob_url(source))   # in module_graph() order
    host = await import_url(urls[loader.ENTRY])

Only the static forms `import ... from './x.mjs'`, `import './x.mjs'` and
`export ... from './x.mjs'` are rewritten. Dynamic `import('node:...')` is allowed (the host
takes it only under Node); any other dynamic import, `import.meta`, a static import of anything
but a sibling `./x.mjs`, an import cycle, or a statement these forms do not cover is refused
with ModuleGraphError (the tests run this over the packaged host). Pure Python: no `js` import.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

#: the host's entry module (its public API)
ENTRY = "index.mjs"
#: where the host's modules live (this package's folder)
HOST_DIR = Path(__file__).resolve().parent

_Q = r"(?P<q>['\"])(?P<spec>[^'\"\n]*)(?P=q)"
# The static forms, each at the start of a line (the host's style; nothing else is accepted).
_STATIC = [
    re.compile(rf"^import[ \t]*(?:[\w$*{{}},\s]+?)\s*from\s*{_Q}", re.MULTILINE),
    re.compile(rf"^import[ \t]*{_Q}", re.MULTILINE),
    re.compile(
        rf"^export[ \t]*(?:\*(?:\s*as\s+[\w$]+)?|\{{[\w$,\s]*\}})\s*from\s*{_Q}", re.MULTILINE
    ),
]
# Lines that start a statement one of the forms above must cover.
_IMPORT_LINE = re.compile(r"^[ \t]*import\b(?![ \t]*[.(])", re.MULTILINE)
_EXPORT_FROM_LINE = re.compile(r"^[ \t]*export[ \t]*[*{]", re.MULTILINE)
_LOCAL_EXPORT_LIST = re.compile(r"^export[ \t]*\{[\w$,\s]*\}\s*;", re.MULTILINE)
_DYNAMIC = re.compile(r"\bimport\s*\(\s*(?P<arg>[^)]*?)\s*\)")
_META = re.compile(r"\bimport\s*\.\s*meta\b")
# Comments (whole-line `//` and `/* */`) are blanked before looking for dynamic imports, so prose
# like "its memory import (or ...)" is not taken for one.
_COMMENT = re.compile(r"^[ \t]*//[^\n]*|/\*.*?\*/", re.MULTILINE | re.DOTALL)
_SIBLING = re.compile(r"^\./(?P<name>[\w.-]+\.mjs)$")
_NODE_BUILTIN = re.compile(r"^(['\"])node:[\w/]+\1$")


class ModuleGraphError(ValueError):
    """A host module uses an import form the Blob URL loader cannot rewrite."""


def _specifiers(source: str, name: str) -> list[tuple[int, int, str]]:
    """(start, end, module name) of every static relative specifier literal, in source order."""
    found: dict[int, tuple[int, int, str]] = {}
    for pattern in _STATIC:
        for m in pattern.finditer(source):
            spec = m.group("spec")
            sibling = _SIBLING.match(spec)
            if not sibling:
                raise ModuleGraphError(
                    f"{name}: line {_line(source, m.start())} imports {spec!r}; the Blob URL "
                    "loader only links sibling modules ('./x.mjs'): a browser cannot resolve "
                    "anything else from a Blob URL (use a dynamic import('node:...') for Node "
                    "built-ins)"
                )
            found[m.start()] = (m.start("spec") - 1, m.end("spec") + 1, sibling.group("name"))
    for pattern, what in ((_IMPORT_LINE, "import"), (_EXPORT_FROM_LINE, "export")):
        for m in pattern.finditer(source):
            start = m.start() + len(m.group()) - len(m.group().lstrip())
            if start in found or (what == "export" and _LOCAL_EXPORT_LIST.match(source, start)):
                continue
            raise ModuleGraphError(
                f"{name}: line {_line(source, start)} has an {what} statement the Blob URL "
                f"loader does not support; write it on its own line as `import ... from "
                f"'./x.mjs';` or `export ... from './x.mjs';` (no comments inside)"
            )
    code = _COMMENT.sub(lambda c: re.sub(r"[^\n]", " ", c.group()), source)
    for m in _DYNAMIC.finditer(code):
        if not _NODE_BUILTIN.match(m.group("arg")):
            raise ModuleGraphError(
                f"{name}: line {_line(source, m.start())} has a dynamic import of "
                f"{m.group('arg')}; only import('node:...') is allowed (Node built-ins): "
                "import host modules statically so the loader can link them"
            )
    meta = _META.search(code)
    if meta:
        raise ModuleGraphError(
            f"{name}: line {_line(source, meta.start())} uses import.meta, which a module "
            "loaded from a Blob URL cannot use (it has no base URL)"
        )
    return [found[k] for k in sorted(found)]


def _line(source: str, offset: int) -> int:
    return source.count("\n", 0, offset) + 1


def imports(source: str, name: str = "<source>") -> list[str]:
    """The sibling modules `source` imports statically ('errors.mjs'), in order, no repeats."""
    return list(dict.fromkeys(module for _, _, module in _specifiers(source, name)))


def module_graph(entry: str = ENTRY, root: Path = HOST_DIR) -> list[tuple[str, str]]:
    """(file name, source) of `entry` and every module it imports, each after its imports."""
    order: list[tuple[str, str]] = []
    state: dict[str, str] = {}  # name -> "visiting" | "done"

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join((*chain[chain.index(name) :], name))
            raise ModuleGraphError(
                f"import cycle {cycle}: Blob URLs must be made dependencies first, so the host's "
                "modules cannot import each other in a circle"
            )
        path = root / name
        if not path.is_file():
            importer = f"{chain[-1]} imports" if chain else "the entry is"
            raise ModuleGraphError(f"{importer} {name!r}, which is not a file in {root}")
        state[name] = "visiting"
        source = path.read_text(encoding="utf-8")
        for dependency in imports(source, name):
            visit(dependency, (*chain, name))
        state[name] = "done"
        order.append((name, source))

    visit(entry, ())
    return order


def rewrite(source: str, urls: dict[str, str], name: str = "<source>") -> str:
    """`source` with each './x.mjs' specifier replaced by urls['x.mjs'] (a JS string literal)."""
    out = source
    for start, end, module in reversed(_specifiers(source, name)):
        if module not in urls:
            raise ModuleGraphError(
                f"{name} imports './{module}', which has no URL yet: make the modules' URLs in "
                "module_graph() order (each module after the ones it imports)"
            )
        literal = '"' + urls[module].replace("\\", "\\\\").replace('"', '\\"') + '"'
        out = out[:start] + literal + out[end:]
    return out


def link(
    make_url: Callable[[str, str], str], entry: str = ENTRY, root: Path = HOST_DIR
) -> dict[str, str]:
    """Make one URL per module with make_url(file name, rewritten source), dependencies first.

    Returns {file name: URL} in that order; import urls[entry] to get the host's API.
    """
    urls: dict[str, str] = {}
    for name, source in module_graph(entry, root):
        urls[name] = make_url(name, rewrite(source, urls, name))
    return urls
