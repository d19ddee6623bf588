"""The deployment's command path inside an env step (train as you deploy).

A deployed policy does not move the arm the way a plain env step does (one servo target per 40 ms step).
The policy node ticks at ``deploy.control_hz`` (125 Hz): every tick integrates the TCP target by its
share of the latest action (:class:`~ast_robot.robot.actions.EEDeltaAction`), takes one IK step from the
last command, passes the joint target through the one safety module (speed scale, acceleration, lead and
workspace limits: :class:`~ast_robot.robot.safety.SafetyMonitor`), and sends it to the robot's controller:
a joint trajectory controller reaches each command along a straight segment of the safety filter's segment
time, starting from its current setpoint (a forward position controller jumps to it). Measured on the
demo's round-0 policy, the plain env step left out every one of these, and the deployed closed loop
oscillated around goals the env reached.

:class:`DeployPipeline` runs that path with the deployment's own objects, so the env and the deployment
cannot drift apart: each env step is ``deploy.control_hz / env.control_hz`` ticks of it, each tick a whole
number of physics steps. Commands act after the randomized latency (whole env steps), as a twin's
``latency_s`` delays them, and each episode declares that latency to its safety filter
(``SafetyLimits.from_robot(command_latency_s=)``), as a deployment declares its measured one
(configs/deploy/<robot>.yaml): sim and robot run the same filter for the same latency.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from ast_robot.config.deploy import driver_io
from ast_robot.robot import wire
from ast_robot.robot.actions import EEDeltaAction
from ast_robot.robot.safety import (
    PRE_DECLARATION_LATENCY_S,
    GripperLimits,
    GripperMonitor,
    SafetyLimits,
    SafetyMonitor,
)
from ast_robot.robot.safety.trust import ACQUIRE_STATES
from ast_robot.robot.sampling import TRACKER_RATE_HZ, finite_velocity, interval_s, next_due, sample_due

STATE_PERIOD_S = 0.002  # the drivers' joint-state period (500 Hz) before an episode starts


def ticks_per_step(control_hz: float, deploy_hz: float, timestep: float) -> tuple[int, int]:
    """(deployment ticks per env step, physics steps per tick); ValueError unless both are whole numbers."""
    ticks, substeps = deploy_hz / control_hz, 1.0 / (deploy_hz * timestep)
    if not (abs(ticks - round(ticks)) < 1e-6 * ticks and abs(substeps - round(substeps)) < 1e-6 * substeps
            and round(ticks) >= 1 and round(substeps) >= 1):  # fmt: skip
        raise ValueError(f"deploy.control_hz: {deploy_hz:g} Hz must be a whole multiple of env.control_hz "
                         f"({control_hz:g} Hz) and divide the physics rate ({1 / timestep:g} Hz) by a whole "
                         f"number, e.g. 125 Hz for a 25 Hz env on 500 Hz physics")  # fmt: skip
    return round(ticks), round(substeps)


def declared_latency(record: Any) -> float | None:
    """The command latency (s) that rebuilds the safety filter an episode record ran under (pass it to
    :meth:`DeployPipeline.reset` or ``SafetyLimits.from_robot``): the record's own (schema >= 5; None: undeclared,
    the strict filter), else :data:`~ast_robot.robot.safety.arm.PRE_DECLARATION_LATENCY_S` (records made before
    deployments declared it: the filter granted ``LAG_ALLOWANCE_S`` to all)."""
    return record.command_latency_s if record.schema_version >= 5 else PRE_DECLARATION_LATENCY_S


class Setpoint:
    """The arm controller's position setpoint over time, as :class:`~ast_robot.twin.sim.TwinSim` moves it:
    a trajectory command starts from the setpoint at its activation and reaches its target after its
    segment time (linear in between); a forward command (segment time 0) jumps there."""

    def __init__(self, q: np.ndarray) -> None:
        self.start_s, self.start, self.end, self.duration = 0.0, q.copy(), q.copy(), 0.0

    def at(self, t: float) -> np.ndarray:
        elapsed = t - self.start_s  # the twin's arithmetic: time since activation over the segment's own time
        if self.duration <= 0 or elapsed >= self.duration:
            return self.end
        if elapsed <= 0:
            return self.start
        return self.start + (self.end - self.start) * (elapsed / self.duration)

    def command(self, t: float, target: np.ndarray, duration: float) -> None:
        self.start = self.at(t).copy()
        self.start_s, self.end, self.duration = t, target, duration


class DeployPipeline:
    """Per tick: action map -> safety filter -> controller setpoint; the env steps the physics between."""

    def __init__(self, robot: Any, ik: Any, deploy_cfg: Any, env_cfg: Any, workspace: tuple, orientation: np.ndarray,
                 ee_position: Any, commands_gripper: bool = False) -> None:  # fmt: skip
        self.robot, self.deploy_cfg = robot, deploy_cfg
        self._limits: dict[float | None, SafetyLimits] = {}  # per declared latency (an env draws a few values)
        self.limits = self._declared(None)
        self.safety = SafetyMonitor(self.limits, ee_position)
        # the runner's per-tick share, in its float operations (a * (b / c), not a * b / c: 1.7e-18 rad apart)
        step = env_cfg.max_ee_step * (env_cfg.control_hz / deploy_cfg.control_hz)
        self.action_map = EEDeltaAction(ik, step, workspace, orientation, env_cfg.ik_iterations,
                                        lead_m=2.0 * env_cfg.max_ee_step)  # fmt: skip
        io = driver_io(robot.name)
        driver = None if io is None else io.command_interface
        if driver is not None and driver != deploy_cfg.command_interface:
            raise ValueError(f"deploy.command_interface: {deploy_cfg.command_interface!r}, but configs/deploy/"
                             f"{robot.name}.yaml drives the {robot.name} through {driver!r}: the env would train "
                             f"against another controller than the deployment's; set deploy.command_interface: "
                             f"{driver}")  # fmt: skip
        # the gripper as the deployment commands it (pick-and-place); None: held open, as the twin holds it for reach
        self.gripper = GripperPath(io.gripper, robot.gripper_width) if commands_gripper and io is not None else None
        self.trajectory = deploy_cfg.command_interface == "trajectory"
        self.setpoint = Setpoint(np.zeros(robot.n_joints))
        self._queue: deque[tuple[float, np.ndarray, float]] = deque()  # (activation s, target, segment s)
        self.last_command = np.zeros(robot.n_joints)

    def _declared(self, command_latency_s: float | None) -> SafetyLimits:
        """The safety limits with ``command_latency_s`` (s) declared (None: undeclared, the strict filter)."""
        if command_latency_s not in self._limits:
            self._limits[command_latency_s] = SafetyLimits.from_robot(self.robot, self.deploy_cfg, command_latency_s)
        return self._limits[command_latency_s]

    @property
    def command_latency_s(self) -> float | None:
        """The command latency (s) this episode declared to its safety filter (None: undeclared)."""
        return self.limits.command_latency_s

    def reset(self, q: np.ndarray, command_latency_s: float | None = None) -> None:
        """Episode start: the arm at rest at ``q``; no command in flight, no integrated TCP target. The safety
        filter declares ``command_latency_s`` (s): the episode's randomized latency (None: undeclared, strict)."""
        self.limits = self._declared(command_latency_s)
        self.safety = SafetyMonitor(self.limits, self.safety.ee_position)  # a new stream of states
        q = np.asarray(q, dtype=float)
        for k in reversed(range(ACQUIRE_STATES)):  # the driver streamed states before the episode started
            self.safety.observe_state(q, -k * STATE_PERIOD_S)
        self.action_map.reset()
        if self.gripper is not None:
            self.gripper.reset()
        self.setpoint = Setpoint(np.asarray(q, dtype=float))
        self._queue.clear()
        self.last_command = np.asarray(q, dtype=float).copy()

    @property
    def tcp_command(self) -> np.ndarray | None:
        """The integrated TCP target (3,) m, None before the first tick of an episode."""
        return self.action_map.ee_cmd

    def tick(self, action: np.ndarray, q: np.ndarray, now_s: float, delay_s: float) -> np.ndarray:
        """One deployment tick at measured joints ``q`` (J,): the safe command (J,), queued to act at
        ``now_s + delay_s`` as the controller receives it."""
        self.safety.observe_state(q, now_s)
        target = self.action_map(action, self.safety.reference, q)
        decision = self.safety.filter(target, now_s)
        command = decision.positions
        # a trajectory point's time as the controller reads it off the wire (whole nanoseconds)
        segment = wire.as_sent(self.safety.segment_time(command)) if self.trajectory else 0.0
        self._queue.append((now_s + delay_s, command, segment))
        self.last_command = command
        return command

    def gripper_tick(self, action: np.ndarray, now_s: float) -> float | None:
        """The opening (m) the gripper's controller gets at this tick (after :meth:`tick`, as the runner sends
        it), None when nothing is sent (no gripper commanded, or the gate withholds it)."""
        if self.gripper is None:
            return None
        return self.gripper.command(float(action[-1]), now_s, bool(self.safety.stop_reasons()))

    def ctrl_at(self, t: float) -> np.ndarray:
        """The setpoint the servo tracks during the physics step that starts at ``t`` (s)."""
        while self._queue and self._queue[0][0] <= t + 1e-12:
            start_s, command, segment = self._queue.popleft()
            self.setpoint.command(start_s, command, segment)
        return self.setpoint.at(t)


