"""Cells: u32 slots of pool memory through which a block is owned from before it exists.

CPython and Pyodide raise KeyboardInterrupt between any two bytecodes, so an address that
jr_alloc returns can be dropped before anything holds it, and its block leaks. So an owner (a
PoolArray, a jitted call's frame) first holds a cell and what frees it, and the pool writes the
address into the cell inside the allocating call (kernels/ABI.md, jr_alloc_into). Each step
is whole or not done when an interrupt lands:

- the owner's holder, an empty list, and its finalizer exist before any cell or block;
- `take` moves a free cell into the holder by one C call (list.extend of a one-item islice
  over list.pop), so the cell is never in neither list;
- jr_alloc_into stores the address into the cell before it returns;
- closing is jr_free_cell, which swaps the cell to 0 and frees in one step, so the finalizer
  that follows (it reads the cell) frees nothing twice.

A finalizer itself can still be interrupted, as any Python code can (Python then prints the
interrupt as ignored); at most its cell is lost then.

Cells come in slabs of SLAB_CELLS from the pool, the first allocated with the pool. A slab's
first cell holds the next slab's address (jr_alloc_into again), so slabs cannot leak either;
they live as long as the pool.
"""

from __future__ import annotations

import threading
from itertools import islice
from typing import Any

SLAB_CELLS = 1024
CELL_BYTES = 4


class Cells:
    """The free cells of one pool (one per backend)."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._free: list[int] = []
        self._popper = iter(self._free.pop, None)  # reusable: an IndexError does not end it
        self._link = 0  # the cell that will hold the next slab's address
        self.slabs = 0
        self._add_slab(int(backend.alloc(SLAB_CELLS * CELL_BYTES, True)))

    def take(self, holder: list[int]) -> None:
        """Move a free cell into `holder` (empty) in one step that an interrupt cannot split."""
        while True:
            try:
                holder.extend(islice(self._popper, 1))
                return
            except IndexError:  # none free (another thread may have taken the last one)
                self._grow()

    def give_back(self, cell: int) -> None:
        """A cell that holds 0 again: free for the next owner."""
        self._free.append(cell)

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


def read_cell(backend: Any, cell: int) -> int:
    """The address a cell holds (0: none)."""
    return int.from_bytes(backend.read(cell, CELL_BYTES), "little")
