"""A wrist camera for the pick-and-place envs (``env.wrist_camera``): a camera on the gripper looking down past
the fingers, as a RealSense on a real UR5e or FR3 flange (issue 20).

Why: the fixed scene camera looks at the table from the front; near the grasp its depth axis (world x) is
foreshortened and the gripper hides the cube, and the pixel student's estimate of the cube-TCP offset there was
~2 cm off in x and 1-3 cm in z at 96x96. A camera that moves with the gripper sees the cube grow and centre as
the TCP closes in: the offset is an image offset times a height the TCP already knows.

Geometry (gripper body frame, whose +z points from the flange toward the fingertips): the camera sits just
5 cm outside the palm on its +x side, at the palm's middle height (a bracket on the flange), and aims at a point ``AIM_BELOW_TCP`` below the
TCP; its image x axis runs along the fingers' opening direction (gripper y). Mount jitter (``visual_wrist_*``
in ``info["dr"]``) shifts and turns it a little in that frame, as a re-mounted camera would be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

WRIST_CAMERA, WRIST_KEY = "wrist", "wrist_camera"  # MJCF camera name, observation key
GRIPPER_BODY, PALM_GEOM, TCP_SITE = "gripper", "gripper_palm", "tcp"
MOUNT_GAP = 0.05  # m from the palm's +x face to the camera: its line of sight to the cube clears the palm
AIM_BELOW_TCP = 0.05  # m past the TCP along the gripper's z: a cube the TCP is about to grasp is at the centre
FOVY = 60.0  # deg, vertical field of view (a D405's is 58)


def add_wrist_camera(spec: mujoco.MjSpec) -> None:
    """Add the camera ``wrist`` to the gripper body of a compiled-to-be pick-and-place ``spec``."""
    probe = spec.compile()  # the palm's and the TCP's places in the gripper frame (the caller compiles again)
    palm = probe.geom(PALM_GEOM)
    tcp = probe.site(TCP_SITE)
    pos = np.array([palm.pos[0] + palm.size[0] + MOUNT_GAP, 0.0, palm.pos[2]])
    target = np.array([0.0, 0.0, tcp.pos[2] + AIM_BELOW_TCP])
    body = spec.body(GRIPPER_BODY)
    body.add_camera(name=WRIST_CAMERA, pos=pos, quat=_aim_quat(pos, target), fovy=FOVY)


def _aim_quat(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Quaternion of a camera at ``pos`` looking at ``target`` (body frame), image x along the body's -y."""
    z = (pos - target) / np.linalg.norm(pos - target)  # MuJoCo cameras look along -z
    x = np.cross(z, [1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([x, np.cross(z, x), z]).flatten())
    return quat


@dataclass(frozen=True)
class WristNominal:
    """The wrist camera's id and nominal mount (body frame), taken before any randomization."""

    camera: int
    pos: np.ndarray
    quat: np.ndarray


def nominal(model: mujoco.MjModel) -> WristNominal:
    cam = model.camera(WRIST_CAMERA).id
    return WristNominal(cam, model.cam_pos[cam].copy(), model.cam_quat[cam].copy())


def sample(cfg: Any, rng: np.random.Generator) -> dict[str, float]:
    """Mount jitter of one episode (``cfg``: VisualRandomizationConfig); {} when visual randomization is off."""
    if not cfg.enabled:
        return {}
    out = {f"visual_wrist_d{a}": rng.uniform(-cfg.wrist_shift, cfg.wrist_shift) for a in "xyz"}
    turn = cfg.wrist_rotation_deg
    out.update({f"visual_wrist_{a}": rng.uniform(-turn, turn) for a in ("roll", "pitch", "yaw")})
    return {k: float(v) for k, v in out.items()}


def apply(model: mujoco.MjModel, params: dict[str, float], nom: WristNominal) -> None:
    """The nominal mount plus ``params``' jitter (the nominal one when ``params`` has none)."""
    model.cam_pos[nom.camera] = nom.pos
    model.cam_quat[nom.camera] = nom.quat
    if "visual_wrist_dx" not in params:
        return
    model.cam_pos[nom.camera] = nom.pos + [params[f"visual_wrist_d{a}"] for a in "xyz"]
    turn = np.zeros(4)
    mujoco.mju_euler2Quat(turn, [math.radians(params[f"visual_wrist_{a}"]) for a in ("pitch", "yaw", "roll")], "xyz")
    quat = np.zeros(4)
    mujoco.mju_mulQuat(quat, nom.quat, turn)  # turned about the camera's own axes
    model.cam_quat[nom.camera] = quat
