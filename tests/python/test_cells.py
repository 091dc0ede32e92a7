"""Cells (jupyterlite_rayon/cells.py): a pool array's block is owned from before it exists, so a
KeyboardInterrupt on any bytecode leaks nothing. The interrupts here are injected at the exact
moments that leaked before (the random-signal test in test_pool.py sends real ones)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import jupyterlite_rayon as jr
from jupyterlite_rayon import cells as cells_module
from jupyterlite_rayon.array import pool_arena
from jupyterlite_rayon.cells import CELL_BYTES, SLAB_CELLS, read_cell
from jupyterlite_rayon.errors import PoolMemoryError

SLAB_BLOCK = SLAB_CELLS * CELL_BYTES + 16  # kernels/ABI.md: the block jr_alloc makes of it


@pytest.fixture
def backend() -> Iterator[Any]:
    jr.init_thread_pool(2)
    gc.collect()
    pool_arena().free_kept()  # whatever earlier tests left kept: each test starts with none
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
    a = jr.asarray(np.arange(50_000.0))  # too big to be kept for reuse: close frees it

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


def test_a_small_freed_block_serves_the_next_array_of_its_size_without_a_call(
    backend: Any,
) -> None:
    before = in_use()
    allocations: list[int] = []
    real = backend.alloc_into

    def counted(cell: int, nbytes: int, zero: bool) -> int:
        allocations.append(nbytes)
        return int(real(cell, nbytes, zero))

    backend.alloc_into = counted
    try:
        a = jr.asarray(np.arange(1000.0))
        ptr = a.ptr
        a.close()
        b = jr.zeros(1000)  # the same size: a's block, zeroed
        assert b.ptr == ptr and b.to_numpy().tolist() == [0.0] * 1000
        del b
        x = jr.asarray(np.arange(8.0))
        for _ in range(100):
            jr.sqrt(x)  # each output is dropped: the next one takes its block
        assert jr.sqrt(x).to_numpy().tolist() == np.sqrt(np.arange(8.0)).tolist()
        big = jr.empty(cells_module.KEEP_MAX_BYTES // 8 + 1)  # too big to be kept
        del big
        big = jr.empty(cells_module.KEEP_MAX_BYTES // 8 + 1)
        del big, x
    finally:
        del backend.alloc_into
    assert allocations.count(8000) == 1
    assert allocations.count(64) <= 2  # x, and the first sqrt output
    assert allocations.count(cells_module.KEEP_MAX_BYTES + 8) == 2
    info = jr.pool_info()
    assert info["bytes_kept"] > 0  # counted apart: bytes_in_use is what arrays hold
    assert in_use() == before


def test_kept_blocks_are_bounded_and_freed_when_memory_runs_short(backend: Any) -> None:
    arena = pool_arena()
    before = in_use()
    many = [jr.empty(n) for n in range(1, 40) for _ in range(12)]  # 39 sizes, 12 of each
    del many
    kept = jr.pool_info()["bytes_kept"]
    counts = arena.kept.counts()
    assert len(counts) == cells_module.KEEP_SIZES
    assert set(counts.values()) == {cells_module.KEEP_PER_SIZE}
    assert 0 < kept <= cells_module.KEEP_SIZES * cells_module.KEEP_PER_SIZE * (8 * 40 + 32)
    assert arena.free_kept()  # what an allocation that finds no memory does, then retries
    assert jr.pool_info()["bytes_kept"] == 0 and not arena.free_kept()
    assert in_use() == before
    # Emptied sizes make way for new ones.
    fresh = [jr.empty(n) for n in range(100, 100 + cells_module.KEEP_SIZES)]
    del fresh
    assert set(arena.kept.counts()) >= {8 * n for n in range(100, 100 + cells_module.KEEP_SIZES)}


def test_an_allocation_that_finds_no_memory_frees_the_kept_blocks_and_retries(
    backend: Any,
) -> None:
    try:
        big, small = [], []
        with pytest.raises(PoolMemoryError):
            while True:
                big.append(jr.empty(2**23))  # 64 MiB each, until the 2 GiB are taken
        with pytest.raises(PoolMemoryError):
            while True:
                small.append(jr.empty(100))  # the rest, 816-byte blocks side by side
        del small[-cells_module.KEEP_PER_SIZE :]  # kept for reuse, not freed
        assert jr.pool_info()["bytes_kept"] > 0
        x = jr.empty(300)  # fits only where the kept blocks merge once they are freed
        assert jr.pool_info()["bytes_kept"] == 0
        assert x.size == 300 and x.ptr
    finally:
        del big, small
        jr.shutdown()  # wasm memory never shrinks: give the 2 GiB back


def test_a_ctrl_c_that_lands_in_a_finalizer_is_raised_after_it_not_dropped(
    backend: Any,
) -> None:
    a = jr.asarray(np.arange(50_000.0))  # too big to be kept: its finalizer frees it

    def interrupted(ptr: int) -> None:
        raise KeyboardInterrupt  # the signal lands inside the finalizer

    backend.free_soon = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            del a  # Python drops what a finalizer raises; the finalizer raises it again
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # where it lands: the code that was interrupted
                pass
    finally:
        del backend.free_soon
