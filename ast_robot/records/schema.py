"""The episode record: one per episode, shared by the sim evaluator, the ROS 2 outcome stream and the
reality-gap analyzer; and its JSON form.

A record holds scalar outcomes (success, final error, ...) and the arrays needed for system
identification (commanded actions, measured joint positions). Its forms:

- ``to_json(record)`` / ``from_json(text)`` (here): one JSON object with the arrays inline (nested lists).
  This is what the ROS 2 node publishes as ``std_msgs/String`` on the outcome topic.
- a records folder (:mod:`ast_robot.records.folder`): ``records.jsonl`` + ``arrays-<hash>.npz``.
- a ROS 2 bag of outcome messages (:mod:`ast_robot.records.bag`).

Every record is validated on construction: a bad value raises :class:`RecordError` naming the field,
the value and the reason. Unknown ``schema_version`` values are rejected the same way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# the longest command latency a record may carry (s): what a deployment may declare
from ast_robot.config.deploy import MAX_COMMAND_LATENCY_S

# 2: the optional ``pick`` outcome (pick-and-place events, object poses); 3: the optional ``gripper_commands``
# (the widths the deployment sent, and when: what a replay must apply); 4: the optional ``joint_stamps`` (when
# each measured joint state was taken, on the robot's clock: what camera frames are placed in episodes by); 5: the
# optional ``command_latency_s`` (the command latency the episode declared to the safety filter: what a replay of the
# filter needs). 1-4 are still read.
SCHEMA_VERSION = 5
SUPPORTED_VERSIONS = (1, 2, 3, 4, 5)
PICK_EVENTS = ("grasp", "lift", "drop", "place")  # ast_robot.pick_outcome says when each happens
POSE_SOURCES = ("sim", "tracker", "none")  # where object positions came from; "none": no object pose measured
SOURCES = ("sim", "real")
ARRAY_FIELDS = ("actions", "joint_positions", "joint_targets")
_SCALAR_META = (str, int, float, bool)


class RecordError(ValueError):
    """An episode record is invalid. Names the field, the bad value and the reason."""

    def __init__(self, field_name: str, value: Any, reason: str, where: str = "") -> None:
        self.field, self.value, self.reason, self.where = field_name, value, reason, where
        shown = repr(value)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}episode record field {field_name!r}: {reason} (got {shown})")


@dataclass(frozen=True)
class ContactSummary:
    """Contact forces between the robot and the world over one episode."""

    max_force: float = 0.0  # largest contact normal force seen (N)
    mean_force: float = 0.0  # mean over control steps with any contact (N)
    contact_steps: int = 0  # control steps with at least one contact

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_force", _check_number("contact.max_force", self.max_force, low=0.0))
        object.__setattr__(self, "mean_force", _check_number("contact.mean_force", self.mean_force, low=0.0))
        object.__setattr__(self, "contact_steps", _check_int("contact.contact_steps", self.contact_steps, low=0))
        if self.mean_force > self.max_force + 1e-9:
            raise RecordError(
                "contact.mean_force", self.mean_force, f"must be <= max_force ({self.max_force})"
            )


@dataclass(frozen=True)
class PickOutcome:
    """What happened to the objects in a pick-and-place episode (:mod:`ast_robot.pick_outcome` judges it).

    ``events``: (name, time s after the episode start) in time order, names from ``PICK_EVENTS``.
    ``object_positions``: final cube positions (n, 3, m, world), None when no object pose was measured
    (``pose_source`` "none": a real cell without a tracker); then ``target_distance`` is None too and the
    record's success could not be judged on the object."""

    events: tuple[tuple[str, float], ...] = ()
    object_positions: tuple[tuple[float, float, float], ...] | None = None
    target_object: int | None = None  # index of the target cube in object_positions (the table's order)
    target_distance: float | None = None  # final distance (m) of the target cube to its place on the pad
    pose_source: str = "none"

    def __post_init__(self) -> None:
        events, last = [], 0.0
        for i, item in enumerate(self.events):
            if not isinstance(item, (tuple, list)) or len(item) != 2 or item[0] not in PICK_EVENTS:
                raise RecordError(f"pick.events[{i}]", item, f"must be [name, time s], name in {list(PICK_EVENTS)}")
            t = _check_number(f"pick.events[{i}].time", item[1], low=0.0)
            if t < last:
                raise RecordError(f"pick.events[{i}].time", t, f"must not be before the previous event ({last})")
            events.append((str(item[0]), t))
            last = t
        object.__setattr__(self, "events", tuple(events))
        if self.pose_source not in POSE_SOURCES:
            raise RecordError("pick.pose_source", self.pose_source, f"must be one of {list(POSE_SOURCES)}")
        measured = self.pose_source != "none"
        judged = measured and self.target_object is not None  # a target distance needs poses and a target
        for name, present in (("object_positions", measured), ("target_distance", judged)):
            if (getattr(self, name) is None) == present:
                raise RecordError(f"pick.{name}", getattr(self, name), "must be null exactly when pose_source is "
                                  "'none' (no object pose measured: none is invented)"
                                  + (" or target_object is null" if name == "target_distance" else ""))  # fmt: skip
        if measured:
            pos = _as_matrix("pick.object_positions", self.object_positions)
            if pos.shape[1] != 3:
                raise RecordError("pick.object_positions", pos.shape, "must have shape (n objects, 3)")
            object.__setattr__(self, "object_positions", tuple(tuple(float(v) for v in row) for row in pos))
        if judged:
            object.__setattr__(self, "target_distance",
                               _check_number("pick.target_distance", self.target_distance, low=0.0))  # fmt: skip
        if self.target_object is not None:
            n = len(self.object_positions) if self.object_positions is not None else None
            index = _check_int("pick.target_object", self.target_object, low=0)
            if n is not None and index >= n:
                raise RecordError("pick.target_object", index, f"must index the {n} object positions")
            object.__setattr__(self, "target_object", index)

    def times(self, name: str) -> list[float]:
        """Times (s) of every ``name`` event."""
        return [t for n, t in self.events if n == name]

    def to_dict(self) -> dict[str, Any]:
        return {"events": [list(e) for e in self.events],
                "object_positions": None if self.object_positions is None else [list(p) for p in self.object_positions],
                "target_object": self.target_object, "target_distance": self.target_distance,
                "pose_source": self.pose_source}  # fmt: skip