class GripperPath:
    """The deployment's gripper path: the action's opening (the envs' map, closed at -1, open at +1) through the
    safety module's gate (:class:`~ast_robot.robot.safety.GripperMonitor`: stroke, dead band, at most
    ``max_rate_hz`` commands a second), on the wire to the gripper's controller, and the opening its joint state
    reports (:mod:`ast_robot.robot.wire`). The env applied every step's width at once: on a nominal twin the
    gate held back a 4 mm opening for 0.1 s (issue 21)."""

    def __init__(self, cfg: Any, action_width: tuple[float, float]) -> None:
        """``cfg``: the robot's GripperIOConfig (configs/deploy/<robot>.yaml); ``action_width``: (closed, open) m."""
        self.cfg = cfg
        self.monitor = GripperMonitor(GripperLimits.for_gripper(cfg.model, cfg.force_n, cfg.speed_mps, cfg.max_rate_hz))
        self.stroke = (self.monitor.limits.spec.min_width, self.monitor.limits.spec.max_width)
        self.closed, self.opened = (float(w) for w in action_width)

    def reset(self) -> None:
        self.monitor.reset()

    def command(self, value: float, now_s: float, stopped: bool) -> float | None:
        """The opening (m) the controller reads for an action's gripper entry ``value``, None: nothing sent."""
        width = self.closed + (min(max(value, -1.0), 1.0) + 1.0) / 2.0 * (self.opened - self.closed)
        decision = self.monitor.filter(width, now_s, stopped)
        if decision.width is None:
            return None
        data = wire.command_data(self.cfg, self.stroke, decision.width, decision.speed, decision.force)
        return wire.command_width(self.cfg, self.stroke, np.asarray(data, dtype=np.float64))[0]

    def measured(self, fingers: Any) -> float:
        """The opening (m) the deployment observes for finger travels ``fingers`` (m each)."""
        return wire.measured_width(self.cfg, self.stroke, fingers)


