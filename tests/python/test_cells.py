"""Cells (jupyterlite_rayon/cells.py): a pool array's block is owned from before it exists, so a
KeyboardInterrupt on any bytecode leaks nothing. The interrupts here are injected at the exact
moments that leaked before (the random-signal test in test_pool.py sends real ones)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import jupyterlite_rayon as jr
from jupyterlite_rayon.cells import CELL_BYTES, SLAB_CELLS, read_cell

SLAB_BLOCK = SLAB_CELLS * CELL_BYTES + 16  # kernels/ABI.md: the block jr_alloc makes of it


@pytest.fixture
def backend() -> Iterator[Any]:
    jr.init_thread_pool(2)
    gc.collect()
    yield jr.get_backend()
    gc.collect()


def in_use() -> int:
    gc.collect()
    return int(jr.pool_info()["bytes_in_use"])


def interrupt_after(backend: Any, name: str, when: Callable[..., bool] = lambda *a: True) -> Any:
    """Make backend.<name> run, then raise KeyboardInterrupt (when `when(*args)`): the moment a
    signal lands right after a call returned its value. Returns the list of times it did."""
    real = getattr(backend, name)
    fired: list[bool] = []

    def wrapped(*args: Any) -> Any:
        value = real(*args)
        if when(*args):
            fired.append(True)
            raise KeyboardInterrupt
        return value

    setattr(backend, name, wrapped)
    return fired


def test_a_ctrl_c_right_after_the_allocation_returned_leaks_nothing(backend: Any) -> None:
    before = in_use()
    fired = interrupt_after(backend, "alloc_into")
    try:
        with pytest.raises(KeyboardInterrupt):
            jr.empty(250_000)
        with pytest.raises(KeyboardInterrupt):
            jr.asarray(np.arange(1000.0))
    finally:
        del backend.alloc_into
    assert len(fired) == 2
    assert in_use() == before
    x = np.arange(1001.0)
    assert jr.sum(x) == x.sum()


def test_a_ctrl_c_in_close_leaves_the_array_closed_and_the_finalizer_frees_it(
    backend: Any,
) -> None:
    before = in_use()
    a = jr.asarray(np.arange(500.0))

    def interrupted_before_the_free(cell: int) -> None:
        raise KeyboardInterrupt

    backend.free_cell = interrupted_before_the_free  # the signal lands inside close()
    try:
        with pytest.raises(KeyboardInterrupt):
            a.close()
    finally:
        del backend.free_cell
    assert a.closed
    with pytest.raises(ValueError, match="closed"):
        jr.sum(a)
    assert in_use() > before  # not freed yet: the array still exists
    del a
    assert in_use() == before


def test_close_twice_then_the_finalizer_frees_once(backend: Any) -> None:
    before = in_use()
    arrays = [jr.asarray(np.full(100, float(i))) for i in range(50)]
    for a in arrays:
        a.close()
        a.close()
    keep = [jr.asarray(np.full(100, -1.0)) for _ in range(50)]  # may reuse the freed blocks
    del arrays
    assert all(k.to_numpy().tolist() == [-1.0] * 100 for k in keep)
    del keep
    assert in_use() == before


def test_more_live_arrays_than_a_slab_has_cells(backend: Any) -> None:
    cells = backend.cells
    before, slabs = in_use(), cells.slabs
    arrays = [jr.asarray(np.array([float(i), -float(i)])) for i in range(3 * SLAB_CELLS)]
    grown = cells.slabs - slabs
    assert grown >= 2
    assert [a.tolist() for a in arrays[::97]] == [
        [float(i), -float(i)] for i in range(0, 3 * SLAB_CELLS, 97)
    ]
    del arrays
    assert in_use() == before + grown * SLAB_BLOCK
    again = [jr.zeros(3) for _ in range(3 * SLAB_CELLS)]
    assert cells.slabs - slabs == grown  # the freed cells served again
    del again
    assert in_use() == before + grown * SLAB_BLOCK


def test_a_ctrl_c_right_after_a_slab_was_allocated_keeps_the_slab(backend: Any) -> None:
    cells = backend.cells
    base, slabs = in_use(), cells.slabs
    arrays = []
    while cells._free:  # use up the free cells, so the next array adds a slab
        arrays.append(jr.zeros(1))
    link = cells._link
    fired = interrupt_after(backend, "alloc_into", lambda cell, *rest: cell == link)
    try:
        with pytest.raises(KeyboardInterrupt):
            jr.zeros(1)
    finally:
        del backend.alloc_into
    assert fired and read_cell(backend, link) != 0  # the slab exists; only its adding was cut
    more = [jr.zeros(1) for _ in range(10)]
    assert cells.slabs == slabs + 1  # the slab the interrupted growth made, not another
    del more, arrays
    assert in_use() == base + SLAB_BLOCK
