"""The reality gap's null case, per episode (issue 21): a nominal twin behind ROS (simulated time, the policy node,
the episode driver's tables) and the env with ``env.deploy_pipeline`` on the same tables give the same joints, tick
for tick, for a tracker-fed pick-and-place policy on each robot's own controller and gripper.

Before the fixes the paths parted at the second policy step (FR3 1e-6..3e-5 rad, UR5e 4e-8..1e-6 rad, growing to
0.1-0.5 rad; 2 of 10 FR3 outcomes flipped): the env read the cubes from the physics at every step where the
deployment observes the twin's tracker samples; it applied every gripper width at once where the safety gate
holds commands to 10 a second and a 1 mm dead band; it interpolated trajectory segments over times the wire rounds
to nanoseconds; and it computed the per-tick TCP step in other float operations than the runner."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.ros.helpers import Proc, drive_pickplace, seeded_policy

PARITY_BOUND_RAD = 1e-9  # measured 0.0 (bit for bit) after the fixes; 1e-6..3e-5 rad at the second step before
CONFIGS = {"ur5e": "configs/experiments/pickplace_demo.yaml", "fr3": "configs/experiments/pickplace_demo_fr3.yaml"}
EPISODES, TIMEOUT_S = 2, 1.2


def tracked_policy(folder, robot: str):
    """An untrained (seeded) MLP on the privileged layout of ``robot``'s demo: it observes the cubes through the
    tracker and its gripper output is continuous (the gate's dead band and rate both act). Returns (path, cfg)."""
    return seeded_policy(folder, CONFIGS[robot], ["policy.type=mlp", "policy.hidden_sizes=[16]"])


def twin_episodes(tmp_path, robot: str, policy: str) -> list:
    """Nominal twin + policy node + episode driver (seed 0) on simulated time: the records."""
    procs = [Proc(["twin", "--robot", robot, "--task", "pickplace", "--sim-time", "--rate", "125", "--camera-rate", "0"],
                  tmp_path / "twin.log"),
             Proc(["deploy", policy, "--robot", robot, "--sim-time", "--config", CONFIGS[robot], "--set",
                   f"deploy.episode_timeout_s={TIMEOUT_S}"], tmp_path / "deploy.log")]  # fmt: skip
    return drive_pickplace(tmp_path, procs, robot, EPISODES)


def pipeline_joints(cfg, policy, robot: str, seed: int, steps: int) -> np.ndarray:
    """Joint positions (steps + 1, J) of the nominal pipeline env on the driver's table of ``seed``."""
    import torch

    from ast_robot.config.deploy import driver_command_interface
    from ast_robot.envs.pick_place import PickPlaceEnv

    deploy = dataclasses.replace(cfg.deploy, command_interface=driver_command_interface(robot))
    env = PickPlaceEnv(robot, dataclasses.replace(cfg.env, deploy_pipeline=True), randomization={"enabled": False},
                       deploy=deploy)  # fmt: skip
    obs, info = env.reset(seed=seed)
    joints = [info["joint_positions"]]
    with torch.no_grad():
        for _ in range(steps):
            obs, _, _, _, info = env.step(policy.act(obs))
            joints.append(info["joint_positions"])
    env.close()
    return np.array(joints)


def node_reasons(log) -> str:
    """The policy node's hold / refusal lines, for the failure message: a parting from step 1 (FR3, 5-35 mrad, a
    fresh-clone suite at load ~3, session 10; not in 10 stress runs after) left no log: it went with the folder."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else ["(no deploy.log)"]
    return "\n".join(line for line in lines if any(w in line.lower() for w in ("hold", "refus", "stale", "jump")))[-3000:]


@pytest.mark.slow  # ~30-60 s per robot at load 5 on 2 cores: three processes' start-up, two 1.2 s episodes
@pytest.mark.parametrize("robot", ["ur5e", "fr3"])
def test_the_nominal_twin_follows_the_pipeline_env_tick_for_tick(tmp_path, repo_root, monkeypatch, robot):
    monkeypatch.chdir(repo_root)
    path, cfg, policy = tracked_policy(tmp_path / "policy", robot)
    records = twin_episodes(tmp_path, robot, path)
    assert len(records) == EPISODES
    ticks = round(cfg.deploy.control_hz / cfg.env.control_hz)
    for seed, rec in enumerate(records):
        assert rec.gripper_commands, "no gripper command: the gripper path went untested"
        real = np.asarray(rec.joint_positions)[::ticks]  # per tick -> per env step
        sim = pipeline_joints(cfg, policy, robot, seed, len(real) - 1)
        gap = np.abs(real - sim).max(axis=1)
        assert gap.max() <= PARITY_BOUND_RAD, (f"episode {seed}: apart from step {int(np.argmax(gap > 0))}: {gap}\n"
                                               + node_reasons(tmp_path / "deploy.log"))
