"""The ABI has one definition (kernels/ABI.md); every language's constants are generated from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from jupyterlite_rayon import abi, isolation

ROOT = Path(__file__).resolve().parents[2]


def test_generated_constants_are_fresh() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_contract.py"), "--check"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr


def test_counters_formats_cover_the_layout() -> None:
    import struct

    assert struct.calcsize(abi.COUNTERS_HEADER_FORMAT) == abi.COUNTERS_HEADER_BYTES
    assert struct.calcsize(abi.THREAD_RECORD_FORMAT) == abi.THREAD_RECORD_BYTES
    assert len(abi.COUNTERS_HEADER_FIELDS) == len(abi.COUNTERS_HEADER_FORMAT) - 1
    assert set(abi.STATUS_ADVICE) == set(abi.STATUS_NAMES) - {abi.OK}


def test_every_host_kind_has_its_own_fix() -> None:
    kinds = {
        "someone.github.io": "github-pages",
        "site.netlify.app": "headers-file",
        "x.pages.dev": "headers-file",
        "demo.vercel.app": "vercel",
        "localhost": "localhost",
        "127.0.0.1": "localhost",
        "notebooks.example.org": "other",
        "vercel.app.example.org": "other",
    }
    for host, kind in kinds.items():
        assert isolation.host_kind(host) == kind, host
    fixes = {isolation.fix_for_host(h) for h in kinds}
    assert len(fixes) == 5
    assert "--rayon-service-worker" in isolation.fix_for_host("someone.github.io")
    assert "pip install jupyter_server" in isolation.fix_for_host("localhost")
