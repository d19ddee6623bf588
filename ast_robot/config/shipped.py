"""Where the YAML files the package itself reads live: `configs/<kind>/` of the source tree.

They ship in the wheel as data packages (setup.py maps each folder to one), so they are found through
the import system from an editable install and from a wheel alike. ``$AST_ROBOT_CONFIGS/<kind>`` wins
when set; the source tree is the last resort (an editable install made before the mapping existed).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

# configs/<kind>/ -> the package it is installed as (setup.py's package_dir says the same)
PACKAGES = {"randomization": "ast_robot.presets", "deploy": "ast_robot.deploy_configs"}


def shipped_dir(kind: str) -> Path:
    """The folder of the shipped ``kind`` configs (one of :data:`PACKAGES`)."""
    if kind not in PACKAGES:
        raise ValueError(f"kind: {kind!r} is not a shipped config folder; known: {sorted(PACKAGES)}")
    if "AST_ROBOT_CONFIGS" in os.environ:
        return Path(os.environ["AST_ROBOT_CONFIGS"]) / kind
    spec = importlib.util.find_spec(PACKAGES[kind])  # a data folder (no __init__): a namespace package
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).resolve().parents[2] / "configs" / kind
