"""The pick-and-place wrist camera (env.wrist_camera, ast_robot/envs/wrist.py; issue 20)."""

from __future__ import annotations

import colorsys

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import ast_robot  # noqa: F401  (registers the ids)
from ast_robot.envs.ablations import _altered
from ast_robot.envs.projection import image_coords, pixel_coords
from ast_robot.envs.scenes import make_scenes
from ast_robot.robot.workspace import R_DOWN

DEPLOY = {"observation": "deploy", "camera": True, "instruction": True, "n_objects": 2, "n_pads": 2}
VISUAL_DR = {"preset": "default", "visual": {"enabled": True, "image_noise": [0.0, 0.0]}}
PICK_IDS = ["ast_robot/PickPlaceUR5e-v0", "ast_robot/PickPlaceFR3-v0"]


def _env(env_id: str = PICK_IDS[0], wrist: bool = True, randomization: dict | None = VISUAL_DR, **config):
    return gym.make(env_id, config={**DEPLOY, "wrist_camera": wrist, **config}, randomization=randomization)


def _pose(env, offset: np.ndarray) -> None:
    """The TCP at the named cube plus ``offset`` (m), pointing down; kinematics updated."""
    u = env.unwrapped
    q = u._ik.solve(u.robot.home_qpos, u.object_pos(u.target_object) + offset, R_DOWN).q
    u.data.qpos[u._qadr] = q
    mujoco.mj_forward(u.model, u.data)


def _hue(rgb) -> float:
    return colorsys.rgb_to_hsv(*(float(c) for c in rgb))[0]


@pytest.mark.parametrize("env_id", PICK_IDS)
def test_wrist_image_is_an_observation_with_its_own_layout_and_mount_jitter(env_id):
    env = _env(env_id, wrist_camera_size=[48, 64])
    u = env.unwrapped
    obs, info = env.reset(seed=0)
    assert set(obs) == set(env.observation_space.spaces) == {"observation", "camera", "instruction", "wrist_camera"}
    assert obs["wrist_camera"].shape == (48, 64, 3) and obs["wrist_camera"].dtype == np.uint8
    assert obs["wrist_camera"].std() > 5  # a real render, not a blank
    assert u.observation_layout == "pickplace-deploy-wrist-v1"
    jitter = {k: v for k, v in info["dr"].items() if k.startswith("visual_wrist_")}
    assert len(jitter) == 6
    assert all(abs(jitter[f"visual_wrist_d{a}"]) <= 0.004 for a in "xyz")
    assert all(abs(jitter[f"visual_wrist_{a}"]) <= 2.0 for a in ("roll", "pitch", "yaw"))
    _, info2 = env.reset(seed=1)
    assert info2["dr"]["visual_wrist_dx"] != jitter["visual_wrist_dx"]  # drawn anew at every reset
    env.close()


def test_without_the_wrist_camera_the_model_observation_and_draws_are_as_before():
    plain, wrist = _env(wrist=False), _env()
    assert plain.unwrapped.model.ncam == 1 and wrist.unwrapped.model.ncam == 2
    for seed in (0, 5):
        obs_p, info_p = plain.reset(seed=seed)
        obs_w, info_w = wrist.reset(seed=seed)
        assert "wrist_camera" not in obs_p and plain.unwrapped.observation_layout == "pickplace-deploy-v1"
        # every other draw of the reset (layout, colours, scene camera, physics) is the same: the wrist's come last
        assert {k: v for k, v in info_w["dr"].items() if not k.startswith("visual_wrist_")} == info_p["dr"]
        np.testing.assert_array_equal(obs_p["camera"], obs_w["camera"])
    plain.close()
    wrist.close()


@pytest.mark.parametrize("env_id", PICK_IDS)
def test_the_camera_rides_on_the_gripper_and_sees_the_cube_below_the_tcp(env_id):
    env = _env(env_id, randomization={"enabled": False})
    u = env.unwrapped
    env.reset(seed=3)
    cube = u.model.geom_rgba[u.model.geom(f"object{u.target_object}").id, :3]
    tcp_px, sizes = [], []
    for height in (0.12, 0.07, 0.04):
        _pose(env, np.array([0.0, 0.0, height]))
        tcp_px.append(pixel_coords(env, u.tcp_pos[None], "wrist", (64, 64))[0])
        image = u.render_wrist()
        row, col = pixel_coords(env, u.object_pos(u.target_object)[None], "wrist", (64, 64))[0].astype(int)
        assert 8 <= row < 56 and 16 <= col < 48  # a cube the TCP is above is well inside the image
        assert abs(_hue(image[row, col] / 255.0) - _hue(cube)) < 0.06  # ...and rendered where it projects
        sizes.append(sum(abs(_hue(p / 255.0) - _hue(cube)) < 0.06 and p.std() > 20 for p in image.reshape(-1, 3)))
    assert np.ptp(np.array(tcp_px), axis=0).max() < 0.5  # rigid mount: the TCP stays at one pixel
    assert sizes[0] < sizes[1] < sizes[2]  # the cube grows as the TCP comes down to it
    env.close()


def test_scenes_carry_the_wrist_image_and_its_pixel_targets():
    env = _env()
    scenes = make_scenes(env, 6, seed=11)
    assert scenes["wrist_camera"].shape == (6, 64, 64, 3)
    assert scenes["aux_wrist_pixels"].shape == (6, 4)
    u = env.unwrapped
    from ast_robot.envs.scenes import pose_scene

    one = pose_scene(env, 11)
    points = np.stack([u.object_pos(u.target_object), u.goal])
    np.testing.assert_allclose(one["aux_wrist_pixels"], image_coords(env, points, "wrist", (64, 64)).reshape(4), atol=1e-5)
    np.testing.assert_array_equal(one["wrist_camera"], scenes["wrist_camera"][0])
    env.close()


def test_blank_camera_ablation_blanks_the_wrist_camera_too():
    obs = {"camera": np.full((4, 4, 3), 9, np.uint8), "wrist_camera": np.full((2, 2, 3), 7, np.uint8),
           "instruction": np.ones(3, np.uint8)}  # fmt: skip
    out = _altered(obs, "blank_camera", None)
    assert not out["camera"].any() and not out["wrist_camera"].any() and out["instruction"].all()
    assert _altered(obs, "as_given", None)["wrist_camera"].all()


def test_only_pick_and_place_has_a_wrist_camera():
    with pytest.raises(ValueError, match="env.wrist_camera"):
        gym.make("ast_robot/ReachUR5e-v0", config={"wrist_camera": True})
