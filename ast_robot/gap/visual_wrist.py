"""The wrist camera in the visual gap: its mount searched in coordinates the frames can tell apart.

The envs' mount jitter and the twin's hidden mount (``visual_wrist_d*``: m in the gripper frame,
``visual_wrist_roll/pitch/yaw``: deg about the camera's own axes, :func:`ast_robot.envs.wrist.apply`) move a
camera that looks at a point only ~0.15 m away: a 1 cm shift with a 6 deg turn back towards that point shows
nearly the nominal image (measured on the session-8 wrist-mount twin's bag: along that diagonal the pixel loss
falls from 27 to 8 levels RMS, while either change alone raises it to 34-45). A search along the jitter's own
axes stalls in that narrow valley (coordinate search fitted 5 mm / 2.5 deg, 45% of the loss unexplained).
So the search moves the camera by ``wrist_d*`` and re-aims it at its nominal aim point, then turns it by
``wrist_roll/pitch/yaw``: shift (parallax) and turn (image shift) then act on the image nearly independently.
:meth:`WristGeometry.mount` converts a searched look back into the jitter's terms (what a retune compares
with ``randomization.visual.wrist_shift`` / ``wrist_rotation_deg``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

POSE = ("wrist_dx", "wrist_dy", "wrist_dz", "wrist_roll", "wrist_pitch", "wrist_yaw")  # searched (see above)
MOUNT = ("wrist_mount_roll", "wrist_mount_pitch", "wrist_mount_yaw")  # the fitted turn in the jitter's terms (deg)
# parameter -> (nominal, search low, search high, scan points): +-2 cm, +-10 deg (the envs jitter +-4 mm, +-2 deg)
SEARCH = {**{f"wrist_d{a}": (0.0, -0.02, 0.02, 9) for a in "xyz"},
          **{f"wrist_{a}": (0.0, -10.0, 10.0, 11) for a in ("roll", "pitch", "yaw")}}  # fmt: skip


class WristGeometry:
    """The wrist camera's nominal mount and aim point in the gripper frame of a compiled ``model``."""

    def __init__(self, model: Any) -> None:
        from ast_robot.envs import wrist

        self.nom = wrist.nominal(model)
        self.target = np.array([0.0, 0.0, float(model.site_pos[model.site(wrist.TCP_SITE).id][2]) + wrist.AIM_BELOW_TCP])

    def mount(self, values: dict[str, float]) -> dict[str, float]:
        """``visual_wrist_*`` (as :func:`ast_robot.envs.wrist.apply` takes them) of a searched look."""
        import mujoco

        from ast_robot.envs import wrist

        shift = np.array([values.get(f"wrist_d{a}", 0.0) for a in "xyz"])
        turn = np.zeros(4)
        mujoco.mju_euler2Quat(turn, [math.radians(values.get(f"wrist_{a}", 0.0)) for a in ("pitch", "yaw", "roll")], "xyz")
        aimed, total, back, rel = (np.zeros(4) for _ in range(4))
        aimed[:] = wrist._aim_quat(self.nom.pos + shift, self.target)
        mujoco.mju_mulQuat(total, aimed, turn)
        mujoco.mju_negQuat(back, self.nom.quat)
        mujoco.mju_mulQuat(rel, back, total)  # the turn after the nominal mount, as wrist.apply composes it
        pitch, yaw, roll = euler_xyz(rel)
        out = {f"visual_wrist_d{a}": float(v) for a, v in zip("xyz", shift)}
        out.update({"visual_wrist_roll": roll, "visual_wrist_pitch": pitch, "visual_wrist_yaw": yaw})
        return out


def euler_xyz(quat: np.ndarray) -> tuple[float, float, float]:
    """Angles (deg) a, b, c with ``mju_euler2Quat(q, [a, b, c], "xyz") == quat`` (intrinsic x, then y, then z)."""
    import mujoco

    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(quat, dtype=float))
    r = mat.reshape(3, 3)  # R = Rx(a) Ry(b) Rz(c)
    b = math.asin(max(-1.0, min(1.0, r[0, 2])))
    a, c = math.atan2(-r[1, 2], r[2, 2]), math.atan2(-r[0, 1], r[0, 0])
    return math.degrees(a), math.degrees(b), math.degrees(c)


def mount_of(geometry: WristGeometry, fitted: dict[str, float]) -> dict[str, float]:
    """The fitted turn in the jitter's terms (``MOUNT``, deg); the shift is the same in both."""
    m = geometry.mount(fitted)
    return {name: m[f"visual_wrist_{a}"] for name, a in zip(MOUNT, ("roll", "pitch", "yaw"))}
