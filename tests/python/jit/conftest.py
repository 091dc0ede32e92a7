"""Fixtures of the jit tests: the pool stand-in at 1, 2, 3 and 4 "threads" (chunks)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from jit_standin import StandIn

from jupyterlite_rayon.jit import runtime

# (shared memory, pieces jr_jit_for splits into, run the pieces in reverse order)
CONFIGS = [(False, 1, False), (True, 2, True), (False, 3, True), (True, 4, False)]
_hosts: dict[tuple[bool, int, bool], StandIn] = {}


def make_host(shared: bool, pieces: int, reverse: bool) -> StandIn:
    key = (shared, pieces, reverse)
    if key not in _hosts:
        _hosts[key] = StandIn(shared=shared, pieces=pieces, reverse=reverse)
    return _hosts[key]


@pytest.fixture(params=CONFIGS, ids=lambda c: f"{'mt' if c[0] else 'st'}-{c[1]}")
def host(request: pytest.FixtureRequest) -> Iterator[StandIn]:
    """Each test runs once per configuration; jitted calls go to that stand-in."""
    h = make_host(*request.param)
    before = runtime.host_factory()
    runtime.set_host(h)
    h.cancel_after = None
    yield h
    runtime.set_host(before)  # the real pool again, for the tests that run on it


@pytest.fixture
def st_host() -> Iterator[StandIn]:
    """One single-thread stand-in (for tests that need only one configuration)."""
    h = make_host(False, 1, False)
    before = runtime.host_factory()
    runtime.set_host(h)
    h.cancel_after = None
    yield h
    runtime.set_host(before)


# Tests import this conftest's helpers as `jit_conftest`: the bare name `conftest` belongs to
# whichever conftest pytest imported last.
sys.modules["jit_conftest"] = sys.modules[__name__]
