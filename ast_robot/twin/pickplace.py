"""The twin's pick-and-place table: the env's scene, set per episode, a gripper, a camera, hidden differences.

``ast-robot twin --task pickplace`` builds the scene with the envs' own builder (:func:`ast_robot.robot.scene`,
the same cubes, pads and scene camera as ``PickPlaceEnv``) and this module adds what a lab has:

- **the table** is set as an operator sets it: a std_msgs/String JSON on ``topics.twin_scene``
  (:func:`parse_scene`); the twin puts the cubes and pads there at once and again at every ``/twin/reset``;
- **the gripper** takes the robot's gripper command topic in the form its deploy YAML names
  (``GripperIOConfig.interface``) and closes with the force the hidden ``gripper_force_scale`` lets it have;
  its measured opening is published in ``/joint_states`` under ``gripper.state_joints``, as the drivers do;
- **the camera** renders the scene camera of the twin's own scene, moved by the hidden camera offsets,
  under the hidden light scale, with the hidden colour shift on the pixels;
- **the wrist camera** (where the robot's deploy YAML names a ``wrist_camera`` topic) is the envs' camera on the
  gripper (:mod:`ast_robot.envs.wrist`), on a mount off by the hidden ``wrist_camera_offset_m`` /
  ``wrist_camera_rotation_deg``, under the same light (the colour shift is the scene camera's sensor's);
- **hidden physics**: cube mass and friction, finger friction (:class:`~ast_robot.twin.hidden.HiddenParams`).

No ROS here (``ast_robot.twin.node`` subscribes and publishes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ast_robot.records.table import table_object
from ast_robot.robot import wire
from ast_robot.twin.hidden import HiddenParams

N_OBJECTS, N_PADS = 2, 2  # the deployable pick-and-place layout's table (env.observation: deploy)


class SceneRefused(ValueError):
    """A table description the twin does not set up; ``str()`` names the field and what is allowed."""


@dataclass(frozen=True)
class Placement:
    colour: str
    x: float  # m, world
    y: float  # m, world
    yaw: float = 0.0  # rad (cubes)


@dataclass(frozen=True)
class Scene:
    objects: tuple[Placement, ...]
    pads: tuple[Placement, ...]


def parse_scene(text: str, n_objects: int = N_OBJECTS, n_pads: int = N_PADS) -> Scene:
    """``{"objects": [{"colour", "x", "y", "yaw"?}, ...], "pads": [{"colour", "x", "y"}, ...]}`` -> Scene.

    SceneRefused (one line) unless every entry is a known colour name at a finite position inside the envs'
    placement area, with ``n_objects`` cubes and ``n_pads`` pads of distinct colours each."""
    from ast_robot.envs.instructions import COLOURS
    from ast_robot.envs.pick_place import AREA_HIGH, AREA_LOW

    data = table_object(text, "scene", "'objects' and 'pads'", SceneRefused)
    parts = {}
    for key, count in (("objects", n_objects), ("pads", n_pads)):
        items = data.get(key)
        if not isinstance(items, list) or len(items) != count:
            raise SceneRefused(f"scene.{key}: expected a list of {count} entries, got {items!r:.80}")
        parts[key] = tuple(_placement(f"scene.{key}[{i}]", item, COLOURS, AREA_LOW, AREA_HIGH)
                           for i, item in enumerate(items))  # fmt: skip
        colours = [p.colour for p in parts[key]]
        if len(set(colours)) != len(colours):
            raise SceneRefused(f"scene.{key}: colours must differ (the instruction names them), got {colours}")
    return Scene(parts["objects"], parts["pads"])


def table_of_env(env: Any) -> str:
    """The table of a pick-and-place env's current episode as the JSON :func:`parse_scene` reads: what an
    episode driver publishes so the twin's table is the one the env sampled (cube and pad colours and places)."""
    base = getattr(env, "unwrapped", env)
    model, names = base.model, base.colour_names
    objects = []
    for i, colour in enumerate(names["objects"]):
        x, y = (float(v) for v in base.object_pos(i)[:2])
        w, z = (float(base.data.qpos[base._obj_qadr[i] + k]) for k in (3, 6))
        objects.append({"colour": colour, "x": x, "y": y, "yaw": 2.0 * float(np.arctan2(z, w))})
    pads = [{"colour": colour, "x": float(model.site_pos[model.site(f"pad{j}").id, 0]),
             "y": float(model.site_pos[model.site(f"pad{j}").id, 1])} for j, colour in enumerate(names["pads"])]  # fmt: skip
    return json.dumps({"objects": objects, "pads": pads})


def _placement(name: str, item: Any, colours: dict, low: np.ndarray, high: np.ndarray) -> Placement:
    if not isinstance(item, dict) or item.get("colour") not in colours:
        raise SceneRefused(f"{name}.colour: expected one of {sorted(colours)}, got {item!r:.80}")
    try:
        x, y, yaw = (float(item.get(k, 0.0)) for k in ("x", "y", "yaw"))
    except (TypeError, ValueError):
        raise SceneRefused(f"{name}: x, y, yaw must be numbers (m, m, rad)") from None
    if not (np.isfinite([x, y, yaw]).all() and low[0] <= x <= high[0] and low[1] <= y <= high[1]):
        raise SceneRefused(f"{name}: ({x}, {y}) must be finite and inside the table area x {low[0]}..{high[0]}, "
                           f"y {low[1]}..{high[1]} m")  # fmt: skip
    return Placement(item["colour"], x, y, yaw)


