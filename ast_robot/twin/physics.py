"""Applying the hidden parameters to a MuJoCo model, and finding the arm's indices in it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ast_robot.twin.hidden import HiddenParams

PAYLOAD_RADIUS = 0.04  # m: the payload is modelled as a solid sphere held at the TCP


@dataclass(frozen=True)
class ArmIndices:
    qpos: np.ndarray  # (J,) qpos addresses of the arm joints, spec order
    dof: np.ndarray  # (J,) dof addresses
    act: np.ndarray  # (J,) actuator ids
    bodies: np.ndarray  # ids of the arm's bodies (subtree of the base body)
    flange: int
    site: int


def arm_indices(model: Any, spec: Any) -> ArmIndices:
    """Indices of the arm (joints, actuators, bodies) in ``model``; ValueError naming what is missing."""
    import mujoco

    from ast_robot.envs.randomization import descends  # one subtree test for the envs and the twin

    def ident(kind: Any, name: str, what: str) -> int:
        i = mujoco.mj_name2id(model, kind, name)
        if i < 0:
            raise ValueError(f"{what}: {name!r} not found in the {spec.name} model")
        return i

    joints = [ident(mujoco.mjtObj.mjOBJ_JOINT, n, "joint") for n in spec.joint_names]
    acts = [ident(mujoco.mjtObj.mjOBJ_ACTUATOR, n, "actuator") for n in spec.actuator_names]
    base = ident(mujoco.mjtObj.mjOBJ_BODY, spec.base_body, "base_body")
    bodies = [b for b in range(model.nbody) if descends(model, b, base)]
    return ArmIndices(qpos=model.jnt_qposadr[joints].copy(), dof=model.jnt_dofadr[joints].copy(),
                      act=np.array(acts), bodies=np.array(bodies),
                      flange=ident(mujoco.mjtObj.mjOBJ_BODY, spec.flange_body, "flange_body"),
                      site=ident(mujoco.mjtObj.mjOBJ_SITE, spec.ee_site, "ee_site"))  # fmt: skip


def apply_hidden(model: Any, spec: Any, hidden: HiddenParams) -> None:
    """Perturb ``model`` in place by ``hidden`` (friction, masses, payload, damping, gains)."""
    import mujoco

    idx = arm_indices(model, spec)
    model.geom_friction[:, 0] *= hidden.friction_scale
    # The robot's controller compensates gravity with its *nominal* model (gravcomp is a fraction of
    # each body's weight): heavier links and an undeclared payload sag, as on a real arm.
    model.body_mass[idx.bodies] *= hidden.mass_scale
    model.body_inertia[idx.bodies] *= hidden.mass_scale
    model.body_gravcomp[idx.bodies] /= hidden.mass_scale
    if hidden.payload_kg > 0:  # an object held at the TCP (the model's `payload` body), else at the flange
        body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "payload")
        body = idx.flange if body < 0 else body
        inertia = 0.4 * hidden.payload_kg * PAYLOAD_RADIUS**2  # solid sphere about its centre
        compensated = model.body_gravcomp[body] * model.body_mass[body]  # kg the controller carries
        model.body_mass[body] += hidden.payload_kg
        model.body_inertia[body] += inertia
        model.body_gravcomp[body] = compensated / model.body_mass[body]
    model.dof_damping[idx.dof] *= hidden.damping_scale
    model.dof_frictionloss[idx.dof] += hidden.frictionloss_add
    # Position servo: force = kp * ctrl - kp * q - kv * qdot, so kp sits in gainprm[0] and -kp in biasprm[1].
    model.actuator_gainprm[idx.act, 0] *= hidden.gain_scale
    model.actuator_biasprm[idx.act, 1] *= hidden.gain_scale
    mujoco.mj_setConst(model, mujoco.MjData(model))

