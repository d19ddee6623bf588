"""The sim-to-real loop's deployment records the camera for the visual gap analysis (issue 21, deliverable 5):
a privileged (tracker-fed) policy sees no camera, yet the twin on simulated time renders its frames at
``gap.camera_rate_hz`` and the recorder writes them, so the loop's bag carries frames the visual analysis reads;
on the nominal twin it names nothing. Without the rate the bag has no frames and the report says so."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ast_robot.records import read_records
from ast_robot.sim2real import deploy_on_twin, loop_camera_hz, twin_camera_rate
from tests.ros.test_pickplace_replay import tracked_checkpoint

pytest.importorskip("rclpy", reason='needs ROS 2 Python packages: pip install "ast-robot[ros]"')

CONFIGS = {"ur5e": "configs/experiments/pickplace_demo.yaml", "fr3": "configs/experiments/pickplace_demo_fr3.yaml"}


def deploy(tmp_path, name: str, camera_hz: float, robot: str = "ur5e", sim_time: bool = True) -> tuple:
    folder, config = tmp_path / name, ["--config", CONFIGS[robot], "--set", "deploy.episode_timeout_s=2.0"]
    bag, records = deploy_on_twin(tmp_path / "policy", config, robot, None, 2, 0, folder,
                                  int(os.environ["ROS_DOMAIN_ID"]), task="pickplace", record_camera_hz=camera_hz,
                                  sim_time=sim_time)  # fmt: skip
    return bag, read_records(records)


def fr3_checkpoint(folder) -> None:
    """An untrained (seeded) MLP on the FR3 loop's privileged layout (the Franka Hand: opening = finger sum)."""
    import torch

    from ast_robot.config import load_config
    from ast_robot.envs import make_env
    from ast_robot.policies.policy import build_policy
    from ast_robot.trainers.bc import save_policy
    from ast_robot.trainers.common import contract_of

    cfg = load_config(CONFIGS["fr3"], ["policy.type=mlp", "policy.hidden_sizes=[16]"])
    env = make_env(cfg.env, cfg.randomization, seed=0, deploy=cfg.deploy)
    torch.manual_seed(0)
    save_policy(build_policy(cfg.policy, env.observation_space, int(env.action_space.shape[0])), folder, 0, cfg,
                contract_of(env))  # fmt: skip
    env.close()


@pytest.mark.slow  # ~30-60 s on 2 loaded cores: two 2 s episodes in lock-step, then 2 Hz frames re-rendered
def test_the_loops_bag_carries_frames_the_visual_analysis_reads_and_names_nothing(tmp_path, repo_root, monkeypatch):
    from ast_robot.gap.pick import run_visual
    from ast_robot.gap.visual import FLOOR_LEVELS, episode_frames
    from ast_robot.records.bag import read_bag_images
    from ast_robot.robot.specs import get_robot

    monkeypatch.chdir(repo_root)
    tracked_checkpoint(tmp_path / "policy")
    bag, real = deploy(tmp_path, "with", 2.0)
    assert all(r.joint_stamps is not None for r in real)  # frames are placed by stamp (records schema 4)
    images = read_bag_images(bag)
    # 2 Hz over two 2 s episodes (plus the rest between them): at least 2 a episode, never the twin's 10 Hz
    assert len(images) >= 4, len(images)
    gaps = [b - a for (a, _), (b, _) in zip(images, images[1:])]
    assert min(gaps) >= 1e9 / 3 - 1e6 and abs(np.median(gaps) - 0.5e9) < 0.05e9, gaps  # 2 Hz of simulated time
    visual, note = run_visual(bag, real)
    assert note == "" and visual.n_frames >= 2, note
    assert visual.rms_nominal <= FLOOR_LEVELS and visual.culprits == (), visual.to_dict()
    # the untrained policy leaves the hand half open before any grasp: rendered at the widest opening (as before
    # the frames carried the bag's measured one) these frames read 5.5 levels RMS, above the floor
    widest = get_robot("ur5e").gripper_width[1]
    assert any(f.opening is not None and f.opening < widest - 0.01 for f in episode_frames("ur5e", real, bag))


@pytest.mark.slow  # ~10-20 s: the FR3 loop records the camera too (its hand's opening is read from the finger sum)
def test_the_fr3_loops_frames_match_their_re_renders(tmp_path, repo_root, monkeypatch):
    from ast_robot.gap.pick import run_visual
    from ast_robot.gap.visual import FLOOR_LEVELS

    monkeypatch.chdir(repo_root)
    fr3_checkpoint(tmp_path / "policy")
    bag, real = deploy(tmp_path, "fr3", 2.0, "fr3")
    visual, note = run_visual(bag, real)
    assert note == "" and visual.n_frames >= 2 and visual.rms_nominal <= FLOOR_LEVELS and visual.culprits == (), note


@pytest.mark.slow  # ~40-70 s: two 2 s episodes on wall clock (a real robot's time), frames at the YAML's rate
def test_a_wall_clock_loops_frames_are_placed_by_stamp_and_name_nothing(tmp_path, repo_root, monkeypatch):
    from ast_robot.gap.pick import run_visual
    from ast_robot.gap.visual import FLOOR_LEVELS

    monkeypatch.chdir(repo_root)
    tracked_checkpoint(tmp_path / "policy")
    bag, real = deploy(tmp_path, "wall", 2.0, sim_time=False)
    assert all(r.joint_stamps is not None and r.joint_stamps[0] > 1e9 for r in real)  # the wall clock's stamps
    visual, note = run_visual(bag, real)
    assert note == "" and visual.n_frames >= 2, note
    assert visual.rms_nominal <= FLOOR_LEVELS and visual.culprits == (), visual.to_dict()


@pytest.mark.slow
def test_without_the_rate_the_bag_has_no_frames_and_the_report_says_skipped(tmp_path, repo_root, monkeypatch):
    from ast_robot.gap.pick import run_visual

    monkeypatch.chdir(repo_root)
    tracked_checkpoint(tmp_path / "policy")
    bag, real = deploy(tmp_path, "without", 0.0)
    visual, note = run_visual(bag, real)
    assert visual is None and note.startswith("skipped"), note


def test_the_twin_renders_only_what_is_read():
    assert twin_camera_rate(camera=False, record_camera_hz=0.0) == ["--camera-rate", "0"]
    assert twin_camera_rate(camera=False, record_camera_hz=2.0) == ["--camera-rate", "2"]
    assert twin_camera_rate(camera=True, record_camera_hz=2.0) == []  # the policy's camera: the YAML's rate
    with pytest.raises(ValueError, match=r"^gap.camera_rate_hz: expected frames per second >= 0"):
        twin_camera_rate(camera=False, record_camera_hz=-1.0)


def test_the_loop_records_the_camera_for_pickplace_on_either_clock():
    assert loop_camera_hz(2.0, "pickplace", sim_time=True) == 2.0
    assert loop_camera_hz(2.0, "reach", sim_time=True) == 0.0  # no visual analysis of reach
    # wall clock: frames placed by their stamps (records schema 4), no longer by receipt
    assert loop_camera_hz(2.0, "pickplace", sim_time=False) == 2.0


def test_a_bad_camera_rate_in_the_config_is_refused_in_one_line():
    from ast_robot.config import load_config

    for bad in ("-1", "100"):
        with pytest.raises(Exception, match=r"camera_rate_hz") as err:
            load_config("configs/experiments/pickplace_demo.yaml", [f"gap.camera_rate_hz={bad}"])
        assert "\n" not in str(err.value)
