"""The counters block (kernels/ABI.md): the one decoder in Python.

The pool keeps its live numbers in a fixed block of its memory, so they can be read at any time,
from any thread, without calling into the pool. The layout comes from jupyterlite_rayon/abi.py,
generated from ABI.md.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from . import abi

_HEADER = struct.Struct(abi.COUNTERS_HEADER_FORMAT)
_RECORD = struct.Struct(abi.THREAD_RECORD_FORMAT)


class Memory(Protocol):
    """What the decoder needs: the block's address and a way to read memory."""

    counters_address: int

    def read(self, ptr: int, nbytes: int) -> bytes: ...


@dataclass(frozen=True)
class ThreadCounters:
    state: str  # "absent", "sleeping" or "working"
    tasks: int
    steals: int


@dataclass(frozen=True)
class Counters:
    threads: int
    busy: int
    cancel: int
    max_threads: int
    threaded: bool
    in_call: bool
    bytes_in_use: int
    runtime_bytes: int
    calls: int
    per_thread: tuple[ThreadCounters, ...]

    @property
    def tasks(self) -> int:
        return sum(t.tasks for t in self.per_thread)

    @property
    def steals(self) -> int:
        return sum(t.steals for t in self.per_thread)


def decode(header: bytes, records: bytes = b"") -> Counters:
    """Decode the header and the first len(records) // THREAD_RECORD_BYTES thread records."""
    fields = dict(zip(abi.COUNTERS_HEADER_FIELDS, _HEADER.unpack_from(header), strict=True))
    if fields["magic"] != abi.COUNTERS_MAGIC:
        raise ValueError(
            f"no counters block here (magic {fields['magic']:#x}, expected "
            f"{abi.COUNTERS_MAGIC:#x}): the pool module does not match kernels/ABI.md"
        )
    per_thread = []
    for i in range(min(fields["threads"], len(records) // abi.THREAD_RECORD_BYTES)):
        rec = dict(
            zip(
                abi.THREAD_RECORD_FIELDS,
                _RECORD.unpack_from(records, i * _RECORD.size),
                strict=True,
            )
        )
        state = abi.THREAD_STATES.get(rec["state"], str(rec["state"]))
        per_thread.append(ThreadCounters(state, rec["tasks"], rec["steals"]))
    return Counters(
        threads=fields["threads"],
        busy=fields["busy"],
        cancel=fields["cancel"],
        max_threads=fields["max_threads"],
        threaded=bool(fields["threaded"]),
        in_call=bool(fields["in_call"]),
        bytes_in_use=fields["bytes_in_use"],
        runtime_bytes=fields["runtime_bytes"],
        calls=fields["calls"],
        per_thread=tuple(per_thread),
    )


def header_field(memory: Memory, name: str) -> int:
    """One u32 field of the header (threads, busy, ...), read without the rest."""
    offset = abi.COUNTERS_HEADER_OFFSETS[name]
    return int.from_bytes(memory.read(memory.counters_address + offset, 4), "little")


def read(memory: Memory, threads: bool = True) -> Counters:
    """The block as it is now; `threads=False` skips the per-thread records."""
    base = memory.counters_address
    header = memory.read(base, abi.COUNTERS_HEADER_BYTES)
    if not threads:
        return decode(header)
    at = abi.COUNTERS_HEADER_OFFSETS["threads"]  # only the live threads' records are read
    live = int.from_bytes(header[at : at + 4], "little")
    records = memory.read(base + abi.THREAD_RECORDS_OFFSET, abi.THREAD_RECORD_BYTES * max(live, 1))
    return decode(header, records)
