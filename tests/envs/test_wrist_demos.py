"""Demonstrations with the wrist camera: recorded beside the scene image, old files load, replays (issue 20)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ast_robot  # noqa: F401  (registers the ids)
from ast_robot.cli import main
from ast_robot.envs.dagger import replay_driver
from ast_robot.envs.demos import WRIST_BEHIND, check_episode, check_fits, load_demos, read_meta, run_episode
from ast_robot.envs.experts import expert_for
from ast_robot.envs.projection import image_coords
from ast_robot.envs.wrist import WRIST_CAMERA
from ast_robot.fileio import BadFile

ENV = "ast_robot/PickPlaceUR5e-v0"
DEPLOY = {"observation": "deploy", "camera": True, "instruction": True, "n_objects": 2, "n_pads": 2,
          "camera_size": [48, 48], "max_episode_steps": 12}  # fmt: skip
VISUAL_DR = {"preset": "default", "visual": {"enabled": True}}


def _env(wrist: bool):
    return gym.make(ENV, config={**DEPLOY, "wrist_camera": wrist, "wrist_camera_size": [32, 32]},
                    randomization=VISUAL_DR)  # fmt: skip


@pytest.fixture(scope="module")
def episodes():
    """One expert episode each without and with the wrist camera (same seed), and the wrist env."""
    plain, wrist = _env(False), _env(True)
    out = run_episode(plain, expert_for(plain), seed=3), run_episode(wrist, expert_for(wrist), seed=3)
    plain.close()
    yield (*out, wrist)
    wrist.close()


def test_wrist_episode_records_the_wrist_image_and_its_pixel_targets(episodes):
    plain, wrist, env = episodes
    steps = len(wrist["action"])
    assert wrist["wrist_camera"].shape == (steps + 1, 32, 32, 3) and wrist["wrist_camera"].dtype == np.uint8
    assert wrist["camera"].shape == (steps + 1, 48, 48, 3)  # the scene image beside it
    assert wrist["wrist_camera"][0].std() > 5 and not np.array_equal(wrist["wrist_camera"][0], wrist["wrist_camera"][-1])
    assert wrist["wrist_pixels"].shape == (steps + 1, 4) and np.isfinite(wrist["wrist_pixels"]).all()
    # the last row is where the goals are in the wrist image at the end, as scenes' aux_wrist_pixels projects them
    points = np.stack([wrist["achieved_goal"][-1], wrist["desired_goal"][-1]])
    expected = np.nan_to_num(image_coords(env, points, WRIST_CAMERA, (32, 32)).reshape(4), nan=WRIST_BEHIND)
    np.testing.assert_allclose(wrist["wrist_pixels"][-1], expected)
    assert "wrist_camera" not in plain and "wrist_pixels" not in plain  # without it: the old format, unchanged
    check_episode(wrist)
    check_episode(plain)


def test_bad_wrist_arrays_are_one_clear_line(episodes):
    _, wrist, _ = episodes
    with pytest.raises(ValueError, match=r"wrist_camera has shape \(13, 32, 32\) .*expected \(T\+1, H, W, 3\) uint8"):
        check_episode({**wrist, "wrist_camera": wrist["wrist_camera"][..., 0]})
    with pytest.raises(ValueError, match=r"wrist_camera has shape \(12, 32, 32, 3\), not 13 rows"):
        check_episode({**wrist, "wrist_camera": wrist["wrist_camera"][1:]})
    with pytest.raises(ValueError, match=r"wrist_pixels has shape \(13, 6\), expected \(T\+1, 4\)"):
        check_episode({**wrist, "wrist_pixels": np.zeros((13, 6))})


def test_a_wrist_env_refuses_demos_without_the_wrist_image_naming_the_fix(episodes):
    from ast_robot.envs.demos import Episode

    plain, _, env = episodes
    spaces = dict(env.observation_space.spaces)
    with pytest.raises(BadFile, match=r"'wrist_camera' is missing .*--wrist-camera"):
        check_fits([Episode(plain)], spaces, 4)
    check_fits([Episode(episodes[1])], spaces, 4)


def test_replaying_an_episodes_actions_reproduces_it_and_adds_the_wrist_image(episodes):
    plain, _, _ = episodes
    env = _env(False)  # null case: the same env replays the recorded actions to the same states and labels
    again = run_episode(env, expert_for(env), seed=3, driver=replay_driver(plain["action"]))
    env.close()
    np.testing.assert_array_equal(again["observation"], plain["observation"])
    np.testing.assert_array_equal(again["action"], plain["action"])
    assert again["relabelled"]
    env = _env(True)  # with the wrist camera: the same table and instruction, the wrist image recorded
    moved = run_episode(env, expert_for(env), seed=3, driver=replay_driver(plain["action"]))
    env.close()
    np.testing.assert_array_equal(moved["instruction"], plain["instruction"])
    np.testing.assert_allclose(moved["achieved_goal"][0], plain["achieved_goal"][0])
    assert "wrist_camera" in moved and len(moved["action"]) == len(plain["action"])
    np.testing.assert_allclose(moved["ee_pos"], plain["ee_pos"], atol=0.02)  # the same motion, up to noise draws


def test_demos_collect_replay_adds_the_wrist_camera_to_an_old_folder(tmp_path, capsys):
    old, new = tmp_path / "old", tmp_path / "new"
    common = ["demos", "collect", "--env", ENV, "--observation", "deploy", "--visual", "--objects", "2", "--pads", "2",
              "--camera-size", "48", "48"]  # fmt: skip
    assert main([*common, "--episodes", "2", "--seed", "5", "--noise", "0.1", "--out", str(old)]) == 0
    assert main([*common, "--episodes", "2", "--wrist-camera", "--replay", str(old), "--out", str(new)]) == 0
    before, after = load_demos(old, env_id=ENV), load_demos(new, env_id=ENV)  # the old folder still loads
    assert "wrist_camera" not in before[0].arrays and all("wrist_camera" in e.arrays for e in after)
    assert [int(e.arrays["seed"]) for e in after] == [5, 6] and all(e.relabelled for e in after)
    assert read_meta(new)["collections"][0]["replay"] == str(old)
    capsys.readouterr()
    assert main([*common, "--episodes", "3", "--wrist-camera", "--replay", str(old), "--out", str(tmp_path / "x")]) != 0
    assert "old/meta.json: holds 2 episodes, --episodes asks 3" in capsys.readouterr().err
    assert main([*common, "--episodes", "1", "--replay", str(old), "--policy", str(old), "--out", str(tmp_path / "y")]) != 0
    assert "--policy and --replay both choose the executed actions" in capsys.readouterr().err
    three = [x if x != "2" else "3" for x in common[:-2]] + common[-2:]  # --objects 3 --pads 3: another table
    assert main([*three, "--episodes", "1", "--replay", str(old), "--out", str(tmp_path / "z")]) != 0
    assert "old/meta.json: env_config.n_objects is 2, this env's 3" in capsys.readouterr().err  # not replayed silently
    assert not any((tmp_path / d).exists() for d in "xyz")  # refused before writing anything
