"""The deployable pick-and-place layout: no privileged state, the target named only by the instruction."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import ast_robot  # noqa: F401  (registers the ids)
from ast_robot.envs import ENV_IDS
from ast_robot.envs import visual_randomization as vr
from ast_robot.envs.demos import run_episode
from ast_robot.envs.experts import expert_for
from ast_robot.envs.instructions import COLOURS
from ast_robot.robot import kernels

PICK_IDS = ["ast_robot/PickPlaceUR5e-v0", "ast_robot/PickPlaceFR3-v0"]
DEPLOY = {"observation": "deploy", "camera": True, "instruction": True, "n_objects": 2, "n_pads": 2}
VISUAL_DR = {"preset": "default", "visual": {"enabled": True}}


def _env(env_id: str = PICK_IDS[0], **config):
    return gym.make(env_id, config={**DEPLOY, **config}, randomization=VISUAL_DR)


def _named_colours(text: str) -> list[str]:
    """Colour words in order of appearance (the templates name the cube before the pad)."""
    return [w for w in text.replace(",", " ").split() if w in COLOURS]


@pytest.mark.parametrize("env_id", PICK_IDS)
def test_deploy_observation_is_proprio_camera_instruction_only(env_id):
    env = gym.make(env_id, config=DEPLOY, randomization={"enabled": False})  # no sensor noise: exact compare
    u = env.unwrapped
    obs, info = env.reset(seed=0)
    assert set(obs) == set(env.observation_space.spaces) == {"observation", "camera", "instruction"}
    assert obs["observation"].shape == (kernels.proprio_size(u.robot.n_joints),)
    assert obs["camera"].shape == (64, 64, 3) and obs["camera"].dtype == np.uint8
    assert u.observation_layout == "pickplace-deploy-v1"
    # no cube or pad coordinate hides in the vector: moving the cubes leaves it unchanged
    before = obs["observation"].copy()
    for i in range(2):
        u.object_pos(i)[:2] += 0.05
    assert np.array_equal(u._get_obs()["observation"], before)
    assert info["desired_goal"].shape == (3,) and info["achieved_goal"].shape == (3,)  # for rewards only
    env.close()


def test_privileged_layout_is_unchanged_by_default():
    env = gym.make(PICK_IDS[0])
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"observation", "achieved_goal", "desired_goal"}
    assert obs["observation"].size == kernels.proprio_size(6) + 9 + 3 * 2  # 3 cubes: target + 2 others
    env.close()


def test_instruction_names_the_target_cube_and_pad_by_their_colours():
    env = _env(n_objects=3)
    u = env.unwrapped
    for seed in range(6):
        env.reset(seed=seed)
        cube_word, pad_word = _named_colours(u.instruction)
        rgb = u.model.geom_rgba[:, :3]
        cubes = [vr.band_of(rgb[u.model.geom(f"object{i}").id]) for i in range(3)]
        assert cubes[u.target_object] == cube_word and cubes.count(cube_word) == 1  # only the target has it
        pad = u.model.site_rgba[u.model.site(f"pad{u.target_pad}").id, :3]
        assert vr.band_of(pad) == pad_word
    env.close()


def test_info_dr_carries_the_visual_values_with_the_physical_ones():
    env = _env()
    _, info = env.reset(seed=1)
    dr = info["dr"]
    assert {"friction", "latency", "camera_x"} <= set(dr)  # the physical randomization stays
    visual = {k for k in dr if k.startswith("visual_")}
    assert {"visual_light_tilt", "visual_table_r", "visual_object1_g", "visual_pad1_b", "visual_camera_roll",
            "visual_image_noise"} <= visual  # fmt: skip
    u = env.unwrapped
    cube = u.model.geom_rgba[u.model.geom("object0").id, :3]
    assert np.allclose(cube, [dr[f"visual_object0_{c}"] for c in "rgb"])
    env.close()


def test_same_seed_same_images_and_values_other_seed_differs():
    a, b = _env(), _env()
    oa, ia = a.reset(seed=4)
    ob, ib = b.reset(seed=4)
    assert ia["dr"] == ib["dr"] and np.array_equal(oa["camera"], ob["camera"])
    action = np.array([0.3, -0.2, 0.1, 1.0], dtype=np.float32)
    assert np.array_equal(a.step(action)[0]["camera"], b.step(action)[0]["camera"])
    oc, ic = b.reset(seed=5)
    assert ic["dr"] != ia["dr"] and not np.array_equal(oc["camera"], oa["camera"])
    a.close()
    b.close()


def test_visual_randomization_changes_the_image_and_off_leaves_it_alone():
    off = gym.make(PICK_IDS[0], config=DEPLOY, randomization={"preset": "default"})
    o1, i1 = off.reset(seed=2)
    assert not any(k.startswith("visual_") for k in i1["dr"])
    on = _env()
    o2, _ = on.reset(seed=2)
    assert np.abs(o1["camera"].astype(int) - o2["camera"].astype(int)).mean() > 5
    off.close()
    on.close()


def test_check_env_on_the_deploy_layout():
    env = _env()
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("bad, field", [({"camera": False}, "env.camera"), ({"instruction": False}, "env.instruction"),
                                        ({"n_objects": 1}, "env.n_objects"), ({"n_pads": 1}, "env.n_pads")])  # fmt: skip
def test_deploy_layout_refuses_configs_that_cannot_name_the_target(bad, field):
    with pytest.raises(ValueError, match=field):
        _env(**bad)


def test_reach_refuses_the_deploy_layout():
    with pytest.raises(ValueError, match="env.observation"):
        gym.make("ast_robot/ReachUR5e-v0", config={"observation": "deploy"})


@pytest.mark.parametrize("env_id", PICK_IDS)
def test_expert_picks_the_named_cube_in_the_multi_cube_deploy_scene(env_id):
    env = _env(env_id)
    u = env.unwrapped
    expert = expert_for(env)
    for seed in (0, 1):
        env.reset(seed=seed)
        others = u.object_pos(1 - u.target_object).copy()
        ep = run_episode(env, expert, seed)
        assert ep["success"], f"seed {seed}: {u.instruction}"
        cube_word = _named_colours(u.instruction)[0]
        assert vr.band_of(u.model.geom_rgba[u.model.geom(f"object{u.target_object}").id, :3]) == cube_word
        assert np.linalg.norm(u.object_pos(1 - u.target_object)[:2] - others[:2]) < 0.01  # the other stayed
        assert np.allclose(ep["desired_goal"][-1], ep["desired_goal"][0])  # recorded from info
        assert set(ep) >= {"camera", "instruction", "observation"}
    env.close()


def test_gymnasium_make_randomizes_no_id_by_default():
    """One default for every id (README, Environments): plain ``gymnasium.make`` is the nominal model."""
    for env_id in sorted(ENV_IDS):
        env = gym.make(env_id)
        _, info = env.reset(seed=0)
        assert info["dr"] == {}, env_id
        _, info = gym.make(env_id, randomization={"preset": "default"}).reset(seed=0)
        assert len(info["dr"]) > 10, env_id  # the null case: the same check sees a randomized env
        env.close()


def _pixel(u, point: np.ndarray) -> np.ndarray:
    """Image coordinates (column, row) of a world point in the scene camera (pinhole, fovy vertical)."""
    cam = u.model.camera("scene").id
    rot, pos = u.data.cam_xmat[cam].reshape(3, 3), u.data.cam_xpos[cam]
    x, y, z = rot.T @ (point - pos)  # camera frame: looks along -z, y up
    h, w = u.cfg.camera_size
    f = (h / 2) / np.tan(np.radians(u.model.cam_fovy[cam]) / 2)
    return np.array([w / 2 + f * x / -z, h / 2 - f * y / -z])


def test_every_cube_and_pad_stays_in_view_under_camera_jitter():
    env = gym.make(PICK_IDS[0], config={**DEPLOY, "n_objects": 3},
                   randomization={"preset": "default", "visual": {"enabled": True, "camera_shift": 0.03,
                                                                  "camera_rotation_deg": 3.0}})  # fmt: skip
    u = env.unwrapped
    for seed in range(40):
        env.reset(seed=seed)
        points = [u.object_pos(i) for i in range(3)] + [u.data.site_xpos[u.model.site(f"pad{j}").id] for j in range(2)]
        for p in points:
            col, row = _pixel(u, p)
            assert 3 <= col <= 61 and 3 <= row <= 61, (seed, col, row)
    env.close()


def test_pickled_deploy_env_continues_identically():
    import pickle

    env = _env().unwrapped
    env.reset(seed=3)
    clone = pickle.loads(pickle.dumps(env))
    action = np.array([0.5, -0.2, 0.1, -1.0], dtype=np.float32)
    for _ in range(3):
        o1, r1, *_, i1 = env.step(action)
        o2, r2, *_, i2 = clone.step(action)
        assert np.array_equal(o1["camera"], o2["camera"]) and np.array_equal(o1["observation"], o2["observation"])
        assert r1 == r2 and i1["dr"] == i2["dr"]
    env.close()
    clone.close()
