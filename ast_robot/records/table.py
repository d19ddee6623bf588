"""The table an operator sets for a pick-and-place episode: one std_msgs/String JSON message on
``RosNames.twin_scene``. The twin reads its placements and colours (``twin.pickplace.parse_scene``), the
deployment its episode sheet (``deploy.table.parse_table``); both start from :func:`table_object`.
"""

from __future__ import annotations

import json
from typing import Any

MAX_TABLE_CHARS = 4096  # a table of a few cubes and pads is a few hundred characters


def table_object(text: Any, name: str, expected: str, error: type[ValueError] = ValueError) -> dict:
    """The JSON object of a table message; ``error`` (one line starting with ``name``) when ``text`` is not a
    string of at most :data:`MAX_TABLE_CHARS` characters holding a JSON object (``expected`` names its keys)."""
    if not isinstance(text, str) or len(text) > MAX_TABLE_CHARS:
        raise error(f"{name}: expected a JSON string of at most {MAX_TABLE_CHARS} characters")
    try:
        data = json.loads(text)
    except ValueError as err:
        raise error(f"{name}: not JSON ({err})") from None
    if not isinstance(data, dict):
        raise error(f"{name}: expected a JSON object with {expected}")
    return data
