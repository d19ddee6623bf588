"""The name tables a config is validated against, kept here so that validating a config imports no simulator,
torch or numba (``config`` imports nothing above it).

- :data:`REWARD_TERMS`: the reward terms ``env.reward_scales`` may scale (``envs.rewards`` computes them);
- :data:`RANDOMIZATION_PARAMS`: every randomization parameter, how it is interpreted and bounded
  (``envs.randomization`` applies them to the MuJoCo model);
- :data:`BUILTIN_COMPONENTS`: the significance components ``core.components`` registers (a plugin's component
  is known once its module, which imports ``core.significance``, has registered it).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass

REWARD_TERMS = ("time", "success", "distance")

ENCODER_OFFSET = "encoder_offset_"  # + arm joint index (spec order)
MAX_ARM_JOINTS = 7  # the FR3 has 7 arm joints, the UR5e 6


@dataclass(frozen=True)
class Param:
    """How one randomization parameter is interpreted and bounded."""

    mode: str  # "scale" or "absolute"
    minimum: float  # smallest valid value (sampled values are clipped here; bounds below are errors)
    integer: bool = False
    needs: str = ""  # a Nominal field listing the elements it changes; none in the scene: not sampled


RANDOMIZATION_PARAMS: dict[str, Param] = {
    **{name: Param("scale", 1e-3) for name in (
        "friction", "link_mass", "joint_damping", "armature", "frictionloss", "actuator_gain",
        "actuator_force_limit", "gripper_force", "camera_fovy", "light_diffuse", "table_brightness")},
    "object_mass": Param("scale", 1e-3, needs="object_bodies"),
    "object_size": Param("scale", 1e-3, needs="object_bodies"),
    "payload": Param("absolute", 0.0),
    "latency": Param("absolute", 0.0, integer=True),
    "action_noise": Param("absolute", 0.0),
    "proprio_noise": Param("absolute", 0.0),
    "joint_noise": Param("absolute", 0.0),
    "object_pos_noise": Param("absolute", 0.0, needs="object_bodies"),
    **{f"camera_{axis}": Param("absolute", -math.inf) for axis in "xyz"},
    # an encoder offset: the servo tracks the true angle, the reading is off by a constant (the twin's
    # ``sensor_bias_rad``); env-side, added to the observed joint position by ``encoder_offsets``
    **{f"{ENCODER_OFFSET}{k}": Param("absolute", -math.inf) for k in range(MAX_ARM_JOINTS)},
}  # fmt: skip

BUILTIN_COMPONENTS = ("learning_value", "loss", "novelty", "physical", "random", "uncertainty")


def component_names() -> Iterable[str]:
    """The built-in significance components and those a plugin has registered (read from the registry only
    when ``core.significance`` is already imported: this never imports torch)."""
    significance = sys.modules.get("ast_robot.core.significance")
    registered = significance.COMPONENTS.names() if significance is not None else []
    return sorted({*BUILTIN_COMPONENTS, *registered})