def build_model(robot: str, hidden: HiddenParams, wrist_camera: bool = False) -> Any:
    """The envs' pick-and-place scene for ``robot`` with the hidden cube masses (``wrist_camera``: with the envs'
    camera on the gripper, as ``env.wrist_camera`` builds it; nothing else in the model changes)."""
    from ast_robot.envs import wrist
    from ast_robot.robot.scene import build_spec
    from ast_robot.robot.specs import get_robot

    spec = build_spec(get_robot(robot), "pickplace", n_objects=N_OBJECTS, n_pads=N_PADS)
    if wrist_camera:
        wrist.add_wrist_camera(spec)
    model = spec.compile()
    for i in range(N_OBJECTS):
        body = model.body(f"object{i}").id
        model.body_mass[body] *= hidden.object_mass_scale
        model.body_inertia[body] *= hidden.object_mass_scale
    return model


def apply_scene_hidden(model: Any, hidden: HiddenParams) -> None:
    """Cube and finger friction, camera pose and light: after ``apply_hidden`` (which scales every geom's
    friction by ``friction_scale``), so these compose with it."""
    from ast_robot.envs import visual_randomization as visual

    for i in range(N_OBJECTS):
        model.geom_friction[model.geom(f"object{i}").id, 0] *= hidden.object_friction_scale
    for pad in ("left_pad", "right_pad"):
        model.geom_friction[model.geom(pad).id, 0] *= hidden.finger_friction_scale
    for name in ("camera_offset_m", "camera_rotation_deg", "colour_shift", "wrist_camera_offset_m",
                 "wrist_camera_rotation_deg"):  # fmt: skip
        values = getattr(hidden, name)
        if len(values) != 3 or not np.all(np.isfinite(values)):
            raise ValueError(f"hidden.{name}: expected 3 finite values, got {values}")
    if max(abs(v) for v in hidden.colour_shift) > 1.0:
        raise ValueError(f"hidden.colour_shift: expected fractions of full scale in -1..1, got {hidden.colour_shift}")
    nom = visual.nominal(model)
    params = {"visual_light_tilt": 0.0, "visual_light_azimuth": 0.0, "visual_light_intensity": hidden.light_scale}
    for element, rgb in nom.scenery_rgb.items():  # scenery stays nominal (ratio 1)
        params.update({f"visual_{element}_{c}": float(v) for c, v in zip("rgb", rgb)})
    params.update({f"visual_camera_d{a}": float(v) for a, v in zip("xyz", hidden.camera_offset_m)})
    params.update({f"visual_camera_{a}": float(v) for a, v in zip(("roll", "pitch", "yaw"), hidden.camera_rotation_deg)})
    visual.apply(model, params, nom)
    apply_wrist_mount(model, hidden)


def apply_wrist_mount(model: Any, hidden: HiddenParams) -> None:
    """The wrist camera's mount, off its nominal place by the hidden offsets (as the envs' mount jitter moves it:
    in the gripper frame, turned about the camera's own axes); nothing without a wrist camera in ``model``."""
    import mujoco

    from ast_robot.envs import wrist

    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, wrist.WRIST_CAMERA) < 0:
        return
    mount = {f"visual_wrist_d{a}": float(v) for a, v in zip("xyz", hidden.wrist_camera_offset_m)}
    mount.update({f"visual_wrist_{a}": float(v) for a, v in zip(("roll", "pitch", "yaw"), hidden.wrist_camera_rotation_deg)})
    wrist.apply(model, mount, wrist.nominal(model))


