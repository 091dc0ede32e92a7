"""Cells: u32 slots of pool memory through which a block is owned from before it exists.

CPython and Pyodide raise KeyboardInterrupt between any two bytecodes, so an address that
jr_alloc returns can be dropped before anything holds it, and its block leaks. So an owner (a
PoolArray, a jitted call's frame) first holds a cell and what frees it, and the pool writes the
address into the cell inside the allocating call (kernels/ABI.md, jr_alloc_into).

A cell is always in exactly one list: the free cells, an owner's holder, or the blocks kept
for reuse. It moves between two by one C call (`move`: list.extend of a one-item islice over
list.pop), so an interrupt lands before or after a move, never inside one. Then each step is
whole or not done when an interrupt lands:

- the owner (array.Block) can free from the moment it exists, before its cell or block;
- jr_alloc_into stores the address into the cell before it returns;
- closing is jr_free_cell, which swaps the cell to 0 and frees in one step, so the finalizer
  that follows (it reads the cell) frees nothing twice.

A finalizer itself can still be interrupted, as any Python code can; its block then stays
allocated until the pool is shut down (and the Ctrl-C, which Python would drop there, is
raised again once the finalizer returned: array._interrupt_again).

Cells come in slabs of SLAB_CELLS from the pool, the first allocated with the pool. A slab's
first cell holds the next slab's address (jr_alloc_into again), so slabs cannot leak either;
they live as long as the pool.

Small freed blocks are kept in their cells for the next request of the same size (`Kept`): a
call into the pool costs some 2 us in CPython (more in Pyodide), and allocating plus freeing
is two of them, so a loop of small calls would spend most of its time there. numpy keeps
small blocks for reuse for the same reason.
"""

from __future__ import annotations

import threading
from itertools import islice
from typing import Any

SLAB_CELLS = 1024
CELL_BYTES = 4
#: Blocks of at most this many bytes are kept for reuse when freed...
KEEP_MAX_BYTES = 16 * 1024
#: ...at most this many of one size, for at most KEEP_SIZES sizes (so at most 2 MiB).
KEEP_PER_SIZE = 8
KEEP_SIZES = 16


def move(src: list[int], dst: list[int]) -> bool:
    """Move src's last cell to dst in one C call; False when src is empty."""
    try:
        dst.extend(islice(iter(src.pop, None), 1))
    except IndexError:
        return False
    return True


class Cells:
    """The free cells of one pool (one per backend)."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._free: list[int] = []
        self._link = 0  # the cell that will hold the next slab's address
        self.slabs = 0
        self._add_slab(int(backend.alloc(SLAB_CELLS * CELL_BYTES, True)))

    def take(self, holder: list[int]) -> None:
        """Move a free cell into `holder` (empty)."""
        while not move(self._free, holder):  # none free (another thread may have taken it)
            self._grow()

    def give_back(self, holder: list[int]) -> None:
        """Move holder's cell, which holds 0 again, back to the free cells."""
        move(holder, self._free)

    def _grow(self) -> None:
        with self._lock:
            if self._free:
                return
            # An earlier _grow interrupted right after jr_alloc_into left its slab in the link.
            slab = read_cell(self._backend, self._link)
            if not slab:
                slab = int(self._backend.alloc_into(self._link, SLAB_CELLS * CELL_BYTES, True))
            self._add_slab(slab)

    def _add_slab(self, slab: int) -> None:
        # The link moves first: an interrupt between the two lines then loses the slab's cells
        # (4 KiB, once), where the other order could hand the same cells out twice.
        self._link = slab
        self.slabs += 1
        self._free.extend(range(slab + (SLAB_CELLS - 1) * CELL_BYTES, slab, -CELL_BYTES))


class Kept:
    """Small freed blocks, each still in its cell, by size: `take` gives one to a new owner
    of that size without a call into the pool.

    A lock guards adding: a size whose list is empty may make way for another, and no cell may
    land in a list that has left (its block would leak) or be handed out for another size (too
    small a block). Nothing waits for it (keep gives up instead), so even a lock an interrupt
    left held costs only the saving."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_size: dict[int, list[int]] = {}

    def keep(self, holder: list[int], nbytes: int) -> bool:
        """Move holder's cell (it holds a block of nbytes) here; False when that is too big or
        there are enough already."""
        # Never waits: this runs in finalizers, which the garbage collector may start inside
        # this very method on this thread (any allocation can), and keeping is only a saving.
        if nbytes > KEEP_MAX_BYTES or not self._lock.acquire(blocking=False):
            return False
        try:
            kept = self._by_size.get(nbytes)
            if kept is None:
                if len(self._by_size) >= KEEP_SIZES:
                    empty = next((n for n, cells in self._by_size.items() if not cells), None)
                    if empty is None:
                        return False
                    del self._by_size[empty]
                kept = self._by_size[nbytes] = []
            return len(kept) < KEEP_PER_SIZE and move(holder, kept)
        finally:
            self._lock.release()

    def take(self, holder: list[int], nbytes: int) -> bool:
        """Move a kept cell whose block has nbytes into holder (empty); False when none is."""
        # No lock: a move is one step, and a list leaves only empty, and nothing is added
        # to it after (keep looks a list up under the lock), so a late pop finds nothing.
        kept = self._by_size.get(nbytes)
        return kept is not None and move(kept, holder)

    def take_any(self, holder: list[int]) -> int | None:
        """Move any kept cell into holder; its block's nbytes, or None when none is kept."""
        for nbytes, kept in list(self._by_size.items()):
            if move(kept, holder):
                return nbytes
        return None

    def counts(self) -> dict[int, int]:
        """How many blocks are kept, by size."""
        return {nbytes: len(kept) for nbytes, kept in list(self._by_size.items())}

    def block_bytes(self, backend: Any) -> int:
        """What the kept blocks count in bytes_in_use (their sizes from their headers)."""
        cells = [cell for kept in list(self._by_size.values()) for cell in list(kept)]
        total = 0
        for cell in cells:
            ptr = read_cell(backend, cell)
            if ptr:
                total += backend.load_u32(ptr - 12) * 16  # kernels/ABI.md, jr_alloc
        return total


def read_cell(backend: Any, cell: int) -> int:
    """The address a cell holds (0 for none)."""
    return int(backend.load_u32(cell))
