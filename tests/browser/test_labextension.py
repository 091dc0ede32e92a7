"""The labextension's own logic against the Python side's, in Node (no browser needed).

- ``fixForHost`` (labextension/src/isolation.ts) picks the same row of the isolation table as
  ``jupyterlite_rayon.isolation.host_kind`` / ``fix_for_host`` for every kind of hostname.
- ``decodeCounters`` (labextension/src/counters.ts) reads a counters block written with the
  struct formats of ``jupyterlite_rayon.abi`` back field for field, and refuses a block that is
  not one (wrong magic, other ABI version) with a message that says so.
The compiled modules come from labextension/lib (``cd labextension && npm run build``).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jupyterlite_rayon import abi, isolation

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "labextension" / "lib"
SRC = ROOT / "labextension" / "src"
BUILT = ROOT / "jupyterlite_rayon" / "labextension" / "package.json"
MODULES = ("abi.js", "isolation.js", "counters.js")
BUILD_HINT = "build it: `cd labextension && npm install && npm run build`"

HOSTNAMES = [
    "localhost",
    "LOCALHOST",
    "127.0.0.1",
    "[::1]",
    "::1",
    "app.localhost",
    "user.github.io",
    "User.GitHub.IO",
    "github.io",
    "notgithub.io",
    "github.io.example.com",
    "site.netlify.app",
    "netlify.com",
    "x.pages.dev",
    "pages.dev.example.org",
    "demo.vercel.app",
    "vercel.app.evil.com",
    "example.com",
    "10.0.0.5",
    "",
]


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled modules in a folder Node reads as ES modules (lib/ has no package type)."""
    missing = [m for m in MODULES if not (LIB / m).is_file()]
    assert not missing, f"labextension/lib lacks {missing}: {BUILD_HINT}"
    assert shutil.which("node"), "node is not on PATH (the node tests need it too)"
    out = tmp_path_factory.mktemp("labext-lib")
    (out / "package.json").write_text('{"type": "module"}')
    for name in MODULES:
        shutil.copy(LIB / name, out / name)
    return out


def node(lib: Path, script: str, data: Any) -> Any:
    """Run an ES module script in `lib` with `data` as globalThis.DATA; its printed JSON."""
    source = f"globalThis.DATA = {json.dumps(data)};\n{script}"
    proc = subprocess.run(
        ["node", "--input-type=module", "-e", source],
        cwd=lib,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_built_labextension_is_not_older_than_its_sources() -> None:
    assert BUILT.is_file(), f"the labextension is not built: {BUILD_HINT}"
    stale = [p.name for p in SRC.glob("*.ts") if p.stat().st_mtime > BUILT.stat().st_mtime]
    assert not stale, f"{stale} changed after the labextension was built: {BUILD_HINT}"


def test_fix_for_host_matches_isolation_py(lib: Path) -> None:
    got = node(
        lib,
        """
import { fixForHost, hostFix } from './isolation.js';
console.log(JSON.stringify(DATA.map(h => [hostFix(h).kind, fixForHost(h)])));
""",
        HOSTNAMES,
    )
    want = [[isolation.host_kind(h), isolation.fix_for_host(h)] for h in HOSTNAMES]
    assert dict(zip(HOSTNAMES, got)) == dict(zip(HOSTNAMES, want))
    # Every kind of host is among the cases, so each row's rule was exercised.
    assert {kind for kind, _ in got} == {str(row["kind"]) for row in isolation.HOSTS}


def counters_block(header: dict[str, int], records: list[dict[str, int]]) -> bytes:
    """A counters block packed with abi.py's struct formats, fields by name."""
    block = struct.pack(
        abi.COUNTERS_HEADER_FORMAT, *(header[name] for name in abi.COUNTERS_HEADER_FIELDS)
    )
    assert len(block) == abi.THREAD_RECORDS_OFFSET
    for record in records:
        values = (record.get(name, 0) for name in abi.THREAD_RECORD_FIELDS)
        block += struct.pack(abi.THREAD_RECORD_FORMAT, *values)
    return block


def record(state: int, tasks: int, steals: int) -> dict[str, int]:
    """A thread record; its other fields (reserved or newer) get distinct values."""
    others = [n for n in abi.THREAD_RECORD_FIELDS if n not in ("state", "tasks", "steals")]
    return {
        "state": state,
        "tasks": tasks,
        "steals": steals,
        **{n: 1000 + 10 * i + state for i, n in enumerate(others)},
    }


DECODE = """
import { decodeCounters } from './counters.js';
const out = [];
for (const {address, hex} of DATA) {
  const buffer = new SharedArrayBuffer(address + hex.length / 2 + 64);
  const bytes = new Uint8Array(buffer);
  for (let i = 0; i < hex.length; i += 2) bytes[address + i / 2] = parseInt(hex.slice(i, i + 2), 16);
  try { out.push({ok: decodeCounters(buffer, address)}); }
  catch (e) { out.push({error: e.message}); }
}
console.log(JSON.stringify(out));
"""


def test_decode_counters_reads_every_field(lib: Path) -> None:
    header = {
        "magic": abi.COUNTERS_MAGIC,
        "abi_version": abi.ABI_VERSION,
        "threads": 3,
        "busy": 2,
        "cancel": 1,
        "max_threads": abi.MAX_THREADS,
        "threaded": 1,
        "in_call": 1,
        # above 2^32: the high word counts
        "bytes_in_use": 5 * 2**32 + 17,
        "runtime_bytes": 3 * 2**20,
        "calls": 2**40 + 1,
        "reserved": 0,
    }
    records = [record(2, 2**33 + 5, 7), record(1, 12, 0), record(0, 0, 0), record(2, 99, 99)]
    block = counters_block(header, records).hex()  # the 4th record is not a live thread
    # 16-aligned as jr_alloc gives, and 4- but not 8-aligned (the u64s are read unaligned).
    got = node(lib, DECODE, [{"address": 4096, "hex": block}, {"address": 4100, "hex": block}])
    # Every field of every live record, the state by its name.
    per_thread = [{**r, "state": abi.THREAD_STATES[r["state"]]} for r in records[:3]]
    want = {**header, "per_thread": per_thread}
    assert got == [{"ok": want}, {"ok": want}]


def test_decode_counters_refuses_what_is_not_a_block(lib: Path) -> None:
    good = {
        "magic": abi.COUNTERS_MAGIC,
        "abi_version": abi.ABI_VERSION,
        "threads": 1,
        "busy": 0,
        "cancel": 0,
        "max_threads": 1,
        "threaded": 0,
        "in_call": 0,
        "bytes_in_use": 0,
        "runtime_bytes": 0,
        "calls": 0,
        "reserved": 0,
    }
    cases = [
        {"address": 64, "hex": counters_block({**good, "magic": 0}, [record(1, 0, 0)]).hex()},
        {
            "address": 64,
            "hex": counters_block({**good, "abi_version": 99}, [record(1, 0, 0)]).hex(),
        },
    ]
    got = node(lib, DECODE, cases)
    assert got[0]["error"] == (
        f"no jupyterlite-rayon counters block at 64: magic 0x0, expected 0x{abi.COUNTERS_MAGIC:x}"
    )
    assert "ABI version 99" in got[1]["error"] and f"expects {abi.ABI_VERSION}" in got[1]["error"]
    assert "same jupyterlite-rayon version" in got[1]["error"]
