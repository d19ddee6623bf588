"""The one judge of a pick-and-place episode's events, for the env side and the deployment alike.

``ast-robot eval`` (:mod:`ast_robot.evaluation`, from the env's info) and the deployment
(:mod:`ast_robot.deploy.episode`, from joint states and a lab's object tracker) feed the same
:class:`PickJudge` one state per control step, so one trajectory gets one set of events:

- **grasp**: the measured opening has stopped (moved < ``STILL_M`` since the last step) above the closed
  width by more than ``GRASP_MARGIN_M`` and below the open width by as much: the fingers rest on something.
  With object poses the grasped object is the cube nearest the TCP, and it must be within ``HOLD_RADIUS_M``;
- **lift**: a grasped object rises more than ``LIFT_M`` (2 cm) above where it was grasped;
- **drop** (slip or drop): while lifted, the object slides down in the hand by more than ``LIFT_M`` (its
  height below the TCP grows, as it does when it falls back to the table while the arm stays up), leaves the
  fingers (farther than ``HOLD_RADIUS_M`` from the TCP), or the opening collapses to closed. Lowering a held
  cube onto the pad moves cube and TCP together and is no drop;
  A new grasp after a drop needs the fingers to open first;
- **place**: the fingers open (the opening grows by ``GRASP_MARGIN_M``) while the target cube is within the
  success threshold of its place on the pad.

Success and final error stay the one rule of :mod:`ast_robot.success`, on the target cube (as the env's
``info["distance"]``). Without object poses no object event but grasp can be seen, and nothing is invented:
the outcome says ``pose_source`` "none". Pure Python + numpy; imports only :mod:`ast_robot.success`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ast_robot.success import goal_distance, reached

GRASP_MARGIN_M = 0.004  # opening this far from closed and from open counts as "on something" (m)
STILL_M = 0.0005  # the opening moved less than this in one step: the fingers stopped (m)
HOLD_RADIUS_M = 0.05  # a held cube's centre is within this distance of the TCP (m)
LIFT_M = 0.02  # rise above the grasp height that counts as a lift (m)


class PickJudge:
    """Feed :meth:`step` once per control step (the episode's first state included); read :meth:`outcome`."""

    def __init__(self, gripper_width: tuple[float, float], place: Any, target_object: int | None,
                 threshold: float, pose_source: str) -> None:  # fmt: skip
        self.closed, self.opened = (float(w) for w in gripper_width)
        self.place = None if place is None else [float(v) for v in place]
        self.target, self.threshold, self.pose_source = target_object, float(threshold), pose_source
        self.events: list[tuple[str, float]] = []
        self.objects: np.ndarray | None = None  # latest object positions (n, 3)
        self._last_width: float | None = None
        self._held: int | None = None  # index of the held cube (-1: held, unknown which), None: nothing held
        self._grasp_width = 0.0
        self._grasp_z = 0.0
        self._grasp_below = 0.0  # TCP height above the held cube's centre at the grasp (m)
        self._lifted = False
        self._rearm_above: float | None = None  # after a drop: a new grasp needs the fingers to open past this

    def step(self, t_s: float, width: float, tcp: Any, objects: Any = None) -> None:
        """One state at ``t_s`` s after the start: measured opening (m), TCP (3,) and cube positions (n, 3)."""
        width = float(width)
        if objects is not None:
            self.objects = np.array(objects, dtype=float).reshape(-1, 3)
        if self._held is None:
            self._maybe_grasp(t_s, width, tcp)
        else:
            self._while_held(t_s, width, tcp)
        self._last_width = width

    def _maybe_grasp(self, t_s: float, width: float, tcp: Any) -> None:
        if self._rearm_above is not None:  # still the hand of the drop: no new grasp before it opens again
            if width <= self._rearm_above:
                return
            self._rearm_above = None
        still = self._last_width is not None and abs(width - self._last_width) < STILL_M
        on_something = self.closed + GRASP_MARGIN_M < width < self.opened - GRASP_MARGIN_M
        if not (still and on_something):
            return
        held = -1
        if self.objects is not None:
            distances = [goal_distance(p, tcp) for p in self.objects]
            held = int(np.argmin(distances))
            if distances[held] > HOLD_RADIUS_M:
                return
            self._grasp_z = float(self.objects[held, 2])
            self._grasp_below = float(tcp[2]) - self._grasp_z
        self._held, self._grasp_width, self._lifted = held, width, False
        self.events.append(("grasp", t_s))

    def _while_held(self, t_s: float, width: float, tcp: Any) -> None:
        released = width > self._grasp_width + GRASP_MARGIN_M
        if released:
            if self._target_on_pad():
                self.events.append(("place", t_s))
            self._held = None
            return
        if self._held < 0:  # no object pose: lift and drop cannot be seen
            return
        z = float(self.objects[self._held, 2])
        if not self._lifted:
            if z > self._grasp_z + LIFT_M:
                self._lifted = True
                self.events.append(("lift", t_s))
            return
        gone = goal_distance(self.objects[self._held], tcp) > HOLD_RADIUS_M
        slid = float(tcp[2]) - z > self._grasp_below + LIFT_M
        if gone or slid or width <= self.closed + GRASP_MARGIN_M:
            self.events.append(("drop", t_s))
            self._held, self._rearm_above = None, width + GRASP_MARGIN_M

    def _target_on_pad(self) -> bool:
        if self.objects is None or self.target is None or self.place is None:
            return False
        return bool(reached(goal_distance(self.objects[self.target], self.place), self.threshold))

    def target_distance(self) -> float | None:
        """Distance (m) of the target cube to its place now (None without object poses)."""
        if self.objects is None or self.target is None or self.place is None:
            return None
        return goal_distance(self.objects[self.target], self.place)

    def outcome(self) -> dict[str, Any]:
        """The fields of :class:`ast_robot.records.PickOutcome` (a dict: this module imports no records)."""
        measured = self.objects is not None and self.pose_source != "none"
        return {"events": tuple(self.events), "target_object": self.target,
                "object_positions": self.objects.tolist() if measured else None,
                "target_distance": self.target_distance() if measured else None,
                "pose_source": self.pose_source if measured else "none"}  # fmt: skip