class TrackerSamples:
    """The cube positions a tracker-fed policy observes in deployment: a sample at the tracker's rate on the twin's
    schedule (:mod:`ast_robot.robot.sampling`), held in between; velocities by finite differences of consecutive
    samples over their microsecond-rounded interval, as :class:`ast_robot.deploy.tracker.TrackerInput` computes
    them. The env read every cube's position and velocity from the physics at every step."""

    def __init__(self, rate_hz: float = TRACKER_RATE_HZ) -> None:
        self.rate_hz, self.max_age_s = rate_hz, 3.0 / rate_hz  # StreamBudget's age limit: 3 periods
        self.positions = self.velocities = np.zeros((0, 3))
        self._t, self._due = 0.0, 0.0

    def reset(self, positions: np.ndarray, t: float) -> None:
        """Episode start at ``t`` (s): the resting cubes (n, 3) m; the next sample a period on (the twin restarts
        its schedule at the first command)."""
        self.positions, self.velocities = np.array(positions, dtype=np.float64), np.zeros_like(positions, dtype=np.float64)
        self._t, self._due = t, next_due(t, None, self.rate_hz, restart=True)

    def offer(self, t: float, read: Any) -> None:
        """At a tick's time ``t`` (s): take a sample (``read()`` -> (n, 3) m) if one is due."""
        if not sample_due(t, self._due):
            return
        positions = np.asarray(read(), dtype=np.float64)
        self.velocities = finite_velocity(positions, self.positions, interval_s(t, self._t), self.max_age_s)
        self.positions, self._t = positions, t
        self._due = next_due(t, self._due, self.rate_hz)
