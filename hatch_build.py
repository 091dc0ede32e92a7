"""Hatchling build hook: compile the Zig pool into the package before it is wheeled."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class PoolBuildHook(BuildHookInterface):
    PLUGIN_NAME = "pool-wasm"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name not in {"wheel", "editable"}:
            return
        root = Path(self.root)
        spec = importlib.util.spec_from_file_location("kernels_build", root / "kernels" / "build.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.build(root / "jupyterlite_rayon" / "wasm")
        # Pure Python plus wasm: one wheel for every platform.
        build_data["pure_python"] = True