@dataclass(frozen=True, eq=False)
class EpisodeRecord:
    """The outcome of one episode in simulation (`source="sim"`) or on a robot (`source="real"`).

    Arrays (T control steps, A action dims, J joints):
      actions:         (T, A) commanded policy actions, as sent
      joint_positions: (T+1, J) measured joint positions (rad or m), initial state first
      joint_targets:   (T, J) commanded joint position targets, or None if the controller had none
    """

    robot: str  # robot name, e.g. "ur5e", "fr3"
    task: str  # task name, e.g. "reach", "pickplace"
    seed: int  # episode seed (>= 0)
    source: str  # "sim" or "real"
    success: bool
    final_error: float  # task error at the end of the episode (m)
    time_to_success: float | None  # first success time (s); None exactly when success is False
    path_length: float  # end-effector path length (m)
    max_joint_velocity: float  # largest absolute joint velocity (rad/s)
    control_dt: float  # time between control steps (s)
    actions: np.ndarray
    joint_positions: np.ndarray
    joint_targets: np.ndarray | None = None
    contact: ContactSummary = field(default_factory=ContactSummary)
    randomization: Mapping[str, float] = field(default_factory=dict)  # name -> sampled value; {} for real
    meta: Mapping[str, Any] = field(default_factory=dict)  # provenance: run dir, checkpoint, policy step...
    schema_version: int = SCHEMA_VERSION
    pick: PickOutcome | None = None  # pick-and-place events and object poses (schema version >= 2)
    # (control step, width m) of each gripper command the deployment sent, in step order; None: no gripper was
    # commanded (reach, a sim record) or not recorded (schema version < 3). The width holds until the next one.
    gripper_commands: tuple[tuple[int, float], ...] | None = None
    # (T+1,) header stamps (s, the robot's clock: simulated or wall time) of the joint states in joint_positions,
    # non-decreasing; None: not measured (a sim record, an unstamped robot) or not recorded (schema version < 4).
    # A camera frame belongs to the episode whose stamps span its own stamp (ast_robot.gap.visual).
    joint_stamps: np.ndarray | None = None
    # s: the command latency the episode declared to the safety filter (SafetyLimits.from_robot): the deployment's
    # configs/deploy/<robot>.yaml value, a pipeline env's randomized latency. None: undeclared (schema >= 5: the
    # strict filter, as 0), no filter ran (a plain env step), or not recorded (schema < 5: the filter then granted
    # arm.LAG_ALLOWANCE_S, i.e. a declared arm.PRE_DECLARATION_LATENCY_S; ast_robot.envs.pipeline.declared_latency)
    command_latency_s: float | None = None

    def __post_init__(self) -> None:
        _check_version(self.schema_version)
        for name in ("robot", "task"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise RecordError(name, value, "must be a non-empty string")
        object.__setattr__(self, "seed", _check_int("seed", self.seed, low=0))
        if self.source not in SOURCES:
            raise RecordError("source", self.source, f"must be one of {list(SOURCES)}")
        if not isinstance(self.success, (bool, np.bool_)):
            raise RecordError("success", self.success, "must be a boolean")
        object.__setattr__(self, "success", bool(self.success))
        self._check_scalars()
        self._check_arrays()
        object.__setattr__(self, "randomization", _check_randomization(self.randomization, self.source))
        object.__setattr__(self, "meta", _check_meta(self.meta))
        if not isinstance(self.contact, ContactSummary):
            raise RecordError("contact", self.contact, "must be a ContactSummary")
        if self.pick is not None and (not isinstance(self.pick, PickOutcome) or self.schema_version < 2):
            raise RecordError("pick", self.pick, "must be a PickOutcome, in records of schema version >= 2")
        if self.gripper_commands is not None:
            object.__setattr__(self, "gripper_commands", self._checked_gripper_commands())
        if self.joint_stamps is not None:
            object.__setattr__(self, "joint_stamps", self._checked_stamps())
        if self.command_latency_s is not None:
            object.__setattr__(self, "command_latency_s", self._checked_latency())
        self._check_physically_possible()

    def _checked_latency(self) -> float:
        if self.schema_version < 5:
            raise RecordError("command_latency_s", self.command_latency_s, "is a schema version 5 field")
        value = _check_number("command_latency_s", self.command_latency_s, low=0.0)
        if value > MAX_COMMAND_LATENCY_S:
            raise RecordError("command_latency_s", value, f"must be a declared command latency of 0-"
                              f"{MAX_COMMAND_LATENCY_S:g} s (null: undeclared)")  # fmt: skip
        return value

    def _checked_stamps(self) -> np.ndarray:
        if self.schema_version < 4:
            raise RecordError("joint_stamps", self.joint_stamps, "is a schema version 4 field")
        try:
            arr = np.array(self.joint_stamps, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as err:
            raise RecordError("joint_stamps", self.joint_stamps, "must be a list of times (s)") from err
        if arr.shape != (self.joint_positions.shape[0],):
            raise RecordError("joint_stamps", arr.shape, f"must have one stamp per joint_positions row "
                              f"({self.joint_positions.shape[0]})")  # fmt: skip
        if not np.isfinite(arr).all() or (arr < 0).any() or (np.diff(arr) < 0).any():
            raise RecordError("joint_stamps", arr.tolist()[:8], "must be finite times (s) >= 0, non-decreasing")
        arr.setflags(write=False)
        return arr

    def _checked_gripper_commands(self) -> tuple[tuple[int, float], ...]:
        if self.schema_version < 3:
            raise RecordError("gripper_commands", self.gripper_commands, "is a schema version 3 field")
        out, last = [], -1
        for i, item in enumerate(self.gripper_commands):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise RecordError(f"gripper_commands[{i}]", item, "must be [control step, width m]")
            step = _check_int(f"gripper_commands[{i}].step", item[0], low=0)
            if step <= last or step >= self.steps:
                raise RecordError(f"gripper_commands[{i}].step", step, f"must increase and be < the episode's "
                                  f"{self.steps} control steps (one command per step at most)")  # fmt: skip
            out.append((step, _check_number(f"gripper_commands[{i}].width", item[1], low=0.0)))
            last = step
        return tuple(out)

    def _check_scalars(self) -> None:
        for name in ("final_error", "path_length", "max_joint_velocity"):
            object.__setattr__(self, name, _check_number(name, getattr(self, name), low=0.0))
        object.__setattr__(
            self, "control_dt", _check_number("control_dt", self.control_dt, low=0.0, strict=True)
        )
        if self.success:
            if self.time_to_success is None:
                raise RecordError("time_to_success", None, "must be a number of seconds when success is true")
            object.__setattr__(
                self, "time_to_success", _check_number("time_to_success", self.time_to_success, low=0.0)
            )
        elif self.time_to_success is not None:
            raise RecordError("time_to_success", self.time_to_success, "must be null when success is false")

    def _check_arrays(self) -> None:
        actions = _as_matrix("actions", self.actions)
        joints = _as_matrix("joint_positions", self.joint_positions)
        if actions.shape[0] < 1:
            raise RecordError("actions", actions.shape, "needs at least one control step (shape (T>=1, A))")
        if joints.shape[0] != actions.shape[0] + 1:
            raise RecordError("joint_positions", joints.shape, f"must have T+1 = {actions.shape[0] + 1} rows "
                              f"(initial state + one per action)")  # fmt: skip
        object.__setattr__(self, "actions", actions)
        object.__setattr__(self, "joint_positions", joints)
        if self.joint_targets is not None:
            targets = _as_matrix("joint_targets", self.joint_targets)
            if targets.shape != (actions.shape[0], joints.shape[1]):
                raise RecordError("joint_targets", targets.shape, f"must have shape (T, J) = "
                                  f"{(actions.shape[0], joints.shape[1])}")  # fmt: skip
            object.__setattr__(self, "joint_targets", targets)

    def _check_physically_possible(self) -> None:
        """Counts and times that cannot exceed what the episode's T steps of control_dt allow.

        Only sim times are bounded by T * control_dt: a robot's time comes from a wall clock, and control
        ticks that run late (a loaded machine) make an episode last longer than its tick count says."""
        duration = self.steps * self.control_dt
        late = self.time_to_success is not None and self.time_to_success > duration + self.control_dt * (1 + 1e-9)
        if self.source == "sim" and late:
            raise RecordError("time_to_success", self.time_to_success, f"must be <= the episode's duration "
                              f"({self.steps} steps x control_dt {self.control_dt} s = {duration:.6g} s, + one step)")  # fmt: skip
        late_event = self.pick is not None and self.pick.events and self.pick.events[-1][1] > duration + self.control_dt * (1 + 1e-9)
        if self.source == "sim" and late_event:
            raise RecordError("pick.events", self.pick.events[-1], f"must be within the episode's duration ({duration:.6g} s)")
        if self.contact.contact_steps > self.steps:
            raise RecordError("contact.contact_steps", self.contact.contact_steps,
                              f"must be <= the episode's {self.steps} control steps")  # fmt: skip

    @property
    def steps(self) -> int:
        """Number of control steps T."""
        return int(self.actions.shape[0])

    def to_dict(self, include_arrays: bool = True) -> dict[str, Any]:
        """Plain JSON-ready dict (arrays as nested lists when ``include_arrays``)."""
        out: dict[str, Any] = {"schema_version": self.schema_version, "robot": self.robot, "task": self.task,
                               "seed": self.seed, "source": self.source, "success": self.success,
                               "final_error": self.final_error, "time_to_success": self.time_to_success,
                               "path_length": self.path_length, "max_joint_velocity": self.max_joint_velocity,
                               "control_dt": self.control_dt,
                               "contact": {"max_force": self.contact.max_force, "mean_force": self.contact.mean_force,
                                           "contact_steps": self.contact.contact_steps},
                               "randomization": dict(self.randomization), "meta": dict(self.meta)}  # fmt: skip
        if self.schema_version >= 2:
            out["pick"] = None if self.pick is None else self.pick.to_dict()
        if self.schema_version >= 3:
            out["gripper_commands"] = None if self.gripper_commands is None else [list(c) for c in self.gripper_commands]
        if self.schema_version >= 4:
            out["joint_stamps"] = None if self.joint_stamps is None else self.joint_stamps.tolist()
        if self.schema_version >= 5:
            out["command_latency_s"] = self.command_latency_s
        if include_arrays:
            for name in ARRAY_FIELDS:
                value = getattr(self, name)
                out[name] = None if value is None else value.tolist()
        return out

    @classmethod
    def from_dict(cls, data: Any, arrays: Mapping[str, Any] | None = None) -> EpisodeRecord:
        """Build and validate a record from a dict (arrays inline, or given separately in ``arrays``)."""
        if not isinstance(data, dict):
            raise RecordError("<record>", data, "must be a JSON object")
        _check_version(data.get("schema_version", None))
        known = set(_FIELD_NAMES)
        if unknown := sorted(set(data) - known - {"arrays_file", "arrays_key"}):
            raise RecordError(unknown[0], data[unknown[0]], f"unknown field; known fields: {sorted(known)}")
        values = {**data, **(arrays or {})}
        for name in ("actions", "joint_positions"):
            if values.get(name) is None:
                raise RecordError(name, None, "is required (array of shape (T, A) / (T+1, J))")
        missing = [n for n in _REQUIRED if n not in values]
        if missing:
            raise RecordError(missing[0], None, "is required")
        kwargs = {k: values[k] for k in _FIELD_NAMES if k in values}
        kwargs["contact"] = _contact_from(values.get("contact", {}))
        if "pick" in values and values.get("schema_version", SCHEMA_VERSION) < 2:
            raise RecordError("pick", values["pick"], "is a schema version 2 field (this record says version 1)")
        kwargs["pick"] = _pick_from(values.get("pick"))
        if values.get("gripper_commands") is not None and not isinstance(values["gripper_commands"], (list, tuple)):
            raise RecordError("gripper_commands", values["gripper_commands"], "must be a list of [control step, width m]")
        return cls(**kwargs)


_FIELD_NAMES = ("schema_version", "robot", "task", "seed", "source", "success", "final_error", "time_to_success",
                "path_length", "max_joint_velocity", "control_dt", "actions", "joint_positions", "joint_targets",
                "contact", "randomization", "meta", "pick", "gripper_commands", "joint_stamps", "command_latency_s")  # fmt: skip
_REQUIRED = ("robot", "task", "seed", "source", "success", "final_error", "time_to_success", "path_length",
             "max_joint_velocity", "control_dt")  # fmt: skip


def to_json(record: EpisodeRecord) -> str:
    """One-line JSON with the arrays inline (the payload of the ROS 2 outcome message)."""
    return json.dumps(record.to_dict(include_arrays=True), separators=(",", ":"), allow_nan=False)


def from_json(text: str | bytes) -> EpisodeRecord:
    """Parse and validate one record from :func:`to_json` output."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RecordError("<json>", str(text)[:80], f"is not valid JSON ({err})") from err
    return EpisodeRecord.from_dict(data)


def _check_version(version: Any) -> None:
    if not isinstance(version, int) or isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        raise RecordError(
            "schema_version",
            version,
            f"unknown schema version; this ast_robot reads {list(SUPPORTED_VERSIONS)}",
        )


def _check_number(name: str, value: Any, low: float | None = None, strict: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise RecordError(name, value, "must be a number")
    value = float(value)
    if not math.isfinite(value):
        raise RecordError(name, value, "must be finite")
    if low is not None and (value <= low if strict else value < low):
        raise RecordError(name, value, f"must be {'>' if strict else '>='} {low}")
    return value


def _check_int(name: str, value: Any, low: int) -> int:
    """A plain int (numpy integers converted, so the record serializes), >= ``low``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise RecordError(name, value, "must be an integer")
    if value < low:
        raise RecordError(name, value, f"must be >= {low}")
    return int(value)


def _as_matrix(name: str, value: Any) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)  # a copy: freezing it must not freeze the caller's array
    except (TypeError, ValueError) as err:
        raise RecordError(name, value, "must be a 2-D array of numbers") from err
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise RecordError(name, arr.shape, "must be a 2-D array (steps, dims) with dims >= 1")
    if not np.isfinite(arr).all():
        raise RecordError(name, "non-finite entries", "must hold only finite numbers")
    arr.setflags(write=False)
    return arr


def _check_randomization(values: Any, source: str) -> dict[str, float]:
    if not isinstance(values, Mapping):
        raise RecordError("randomization", values, "must be a mapping name -> number")
    if source == "real" and values:
        raise RecordError(
            "randomization", dict(values), "must be empty for real records (a robot's physics is unknown)"
        )
    out = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name:
            raise RecordError("randomization", name, "keys must be non-empty strings")
        out[name] = _check_number(f"randomization.{name}", value)
    return out


def _check_meta(values: Any) -> dict[str, Any]:
    """Scalars only; numpy scalars become the Python ones so the record serializes."""
    if not isinstance(values, Mapping):
        raise RecordError("meta", values, "must be a mapping name -> string/number/boolean")
    out: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, np.generic) and isinstance(value, (np.bool_, np.integer, np.floating)):
            value = value.item()
        if not isinstance(name, str) or not (value is None or isinstance(value, _SCALAR_META)):
            raise RecordError(f"meta.{name}", value, "values must be strings, numbers, booleans or null")
        if isinstance(value, float) and not math.isfinite(value):
            raise RecordError(f"meta.{name}", value, "must be finite")
        out[name] = value
    return out


