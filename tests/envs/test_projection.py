"""Image positions of world points (ast_robot.envs.projection): the pixel student's supervision (issue 20)."""

from __future__ import annotations

import colorsys

import gymnasium as gym
import numpy as np

import ast_robot  # noqa: F401  (registers the ids)
from ast_robot.envs.demos import check_episode, run_episode
from ast_robot.envs.experts import expert_for
from ast_robot.envs.projection import image_coords, pixel_coords

DEPLOY = {"observation": "deploy", "camera": True, "instruction": True, "n_objects": 2, "n_pads": 2}
VISUAL_DR = {"preset": "default", "visual": {"enabled": True, "image_noise": [0.0, 0.0]}}


def _same_hue(rgb: np.ndarray, colour: np.ndarray) -> bool:
    """Hues (on the colour circle) within 0.06 of each other; ``rgb`` in uint8 levels, ``colour`` in [0, 1]."""
    a, b = colorsys.rgb_to_hsv(*(float(c) / 255.0 for c in rgb))[0], colorsys.rgb_to_hsv(*map(float, colour))[0]
    return min(abs(a - b), 1 - abs(a - b)) < 0.06


def test_projected_cube_and_pad_land_on_their_colours_under_camera_jitter():
    env = gym.make("ast_robot/PickPlaceUR5e-v0", config=DEPLOY, randomization=VISUAL_DR)
    u = env.unwrapped
    hits = misses = 0
    for seed in range(12):
        obs, _ = env.reset(seed=seed)
        image = obs["camera"].astype(int)
        cube = u.model.geom_rgba[u.model.geom(f"object{u.target_object}").id, :3]
        pad_site = u.model.site(f"pad{u.target_pad}").id
        for point, colour in ((u.object_pos(u.target_object), cube), (u.data.site_xpos[pad_site], u.model.site_rgba[pad_site, :3])):
            row, col = pixel_coords(env, point[None])[0].astype(int)
            hits += _same_hue(image[row, col], colour)
            shifted = image[min(63, row + 8), min(63, col + 8)]  # null case: 8 pixels away is table, not the object
            misses += _same_hue(shifted, colour) and shifted.std() > 20
    env.close()
    assert hits >= 22 and misses <= 3, (hits, misses)


def test_image_coords_are_on_the_half_resolution_grid():
    env = gym.make("ast_robot/PickPlaceUR5e-v0", config=DEPLOY, randomization=VISUAL_DR)
    env.reset(seed=0)
    rc = pixel_coords(env, np.zeros((1, 3)))
    norm = image_coords(env, np.zeros((1, 3)))
    np.testing.assert_allclose(norm, -1 + (rc - 1) / 31)  # centre of half-res pixel i: -1 + 2 i / 31
    env.close()


def test_demonstrations_record_the_target_and_place_image_positions():
    env = gym.make("ast_robot/PickPlaceUR5e-v0", config=DEPLOY, randomization=VISUAL_DR)
    arrays = run_episode(env, expert_for(env), seed=3)
    check_episode(arrays)
    assert arrays["target_pixels"].shape == (len(arrays["action"]) + 1, 6)  # cube, place, TCP
    env.reset(seed=3)
    first = np.stack([arrays["achieved_goal"][0], arrays["desired_goal"][0], arrays["ee_pos"][0]])
    np.testing.assert_allclose(arrays["target_pixels"][0], image_coords(env, first).reshape(6))
    assert np.ptp(arrays["target_pixels"][:, 2:4], axis=0).max() < 1e-9  # the place does not move
    assert np.ptp(arrays["target_pixels"][:, :2], axis=0).max() > 0.1  # the carried cube does
    env.close()


def test_bc_data_carry_the_pixel_targets_only_when_every_episode_has_them():
    from ast_robot.envs.demos import Episode
    from ast_robot.policies.policy import AUX_KEY, PIXEL_KEY
    from ast_robot.trainers.bc import DemoData

    env = gym.make("ast_robot/PickPlaceUR5e-v0", config=DEPLOY, randomization=VISUAL_DR)
    episodes = [Episode(run_episode(env, expert_for(env), seed=s)) for s in (1, 2)]
    env.close()
    keys = ["observation", "camera", "instruction"]
    data = DemoData.from_episodes(episodes, keys, aux=True)
    steps = sum(len(e) for e in episodes if e.success)
    assert data.obs[PIXEL_KEY].shape == (steps, 6) and data.obs[AUX_KEY].shape == (steps, 6)
    older = Episode({k: v for k, v in episodes[0].arrays.items() if k != "target_pixels"})  # an older file
    assert PIXEL_KEY not in DemoData.from_episodes([older, episodes[1]], keys, aux=True).obs
