"""Picks the backend for this interpreter: pyodide in the browser, wasmtime in CPython."""

from __future__ import annotations

import os
import sys

from .base import Backend

IN_BROWSER = sys.platform == "emscripten"

if IN_BROWSER:
    # From the import on, not only once a pool starts: a pure-Python cell that never called
    # the pool stops on Interrupt too (isolated pages; elsewhere this does nothing).
    from .pyodide_backend import install_interrupts

    install_interrupts()


def backend_name() -> str:
    return "pyodide" if IN_BROWSER else "wasmtime"


def backend_class() -> type[Backend]:
    if IN_BROWSER:
        from .pyodide_backend import PyodideBackend

        return PyodideBackend
    from .wasmtime_backend import WasmtimeBackend

    return WasmtimeBackend


def cpu_count() -> int:
    """Cores offered to this interpreter, before any pool exists."""
    if IN_BROWSER:
        import js  # type: ignore[import-not-found]

        return int(getattr(js.navigator, "hardwareConcurrency", 1) or 1)
    return os.cpu_count() or 1


__all__ = ["IN_BROWSER", "Backend", "backend_class", "backend_name", "cpu_count"]
