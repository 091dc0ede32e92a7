"""The wasmtime-py internals we rely on are all in one shim; this fails the day they move."""

from __future__ import annotations

import importlib.metadata

import wasmtime as W

from jupyterlite_rayon.backends import wasmtime_compat


def test_the_pinned_wasmtime_is_installed() -> None:
    assert importlib.metadata.version("wasmtime") == wasmtime_compat.PINNED


def test_every_internal_the_shim_uses_exists() -> None:
    assert wasmtime_compat.check() == []


def test_a_shared_memory_can_be_linked() -> None:
    # The bug the shim fixes: SharedMemory._as_extern of 50.0.1 cannot be given to a Linker.
    cfg = W.Config()
    cfg.wasm_threads = True
    cfg.shared_memory = True
    eng = W.Engine(cfg)
    memory = W.SharedMemory(eng, W.MemoryType(W.Limits(1, 2), shared=True))
    module = W.Module(
        eng,
        '(module (import "env" "memory" (memory 1 2 shared))'
        ' (func (export "peek") (result i32) i32.const 8 i32.load))',
    )
    store = W.Store(eng)
    linker = W.Linker(eng)
    linker.define(store, "env", "memory", memory)
    instance = linker.instantiate(store, module)
    peek = wasmtime_compat.Export(store, instance.exports(store)["peek"])  # type: ignore[arg-type]
    assert peek() == 0


def test_a_trap_comes_back_as_its_cause() -> None:
    eng = W.Engine()
    module = W.Module(eng, '(module (func (export "boom") unreachable))')
    store = W.Store(eng)
    instance = W.Instance(store, module, [])
    boom = wasmtime_compat.Export(store, instance.exports(store)["boom"])  # type: ignore[arg-type]
    try:
        boom()
    except wasmtime_compat.TrapError as exc:
        assert "unreachable" in str(exc)
        assert "\n" not in str(exc)
    else:
        raise AssertionError("the trap was not raised")
