"""The cross-origin isolation headers: for `jupyter lite serve`, `_headers` and `vercel.json`.

Threads need shared memory, which a browser gives only to a page served with COOP same-origin
and COEP require-corp (or credentialless). The header values are defined here, once, for the
whole build (the service-worker patch and scripts/serve.py take them from here).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from ._base import CONFIG_SECTION, RayonAddon

COOP = "Cross-Origin-Opener-Policy"
COEP = "Cross-Origin-Embedder-Policy"
CORP = "Cross-Origin-Resource-Policy"
COOP_VALUE = "same-origin"
CORP_VALUE = "same-origin"
#: the COEP values that isolate a page (the first is the default)
COEP_VALUES = ("require-corp", "credentialless")
HEADERS_FILE = "_headers"
VERCEL_FILE = "vercel.json"
# The rule source that matches every path, in vercel.json and (as "/*") in _headers.
VERCEL_ALL = "/(.*)"
NETLIFY_ALL = "/*"


def isolation_headers(coep: str = COEP_VALUES[0]) -> dict[str, str]:
    """The response headers that make a page cross-origin isolated.

    Raises ValueError (naming the option) if ``coep`` is not a value that isolates.
    """
    if coep not in COEP_VALUES:
        raise ValueError(
            f"{CONFIG_SECTION}.coep must be one of {', '.join(COEP_VALUES)}, not {coep!r}"
        )
    return {COOP: COOP_VALUE, COEP: coep, CORP: CORP_VALUE}


def headers_isolate(headers: dict[str, str]) -> bool:
    """True if these response headers make a page cross-origin isolated."""
    lower = {k.lower(): (v or "").strip().lower() for k, v in headers.items()}
    return lower.get(COOP.lower()) == COOP_VALUE and lower.get(COEP.lower()) in COEP_VALUES


def netlify_headers(headers: dict[str, str]) -> str:
    """A ``_headers`` file (Netlify, Cloudflare Pages) applying headers to every path."""
    lines = [NETLIFY_ALL] + [f"  {name}: {value}" for name, value in headers.items()]
    return "\n".join(lines) + "\n"


def vercel_config(existing: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """``vercel.json`` with a rule applying headers to every path, other settings kept."""
    config = dict(existing)
    rules = [r for r in config.get("headers", []) if r.get("source") != VERCEL_ALL]
    rules.append(
        {
            "source": VERCEL_ALL,
            "headers": [{"key": name, "value": value} for name, value in headers.items()],
        }
    )
    config["headers"] = rules
    return config


def headers_file_isolates(path: Path) -> bool:
    """True if the ``_headers`` file at ``path`` isolates every page."""
    if not path.exists():
        return False
    headers = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.strip().partition(":")
        if sep and not line.startswith("/"):
            headers[name.strip()] = value.strip()
    return headers_isolate(headers)


def vercel_file_isolates(path: Path) -> bool:
    """True if the ``vercel.json`` at ``path`` has a rule isolating every page."""
    if not path.exists():
        return False
    config = json.loads(path.read_text())
    for rule in config.get("headers", []):
        if rule.get("source") == VERCEL_ALL:
            return headers_isolate({h["key"]: h["value"] for h in rule.get("headers", [])})
    return False


class RayonHeadersAddon(RayonAddon):
    """Serve and deploy the site with the isolation headers (``RayonAddon.isolation_headers``)."""

    __all__: ClassVar[list[str]] = ["build", "post_build"]

    aliases: ClassVar[dict[str, str]] = {"rayon-coep": f"{CONFIG_SECTION}.coep"}

    def __init__(self, manager: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(manager, *args, **kwargs)
        # `jupyter lite serve` reads these; a bad coep is reported by build, not here (see coep).
        if self.isolation_headers and self.coep in COEP_VALUES:
            # Headers the user configured win over ours.
            manager.extra_http_headers = {
                **isolation_headers(self.coep),
                **(manager.extra_http_headers or {}),
            }

    def build(self, manager: Any) -> Iterator[dict[str, Any]]:
        # Fails the build before anything is written when the coep option is wrong.
        isolation_headers(self.coep)
        yield from ()

    def post_build(self, manager: Any) -> Iterator[dict[str, Any]]:
        if not self.isolation_headers:
            return
        yield self.task(
            name="headers",
            doc=f"write {HEADERS_FILE} and {VERCEL_FILE} with COOP/COEP/CORP",
            uptodate=[lambda: False],
            actions=[(self._write_host_headers, [self.output_dir])],
        )

    def _write_host_headers(self, out: Path) -> None:
        headers = isolation_headers(self.coep)
        headers_file = out / HEADERS_FILE
        text = netlify_headers(headers)
        if headers_file.exists():
            old = headers_file.read_text()
            # A _headers the user deployed keeps its rules; ours is added once.
            if COEP not in old:
                headers_file.write_text(old.rstrip("\n") + "\n" + text)
        else:
            headers_file.write_text(text)
        vercel = out / VERCEL_FILE
        existing = json.loads(vercel.read_text()) if vercel.exists() else {}
        vercel.write_text(json.dumps(vercel_config(existing, headers), indent=2) + "\n")
        self.log.info("[rayon] wrote %s and %s", headers_file, vercel)
