"""`--pin` for the CPython benchmarks: one pool thread per core, so the OS cannot stack them.

On the development VM (Firecracker, 2 vCPUs) a helper woken by the caller is often put on the
caller's own core while the other core idles (the guest sees the idle vCPU as preempted), so a
call under a millisecond or two runs both threads on one core: the split is uneven and there
is no speedup. Pinning shows what the pool does where the OS places threads well; the
unpinned numbers are what a user of this machine gets. Helpers a resize starts are new
threads: pin again after every thread-count change.
"""

from __future__ import annotations

import os
import threading

# Taken once: after the first pin the calling thread's own mask is one core.
_CORES = sorted(os.sched_getaffinity(0))


def pin_pool_threads() -> str:
    """Pin the calling thread and the pool's caller thread to the first core and the live
    helpers to the next cores, wrapping. Returns what was done, for the table's header."""
    cores = _CORES
    threads = [t for t in threading.enumerate() if t.native_id is not None and t.is_alive()]
    helpers = sorted((t for t in threads if "-thread-" in t.name), key=lambda t: t.name)
    pinned = []
    for t in threads:
        if t is threading.main_thread() or t.name.endswith("-caller"):
            core = cores[0]
        elif t in helpers:
            core = cores[(1 + helpers.index(t)) % len(cores)]
        else:
            continue
        assert t.native_id is not None
        os.sched_setaffinity(t.native_id, {core})
        pinned.append(f"{t.name}->{core}")
    return "pinned " + ", ".join(pinned)
