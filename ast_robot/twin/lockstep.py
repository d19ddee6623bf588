"""The deployment without ROS: a :class:`~ast_robot.deploy.session.DeploymentSession` drives a
:class:`~ast_robot.twin.sim.TwinSim` in lock-step at the deploy rate.

Each control tick does what the policy node and the twin do over DDS, in the same order and on one
simulated clock: the twin's newest joint state goes into the session, the session's tick (policy in
synchronous mode -> action mapping -> the safety module) returns a command, the command reaches the twin as
the node sends it (a one-point JointTrajectory with the safety filter's segment time, or a forward
position command), and the physics advances one control period. Nothing here waits on a wall clock, so
the outcome of an episode is a function of the policy, the goal and the twin's parameters only.

This is the reference the parity test holds the environments against (train as you deploy), and the
offline stand-in for a twin deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ast_robot.deploy.session import SAFETY_MODE_NORMAL, DeploymentSession
from ast_robot.envs.pipeline import STATE_PERIOD_S
from ast_robot.robot.safety.arm import REST_INTERVALS
from ast_robot.robot.safety.trust import ACQUIRE_STATES
from ast_robot.robot.wire import as_sent
from ast_robot.twin.sim import TwinSim


@dataclass
class LockstepDeployment:
    """One session, one twin; :meth:`run_episode` returns the session's episode record."""

    session: DeploymentSession
    sim: TwinSim
    command_interface: str = "trajectory"  # or "forward_position", as DeployConfig.command_interface
    clock_s: float = 0.0  # the session's clock: it runs on across episodes (the twin's restarts at 0)

    @classmethod
    def build(cls, policy: Any, robot: str, deploy_cfg: Any, env_cfg: Any = None, hidden: Any = None,
              seed: int = 0) -> LockstepDeployment:  # fmt: skip
        """A synchronous runner for ``policy`` (an object with ``act``) with ``deploy_cfg``'s limits, and a
        twin with ``hidden`` parameters (None: the nominal arm)."""
        from ast_robot.deploy.runner import PolicyRunner

        runner = PolicyRunner.for_robot(policy, robot, deploy_cfg, env_cfg, synchronous=True)
        runner.warm_up()
        sim = TwinSim(robot, hidden, seed=seed)
        session = DeploymentSession(runner, list(sim.joint_names), robot, timeout_s=deploy_cfg.episode_timeout_s,
                                    meta={"control_hz": deploy_cfg.control_hz,
                                          "command_interface": deploy_cfg.command_interface,
                                          "max_joint_speed_scale": deploy_cfg.max_joint_speed_scale},
                                    end_on_success=deploy_cfg.end_on_success)  # fmt: skip
        session.on_safety_mode(SAFETY_MODE_NORMAL)
        return cls(session, sim, deploy_cfg.command_interface)

    @property
    def period_s(self) -> float:
        return self.session.period_s

    def run_episode(self, goal: Any, max_ticks: int | None = None) -> Any:
        """Reset the twin to home, set ``goal`` (3,) m, run one episode to its end; its EpisodeRecord."""
        self.sim.reset()
        t0 = self.clock_s = self.clock_s + 1.0  # a pause between episodes, as the episode driver makes
        if reason := self.session.on_goal(goal):
            raise ValueError(reason)
        self._acquire_trust(t0)
        self.session.start_episode(t0)
        limit = max_ticks or int(np.ceil(self.session.episodes.timeout_s / self.period_s)) + 10
        for k in range(limit):
            now = t0 + k * self.period_s
            self._observe(now)
            out = self.session.tick(now)
            if out.command is not None:
                self._send(out.command)
            self.sim.step_to((k + 1) * self.period_s)
            self.clock_s = now + self.period_s
            if out.record is not None:
                return out.record
        raise RuntimeError(f"episode did not end within {limit} ticks")

    def _acquire_trust(self, t0: float) -> None:
        """The driver streams states before an episode starts: offer the resting arm's state ``ACQUIRE_STATES``
        times one joint-state period apart (the monitor trusts it), then once a control period for
        ``REST_INTERVALS`` periods up to ``t0`` (it measures the arm at rest: an episode starts only then,
        SafetyMonitor.settled), as the node receives them. The last speed interval ends at ``t0``, as the
        single trusted state at ``t0`` began one before (the episode's speed intervals keep their phase)."""
        rest = t0 - REST_INTERVALS * self.period_s
        times = [rest - k * STATE_PERIOD_S for k in reversed(range(ACQUIRE_STATES))]
        times += [t0 - k * self.period_s for k in reversed(range(REST_INTERVALS))]
        for now in times:
            q, dq, _ = self.sim.joint_state()
            reason = self.session.on_joint_state(list(self.sim.joint_names), q, dq, now, now, now)
        if reason is not None:
            raise RuntimeError(reason)

    def _observe(self, now: float) -> None:
        q, dq, _ = self.sim.joint_state()
        reason = self.session.on_joint_state(list(self.sim.joint_names), q, dq, now, now, now)
        if reason is not None:
            raise RuntimeError(reason)

    def _send(self, command: np.ndarray) -> None:
        if self.command_interface == "trajectory":
            seconds = as_sent(self.session.segment_time(command))  # as a JointTrajectory carries it (whole ns)
            self.sim.command_trajectory(list(self.sim.joint_names), [(command, seconds)])
        else:
            self.sim.command_positions(command)
