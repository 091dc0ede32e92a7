"""JupyterLite's own service worker adds the isolation headers, for hosts that set none.

GitHub Pages cannot send COOP/COEP. JupyterLite already registers a service worker that
answers every fetch of the site; with ``RayonAddon.service_worker`` it also adds the headers,
so after the first visit (the front-end plugin reloads once) the page is isolated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from ._base import CONFIG_SECTION, RayonAddon
from .headers import isolation_headers

SW_FILE = "service-worker.js"
SW_MARKER = "/* jupyterlite-rayon: cross-origin isolation */"
# JupyterLite 0.8.x's minified worker ends onFetch with `n&&e.respondWith(n)`; the names may
# change between releases, the shape has not.
SW_RESPOND = re.compile(
    r"(?P<resp>[A-Za-z_$][\w$]*)&&(?P<event>[A-Za-z_$][\w$]*)\.respondWith\((?P=resp)\)"
)
USE_STRICT = '"use strict";'


def patch_service_worker(source: str, headers: dict[str, str]) -> str:
    """Make JupyterLite's service worker add headers to every response it serves.

    Patching a patched worker returns it unchanged. Raises ValueError if the worker does not
    have the one ``respondWith`` call expected.
    """
    if SW_MARKER in source:
        return source
    matches = SW_RESPOND.findall(source)
    if len(matches) != 1:
        raise ValueError(
            f"{SW_FILE} does not have the layout jupyterlite-rayon knows (one "
            f"`x&&e.respondWith(x)` in onFetch, found {len(matches)}): this JupyterLite "
            f"version is not supported by {CONFIG_SECTION}.service_worker. Serve the site with "
            "COOP/COEP headers instead (_headers, vercel.json, `jupyter lite serve`), or "
            "turn the option off."
        )
    sets = "".join(f"h.set({json.dumps(k)},{json.dumps(v)});" for k, v in headers.items())
    # Opaque responses (status 0) cannot be rebuilt; they are cross-origin anyway.
    helper = (
        f'{SW_MARKER}function jrIsolate(r){{if(!r||r.status===0||r.type==="opaque")return r;'
        f"const h=new Headers(r.headers);{sets}"
        "return new Response(r.body,{status:r.status,statusText:r.statusText,headers:h})}"
    )
    patched = SW_RESPOND.sub(
        lambda m: f"{m['resp']}&&{m['event']}.respondWith({m['resp']}.then(jrIsolate))", source
    )
    # The directive only counts as the first statement, so the helper goes after it.
    if patched.startswith(USE_STRICT):
        return USE_STRICT + helper + patched[len(USE_STRICT) :]
    return helper + patched


def is_patched(path: Path) -> bool:
    """True if the service worker at ``path`` adds the isolation headers."""
    return path.exists() and SW_MARKER in path.read_text()


class RayonServiceWorkerAddon(RayonAddon):
    """Patch the site's service worker to isolate it (``RayonAddon.service_worker``)."""

    __all__: ClassVar[list[str]] = ["post_build"]

    flags: ClassVar[dict[str, tuple[dict[str, Any], str]]] = {
        "rayon-service-worker": (
            {CONFIG_SECTION: {"service_worker": True}},
            "patch JupyterLite's service worker to make the site cross-origin isolated",
        ),
    }

    def post_build(self, manager: Any) -> Iterator[dict[str, Any]]:
        if not self.service_worker:
            return
        yield self.task(
            name="service-worker",
            doc=f"patch {SW_FILE} to add COOP/COEP/CORP",
            uptodate=[lambda: False],
            actions=[(self._patch, [self.output_dir / SW_FILE])],
        )

    def _patch(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(
                f"{path} not found: this JupyterLite build has no service worker to patch; "
                f"turn {CONFIG_SECTION}.service_worker off and serve the site with COOP/COEP "
                "headers"
            )
        path.write_text(patch_service_worker(path.read_text(), isolation_headers(self.coep)))
        self.log.info("[rayon] patched %s for cross-origin isolation", path)