class PickPlaceTable:
    """The pick-and-place part of a :class:`~ast_robot.twin.sim.TwinSim`: table, gripper, camera post-processing."""

    def __init__(self, sim: Any, gripper_cfg: Any, hidden: HiddenParams) -> None:
        from ast_robot.robot.safety import GRIPPERS

        self.sim, self.cfg, self.hidden = sim, gripper_cfg, hidden
        self.stroke = (GRIPPERS[gripper_cfg.model].min_width, GRIPPERS[gripper_cfg.model].max_width)
        model, spec = sim.model, sim.spec
        self._act = model.actuator(spec.gripper_actuator).id
        self._nominal_force = float(model.actuator_forcerange[self._act, 1])
        self._fingers = [int(model.jnt_qposadr[model.joint(j).id]) for j in spec.gripper_joints]
        self._objects = [int(model.jnt_qposadr[model.body(f"object{i}").jntadr[0]]) for i in range(N_OBJECTS)]
        self.scene: Scene | None = None
        apply_scene_hidden(model, hidden)
        self._set_force(gripper_cfg.force_n)
        sim._mj.mj_forward(model, sim.data)  # camera and light poses of the changed model

    # ----- the table ----------------------------------------------------------------------------
    def set_scene(self, scene: Scene) -> None:
        """Put the cubes and pads where ``scene`` says (at rest), colour them; kept for the next resets."""
        from ast_robot.envs.instructions import COLOURS
        from ast_robot.robot.scene import OBJECT_HALF_SIZE

        model, data = self.sim.model, self.sim.data
        for adr, p, i in zip(self._objects, scene.objects, range(N_OBJECTS)):
            data.qpos[adr : adr + 7] = [p.x, p.y, OBJECT_HALF_SIZE, np.cos(p.yaw / 2), 0.0, 0.0, np.sin(p.yaw / 2)]
            dof = model.jnt_dofadr[model.body(f"object{i}").jntadr[0]]
            data.qvel[dof : dof + 6] = 0.0
            model.geom_rgba[model.geom(f"object{i}").id, :3] = COLOURS[p.colour]
        for j, p in enumerate(scene.pads):
            site = model.site(f"pad{j}").id
            model.site_pos[site, :2] = (p.x, p.y)
            model.site_rgba[site, :3] = COLOURS[p.colour]
        self.scene = scene
        self.sim._mj.mj_forward(model, data)

    def after_reset(self) -> None:
        """``TwinSim.reset`` put the cubes back at the model's defaults: set the table again, gripper open."""
        if self.scene is not None:
            self.set_scene(self.scene)
        self._set_force(self.cfg.force_n)

    def object_position(self, i: int) -> np.ndarray:
        adr = self._objects[i]
        return self.sim.data.qpos[adr : adr + 3].copy()

    @property
    def n_objects(self) -> int:
        return len(self._objects)

    def object_pose(self, i: int) -> np.ndarray:
        """Cube ``i``'s pose (7,): position (m) and orientation quaternion (w, x, y, z)."""
        adr = self._objects[i]
        return self.sim.data.qpos[adr : adr + 7].copy()

    # ----- the gripper --------------------------------------------------------------------------
    def command(self, data: list[float]) -> None:
        """A gripper command message's data (the interface's form; ValueError saying why it is refused)."""
        values = np.asarray(data, dtype=np.float64).reshape(-1)
        wanted = 3 if self.cfg.interface == "width_speed_force" else 1
        if values.size != wanted or not np.all(np.isfinite(values)):
            raise ValueError(f"gripper command: expected {wanted} finite values ({self.cfg.interface}), got {values.tolist()}")
        lo, hi = self.stroke
        width, force = wire.command_width(self.cfg, self.stroke, values)
        if not lo - 1e-9 <= width <= hi + 1e-9:
            raise ValueError(f"gripper command: width {width:.4f} m outside the stroke {lo}..{hi} m")
        self._set_force(force)
        self.sim.data.ctrl[self._act] = width

    def _set_force(self, force: float) -> None:
        applied = min(float(force) * self.hidden.gripper_force_scale, self._nominal_force * 2.0)
        self.sim.model.actuator_forcerange[self._act] = (-applied, applied)

    def width(self) -> float:
        """The fingers' opening (m)."""
        return float(sum(self.sim.data.qpos[a] for a in self._fingers))

    def state_entries(self) -> tuple[list[str], list[float]]:
        """Joint-state names and positions of the gripper, as the robot's driver publishes them."""
        names = list(self.cfg.state_joints)
        if not names:
            return [], []
        positions = wire.reported_positions(self.cfg, self.stroke, [self.sim.data.qpos[a] for a in self._fingers])
        return names[: len(positions)], positions

    # ----- the camera ---------------------------------------------------------------------------
    def post_process(self, pixels: np.ndarray) -> np.ndarray:
        """The hidden colour shift on a rendered (H, W, 3) uint8 image."""
        from ast_robot.envs.visual_randomization import colour_cast

        return colour_cast(pixels, self.hidden.colour_shift)  # the envs' visual.colour_shift applies the same


def episode_sheets(robot: str, episodes: int, seed: int = 0) -> list[tuple[str, str]]:
    """(table JSON with its ``target`` entry, instruction) for ``episodes`` seeded episodes of ``robot``'s
    deployable pick-and-place env (seeds ``seed, seed+1, ...``): the tables an episode driver sets, the
    instructions it sends (naming the target cube and pad) and the sheet the deployment judges by
    (``ast_robot.deploy.table``). The twin reads the table and ignores the target."""
    from ast_robot.config import EnvConfig
    from ast_robot.envs import ENV_IDS
    from ast_robot.envs.pick_place import PickPlaceEnv
    from ast_robot.robot.specs import get_robot

    name = get_robot(robot).name
    env_id = next(i for i, (entry, kw) in ENV_IDS.items() if entry.endswith(":PickPlaceEnv") and kw["robot"] == name)
    env = PickPlaceEnv(name, EnvConfig(id=env_id, n_objects=N_OBJECTS, n_pads=N_PADS, instruction=True))
    sheets = []
    try:
        for k in range(episodes):
            env.reset(seed=seed + k)
            table = json.loads(table_of_env(env))
            table["target"] = {"object": int(env.target_object), "pad": int(env.target_pad)}
            sheets.append((json.dumps(table), str(env.instruction)))
    finally:
        env.close()
    return sheets
