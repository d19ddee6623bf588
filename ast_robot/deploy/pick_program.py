"""``scripted:pickplace``: a fixed pick program for wiring checks of the pick-and-place deployment path.

It acts from **the table the operator set** (:class:`ast_robot.deploy.table.Table`: where the target cube was
put and where its pad is), as a fixed pick program on a real cell would, and from the robot's own
proprioception (TCP and commanded TCP in the observation). It never sees the cube move: no object tracker,
no camera, and never the twin's hidden state. So a cube that slips or was not where the table says is lost,
which is the point of a wiring check: the outcome's events (grasp, lift, place) show what really happened.

Not a learned policy: actions are the envs' (3 TCP deltas in [-1, 1] of ``max_ee_step`` m, gripper -1 closed
/ +1 open), so it runs through the same action map, safety module and gripper commander as a checkpoint.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ast_robot.robot.scene import OBJECT_HALF_SIZE

HOVER_M = 0.09  # TCP height while carrying (m), as the envs' expert
CLOSE_CALLS = 6  # policy calls (control steps) to wait while the fingers close / open


class PickProgram:
    """Approach -> descend -> close -> lift -> carry -> lower -> open -> retreat, from the table's places."""

    def __init__(self, action_size: int, n_joints: int, max_ee_step: float) -> None:
        self.action_size, self.n, self.step_m = action_size, n_joints, float(max_ee_step)
        self.table: Any = None
        self.phase, self.calls = "idle", 0

    def set_table(self, table: Any) -> None:
        """The table of the episode about to start (None: hold still); restarts the program."""
        self.table, self.calls = table, 0
        self.phase = "idle" if table is None else "approach"

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        vec = np.asarray(obs["observation"], dtype=float)
        tcp = vec[2 * self.n : 2 * self.n + 3]
        cmd = tcp + vec[2 * self.n + 7 : 2 * self.n + 10]  # the commanded TCP: steps from it do not overshoot
        self.calls += 1
        target, grip = self._phase_target(tcp)
        action = np.zeros(self.action_size, dtype=np.float32)
        action[:3] = np.clip((target - cmd) / self.step_m, -1.0, 1.0)
        action[-1] = grip
        return action

    def _phase_target(self, tcp: np.ndarray) -> tuple[np.ndarray, float]:
        if self.table is None or self.phase == "idle":
            return tcp, 1.0
        cx, cy, _ = self.table.objects[self.table.target_object]
        px, py, _ = self.table.place
        low = OBJECT_HALF_SIZE  # TCP at the centre of a cube resting on the table
        plan = {  # phase: (TCP target, gripper, done?, next phase)
            "approach": ((cx, cy, low + 0.05), 1.0, _near(tcp[:2], (cx, cy), 0.012), "descend"),
            "descend": ((cx, cy, low), 1.0, tcp[2] - low < 0.006, "close"),
            "close": ((cx, cy, low), -1.0, self.calls >= CLOSE_CALLS, "lift"),
            "lift": ((cx, cy, HOVER_M), -1.0, tcp[2] > HOVER_M - 0.01, "carry"),
            "carry": ((px, py, HOVER_M), -1.0, _near(tcp[:2], (px, py), 0.012), "lower"),
            "lower": ((px, py, low + 0.005), -1.0, tcp[2] - low < 0.012, "open"),
            "open": ((px, py, low + 0.005), 1.0, self.calls >= CLOSE_CALLS, "retreat"),
            "retreat": ((px, py, HOVER_M), 1.0, False, "retreat"),
        }
        target, grip, done, following = plan[self.phase]
        if done:
            self.phase, self.calls = following, 0
        return np.array(target, dtype=float), grip


def _near(a: Any, b: Any, radius: float) -> bool:
    return float(np.hypot(a[0] - b[0], a[1] - b[1])) < radius
