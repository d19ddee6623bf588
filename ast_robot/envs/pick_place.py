"""Pick and place: put the named cube on the named pad (``ast_robot/PickPlace<Robot>-v0``)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from ast_robot.config import VisualRandomizationConfig
from ast_robot.envs import visual_randomization as visual_dr
from ast_robot.envs import wrist
from ast_robot.envs.base import RobotEnv
from ast_robot.envs.instructions import COLOURS, PICK_PLACE_TEMPLATES, choose_colours, fill
from ast_robot.envs.pipeline import TrackerSamples
from ast_robot.robot.scene import OBJECT_HALF_SIZE

AREA_LOW = np.array([0.35, -0.22])  # where objects and pads are placed (m, world x, y)
AREA_HIGH = np.array([0.6, 0.22])
MIN_SEPARATION = 0.09  # between any two objects/pads (m)


class PickPlaceEnv(RobotEnv):
    """``n_objects`` coloured cubes and ``n_pads`` coloured pads; one cube must go onto one pad.

    Success: the target cube's centre within ``success_threshold`` (5 cm) of its resting position on the
    target pad. Actions as in :class:`~ast_robot.envs.reach.ReachEnv` (TCP delta + gripper).

    Observation ``observation`` (float64): the robot part of ReachEnv (2n + 10), then target cube position
    (3, m), cube position relative to the TCP (3, m), cube linear velocity (3, m/s), and the positions of
    the other cubes (3 each, m). Object positions carry the ``object_pos_noise`` randomization.
    ``achieved_goal``: target cube position (3, m); ``desired_goal``: its place position (3, m).
    ``instruction`` names the cube and pad colours. MJCF: bodies ``object{i}``, sites ``pad{j}``.

    ``env.observation: deploy`` (layout ``pickplace-deploy-v1``) is what a real cell can observe:
    ``observation`` is the robot part only (2n + 10, as in ReachEnv), plus ``camera`` (H, W, 3 uint8, scene
    camera) and ``instruction``; no object or pad position and no goals (they are in ``info["achieved_goal"]``
    and ``info["desired_goal"]``, for rewards and analysis). With >= 2 cubes and >= 2 pads of distinct colours
    the target is named only by the instruction. ``randomization.visual`` (``visual_randomization``) varies
    lights, colours inside their names' hue bands, camera pose, colour cast and image noise, in any layout.

    ``env.wrist_camera`` adds ``wrist_camera`` (H, W, 3 uint8, ``wrist_camera_size``): a camera on the gripper
    (:mod:`ast_robot.envs.wrist`), with its own mount jitter and the scene's image noise; the deploy layout is
    then ``pickplace-deploy-wrist-v1``. Off, the model, the observation and every random draw are as before.
    """

    task = "pickplace"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._wrist_renderer: mujoco.Renderer | None = None
        super().__init__(*args, **kwargs)
        # deploy pipeline, privileged layout: the cubes as the deployment's tracker delivers them (TRACKER_RATE_HZ samples)
        self._tracker = TrackerSamples() if self._pipeline is not None and not self.deploy else None
        self._visual_nominal = visual_dr.nominal(self.model)
        self._wrist_nominal = wrist.nominal(self.model) if self.cfg.wrist_camera else None

    @property
    def deploy(self) -> bool:
        """Whether the observation is the deployable layout (no privileged state)."""
        return self.cfg.observation == "deploy"

    @property
    def observation_layout(self) -> str:
        """Versioned name of the observation layout (what a checkpoint must record to be served)."""
        return f"pickplace-{self.cfg.observation}{'-wrist' if self.cfg.wrist_camera else ''}-v1"

    def _load_model(self) -> mujoco.MjModel:
        if not self.cfg.wrist_camera:
            return super()._load_model()
        from ast_robot.robot.scene import build_spec

        spec = build_spec(self.robot, self.task, model=self.cfg.robot_model, **self._scene_options())
        wrist.add_wrist_camera(spec)
        return spec.compile()

    def _scene_options(self) -> dict[str, Any]:
        if self.cfg.observation == "deploy":
            _check_deploy_config(self.cfg)
        return {"n_objects": self.cfg.n_objects, "n_pads": self.cfg.n_pads}

    def _task_obs_size(self) -> int:
        return 0 if self.cfg.observation == "deploy" else 9 + 3 * (self.cfg.n_objects - 1)

    def _make_observation_space(self):
        space = super()._make_observation_space()
        if self.deploy:
            del space.spaces["achieved_goal"], space.spaces["desired_goal"]
        if self.cfg.wrist_camera:
            space.spaces[wrist.WRIST_KEY] = gym.spaces.Box(0, 255, shape=(*self.cfg.wrist_camera_size, 3), dtype=np.uint8)
        return space

    def _reset_task(self, rng: np.random.Generator) -> None:
        n_obj, n_pad = self.cfg.n_objects, self.cfg.n_pads
        spots = _separated_points(rng, n_obj + n_pad)
        obj_colours, pad_colours = choose_colours(rng, n_obj), choose_colours(rng, n_pad)
        self.half_size = OBJECT_HALF_SIZE * self.dr.get("object_size", 1.0)
        self._obj_qadr = []
        for i in range(n_obj):
            body = self.model.body(f"object{i}")
            adr = self.model.jnt_qposadr[body.jntadr[0]]
            yaw = rng.uniform(-0.3, 0.3)
            self.data.qpos[adr : adr + 7] = [
                *spots[i],
                self.half_size,
                np.cos(yaw / 2),
                0,
                0,
                np.sin(yaw / 2),
            ]
            self.model.geom_rgba[self.model.geom(f"object{i}").id, :3] = COLOURS[obj_colours[i]]
            self._obj_qadr.append(adr)
        for j in range(n_pad):
            site = self.model.site(f"pad{j}").id
            self.model.site_pos[site, :2] = spots[n_obj + j]
            self.model.site_rgba[site, :3] = COLOURS[pad_colours[j]]
        self.target_object = int(rng.integers(n_obj))
        self.target_pad = int(rng.integers(n_pad))
        self.goal = np.array([*spots[n_obj + self.target_pad], self.half_size])
        self._obj_vadr = self.model.jnt_dofadr[self.model.body(f"object{self.target_object}").jntadr[0]]
        # qpos entries of the observed positions: the target cube first, then the others (one gather per step)
        order = [self.target_object, *(i for i in range(n_obj) if i != self.target_object)]
        self._obs_pos_idx = np.array([self._obj_qadr[i] + k for i in order for k in range(3)])
        self._set_instruction(fill(PICK_PLACE_TEMPLATES, rng, object=obj_colours[self.target_object],
                                   pad=pad_colours[self.target_pad]))  # fmt: skip
        self.colour_names = {"objects": obj_colours, "pads": pad_colours}
        visual = visual_dr.sample(self.rand_cfg.visual if self.rand_cfg.enabled else _NO_VISUAL, rng, obj_colours,
                                  pad_colours)  # fmt: skip
        visual_dr.apply(self.model, visual, self._visual_nominal)
        self.dr.update(visual)
        if self._wrist_nominal is not None:  # drawn after everything else: other draws keep their order
            mount = wrist.sample(self.rand_cfg.visual if self.rand_cfg.enabled else _NO_VISUAL, rng)
            wrist.apply(self.model, mount, self._wrist_nominal)
            self.dr.update(mount)
        # the colour casts last of all: with visual.colour_shift 0 nothing is drawn and every seed draws as before
        visual_cfg = self.rand_cfg.visual if self.rand_cfg.enabled else _NO_VISUAL
        self.dr.update(visual_dr.sample_colour_shift(visual_cfg, rng))
        if self._wrist_nominal is not None:
            self.dr.update(visual_dr.sample_colour_shift(visual_cfg, rng, visual_dr.WRIST_CAST))

    def object_pos(self, i: int) -> np.ndarray:
        """Position (3, m, world) of cube ``i`` (a view into ``data.qpos``)."""
        adr = self._obj_qadr[i]
        return self.data.qpos[adr : adr + 3]

    def _achieved_goal(self) -> np.ndarray:
        return self.object_pos(self.target_object)

    def _task_obs(self, noise: float) -> np.ndarray:
        if self.deploy:
            return np.zeros(0)
        if self._tracker is not None:  # as deploy.runner.tracked_entries lays out the tracker's latest sample
            p, v, target = self._tracker.positions, self._tracker.velocities, self.target_object
            others = [p[i] for i in range(len(p)) if i != target]
            return np.concatenate([p[target], p[target] - self._tcp, v[target], *others])
        positions = self._qpos[self._obs_pos_idx]  # (3 * n_objects,) target cube first
        if noise > 0:
            positions = positions + self.np_random.normal(0.0, noise, size=positions.shape)
        rel = positions[:3] - self._tcp
        vel = self._qvel[self._obj_vadr : self._obj_vadr + 3]
        return np.concatenate([positions[:3], rel, vel, positions[3:]])

    def _get_obs(self) -> dict[str, np.ndarray]:
        obs = super()._get_obs()
        noise = self.dr.get("visual_image_noise", 0.0)
        if "camera" in obs:  # the camera's colour cast, then its noise (both sensor effects)
            obs["camera"] = visual_dr.colour_cast(obs["camera"], visual_dr.shift_of(self.dr))
            if noise > 0:
                obs["camera"] = visual_dr.add_image_noise(obs["camera"], noise, self.np_random)
        if self.cfg.wrist_camera:
            image = visual_dr.colour_cast(self.render_wrist(), visual_dr.shift_of(self.dr, visual_dr.WRIST_CAST))
            obs[wrist.WRIST_KEY] = visual_dr.add_image_noise(image, noise, self.np_random)
        if self.deploy:
            del obs["achieved_goal"], obs["desired_goal"]
        elif self._tracker is not None:  # the deployment's achieved goal is the tracked target (rewards: the physics)
            obs["achieved_goal"] = self._tracker.positions[self.target_object].copy()
        return obs

    def _sample_world(self, t: float, restart: bool = False) -> None:
        """The tracker's sample due at ``t`` (privileged layout with the deploy pipeline; see TrackerSamples)."""
        if self._tracker is None:
            return
        if restart:
            self._tracker.reset(self._tracked_positions(), t)
        else:
            self._tracker.offer(t, self._tracked_positions)

    def _tracked_positions(self) -> np.ndarray:
        """Every cube's position (n, 3) m in the table's order, as a tracker measures it (``object_pos_noise``)."""
        positions = self.data.qpos[np.add.outer(self._obj_qadr, np.arange(3))]
        noise = self.dr.get("object_pos_noise", 0.0)
        return positions + self.np_random.normal(0.0, noise, size=positions.shape) if noise > 0 else positions

    def render_wrist(self) -> np.ndarray:
        """The wrist camera's image (H, W, 3) uint8 at ``config.wrist_camera_size``."""
        if self._wrist_renderer is None:
            self._wrist_renderer = mujoco.Renderer(self.model, *self.cfg.wrist_camera_size)
        self._wrist_renderer.update_scene(self.data, camera=wrist.WRIST_CAMERA)
        return self._wrist_renderer.render()

    def close(self) -> None:
        if self._wrist_renderer is not None:
            self._wrist_renderer.close()
            self._wrist_renderer = None
        super().close()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_wrist_renderer"] = None
        return state

    def _info(self, obs: dict[str, np.ndarray], dist: float) -> dict[str, Any]:
        info = super()._info(obs, dist)
        info["target_object"], info["target_pad"] = self.target_object, self.target_pad
        # every cube (the table's order) and the target's place: ast_robot.pick_outcome judges events from them
        info["object_positions"] = self.data.qpos[np.add.outer(self._obj_qadr, np.arange(3))].copy()
        info["place"] = self.goal.copy()
        if self.deploy:  # privileged: for rewards (compute_reward), HER relabelling and analysis, not the policy
            info["achieved_goal"], info["desired_goal"] = self._achieved_goal().copy(), self.goal.copy()
        return info


