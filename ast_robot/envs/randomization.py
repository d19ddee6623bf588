"""Domain randomization as pure functions: ``sample(cfg, rng)`` draws, ``apply(model, params, nominal)`` writes.

Every parameter has one meaning, fixed here (table below): a *scale* factor multiplies the model's
nominal value; an *absolute* value has a unit. ``apply`` first restores the nominal model, so a sample
never compounds with the previous episode's. Env-side parameters (latency, noise) are not written to the
model; the env reads them from the same dict, which it reports as ``info["dr"]``.

| name                 | mode     | unit          | what it changes                                        |
|----------------------|----------|---------------|--------------------------------------------------------|
| friction             | scale    | -             | sliding friction of every geom                         |
| link_mass            | scale    | -             | robot link mass/inertia (gravity comp. stays nominal)  |
| object_mass          | scale    | -             | mass and inertia of every object                       |
| payload              | absolute | kg            | point mass at the TCP (body `payload`), uncompensated  |
| joint_damping        | scale    | -             | damping of the arm joints                              |
| armature             | scale    | -             | armature (reflected rotor inertia) of the arm joints  |
| frictionloss         | scale    | -             | dry friction of the arm joints                         |
| actuator_gain        | scale    | -             | position gain kp of the arm actuators                  |
| actuator_force_limit | scale    | -             | force range of the arm actuators                       |
| gripper_force        | scale    | -             | force range of the gripper actuator                    |
| object_size          | scale    | -             | edge length of every object                            |
| latency              | absolute | control steps | delay of actions (rounded, >= 0), via an action queue  |
| action_noise         | absolute | action units  | std of Gaussian noise added to actions                 |
| proprio_noise        | absolute | rad, m        | std of noise on observed joint, TCP and gripper positions |
| encoder_offset_<k>   | absolute | rad           | bias of arm joint k's observed position (k = 0..6), an encoder offset |
| joint_noise          | absolute | rad           | std of Gaussian noise on the observed arm joint positions only (encoders) |
| object_pos_noise     | absolute | m             | std of noise on observed object positions (not goals)  |
| camera_x/y/z         | absolute | m             | offset of the scene camera position                    |
| camera_fovy          | scale    | -             | camera field of view                                   |
| light_diffuse        | scale    | -             | diffuse intensity of the scene lights                  |
| table_brightness     | scale    | -             | colour brightness of the table and floor               |
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from ast_robot.config.names import ENCODER_OFFSET, MAX_ARM_JOINTS, RANDOMIZATION_PARAMS, Param  # noqa: F401 - re-exported
from ast_robot.config.randomization import DistributionConfig, RandomizationConfig, read_preset

# The parameter table lives in config (validating a config imports no simulator); this module applies it.
PARAMS = RANDOMIZATION_PARAMS


def nominal_value(name: str) -> float:
    """The value that leaves the nominal model unchanged: 1 for a scale factor, 0 for an absolute value
    (no payload, no delay, no noise, no offset). System identification measures the gap from here."""
    return 1.0 if PARAMS[name].mode == "scale" else 0.0


def encoder_offsets(params: dict[str, float], n_joints: int) -> np.ndarray:
    """(n_joints,) per-joint encoder offsets (rad) of ``params`` (0 where not sampled)."""
    return np.array([float(params.get(f"{ENCODER_OFFSET}{k}", 0.0)) for k in range(n_joints)])


# Colour scales saturate at 1: the largest factor that keeps every affected colour channel below it.
_COLOUR_FIELDS = {"light_diffuse": ("light_diffuse", None), "table_brightness": ("mat_rgba", "scenery_materials")}


def resolve(cfg: RandomizationConfig) -> RandomizationConfig:
    """``cfg`` with its ``preset`` file's params merged under its own params (preset cleared).

    Randomization stays on only if both ``cfg`` and the preset enable it. Partial entries of a config
    read from YAML were completed from the preset's entries by ``merge_preset_entries`` already.
    """
    if not cfg.preset:
        return cfg
    from ast_robot.config import from_dict

    base = resolve(from_dict(RandomizationConfig, read_preset(cfg.preset), "randomization"))
    visual = base.visual if cfg.visual == type(cfg.visual)() else cfg.visual  # unset: the preset's
    return RandomizationConfig(enabled=cfg.enabled and base.enabled, preset="",
                               params={**base.params, **cfg.params}, visual=visual)  # fmt: skip


def validate(cfg: RandomizationConfig, nominal: Nominal | None = None) -> None:
    """Raise ValueError for unknown names, wrong modes and ranges outside a parameter's domain.

    With the model's ``nominal`` also for colour scales whose range would saturate a colour at 1.
    """
    maxima = {} if nominal is None else nominal.maxima
    for name, dist in cfg.params.items():
        if name not in PARAMS:
            raise ValueError(
                f"randomization.params.{name}: unknown parameter {name!r}; known: {sorted(PARAMS)}"
            )
        param = PARAMS[name]
        if dist.mode is not None and dist.mode != param.mode:
            raise ValueError(f"randomization.params.{name}.mode: {dist.mode!r} is not allowed; "
                             f"{name} is always {param.mode!r}")  # fmt: skip
        lowest = dist.mean if dist.dist in ("normal", "constant") else dist.low
        if lowest < param.minimum:
            raise ValueError(f"randomization.params.{name}: value {lowest} is below the allowed minimum "
                             f"{param.minimum} ({param.mode} parameter)")  # fmt: skip
        highest = dist.mean if dist.dist in ("normal", "constant") else dist.high
        if name in maxima and highest > maxima[name]:
            raise ValueError(f"randomization.params.{name}: value {highest} would saturate a colour of this "
                             f"scene at 1; the allowed maximum is {maxima[name]:.4g}")  # fmt: skip


def sample(cfg: RandomizationConfig, rng: np.random.Generator, nominal: Nominal | None = None) -> dict[str, float]:
    """One episode's parameters, name -> value (sorted by name so the draw order is fixed).

    With the model's ``nominal``: parameters of elements the scene lacks (objects in Reach) are left out,
    and normal tails are clipped at the colour maxima as well as the minima, so every reported value is
    the one ``apply`` writes.
    """
    if not cfg.enabled:
        return {}
    validate(cfg, nominal)
    maxima = {} if nominal is None else nominal.maxima
    out: dict[str, float] = {}
    for name in sorted(cfg.params):
        param = PARAMS[name]
        if nominal is not None and param.needs and len(getattr(nominal, param.needs)) == 0:
            continue
        if nominal is not None and name.startswith(ENCODER_OFFSET) and int(name[len(ENCODER_OFFSET) :]) >= len(
            nominal.arm_dofs
        ):  # an offset of a joint this arm does not have (the FR3's 7th on a UR5e)
            continue
        value = min(max(_draw(cfg.params[name], rng), param.minimum), maxima.get(name, np.inf))
        out[name] = float(round(value)) if param.integer else float(value)
    return out


def _draw(dist: DistributionConfig, rng: np.random.Generator) -> float:
    if dist.dist == "uniform":
        return float(rng.uniform(dist.low, dist.high))
    if dist.dist == "loguniform":
        return float(np.exp(rng.uniform(np.log(dist.low), np.log(dist.high))))
    if dist.dist == "normal":
        return float(rng.normal(dist.mean, dist.std))
    return float(dist.mean)  # constant


@dataclass
class Nominal:
    """The model's values before randomization, and which elements each parameter touches."""

    values: dict[str, np.ndarray]
    robot_bodies: np.ndarray
    object_bodies: np.ndarray
    object_geoms: np.ndarray
    payload_body: int
    arm_dofs: np.ndarray
    arm_actuators: np.ndarray
    gripper_actuator: int
    scenery_materials: np.ndarray
    maxima: dict[str, float]  # largest colour scales that saturate no channel (name -> factor)


