"""Robot constants (from the makers' public data) and the DH forward kinematics that checks the MJCF.

Every arm is described once here as a frozen :class:`RobotSpec`; the MJCF files in ``envs/robots/`` are
authored from the same numbers. ``get_robot(name)`` looks a spec up through a registry, so an unknown
name lists the known ones. ``load_model(robot, task)`` builds the MuJoCo scene (robot on a table plus
the task's objects); it imports MuJoCo lazily so that importing this module stays light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ast_robot.registry import Registry

if TYPE_CHECKING:
    import mujoco

ROBOTS: Registry[RobotSpec] = Registry("robot")


@dataclass(frozen=True)
class RobotSpec:
    """One arm + gripper. Angles in rad, lengths in m, speeds in rad/s, torques in N m."""

    name: str
    mjcf: str  # file inside the `ast_robot.mjcf` package (envs/ in the source tree)
    joint_names: tuple[str, ...]
    actuator_names: tuple[str, ...]  # position actuators of the arm joints, same order
    joint_lower: tuple[float, ...]
    joint_upper: tuple[float, ...]
    velocity_limits: tuple[float, ...]
    effort_limits: tuple[float, ...]
    home_qpos: tuple[float, ...]
    ee_site: str  # tool centre point between the finger pads
    flange_body: str
    base_body: str
    gripper_actuator: str  # ctrl = commanded opening width (m)
    gripper_joints: tuple[str, ...]
    gripper_width: tuple[float, float]  # (closed, open) opening width (m)
    grip_force: float  # gripper actuator force limit (N)
    dh: tuple[tuple[float, float, float], ...]  # rows (a, d, alpha)
    dh_convention: Literal["standard", "modified"]
    dh_flange_d: float = 0.0  # extra translation along the last z axis to the flange (m)
    rated_payload_kg: float = 0.0  # data-sheet payload (kg): the heaviest tool system identification considers

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    def dh_fk(self, q: np.ndarray) -> np.ndarray:
        """Flange pose (4x4, base frame) from the DH table at joint angles ``q`` (n_joints,)."""
        q = np.asarray(q, dtype=float)
        if q.shape != (self.n_joints,):
            raise ValueError(f"q must have shape ({self.n_joints},) for {self.name}, got {q.shape}")
        pose = np.eye(4)
        for theta, (a, d, alpha) in zip(q, self.dh):
            if self.dh_convention == "standard":  # Rz(theta) Tz(d) Tx(a) Rx(alpha)
                pose = pose @ _rot_z(theta) @ _trans(0, 0, d) @ _trans(a, 0, 0) @ _rot_x(alpha)
            else:  # Craig: Rx(alpha) Tx(a) Rz(theta) Tz(d)
                pose = pose @ _rot_x(alpha) @ _trans(a, 0, 0) @ _rot_z(theta) @ _trans(0, 0, d)
        return pose @ _trans(0, 0, self.dh_flange_d)


def _rot_z(t: float) -> np.ndarray:
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])


def _rot_x(t: float) -> np.ndarray:
    c, s = math.cos(t), math.sin(t)
    return np.array([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1.0]])


def _trans(x: float, y: float, z: float) -> np.ndarray:
    out = np.eye(4)
    out[:3, 3] = (x, y, z)
    return out


_TWO_PI = 2 * math.pi
_UR5E_JOINTS = ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint",
                "wrist_1_joint", "wrist_2_joint", "wrist_3_joint")  # fmt: skip

# UR5e: UR's published DH table and limits; joints +-2pi except the elbow (+-pi, self-collision).
UR5E = ROBOTS.register("ur5e")(
    RobotSpec(
        name="ur5e",
        mjcf="robots/ur5e.xml",
        joint_names=_UR5E_JOINTS,
        actuator_names=("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3"),
        joint_lower=(-_TWO_PI, -_TWO_PI, -math.pi, -_TWO_PI, -_TWO_PI, -_TWO_PI),
        joint_upper=(_TWO_PI, _TWO_PI, math.pi, _TWO_PI, _TWO_PI, _TWO_PI),
        velocity_limits=(math.pi,) * 6,  # 180 deg/s on every joint
        effort_limits=(150.0, 150.0, 150.0, 28.0, 28.0, 28.0),
        home_qpos=(
            -0.3006,
            -1.6927,
            1.9236,
            -1.8017,
            -1.571,
            -1.8712,
        ),  # TCP at (0.45, 0, 0.25), pointing down
        ee_site="tcp",
        flange_body="flange",
        base_body="base",
        gripper_actuator="gripper",
        gripper_joints=("left_finger_joint", "right_finger_joint"),
        gripper_width=(0.0, 0.085),
        grip_force=100.0,
        dh=(
            (0.0, 0.1625, math.pi / 2),
            (-0.425, 0.0, 0.0),
            (-0.3922, 0.0, 0.0),
            (0.0, 0.1333, math.pi / 2),
            (0.0, 0.0997, -math.pi / 2),
            (0.0, 0.0996, 0.0),
        ),  # fmt: skip
        dh_convention="standard",
        rated_payload_kg=5.0,  # UR5e data sheet
    )
)

# Franka Research 3: Craig DH of Franka's docs; limits from "Limits for Franka Research 3".
FR3 = ROBOTS.register("fr3")(
    RobotSpec(
        name="fr3",
        mjcf="robots/fr3.xml",
        joint_names=tuple(f"fr3_joint{i}" for i in range(1, 8)),
        actuator_names=tuple(f"fr3_joint{i}" for i in range(1, 8)),
        joint_lower=(-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159),
        joint_upper=(2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159),
        velocity_limits=(2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26),
        effort_limits=(87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0),
        home_qpos=(0.0, -0.185, 0.0, -2.4967, 0.0, 2.3115, 0.7854),  # TCP at (0.45, 0, 0.25), pointing down
        ee_site="tcp",
        flange_body="flange",
        base_body="base",
        gripper_actuator="gripper",
        gripper_joints=("fr3_finger_joint1", "fr3_finger_joint2"),
        gripper_width=(0.0, 0.08),
        grip_force=70.0,
        dh=(
            (0.0, 0.333, 0.0),
            (0.0, 0.0, -math.pi / 2),
            (0.0, 0.316, math.pi / 2),
            (0.0825, 0.0, math.pi / 2),
            (-0.0825, 0.384, -math.pi / 2),
            (0.0, 0.0, math.pi / 2),
            (0.088, 0.0, math.pi / 2),
        ),  # fmt: skip
        dh_convention="modified",
        dh_flange_d=0.107,
        rated_payload_kg=3.0,  # Franka FR3 data sheet
    )
)


def get_robot(name: str) -> RobotSpec:
    """The :class:`RobotSpec` registered as ``name`` (ValueError listing the known robots otherwise)."""
    if not isinstance(name, str):
        raise TypeError(f"robot name must be a string, got {type(name).__name__} {name!r}")
    return ROBOTS.get(name)


def load_model(robot: str, task: str = "reach", **options: Any) -> mujoco.MjModel:
    """Compile the scene of ``task`` ("reach" or "pickplace") with ``robot`` on the table.

    ``options`` go to the task's scene builder (e.g. ``n_objects`` for pick-and-place,
    ``model="menagerie"`` for the mujoco-menagerie arm); see :mod:`ast_robot.robot.scene`.
    """
    from ast_robot.robot.scene import build_spec

    return build_spec(get_robot(robot), task, **options).compile()
