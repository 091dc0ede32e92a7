"""How to make a site cross-origin isolated: the one text every part of the product gives.

Threads need shared memory, which a browser gives only to a cross-origin isolated page. The
fix depends on the host serving the site. The Python warning, `%parallel info`, the add-on's
`jupyter lite check` and the front-end's notification all say it from this table
(scripts/gen_contract.py copies it into labextension/src/abi.ts).
"""

from __future__ import annotations

#: the two response headers that isolate a page
HEADERS = "Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp"

#: one row per kind of host: hostname suffixes that identify it (matched case-insensitively,
#: "" matches any host, so the last row is the fallback) and the fix
HOSTS: tuple[dict[str, object], ...] = (
    {
        "kind": "github-pages",
        "suffixes": ["github.io"],
        "fix": "GitHub Pages cannot send headers: build the site with the jupyterlite-rayon "
        "add-on's service-worker option (`jupyter lite build --rayon-service-worker`, or "
        "RayonAddon.service_worker = true), deploy it, then reload the page once",
    },
    {
        "kind": "headers-file",
        "suffixes": ["netlify.app", "netlify.com", "pages.dev"],
        "fix": f"deploy the `_headers` file that `jupyter lite build` writes with the "
        f"jupyterlite-rayon add-on (it sends {HEADERS} for /*) at the site root",
    },
    {
        "kind": "vercel",
        "suffixes": ["vercel.app"],
        "fix": "deploy the `vercel.json` that `jupyter lite build` writes with the "
        f"jupyterlite-rayon add-on (a headers rule that sends {HEADERS})",
    },
    {
        "kind": "localhost",
        "suffixes": ["localhost", "127.0.0.1", "::1", "[::1]"],
        "fix": "`jupyter lite serve` sends the headers only when jupyter_server (tornado) is "
        "installed: `pip install jupyter_server`, then serve again; any other local server "
        f"must send {HEADERS}",
    },
    {
        "kind": "other",
        "suffixes": [""],
        "fix": f"make the server send {HEADERS} (a `_headers` file on Netlify or Cloudflare "
        "Pages, `vercel.json` on Vercel); where no headers can be set, build with "
        "`jupyter lite build --rayon-service-worker` and reload the page once",
    },
)


def host_kind(hostname: str) -> str:
    """The kind of host ('github-pages', 'headers-file', 'vercel', 'localhost', 'other')."""
    host = hostname.lower()
    for row in HOSTS:
        for suffix in row["suffixes"]:  # type: ignore[attr-defined]
            if suffix == "" or host == suffix or host.endswith("." + str(suffix)):
                return str(row["kind"])
    return "other"


def fix_for_host(hostname: str) -> str:
    """The fix for the host serving the page, in one sentence."""
    kind = host_kind(hostname)
    for row in HOSTS:
        if row["kind"] == kind:
            return str(row["fix"])
    raise AssertionError("HOSTS has no fallback row")
