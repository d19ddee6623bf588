"""`demos collect --wrist-camera --policy RUN`: a wrist-camera student drives DAgger episodes (issue 20)."""

from __future__ import annotations

import gymnasium as gym

import ast_robot  # noqa: F401  (registers the ids)
from ast_robot.cli import main
from ast_robot.config import PolicyConfig
from ast_robot.envs.demos import load_demos, read_meta
from ast_robot.policies.policy import build_policy

ENV = "ast_robot/PickPlaceUR5e-v0"
DEPLOY = ["--observation", "deploy", "--visual", "--objects", "2", "--pads", "2"]


def test_a_wrist_student_drives_dagger_episodes_that_record_both_cameras(tmp_path, capsys):
    env = gym.make(ENV, config={"observation": "deploy", "camera": True, "instruction": True, "n_objects": 2,
                                "n_pads": 2, "wrist_camera": True})  # fmt: skip
    cfg = PolicyConfig(type="two_stage", aux_weight=1.0, n_keypoints=2, hidden_sizes=[16])
    build_policy(cfg, env.observation_space, 4).save(tmp_path / "student")
    env.close()
    out = tmp_path / "demos"
    args = ["demos", "collect", "--env", ENV, *DEPLOY, "--episodes", "1", "--out", str(out),
            "--policy", str(tmp_path / "student"), "--beta", "0.5"]  # fmt: skip
    assert main(args) != 0  # without the wrist camera the student cannot act, and says why
    assert "missing key(s) ['wrist_camera']" in capsys.readouterr().err
    assert main([*args, "--wrist-camera"]) == 0
    assert read_meta(out)["env_config"]["wrist_camera"] is True
    (episode,) = load_demos(out, env_id=ENV)
    assert "camera" in episode.arrays and "wrist_camera" in episode.arrays and "wrist_pixels" in episode.arrays
    assert episode.arrays["wrist_camera"].shape == (len(episode) + 1, 64, 64, 3) and episode.relabelled
