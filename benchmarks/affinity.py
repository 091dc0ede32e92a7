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


def pin_pool_threads() -> str:
    """Pin the calling thread and the pool's caller thread to the first core, helper i to core
    i (wrapping). Returns what was done, for the table's header."""
    cores = sorted(os.sched_getaffinity(0))
    pinned = []
    for t in threading.enumerate():
        if t.native_id is None:
            continue
        if t is threading.main_thread() or t.name.endswith("-caller"):
            core = cores[0]
        elif "-thread-" in t.name:
            core = cores[int(t.name.rsplit("-", 1)[1]) % len(cores)]
        else:
            continue
        os.sched_setaffinity(t.native_id, {core})
        pinned.append(f"{t.name}->{core}")
    return "pinned " + ", ".join(pinned)