_FIELDS = ("geom_friction", "body_mass", "body_inertia", "dof_damping", "dof_armature", "dof_frictionloss",
           "actuator_gainprm", "actuator_biasprm", "actuator_forcerange", "geom_size", "geom_rbound",
           "geom_aabb", "body_gravcomp", "cam_pos", "cam_fovy", "light_diffuse", "mat_rgba")  # fmt: skip


def nominal(model: mujoco.MjModel, robot) -> Nominal:
    """Snapshot ``model`` (call once, right after loading) for a :class:`RobotSpec` ``robot``."""
    base = model.body(robot.base_body).id
    robot_bodies = np.array([b for b in range(model.nbody) if descends(model, b, base)])
    objects = np.array([b for b in range(model.nbody) if model.body(b).name.startswith("object")], dtype=int)
    obj_geoms = np.array([g for g in range(model.ngeom) if model.geom_bodyid[g] in set(objects)], dtype=int)
    dofs = np.array([model.jnt_dofadr[model.joint(j).id] for j in robot.joint_names])
    acts = np.array([model.actuator(a).id for a in robot.actuator_names])
    scenery = np.array([model.geom_matid[model.geom(n).id] for n in ("table", "floor")])
    out = Nominal({f: getattr(model, f).copy() for f in _FIELDS}, robot_bodies, objects, obj_geoms,
                  model.body("payload").id, dofs, acts, model.actuator(robot.gripper_actuator).id, scenery, {})  # fmt: skip
    for name, (field, rows) in _COLOUR_FIELDS.items():
        brightest = float(out.values[field][slice(None) if rows is None else getattr(out, rows), :3].max())
        out.maxima[name] = 1.0 / brightest if brightest > 0 else np.inf
    return out


