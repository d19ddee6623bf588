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
| proprio_noise        | absolute | rad, m        | std of noise on joint positions and gripper position   |
| object_pos_noise     | absolute | m             | std of noise on observed object and goal positions     |
| camera_x/y/z         | absolute | m             | offset of the scene camera position                    |
| camera_fovy          | scale    | -             | camera field of view                                   |
| light_diffuse        | scale    | -             | diffuse intensity of the scene lights                  |
| table_brightness     | scale    | -             | colour brightness of the table and floor               |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from ast_robot.config.randomization import DistributionConfig, RandomizationConfig


@dataclass(frozen=True)
class Param:
    """How one randomization parameter is interpreted and bounded."""

    mode: str  # "scale" or "absolute"
    minimum: float  # smallest valid value (sampled values are clipped here; bounds below are errors)
    integer: bool = False


PARAMS: dict[str, Param] = {
    **{name: Param("scale", 1e-3) for name in (
        "friction", "link_mass", "object_mass", "joint_damping", "armature", "frictionloss", "actuator_gain",
        "actuator_force_limit", "gripper_force", "object_size", "camera_fovy", "light_diffuse", "table_brightness")},
    "payload": Param("absolute", 0.0),
    "latency": Param("absolute", 0.0, integer=True),
    "action_noise": Param("absolute", 0.0),
    "proprio_noise": Param("absolute", 0.0),
    "object_pos_noise": Param("absolute", 0.0),
    **{f"camera_{axis}": Param("absolute", -np.inf) for axis in "xyz"},
}  # fmt: skip


def configs_dir() -> Path:
    """``configs/`` of the source tree (or ``$AST_ROBOT_CONFIGS``)."""
    return Path(os.environ.get("AST_ROBOT_CONFIGS", Path(__file__).resolve().parents[2] / "configs"))


def resolve(cfg: RandomizationConfig) -> RandomizationConfig:
    """``cfg`` with its ``preset`` file's params merged under its own params (preset cleared)."""
    if not cfg.preset:
        return cfg
    from ast_robot.config import from_dict
    from ast_robot.config.loader import read_yaml_tree

    path = Path(cfg.preset)
    if path.suffix not in (".yaml", ".yml"):
        path = configs_dir() / "randomization" / f"{cfg.preset}.yaml"
    if not path.is_file():
        raise ValueError(f"randomization.preset: {cfg.preset!r} not found (looked for {path})")
    base = from_dict(RandomizationConfig, read_yaml_tree(path), "randomization")
    base = resolve(base)
    return RandomizationConfig(enabled=cfg.enabled, preset="", params={**base.params, **cfg.params})


def validate(cfg: RandomizationConfig) -> None:
    """Raise ValueError for unknown names, wrong modes and ranges outside a parameter's domain."""
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


def sample(cfg: RandomizationConfig, rng: np.random.Generator) -> dict[str, float]:
    """One episode's parameters, name -> value (sorted by name so the draw order is fixed)."""
    if not cfg.enabled:
        return {}
    validate(cfg)
    out: dict[str, float] = {}
    for name in sorted(cfg.params):
        value = max(_draw(cfg.params[name], rng), PARAMS[name].minimum)  # normal tails are clipped
        out[name] = float(round(value)) if PARAMS[name].integer else float(value)
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
    return Nominal({f: getattr(model, f).copy() for f in _FIELDS}, robot_bodies, objects, obj_geoms,
                   model.body("payload").id, dofs, acts, model.actuator(robot.gripper_actuator).id, scenery)  # fmt: skip


def descends(model: mujoco.MjModel, body: int, root: int) -> bool:
    while body > 0:
        if body == root:
            return True
        body = model.body_parentid[body]
    return False


def apply(model: mujoco.MjModel, params: dict[str, float], nominal: Nominal) -> None:
    """Restore ``nominal`` in ``model``, then write every model-side parameter of ``params``."""
    for name, value in nominal.values.items():
        getattr(model, name)[:] = value
    for name in sorted(params):
        if name not in PARAMS:
            raise ValueError(f"unknown randomization parameter {name!r}; known: {sorted(PARAMS)}")
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


def _scale_mass(bodies: str):
    def write(model: mujoco.MjModel, k: float, nom: Nominal) -> None:
        ids = getattr(nom, bodies)
        model.body_mass[ids] *= k
        model.body_inertia[ids] *= k
        # The robot's controller compensates the weight of its *nominal* model: keep that force, so a
        # mass error shows up as a tracking error, as on a real arm.
        model.body_gravcomp[ids] /= k

    return write


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


def _clipped_scale(field: str, rows: str | None = None):
    def write(model: mujoco.MjModel, k: float, nom: Nominal) -> None:
        index = slice(None) if rows is None else getattr(nom, rows)
        arr = getattr(model, field)
        arr[index, :3] = np.clip(arr[index, :3] * k, 0.0, 1.0)

    return write


_WRITERS = {
    "friction": _scaled("geom_friction", column=0),
    "link_mass": _scale_mass("robot_bodies"),
    "object_mass": _scale_mass("object_bodies"),
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
    "light_diffuse": _clipped_scale("light_diffuse"),
    "table_brightness": _clipped_scale("mat_rgba", "scenery_materials"),
}
