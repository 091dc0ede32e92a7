"""Faults a user can cause from Python: each ends in a clear result, never a hang."""

from __future__ import annotations

import array
import os
import subprocess
import sys
import textwrap
import threading

import pytest

import jupyterlite_rayon as jr


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh interpreter; a hang fails the test at the timeout."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_starts_its_own_pool_and_the_parent_keeps_its_own() -> None:
    r = run_python("""
        import array, os, sys, threading
        import jupyterlite_rayon as jr
        x = jr.asarray(array.array("d", range(1000)))
        assert jr.sum(x) == 499500.0
        # A fork while another thread is inside a kernel call must not inherit its locks.
        busy = threading.Thread(target=lambda: jr.mandelbrot(600, 400, max_iter=2000))
        busy.start()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                y = jr.asarray(array.array("d", range(10)))
                assert jr.sum(y) == 45.0
                try:
                    jr.sum(x)
                except jr.PoolError as e:
                    assert "shut down" in str(e), e
                else:
                    raise AssertionError("the parent's array worked in the child")
                jr.shutdown()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        busy.join()
        assert os.waitstatus_to_exitcode(status) == 0, status
        assert jr.sum(x) == 499500.0
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_threadpool_limits_from_two_threads_restore_the_count_whatever_the_order() -> None:
    base = jr.current_num_threads()
    inner_entered = threading.Event()
    outer_may_exit = threading.Event()
    seen: list[int] = []

    def outer() -> None:
        with jr.threadpool_limits(1):
            inner_entered.wait(10)
            outer_may_exit.wait(10)  # exit first, while the other limit is still active

    def inner() -> None:
        with jr.threadpool_limits(2):
            inner_entered.set()
            outer_may_exit.set()
            t_outer.join(10)
            seen.append(jr.current_num_threads())  # still this limit's count
            assert jr.sum(jr.asarray(array.array("d", range(100)))) == 4950.0

    t_outer = threading.Thread(target=outer)
    t_outer.start()
    t_inner = threading.Thread(target=inner)
    t_inner.start()
    t_inner.join(20)
    t_outer.join(20)
    assert seen == [2]
    assert jr.current_num_threads() == base