def _contact_from(data: Any) -> ContactSummary:
    if isinstance(data, ContactSummary):
        return data
    if not isinstance(data, dict):
        raise RecordError("contact", data, "must be an object {max_force, mean_force, contact_steps}")
    known = {"max_force", "mean_force", "contact_steps"}
    if unknown := sorted(set(data) - known):
        raise RecordError(f"contact.{unknown[0]}", data[unknown[0]], f"unknown field; known: {sorted(known)}")
    return ContactSummary(**data)


def _pick_from(data: Any) -> PickOutcome | None:
    if data is None or isinstance(data, PickOutcome):
        return data
    if not isinstance(data, dict):
        raise RecordError("pick", data, "must be an object {events, object_positions, target_object, "
                          "target_distance, pose_source} or null")  # fmt: skip
    known = {"events", "object_positions", "target_object", "target_distance", "pose_source"}
    if unknown := sorted(set(data) - known):
        raise RecordError(f"pick.{unknown[0]}", data[unknown[0]], f"unknown field; known: {sorted(known)}")
    if not isinstance(data.get("events", []), list):
        raise RecordError("pick.events", data["events"], "must be a list of [name, time s]")
    return PickOutcome(**{**data, "events": tuple(tuple(e) if isinstance(e, list) else e for e in data.get("events", []))})
