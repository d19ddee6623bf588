"""The twin's hidden physical parameters: how the stand-in "real" robot differs from the nominal model.

Loaded from a YAML file given to the twin only (``ast-robot twin --hidden PARAMS.yaml``). Nothing in
training or in ``ast_robot.gap`` reads this module or those files: they learn about the twin only through
the outcomes it produces, as they would about a real arm.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ast_robot.config.schema import doc


@dataclass
class HiddenParams:
    """Perturbations of the nominal MuJoCo model. Scales multiply the nominal value (1.0 = unchanged)."""

    friction_scale: float = doc(1.0, "Scale of every geom's sliding friction.", gt=0)
    mass_scale: float = doc(1.0, "Scale of the arm links' masses and inertias.", gt=0)
    payload_kg: float = doc(0.0, "Extra mass at the tool (kg).", ge=0)
    damping_scale: float = doc(1.0, "Scale of the arm joints' viscous damping.", gt=0)
    frictionloss_add: float = doc(0.0, "Dry joint friction added to every arm joint (N m).", ge=0)
    gain_scale: float = doc(1.0, "Scale of the position actuators' stiffness (kp).", gt=0)
    latency_s: float = doc(0.0, "Delay between command receipt and the servo using it (s).", ge=0, le=1.0)
    sensor_bias_rad: list[float] = doc([], "Bias added to published joint positions (rad): empty, one value "
                                           "for all joints, or one per arm joint.")  # fmt: skip
    joint_noise_rad: float = doc(0.0, "Std of Gaussian noise on published joint positions (rad).", ge=0)
    # pick-and-place (``ast-robot twin --task pickplace``; ast_robot.twin.pickplace applies them)
    object_mass_scale: float = doc(1.0, "Scale of the cubes' masses and inertias.", gt=0)
    object_friction_scale: float = doc(1.0, "Scale of the cubes' sliding friction (after friction_scale).", gt=0)
    gripper_force_scale: float = doc(1.0, "Scale of the grasp force the gripper really applies.", gt=0, le=2.0)
    finger_friction_scale: float = doc(1.0, "Scale of the finger pads' sliding friction (after friction_scale).", gt=0)
    camera_offset_m: list[float] = doc([0.0, 0.0, 0.0], "Scene camera position offset (m, world x/y/z).")
    camera_rotation_deg: list[float] = doc([0.0, 0.0, 0.0], "Scene camera roll/pitch/yaw after aiming (deg).")
    wrist_camera_offset_m: list[float] = doc([0.0, 0.0, 0.0], "Wrist camera mount offset (m, gripper frame x/y/z; "
                                             "the env's visual_wrist_d* jitter is +-4 mm).")  # fmt: skip
    wrist_camera_rotation_deg: list[float] = doc([0.0, 0.0, 0.0], "Wrist camera mount roll/pitch/yaw about its own "
                                                 "axes (deg; the env's visual_wrist_* jitter is +-2 deg).")  # fmt: skip
    light_scale: float = doc(1.0, "Scale of the directional light's intensity.", gt=0)
    colour_shift: list[float] = doc([0.0, 0.0, 0.0], "Camera colour shift: added to each RGB channel of the "
                                                     "published image, as a fraction of full scale (-1..1).")  # fmt: skip


def load_hidden(path: str | Path | None) -> HiddenParams:
    """Read hidden parameters from YAML (None: the nominal robot). Errors name the bad field."""
    if path is None:
        return HiddenParams()
    from ast_robot.config.loader import load_config

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"hidden parameters: {path} does not exist")
    return load_config(path, cls=HiddenParams)  # safe YAML; errors name the file and the field
