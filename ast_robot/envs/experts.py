"""Scripted experts: privileged controllers (they read the true simulator state) that make demonstrations.

Both act in ``ee_delta`` mode: a proportional step toward a waypoint, clipped to the action box.
``expert_for(env)`` picks the expert of the env's task; ``expert.reset()`` before every episode.
"""

from __future__ import annotations

import numpy as np

from ast_robot.registry import Registry

EXPERTS: Registry[type] = Registry("expert")


def _toward(env, target: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """TCP displacement action (3,) that moves toward ``target`` (3, m)."""
    u = env.unwrapped
    delta = target - u.tcp_command  # relative to the commanded TCP: the arm's lag causes no overshoot
    return np.clip(gain * delta / u.cfg.max_ee_step, -1.0, 1.0)


@EXPERTS.register("reach")
class ReachExpert:
    """Straight line to the target with the gripper open."""

    def __init__(self, env) -> None:
        if env.unwrapped.cfg.action_mode != "ee_delta":
            raise ValueError("the scripted experts need action_mode 'ee_delta'")
        self.env = env

    def reset(self) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray] | None = None) -> np.ndarray:
        u = self.env.unwrapped
        return np.concatenate([_toward(self.env, u.goal), [1.0]]).astype(np.float32)


@EXPERTS.register("pickplace")
class PickPlaceExpert(ReachExpert):
    """Above the cube -> down -> close -> lift -> above the pad -> down -> open -> up.

    A grasp that fails (the cube stays on the table while the TCP lifts, or the lift times out) and a drop
    while carrying (the cube back near the table, or away from the TCP) start over from the approach. A cube
    already up in the hand before the expert's own grasp (DAgger: the student grasped and lifted it) goes
    straight to the carry: labelling those states "open" taught the student to drop what it held (issue 20).
    Likewise a student that is already closing its fingers around the cube (:meth:`_closing_around`) gets
    "close" (then the lift), not the expert's own "still descending, open": labelling those states "open"
    taught the student to miss grasps it was making (33% of such steps in FR3 DAgger data, issue 20).
    A student that keeps the fingers shut at the place and rises with the cube gets "down over the place, open",
    not the expert's own retreat "up, open": that label taught UR5e students to carry the cube away (issue 20).
    """

    HOVER = 0.09  # height of the TCP above the table while carrying (m)
    ABOVE = 0.05  # the approach's point above the cube's centre (m), where the descent starts
    DESCEND_XY = 0.02  # TCP within this of the cube horizontally (m) and LOW below ABOVE: descend from there
    LOW = 0.01  # m below the approach's height (open fingers clear a cube 20 mm off centre on either axis)
    CLOSE_STEPS = 4  # control steps to wait while the fingers close
    LIFT_STEPS = 15  # control steps the lift may take before the grasp counts as failed
    HOLD_DISTANCE = 0.03  # TCP-cube distance (m) beyond which the cube is not in the hand
    ON_TABLE = 0.01  # cube centre this close to its resting height (m): on the table
    AROUND_XY = 0.012  # TCP this close to the cube centre horizontally (m): the expert's own descend test
    AROUND_Z = 0.011  # TCP at most this far above the cube centre (m): closing there grasps (1.0 cm lifted the
    # nominal cube on both arms, 1.3 cm shut the fingers over it: /tmp/px7/grasplab/heights.py)
    SHUT = 0.01  # finger opening below this (m): shut on nothing (at the cube it dips to ~0.018 then rests ~0.036)
    RISEN = 0.02  # the cube this far above its place while still at the TCP during the release (m): it rose in
    # the hand (DAgger: the student did not open and lifted it; 0 steps in 250 of the expert's own noisy demos)

    def reset(self) -> None:
        self._enter("approach")
        self._grip = 1.0  # the expert's last gripper label: a close it did not label came from someone else

    def _enter(self, phase: str) -> None:
        self.phase, self.timer = phase, 0  # every phase counts its own steps

    def act(self, obs: dict[str, np.ndarray] | None = None) -> np.ndarray:
        u = self.env.unwrapped
        tcp, cube, goal = u.tcp_pos, u.object_pos(u.target_object).copy(), u.goal
        grasp_z = u.half_size  # TCP at the centre of a cube resting on the table
        self.timer += 1
        if self.phase in ("approach", "descend", "close") and self._in_hand(tcp, cube, grasp_z):
            self._enter("carry")
        elif self.phase in ("approach", "descend") and self._closing_around(tcp, cube):
            self._enter("close")
        step = getattr(self, f"_{self.phase}")
        move, grip = step(tcp, cube, goal, grasp_z)
        self._grip = grip
        return np.concatenate([_toward(self.env, move, gain=1.0), [grip]]).astype(np.float32)

    def _approach(self, tcp, cube, goal, grasp_z):
        above = np.array([cube[0], cube[1], grasp_z + self.ABOVE])
        xy = float(np.linalg.norm(tcp[:2] - cube[:2]))
        if xy < 0.012:
            self._enter("descend")
        elif self._low_over(tcp, xy, grasp_z):  # someone else brought the TCP down beside the cube: descend now
            self._enter("descend")
            return self._descend(tcp, cube, goal, grasp_z)
        return above, 1.0

    def _low_over(self, tcp, xy: float, grasp_z: float) -> bool:
        """The TCP below the approach's height by ``LOW`` and within ``DESCEND_XY`` of the cube horizontally: a state
        the expert's own approach (from above) does not visit, where its label must not depend on whether it had come
        within the approach's 12 mm earlier (DAgger: students hovering there got "up" or "down" by history, 57/43 in
        the FR3 pool, and learned to hover: 15 of 19 never-lifted episodes, issue 20)."""
        return xy < self.DESCEND_XY and tcp[2] < grasp_z + self.ABOVE - self.LOW

    def _descend(self, tcp, cube, goal, grasp_z):
        target = np.array([cube[0], cube[1], grasp_z])
        if tcp[2] - grasp_z < 0.006:
            self._enter("close")
        return target, 1.0

    def _close(self, tcp, cube, goal, grasp_z):
        if self.timer >= self.CLOSE_STEPS:
            self._enter("lift")
        return np.array([cube[0], cube[1], grasp_z]), -1.0

    def _lift(self, tcp, cube, goal, grasp_z):
        if cube[2] > grasp_z + 0.03:
            self._enter("carry")
        elif self._lost(tcp, cube) or self.timer > self.LIFT_STEPS:  # the fingers missed or slipped
            self._enter("approach")
        cmd = self.env.unwrapped.tcp_command
        return np.array([cmd[0], cmd[1], self.HOVER]), -1.0

    def _carry(self, tcp, cube, goal, grasp_z):
        if cube[2] < grasp_z + self.ON_TABLE or self._lost(tcp, cube):  # dropped: start over
            self._enter("approach")
        elif np.linalg.norm(cube[:2] - goal[:2]) < 0.015:
            self._enter("place")
        return np.array([goal[0] + tcp[0] - cube[0], goal[1] + tcp[1] - cube[1], self.HOVER]), -1.0

    def _in_hand(self, tcp, cube, grasp_z) -> bool:
        """The cube lifted off the table (as a finished lift) and at the TCP: someone else grasped it."""
        return cube[2] > grasp_z + 0.03 and not self._lost(tcp, cube)

    def _closing_around(self, tcp, cube) -> bool:
        """Someone else (DAgger: the student) is closing the fingers around the cube on the table.

        Closing: the gripper command now applied is below half open while the expert's own last label was
        open (so never in the expert's own rollouts: its labels are executed). Around: the TCP within
        ``AROUND_XY`` of the cube centre horizontally and between the centre's height (less a half size) and
        ``AROUND_Z`` above it, and the measured finger opening above ``SHUT`` (not shut on nothing). A grasp
        that fails anyway is caught by the lift's own tests, as the expert's own misses are."""
        u = self.env.unwrapped
        closed, opened = u.robot.gripper_width
        commanded = u.applied_gripper_width  # privileged: the width the actuators are driven to (latency included)
        if self._grip <= 0.0 or commanded > (closed + opened) / 2:
            return False
        dz = float(tcp[2] - cube[2])
        return (float(np.linalg.norm(tcp[:2] - cube[:2])) < self.AROUND_XY and -u.half_size < dz < self.AROUND_Z
                and u.finger_width > self.SHUT)

    def _lost(self, tcp, cube) -> bool:
        return float(np.linalg.norm(tcp - cube)) > self.HOLD_DISTANCE

    def _place(self, tcp, cube, goal, grasp_z):
        if cube[2] - goal[2] < 0.015:
            self._enter("release")
        return goal + tcp - cube, -1.0  # keep correcting x, y while going down

    def _release(self, tcp, cube, goal, grasp_z):
        if not self._lost(tcp, cube) and cube[2] - goal[2] > self.RISEN:  # someone else kept it shut and rose
            return goal + tcp - cube, 1.0  # back down over the place, opening: never "up" with the cube in hand
        return self.env.unwrapped.tcp_command + np.array([0.0, 0.0, 0.05]), 1.0


def expert_for(env) -> ReachExpert:
    """The scripted expert of ``env``'s task."""
    return EXPERTS.get(env.unwrapped.task)(env)
