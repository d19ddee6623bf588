"""The table an operator set for a pick-and-place episode, as the deployment reads it (never the policy).

The episode driver publishes the table on ``topics.twin_scene`` (std_msgs/String JSON, the form
``ast_robot.twin.pickplace.parse_scene`` reads) with one more entry, ``"target": {"object": i, "pad": j}``:
the operator's episode sheet (which cube goes to which pad, what the instruction names). The deployment uses
it to judge the episode on the object (the target's place on its pad, :mod:`ast_robot.pick_outcome`) and to
drive ``scripted:pickplace``; the policy still sees only the camera and the instruction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ast_robot.records.table import table_object
from ast_robot.robot.scene import OBJECT_HALF_SIZE


@dataclass(frozen=True)
class Table:
    objects: tuple[tuple[float, float, float], ...]  # cube (x, y, yaw) (m, m, rad), the tracker's order
    pads: tuple[tuple[float, float], ...]  # pad centres (x, y) (m)
    target_object: int
    target_pad: int

    @property
    def place(self) -> tuple[float, float, float]:
        """Where the target cube rests on its pad (m): the env's desired goal (pad centre, cube half height)."""
        x, y = self.pads[self.target_pad]
        return (x, y, OBJECT_HALF_SIZE)


def parse_table(text: Any) -> Table:
    """``{"objects": [{x, y, yaw?}...], "pads": [{x, y}...], "target": {"object", "pad"}}`` -> Table;
    ValueError (one line naming the field) otherwise. Colours are the twin's business and not checked here."""
    data = table_object(text, "table", "'objects', 'pads' and 'target'")
    objects = tuple(_xy(f"table.objects[{i}]", o, yaw=True) for i, o in enumerate(_list(data, "objects")))
    pads = tuple(_xy(f"table.pads[{j}]", p) for j, p in enumerate(_list(data, "pads")))
    target = data.get("target")
    if not isinstance(target, dict):
        raise ValueError('table.target: expected {"object": index, "pad": index} (the episode sheet)')
    i, j = target.get("object"), target.get("pad")
    for name, value, n in (("object", i, len(objects)), ("pad", j, len(pads))):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < n:
            raise ValueError(f"table.target.{name}: expected an index 0..{n - 1}, got {value!r}")
    return Table(objects, pads, i, j)


def _list(data: dict, key: str) -> list:
    items = data.get(key)
    if not isinstance(items, list) or not items:
        raise ValueError(f"table.{key}: expected a non-empty list, got {items!r:.80}")
    return items


def _xy(name: str, item: Any, yaw: bool = False) -> tuple[float, ...]:
    keys = ("x", "y", "yaw") if yaw else ("x", "y")
    try:
        values = tuple(float(item.get(k, 0.0) if k == "yaw" else item[k]) for k in keys)
    except (AttributeError, KeyError, TypeError, ValueError):
        raise ValueError(f"{name}: expected numbers {', '.join(keys)} (m, m, rad)") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name}: {values} must be finite")
    return values
