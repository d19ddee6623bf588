"""The robot-env core shared by every task: physics stepping, action mapping, DR, observations, rewards.

A task subclasses :class:`RobotEnv` and fills its hooks (``_scene_options``, ``_task_obs_size``,
``_reset_task``, ``_task_obs``, ``_achieved_goal``; ``_reset_task`` also sets the goal and the instruction);
everything else (IK, latency queue, noise, camera, info) is here.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np

from ast_robot.config import DeployConfig, EnvConfig, RandomizationConfig, from_dict
from ast_robot.config.deploy import driver_command_interface
from ast_robot.config.randomization import merge_preset_entries
from ast_robot.envs import randomization as dr_lib
from ast_robot.envs.pipeline import DeployPipeline, ticks_per_step
from ast_robot.envs.rewards import reward_scales, weighted_reward
from ast_robot.robot import kernels
from ast_robot.robot.contract import task_interfaces
from ast_robot.robot.ik import for_robot
from ast_robot.robot.specs import get_robot, load_model
from ast_robot.robot.workspace import R_DOWN, WORKSPACE_HIGH, WORKSPACE_LOW
from ast_robot.success import goal_distance, reached

_NO_TASK_OBS = np.zeros(0)  # tasks without observations of their own


def _clip(x: np.ndarray, low: Any, high: Any) -> np.ndarray:
    """``np.clip`` without its dispatch overhead (a few microseconds per call add up at 1 kHz)."""
    return np.minimum(np.maximum(x, low), high)


def _as_index(addresses: list[int]) -> slice | np.ndarray:
    """A slice when the addresses are consecutive (views, no fancy-indexing copies), else an array."""
    first = addresses[0]
    if list(addresses) == list(range(first, first + len(addresses))):
        return slice(first, first + len(addresses))
    return np.array(addresses)


def _as_config(cls: type, value: Any) -> Any:
    if value is None:
        return cls()
    if isinstance(value, dict):
        if cls is RandomizationConfig:  # partial params entries keep their preset's other fields
            value = merge_preset_entries(value)
        return from_dict(cls, value)
    if not isinstance(value, cls):
        raise TypeError(f"expected a {cls.__name__} or a dict, got {type(value).__name__}")
    return value


def _substeps(control_hz: float, timestep: float) -> int:
    """Physics steps per control period; ValueError unless the period is a whole number of timesteps.

    The TCP velocity observation and the joint-speed limit per step use ``control_dt``: a rounded
    substep count would make both disagree with the simulated time.
    """
    ratio = 1.0 / (control_hz * timestep)
    n = round(ratio)
    if n < 1 or abs(ratio - n) > 1e-6 * ratio:
        physics_hz = 1.0 / timestep
        allowed = ", ".join(f"{physics_hz / k:g}" for k in (1, 2, 4, 5, 10, 20, 25, 50))
        raise ValueError(f"env.control_hz: {control_hz:g} Hz is not the physics rate {physics_hz:g} Hz divided "
                         f"by a whole number of substeps; allowed: {physics_hz:g}/k Hz for k = 1, 2, 3, ... "
                         f"(e.g. {allowed})")  # fmt: skip
    return n


class RobotEnv(gym.Env):
    """Goal-conditioned MuJoCo task for one robot; see the task classes for observation tables."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 25}
    task: ClassVar[str] = ""

    def __init__(self, robot: str = "ur5e", config: EnvConfig | dict | None = None,
                 randomization: RandomizationConfig | dict | None = None, render_mode: str | None = None,
                 deploy: DeployConfig | dict | None = None) -> None:  # fmt: skip
        """``deploy``: the deployment whose command path ``config.deploy_pipeline`` models (default: this robot
        with configs/deploy/<robot>.yaml's command interface); ignored without it."""
        self.cfg: EnvConfig = _as_config(EnvConfig, config)
        self._deploy_arg = deploy
        self.rand_cfg: RandomizationConfig = dr_lib.resolve(_as_config(RandomizationConfig, randomization))
        dr_lib.validate(self.rand_cfg)  # before building the model: config errors first
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.robot = get_robot(robot)
        if self.cfg.robot_model != "primitive":
            raise ValueError(f"env.robot_model {self.cfg.robot_model!r}: the envs need the primitive models (their "
                             "sites and actuators); load menagerie arms with load_model(..., model='menagerie')")  # fmt: skip
        self.scales = reward_scales(self.cfg.reward_type, self.cfg.reward_scales)
        self.model = self._load_model()
        self.data = mujoco.MjData(self.model)
        self.n_substeps = _substeps(self.cfg.control_hz, self.model.opt.timestep)
        self.control_dt = self.n_substeps * self.model.opt.timestep  # the time one step() really simulates
        self.metadata = {**self.metadata, "render_fps": self.cfg.control_hz}  # one frame per control step
        self._nominal = dr_lib.nominal(self.model, self.robot)
        dr_lib.validate(self.rand_cfg, self._nominal)  # colour ranges against this scene's colours
        self._ik = for_robot(self.model, self.robot)
        self._index_model()
        self._bind_views()
        self.gripper_observed = self._gripper_observed()  # the contract records it
        self._pipeline = self._make_pipeline()
        self._width_measured = self.gripper_observed == "measured"
        self.action_space = self._make_action_space()
        self.observation_space = self._make_observation_space()
        self._renderer = None
        self.dr: dict[str, float] = {}
        self._steps = 0

    # ----- model indices and spaces ---------------------------------------------------------------
    def _index_model(self) -> None:
        m, r = self.model, self.robot
        self._qadr = _as_index([m.jnt_qposadr[m.joint(j).id] for j in r.joint_names])
        self._vadr = _as_index([m.jnt_dofadr[m.joint(j).id] for j in r.joint_names])
        self._finger_qadr = _as_index([m.jnt_qposadr[m.joint(j).id] for j in r.gripper_joints])
        # ctrl entries of the arm joints, then the gripper: one write of the (n + 1,) command
        self._ctrl_idx = _as_index(
            [*(m.actuator(a).id for a in r.actuator_names), m.actuator(r.gripper_actuator).id]
        )
        self._site = m.site(r.ee_site).id
        n = r.n_joints  # proprio entries that are position readings (see kernels.proprio's table)
        self._sensor_idx = np.r_[0:n, 2 * n : 2 * n + 3, 2 * n + 6]  # joint positions, TCP position, gripper
        self._vel_step = np.array(r.velocity_limits) * self.control_dt  # max joint change per step (rad)
        # ee_delta's constants for kernels.ee_delta_command (its docstring lists them)
        step = self.cfg.max_ee_step
        self._motion = np.concatenate([[step, 2.0 * step], WORKSPACE_LOW, WORKSPACE_HIGH, r.gripper_width,
                                       self._vel_step])  # fmt: skip
        base = m.body(r.base_body).id
        self._is_robot_geom = [dr_lib.descends(m, m.geom_bodyid[g], base) for g in range(m.ngeom)]
        self._wrench = np.zeros(6)  # mj_contactForce output (normal force first)

    def _bind_views(self) -> None:
        """Views into ``self.data`` read at every step: building a view costs as much as the math on it.

        MjData keeps its buffers for its whole life; pickling copies views apart, so ``__setstate__``
        binds them again.
        """
        assert isinstance(self._qadr, slice) and isinstance(self._vadr, slice), (
            "arm joints must be consecutive"
        )
        d = self.data
        self._qpos, self._qvel, self._ctrl = d.qpos, d.qvel, d.ctrl
        self._tcp = d.site_xpos[self._site]  # (3,) m, world
        self._arm_qpos, self._arm_qvel = d.qpos[self._qadr], d.qvel[self._vadr]

    def _gripper_observed(self) -> str:
        """What the observation's gripper width is: ``measured`` (the fingers' opening) or ``open`` (a constant).

        A deploy-pipeline env observes what the deployment will (issue 21): the measured opening where the task
        commands the gripper (the runner reads the gripper's joint states then), the open width elsewhere (no
        gripper sensor is wired). Without the pipeline the env reads its fingers, as before."""
        if not self.cfg.deploy_pipeline:
            return "measured"
        return "measured" if self._commands_gripper() else "open"

    def _commands_gripper(self) -> bool:
        """Whether the deployment commands this task's gripper (else the twin holds it open)."""
        return "gripper_command" in task_interfaces(self.task, getattr(self.cfg, "observation", None))

    def _make_pipeline(self) -> DeployPipeline | None:
        """The deployment's command path (:mod:`ast_robot.envs.pipeline`) when ``deploy_pipeline`` is set."""
        if not self.cfg.deploy_pipeline:
            return None
        deploy = self._deploy_arg
        if deploy is None:  # this robot's shipped driver wiring: the controller the policy node drives
            driver = driver_command_interface(self.robot.name)
            deploy = {"robot": self.robot.name, **({"command_interface": driver} if driver else {})}
        self.deploy_cfg: DeployConfig = _as_config(DeployConfig, deploy)
        if self.cfg.action_mode != "ee_delta":
            raise ValueError("env.deploy_pipeline: the deployment serves ee_delta actions only; set "
                             "env.action_mode to ee_delta or env.deploy_pipeline to false")  # fmt: skip
        self._ticks, self._tick_substeps = ticks_per_step(self.cfg.control_hz, self.deploy_cfg.control_hz,
                                                          self.model.opt.timestep)  # fmt: skip
        return DeployPipeline(self.robot, self._ik, self.deploy_cfg, self.cfg, (WORKSPACE_LOW, WORKSPACE_HIGH),
                              R_DOWN, lambda q: self._ik.forward(q)[0], self._commands_gripper())  # fmt: skip

    def _make_action_space(self) -> gym.spaces.Box:
        n = 3 if self.cfg.action_mode == "ee_delta" else self.robot.n_joints
        return gym.spaces.Box(-1.0, 1.0, shape=(n + 1,), dtype=np.float32)

    def _make_observation_space(self) -> gym.spaces.Dict:
        self._obs_size = kernels.proprio_size(self.robot.n_joints) + self._task_obs_size()
        goal = gym.spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float64)
        spaces = {"observation": gym.spaces.Box(-np.inf, np.inf, shape=(self._obs_size,), dtype=np.float64),
                  "achieved_goal": goal, "desired_goal": goal}  # fmt: skip
        if self.cfg.camera:
            spaces["camera"] = gym.spaces.Box(0, 255, shape=(*self.cfg.camera_size, 3), dtype=np.uint8)
        if self.cfg.instruction:
            spaces["instruction"] = gym.spaces.Box(
                0, 255, shape=(self.cfg.instruction_length,), dtype=np.uint8
            )
        return gym.spaces.Dict(spaces)

    # ----- task hooks -------------------------------------------------------------------------------
    def _load_model(self) -> mujoco.MjModel:
        """The compiled scene (tasks with cameras of their own add them here)."""
        if self.cfg.wrist_camera:
            raise ValueError(f"env.wrist_camera: only the pick-and-place envs have a wrist camera (task "
                             f"{self.task!r}); set env.wrist_camera to false")  # fmt: skip
        return load_model(self.robot.name, self.task, model=self.cfg.robot_model, **self._scene_options())

    def _scene_options(self) -> dict[str, Any]:
        return {}

    def _task_obs_size(self) -> int:
        return 0

    def _reset_task(self, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _task_obs(self, noise: float) -> np.ndarray:
        return _NO_TASK_OBS

    def _achieved_goal(self) -> np.ndarray:
        raise NotImplementedError

    # ----- gymnasium API ----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """New episode: sample and apply randomization, home the arm, let the task place goal and objects."""
        super().reset(seed=seed)
        rng = self.np_random
        self.dr = dr_lib.sample(self.rand_cfg, rng, self._nominal)
        dr_lib.apply(self.model, self.dr, self._nominal)
        mujoco.mj_setConst(self.model, self.data)  # derived constants after mass/inertia changes
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._qadr] = self.robot.home_qpos
        self.data.qpos[self._finger_qadr] = self.robot.gripper_width[1] / 2
        self._reset_task(rng)
        mujoco.mj_forward(self.model, self.data)
        hold = np.concatenate([self.robot.home_qpos, [self.robot.gripper_width[1]]])
        self._ctrl[self._ctrl_idx] = hold
        self._queue = deque([hold] * int(self.dr.get("latency", 0)))  # commands in flight
        self._target = hold.copy()
        self._q_cmd = hold[:-1].copy()
        self._ee_cmd = self._tcp.copy()
        self._steps = 0
        self._prev_ee = self._tcp.copy()
        if self._pipeline is not None:  # its safety filter declares the latency the commands will act after
            self._pipeline.reset(self.robot.home_qpos, int(self.dr.get("latency", 0)) * self.control_dt)
            self._sample_world(self.data.time, restart=True)
        obs = self._get_obs()
        return obs, self._info(obs, self._goal_distance())

    def step(self, action: np.ndarray):
        """Apply one action for ``n_substeps`` physics steps; returns (obs, reward, False, truncated, info)."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        if not np.isfinite(action).all():  # MuJoCo would zero a NaN ctrl; joint targets would stay NaN
            raise ValueError(f"action must be finite (values in [-1, 1]), got {action.tolist()}")
        noise = self.dr.get("action_noise", 0.0)
        if noise > 0:
            action = action + self.np_random.normal(0.0, noise, size=action.shape)
        if self._pipeline is not None:
            self._deployed_step(action)
        else:
            command = self._command(action)
            self._queue.append(command)
            self._target = self._queue.popleft()  # delayed by `latency` control steps
            self._ctrl[self._ctrl_idx] = self._target
            self._prev_ee[:] = self._tcp
            mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)
            mujoco.mj_kinematics(self.model, self.data)  # positions of the state after the last substep
        self._steps += 1
        obs = self._get_obs()
        dist = self._goal_distance()
        info = self._info(obs, dist)
        # = compute_reward(obs["achieved_goal"], obs["desired_goal"], info), on a float instead of arrays
        reward = float(weighted_reward(dist, self.cfg.success_threshold, self.scales))
        return obs, reward, False, self._steps >= self.cfg.max_episode_steps, info

    def _deployed_step(self, action: np.ndarray) -> None:
        """One control step as the deployment runs it: ``_ticks`` ticks of the pipeline, each followed by
        its physics steps with the controller's setpoint; commands act ``latency`` env steps late. The gripper
        takes what the pipeline's gripper gate sends (held open where the deployment commands none); slower
        streams (a tracker) are sampled at the ticks they are due on (:meth:`_sample_world`)."""
        pipe = self._pipeline
        delay = int(self.dr.get("latency", 0)) * self.control_dt
        ctrl = self._ctrl
        for _ in range(self._ticks):
            now = self.data.time
            command = pipe.tick(action, self._arm_qpos.copy(), now, delay)
            width = pipe.gripper_tick(action, now)
            if width is not None:
                self._target[-1] = width
            self._prev_ee[:] = self._tcp  # the deployment's TCP velocity spans one tick
            for _ in range(self._tick_substeps):
                ctrl[self._ctrl_idx] = np.append(pipe.ctrl_at(self.data.time), self._target[-1])
                mujoco.mj_step(self.model, self.data)
            mujoco.mj_kinematics(self.model, self.data)
            self._sample_world(self.data.time)
        self._target = np.append(command, self._target[-1])
        self._q_cmd = command
        self._ee_cmd = pipe.tcp_command.copy()

    def _sample_world(self, t: float, restart: bool = False) -> None:
        """Deploy pipeline: take the samples of the deployment's slower streams due at the tick at ``t`` (s), the
        state after its physics (``restart``: the episode's first, at reset). The robot alone has none."""

    def _command(self, action: np.ndarray) -> np.ndarray:
        """Arm joint targets (n,) + gripper width (1,) for an action (clipped to [-1, 1] here).

        Targets integrate from the previous command (not from the measured state), so a constant action
        moves the arm at a constant speed instead of restarting a step response every control period;
        the TCP target may lead the measured TCP by at most two full steps (anti-windup).
        """
        if self.cfg.action_mode == "ee_delta":
            command = kernels.ee_delta_command(*self._ik.kernel_args(R_DOWN), self._q_cmd, self._ee_cmd, self._tcp,
                                               action, self._motion, self.cfg.ik_iterations)  # fmt: skip
        else:
            q_t = self._q_cmd + _clip(action[:-1], -1.0, 1.0) * self.cfg.max_joint_step
            closed, opened = self.robot.gripper_width
            width = closed + (min(max(float(action[-1]), -1.0), 1.0) + 1.0) / 2.0 * (opened - closed)
            command = kernels.joint_command(self._q_cmd, q_t, self._vel_step, self._ik.lower, self._ik.upper, width)
        self._q_cmd = command[:-1]
        return command

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Vectorized reward over leading batch dimensions: (..., 3), (..., 3) -> (...).

        ``step`` computes the same reward from ``_goal_distance`` (same float operations, no arrays).
        """
        diff = np.asarray(achieved_goal) - np.asarray(desired_goal)  # (..., 3)
        dist = np.sqrt((diff * diff).sum(axis=-1))  # (...,)
        return weighted_reward(dist, self.cfg.success_threshold, self.scales)

    # ----- observations and info --------------------------------------------------------------------
    def _get_obs(self) -> dict[str, np.ndarray]:
        noise = self.dr.get("proprio_noise", 0.0)
        # joint_delta actions integrate no TCP target: the measured TCP stands in (offset 0)
        tcp_cmd = self._ee_cmd if self.cfg.action_mode == "ee_delta" else self._tcp
        if self._pipeline is None:
            velocity_dt, width = self.control_dt, self._gripper_width()
        else:  # as the deployment observes: TCP velocity over one tick, the gripper as gripper_observed says
            velocity_dt = 1.0 / self.deploy_cfg.control_hz
            width = self._observed_width()
        proprio = kernels.proprio(self._arm_qpos, self._arm_qvel, self._tcp, self._prev_ee,
                                  1.0 / velocity_dt, width, tcp_cmd)  # (2n + 10,)  # fmt: skip
        if noise > 0:  # position sensors only: velocities (rad/s, m/s) and the command offset stay exact
            proprio[self._sensor_idx] += self.np_random.normal(0.0, noise, size=self._sensor_idx.shape)
        n = self.robot.n_joints  # encoder offsets bias the joint readings (the servo tracks the true angle)
        proprio[:n] += dr_lib.encoder_offsets(self.dr, n)
        if self.dr.get("joint_noise", 0.0) > 0:  # encoder noise: joint readings only
            proprio[:n] += self.np_random.normal(0.0, self.dr["joint_noise"], size=n)
        task = self._task_obs(self.dr.get("object_pos_noise", 0.0))  # after the proprio draw: fixed RNG order
        obs = {"observation": np.concatenate([proprio, task]) if task.size else proprio,
               "achieved_goal": self._achieved_goal().copy(), "desired_goal": self.goal.copy()}  # fmt: skip
        if self.cfg.camera:
            obs["camera"] = self.render_camera()
        if self.cfg.instruction:
            obs["instruction"] = self._instruction_bytes.copy()
        return obs

    def _observed_width(self) -> float:
        """Deploy pipeline: the opening the deployment observes: measured through the gripper's joint-state report
        where it commands the gripper, else the open width (no gripper sensor wired)."""
        if not self._width_measured:
            return self.robot.gripper_width[1]
        gripper = self._pipeline.gripper
        return self._gripper_width() if gripper is None else gripper.measured(self._qpos[self._finger_qadr].tolist())

    def _gripper_width(self) -> float:
        """Finger opening (m): the sum of both finger joints, as a float (two numbers: no array sum)."""
        left, right = self._qpos[self._finger_qadr].tolist()
        return left + right

    def _goal_distance(self) -> float:
        """Distance (m) from the achieved to the desired goal (:mod:`ast_robot.success`; the same float
        operations as compute_reward)."""
        return goal_distance(self._achieved_goal(), self.goal)

    def _info(self, obs: dict[str, np.ndarray], dist: float) -> dict[str, Any]:
        return {"is_success": reached(dist, self.cfg.success_threshold), "distance": dist, "dr": dict(self.dr),
                "ee_pos": self._tcp.copy(), "joint_positions": self._arm_qpos.copy(),
                "joint_velocities": self._arm_qvel.copy(), "joint_targets": self._target[:-1].copy(),
                "gripper_width": self._gripper_width(), "contact_force": self._contact_force()}  # fmt: skip

    def _contact_force(self) -> float:
        """Sum of contact normal forces (N) on the robot's geoms."""
        if self.data.ncon == 0:
            return 0.0
        robot = self._is_robot_geom  # a list: a dozen contacts cost less in Python than in numpy indexing
        total, wrench = 0.0, self._wrench
        for i, (geom1, geom2) in enumerate(self.data.contact.geom.tolist()):
            if not (robot[geom1] or robot[geom2]):
                continue
            mujoco.mj_contactForce(self.model, self.data, i, wrench)
            total += abs(wrench[0])
        return total

    def _set_instruction(self, text: str) -> None:
        raw = text.encode("utf-8")
        if len(raw) > self.cfg.instruction_length:
            raise ValueError(
                f"instruction {text!r} is {len(raw)} bytes; instruction_length is {self.cfg.instruction_length}"
            )
        self.instruction = text
        self._instruction_bytes = np.zeros(self.cfg.instruction_length, dtype=np.uint8)
        self._instruction_bytes[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)

    @property
    def instruction_length(self) -> int:
        """Length (bytes) of the zero-padded ``instruction`` observation."""
        return self.cfg.instruction_length

    @property
    def tcp_pos(self) -> np.ndarray:
        """Measured TCP position (3, m, world)."""
        return self._tcp

    @property
    def tcp_command(self) -> np.ndarray:
        """Commanded TCP position (3, m, world) that ee_delta actions integrate (see ``_command``); a copy."""
        return self._ee_cmd.copy()

    @property
    def command_latency_s(self) -> float | None:
        """The command latency (s) this episode's safety filter declared (the randomized latency the commands act
        after; recorded with the episode); None without ``deploy_pipeline`` (no filter runs)."""
        return None if self._pipeline is None else self._pipeline.command_latency_s

    @property
    def applied_gripper_width(self) -> float:
        """The gripper width (m) the actuators are driven to now (after latency; privileged: experts, DAgger)."""
        return float(self._target[-1])

    @property
    def finger_width(self) -> float:
        """The fingers' opening (m) in the physics (privileged: experts, DAgger)."""
        return self._gripper_width()

    # ----- rendering, pickling, closing -------------------------------------------------------------
    def render_camera(self) -> np.ndarray:
        """The scene camera's image (H, W, 3) uint8 at ``config.camera_size``."""
        if self._renderer is None:
            height, width = self.cfg.camera_size
            self._renderer = mujoco.Renderer(self.model, height, width)
        self._renderer.update_scene(self.data, camera="scene")
        return self._renderer.render()

    def render(self) -> np.ndarray | None:
        return self.render_camera() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __getstate__(self) -> dict[str, Any]:
        views = ("_qpos", "_qvel", "_ctrl", "_tcp", "_arm_qpos", "_arm_qvel")
        return {k: v for k, v in self.__dict__.items() if k not in ("_renderer", "_ik", "_pipeline", *views)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._renderer = None
        self._ik = for_robot(self.model, self.robot)
        self._bind_views()
        self._pipeline = self._make_pipeline()  # in-flight commands are not kept: reset before stepping
