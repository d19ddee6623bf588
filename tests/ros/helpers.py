"""Helpers of the ROS 2 tests: subprocesses that inherit the test's ROS domain, a probe node, waits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason='needs ROS 2 Python packages: pip install "ast-robot[ros]"')

from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
UR5E_JOINTS = ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint",
               "wrist_3_joint"]  # fmt: skip
TRAJ_TOPIC = "/scaled_joint_trajectory_controller/joint_trajectory"
SAFETY_TOPIC = "/ast/safety_mode"  # std_msgs/UInt8 bridged from the driver's ur_dashboard_msgs/SafetyMode


class Proc:
    """An `ast-robot` subcommand in a child process; the ROS env (domain, LOCALHOST) is inherited."""

    def __init__(self, args: list[str], log: Path) -> None:
        env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", MUJOCO_GL="egl", PYTHONUNBUFFERED="1")
        self.log = log
        self._fh = log.open("wb")
        self.p = subprocess.Popen([sys.executable, "-m", "ast_robot", *args], stdout=self._fh,
                                  stderr=subprocess.STDOUT, env=env)  # fmt: skip

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait; kills (and fails later checks) if it does not exit in time, after asking it
        for every thread's stack (SIGUSR1: see ast_robot.cli.main) so the log shows where it hung."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.send_signal(signal.SIGUSR1)
                time.sleep(1.0)
                self.p.kill()
                self.p.wait()
        self._fh.close()
        return self.p.returncode

    def text(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_text(errors="replace")


def drive_pickplace(tmp_path: Path, procs: list[Proc], robot: str, episodes: int, out: str = "real") -> list[Any]:
    """``ast-robot episodes --task pickplace`` (seed 0, simulated time) against the running ``procs`` (twin,
    policy node, ...); stops them all after it, each must exit 0 (their logs are printed when anything fails).
    Returns the driver's records."""
    from ast_robot.records import read_records

    try:
        driver = Proc(["episodes", "--task", "pickplace", "--robot", robot, "--n", str(episodes), "--seed", "0",
                       "--sim-time", "--timeout", "120", "--discovery-timeout", "120", "--out", str(tmp_path / out)],
                      tmp_path / "episodes.log")  # fmt: skip
        driver.p.wait(300)
        assert driver.stop() == 0, driver.text()[-3000:]
    except BaseException:
        print("\n".join(f"--- {p.log.name}\n{p.text()[-4000:]}" for p in procs))
        raise
    finally:
        codes = [p.stop() for p in procs]
    assert codes == [0] * len(procs), "\n".join(p.text()[-2000:] for p in procs)
    return read_records(tmp_path / out)


def wait_until(node: Node, predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Spin ``node`` until ``predicate()`` holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        rclpy.spin_once(node, timeout_sec=0.01)


def spin_for(node: Node, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.005)


def call(node: Node, client: Any, request: Any, timeout: float = 10.0) -> Any:
    assert client.wait_for_service(timeout_sec=timeout), f"service {client.srv_name} not available"
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    assert future.done(), f"service {client.srv_name} did not answer in {timeout} s"
    return future.result()


def ur5e_limits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper, max step per period at 125 Hz with the default speed scale)."""
    from ast_robot.config import DeployConfig
    from ast_robot.robot.safety import SafetyLimits
    from ast_robot.robot.specs import get_robot

    lim = SafetyLimits.from_robot(get_robot("ur5e"), DeployConfig())
    return lim.lower, lim.upper, lim.max_step


def seeded_policy(folder: Path, config: str, overrides: list[str]) -> tuple[str, Any, Any]:
    """An untrained policy (torch seed 1) of ``config`` + ``overrides``, saved in ``folder`` with its env's contract
    for the node to load. Returns (path, cfg, policy)."""
    import torch

    from ast_robot.config import load_config
    from ast_robot.envs import make_env
    from ast_robot.policies.policy import build_policy
    from ast_robot.trainers.bc import save_policy
    from ast_robot.trainers.common import contract_of

    cfg = load_config(config, overrides)
    env = make_env(cfg.env, cfg.randomization, seed=0, deploy=cfg.deploy)
    torch.manual_seed(1)
    policy = build_policy(cfg.policy, env.observation_space, int(env.action_space.shape[0]))
    save_policy(policy, folder, 0, cfg, contract_of(env))
    env.close()
    return str(folder), cfg, policy
