"""The table a real pick-and-place episode was set with, for its replay.

A deployment record carries the table the operator set (``meta["table"]``, the JSON the driver published, as
the policy node received it; written since record schema version 3): it is read directly. Older records hold
only what the deployment measured (arm joints, events, the cubes' final positions and the goal it judged
against: the target's place on its pad, ``meta["goal"]``). The episode driver sets the tables of the seeded
deployable pick-and-place env (episode ``k`` of a run with ``--seed s``: env seed ``s + k``), so their table
is found again by regenerating those sheets with the env's own sampler and matching the recorded goal (to
1 mm, as it is written to 0.1 mm). A record that matches no sheet within ``max_seed`` is not replayed, and
the analysis says so.

Nothing here reads the twin: the sheets are the operator's, generated from the env as the driver does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ast_robot.deploy.table import parse_table
from ast_robot.records import EpisodeRecord
from ast_robot.records.table import table_object

GOAL_MATCH_M = 1e-3  # recorded goal vs a sheet's place (the goal is written to 0.1 mm)


@dataclass(frozen=True)
class SheetTable:
    objects: tuple[tuple[float, float, float], ...]  # cube (x, y, yaw) (m, m, rad), the tracker's order
    pads: tuple[tuple[float, float], ...]  # pad centres (x, y) (m)
    target_object: int
    target_pad: int
    colours: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())  # cube and pad colour names (rendering)
    seed: int | None = None  # the env seed of the sheet (None: read from the record)


class TableSheets:
    """Regenerates the driver's sheets on demand (env seeds ``0 .. max_seed``) and finds a record's table."""

    def __init__(self, robot: str, max_seed: int = 1024) -> None:
        self.robot, self.max_seed = robot, int(max_seed)
        self._sheets: list[SheetTable] = []
        self._env: Any = None
        self._found: dict[tuple, SheetTable | None] = {}

    def table_of(self, record: EpisodeRecord) -> SheetTable:
        table = self.find(record)
        if table is None:
            raise ValueError(self.why_not(record))
        return table

    def why_not(self, record: EpisodeRecord) -> str:
        """Why the record's table is unknown (one line); empty when it is known."""
        if self.find(record) is not None:
            return ""
        return (f"episode seed {record.seed}: its table is unknown (no meta.table, and its goal "
                f"{record.meta.get('goal')!r} matches no episode sheet of env seeds 0..{self.max_seed - 1})")  # fmt: skip

    def find(self, record: EpisodeRecord) -> SheetTable | None:
        final = None if record.pick is None else record.pick.object_positions
        key = (record.seed, str(record.meta.get("goal")), str(record.meta.get("table")), str(final))  # not id(): reused
        if key not in self._found:
            self._found[key] = self._lookup(record)
        return self._found[key]

    def _lookup(self, record: EpisodeRecord) -> SheetTable | None:
        if isinstance(record.meta.get("table"), str):
            return _parse(record.meta["table"])
        goal = _goal(record)
        if goal is None:
            return None
        order = [record.seed] + [s for s in range(self.max_seed) if s != record.seed]  # driver seed 0 first
        matches = []
        for seed in order:
            if seed >= self.max_seed:
                continue
            sheet = self.sheet(seed)
            if np.hypot(*(np.array(_place(sheet)[:2]) - goal[:2])) < GOAL_MATCH_M:
                matches.append(sheet)
                if seed == record.seed:
                    break
        return _closest(matches, record)

    def sheet(self, seed: int) -> SheetTable:
        while len(self._sheets) <= seed:
            self._sheets.append(self._sample(len(self._sheets)))
        return self._sheets[seed]

    def _sample(self, seed: int) -> SheetTable:
        env = self._make_env()
        env.reset(seed=seed)
        base = env.unwrapped
        objects = []
        for i in range(len(base.colour_names["objects"])):
            x, y = (float(v) for v in base.object_pos(i)[:2])
            w, z = (float(base.data.qpos[base._obj_qadr[i] + k]) for k in (3, 6))
            objects.append((x, y, 2.0 * float(np.arctan2(z, w))))
        model = base.model
        pads = tuple((float(model.site_pos[model.site(f"pad{j}").id, 0]), float(model.site_pos[model.site(f"pad{j}").id, 1]))
                     for j in range(len(base.colour_names["pads"])))  # fmt: skip
        colours = (tuple(base.colour_names["objects"]), tuple(base.colour_names["pads"]))
        return SheetTable(tuple(objects), pads, int(base.target_object), int(base.target_pad), colours, seed)

    def _make_env(self) -> Any:
        if self._env is None:
            from ast_robot.config import EnvConfig
            from ast_robot.envs import ENV_IDS
            from ast_robot.envs.pick_place import PickPlaceEnv
            from ast_robot.robot.specs import get_robot

            name = get_robot(self.robot).name
            env_id = next(i for i, (entry, kw) in ENV_IDS.items()
                          if entry.endswith(":PickPlaceEnv") and kw["robot"] == name)  # fmt: skip
            self._env = PickPlaceEnv(name, EnvConfig(id=env_id, n_objects=2, n_pads=2, instruction=True))
        return self._env


def _place(sheet: SheetTable) -> tuple[float, float]:
    return sheet.pads[sheet.target_pad]


def _goal(record: EpisodeRecord) -> np.ndarray | None:
    text = record.meta.get("goal")
    try:
        values = np.array([float(v) for v in str(text).split(",")])
    except ValueError:
        return None
    return values if values.size == 3 and np.all(np.isfinite(values)) else None


def _closest(matches: list[SheetTable], record: EpisodeRecord) -> SheetTable | None:
    """Among sheets with the record's goal, the one whose untouched cubes lie where the record ended them."""
    if len(matches) <= 1 or record.pick is None or record.pick.object_positions is None:
        return matches[0] if matches else None
    final = np.asarray(record.pick.object_positions)[:, :2]

    def miss(sheet: SheetTable) -> float:
        others = [i for i in range(len(sheet.objects)) if i != sheet.target_object and i < len(final)]
        return float(sum(np.hypot(*(final[i] - sheet.objects[i][:2])) for i in others))

    return min(matches, key=miss)


def _parse(text: str) -> SheetTable:
    """A record's own table (the JSON the driver published): read and checked by the deployment's reader
    (one line naming the field when it is wrong), plus the colours the re-renders need."""
    table = parse_table(text)
    data = table_object(text, "meta.table", "'objects', 'pads' and 'target'")
    colours = (tuple(o.get("colour", "") for o in data["objects"]), tuple(p.get("colour", "") for p in data["pads"]))
    return SheetTable(table.objects, table.pads, table.target_object, table.target_pad, colours)