def descends(model: mujoco.MjModel, body: int, root: int) -> bool:
    """Whether ``body`` lies in the subtree of ``root`` (every body does for the world body 0)."""
    while body > 0:
        if body == root:
            return True
        body = int(model.body_parentid[body])
    return root == 0


def apply(model: mujoco.MjModel, params: dict[str, float], nominal: Nominal) -> None:
    """Restore ``nominal`` in ``model``, then write every model-side parameter of ``params``."""
    for name, value in nominal.values.items():
        getattr(model, name)[:] = value
    for name in sorted(params):
        if name not in PARAMS:
            raise ValueError(f"unknown randomization parameter {name!r}; known: {sorted(PARAMS)}")
        if float(params[name]) > nominal.maxima.get(name, np.inf):
            raise ValueError(f"{name} = {params[name]} would saturate a colour at 1; the maximum for this "
                             f"scene is {nominal.maxima[name]:.4g}")  # fmt: skip
        writer = _WRITERS.get(name)
        if writer is not None:  # env-side parameters (latency, noise) have no writer
            writer(model, float(params[name]), nominal)


def _scaled(field: str, index: str | None = None, column: int | None = None):
    """A writer that multiplies ``model.<field>[nominal.<index>, column]`` by the sampled factor."""

    def write(model: mujoco.MjModel, k: float, nom: Nominal) -> None:
        rows = slice(None) if index is None else getattr(nom, index)
        key = rows if column is None else (rows, column)
        getattr(model, field)[key] *= k

    return write


def _link_mass(model: mujoco.MjModel, k: float, nom: Nominal) -> None:
    ids = nom.robot_bodies
    model.body_mass[ids] *= k
    model.body_inertia[ids] *= k
    # The robot's controller compensates the weight of its *nominal* model: keep that force, so a
    # mass error shows up as a tracking error, as on a real arm.
    model.body_gravcomp[ids] /= k


def _object_mass(model: mujoco.MjModel, k: float, nom: Nominal) -> None:
    ids = nom.object_bodies  # free objects: no gravity compensation to keep
    model.body_mass[ids] *= k
    model.body_inertia[ids] *= k


def _payload(model: mujoco.MjModel, kg: float, nom: Nominal) -> None:
    model.body_mass[nom.payload_body] = kg  # point mass at the TCP, not gravity-compensated


def _object_size(model: mujoco.MjModel, k: float, nom: Nominal) -> None:
    g = nom.object_geoms
    model.geom_size[g] *= k
    model.geom_rbound[g] *= k  # bounding sphere and box feed the broad phase: keep them consistent
    model.geom_aabb[g] *= k
    model.body_inertia[nom.object_bodies] *= k**2


def _actuator_gain(model: mujoco.MjModel, k: float, nom: Nominal) -> None:
    a = nom.arm_actuators
    model.actuator_gainprm[a, 0] *= k  # force = kp * ctrl - kp * q - kv * qdot
    model.actuator_biasprm[a, 1] *= k


def _camera_axis(axis: int):
    def write(model: mujoco.MjModel, metres: float, nom: Nominal) -> None:
        model.cam_pos[:, axis] += metres

    return write


def _colour_scale(name: str):
    """Scales RGB; ``validate`` and ``sample`` keep the factor below ``nominal.maxima[name]`` (no clipping)."""
    field, rows = _COLOUR_FIELDS[name]

    def write(model: mujoco.MjModel, k: float, nom: Nominal) -> None:
        index = slice(None) if rows is None else getattr(nom, rows)
        getattr(model, field)[index, :3] *= k

    return write


_WRITERS = {
    "friction": _scaled("geom_friction", column=0),
    "link_mass": _link_mass,
    "object_mass": _object_mass,
    "payload": _payload,
    "joint_damping": _scaled("dof_damping", "arm_dofs"),
    "armature": _scaled("dof_armature", "arm_dofs"),
    "frictionloss": _scaled("dof_frictionloss", "arm_dofs"),
    "actuator_gain": _actuator_gain,
    "actuator_force_limit": _scaled("actuator_forcerange", "arm_actuators"),
    "gripper_force": _scaled("actuator_forcerange", "gripper_actuator"),
    "object_size": _object_size,
    "camera_x": _camera_axis(0),
    "camera_y": _camera_axis(1),
    "camera_z": _camera_axis(2),
    "camera_fovy": _scaled("cam_fovy"),
    "light_diffuse": _colour_scale("light_diffuse"),
    "table_brightness": _colour_scale("table_brightness"),
}