_NO_VISUAL = VisualRandomizationConfig(enabled=False)  # randomization.enabled: false turns visual off too


def _check_deploy_config(cfg: Any) -> None:
    """ValueError unless the deploy layout can name its target: camera, instruction, >= 2 cubes and pads."""
    wrong = [f"env.{k}: {getattr(cfg, k)!r} (needs {need})" for k, ok, need in (
        ("camera", cfg.camera, "true"), ("instruction", cfg.instruction, "true"),
        ("n_objects", cfg.n_objects >= 2, ">= 2"), ("n_pads", cfg.n_pads >= 2, ">= 2")) if not ok]  # fmt: skip
    if wrong:
        raise ValueError(f"env.observation 'deploy' observes the target only through the camera and the "
                         f"instruction among several cubes and pads; fix {'; '.join(wrong)}")  # fmt: skip


def _separated_points(rng: np.random.Generator, n: int, attempts: int = 50, tries: int = 300) -> np.ndarray:
    """``n`` points (n, 2) in the placement area, pairwise at least ``MIN_SEPARATION`` apart.

    Greedy rejection sampling can paint itself into a corner (12 points fail about half the time):
    start over up to ``attempts`` times, so every allowed scene (config bounds) resets reliably.
    """
    for _ in range(attempts):
        points = _greedy_points(rng, n, tries)
        if points is not None:
            return points
    raise ValueError(
        f"cannot place {n} objects and pads {MIN_SEPARATION} m apart in the table area; use fewer"
    )


def _greedy_points(rng: np.random.Generator, n: int, tries: int) -> np.ndarray | None:
    points = np.empty((n, 2))
    count = 0
    for _ in range(tries):
        p = rng.uniform(AREA_LOW, AREA_HIGH)
        d = points[:count] - p
        if count == 0 or (d * d).sum(axis=1).min() >= MIN_SEPARATION**2:
            points[count] = p
            count += 1
            if count == n:
                return points
    return None
