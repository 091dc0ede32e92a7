"""`--pin` for the CPython benchmarks: one pool thread per core, so the OS cannot stack them.

On the development VM (Firecracker, 2 vCPUs) a helper woken by the caller is often put on the
caller's own core while the other core idles (likely: the guest sees the idle vCPU as
preempted; not verified), so a
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


def placement(pin: bool) -> str:
    """The header's words for how the pool's threads were placed."""
    return "one pool thread per core (--pin)" if pin else "threads placed by the OS"


def pin_pool_threads() -> None:
    """Pin the calling thread and the pool's caller thread to the first core and the live
    helpers to the next cores, wrapping."""
    threads = [t for t in threading.enumerate() if t.native_id is not None and t.is_alive()]
    helpers = sorted((t for t in threads if "-thread-" in t.name), key=lambda t: t.name)
    for t in threads:
        if t is threading.main_thread() or t.name.endswith("-caller"):
            core = _CORES[0]
        elif t in helpers:
            core = _CORES[(1 + helpers.index(t)) % len(_CORES)]
        else:
            continue
        os.sched_setaffinity(t.native_id, {core})  # type: ignore[arg-type]
