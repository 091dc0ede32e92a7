"""Writing and naming pure-Python (py3-none-any) wheel files.

The add-ons write two kinds of wheel: jupyterlite-rayon's own (wheel.py, from the package
directory) and the start-up wheels taken from the build environment (installed.py). Both go
through ``pack_wheel``, so every wheel a site carries has a valid RECORD and is byte-identical
between builds.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from pathlib import Path

# A fixed timestamp keeps a written wheel byte-identical between builds.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)
PURE_TAG = "py3-none-any"
# name-version(-build)?-python-abi-platform.whl (PEP 427); the name has no '-'.
WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def normalize(name: str) -> str:
    """PEP 503 name: how pyodide-lock.json keys and piplite's index name a project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_stem(name: str) -> str:
    """The project name as a wheel file name spells it (PEP 427: '-' becomes '_')."""
    return re.sub(r"[-_.]+", "_", name)


def parse_wheel_name(file_name: str) -> tuple[str, str] | None:
    """(normalized project name, version) of a wheel file name, None if it is not one."""
    match = WHEEL_NAME.match(file_name)
    if match is None:
        return None
    return normalize(match["name"]), match["version"]


def is_pure(file_name: str) -> bool:
    """True for a wheel any Python can install (Pyodide too): no compiled code."""
    return file_name.endswith("-none-any.whl")


def record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def pack_wheel(
    dest: Path,
    name: str,
    version: str,
    files: list[tuple[str, bytes]],
    metadata: bytes,
    generator: str,
    extra_dist_info: list[tuple[str, bytes]] | None = None,
) -> Path:
    """Write ``name-version-py3-none-any.whl`` into ``dest`` and return its path.

    ``files`` are (path inside the wheel, bytes) of the importable files; ``metadata`` is the
    METADATA file; WHEEL and RECORD are written here.
    """
    stem = wheel_stem(name)
    dist_info = f"{stem}-{version}.dist-info"
    wheel_meta = (
        f"Wheel-Version: 1.0\nGenerator: {generator}\nRoot-Is-Purelib: true\nTag: {PURE_TAG}\n"
    )
    entries = [
        *files,
        (f"{dist_info}/METADATA", metadata),
        (f"{dist_info}/WHEEL", wheel_meta.encode()),
        *((f"{dist_info}/{n}", data) for n, data in extra_dist_info or []),
    ]
    record_name = f"{dist_info}/RECORD"
    record = "".join(f"{n},{record_hash(data)},{len(data)}\n" for n, data in entries)
    record += f"{record_name},,\n"
    entries.append((record_name, record.encode()))

    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{stem}-{version}-{PURE_TAG}.whl"
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for n, data in entries:
            info = zipfile.ZipInfo(n, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    tmp.replace(out)
    return out
