"""The camera colour cast (randomization.visual.colour_shift; issue 21): off by default without a single draw,
sampled per camera and episode into info["dr"], applied to every camera image as the twin's camera applies it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ast_robot  # noqa: F401  (registers the ids)
from ast_robot.config import VisualRandomizationConfig
from ast_robot.config.schema import ConfigError, from_dict
from ast_robot.envs import visual_randomization as vr

DEPLOY = {"observation": "deploy", "camera": True, "instruction": True, "n_objects": 2, "n_pads": 2,
          "wrist_camera": True, "camera_size": [48, 48], "wrist_camera_size": [48, 48]}  # fmt: skip
CASTS = [f"{p}_{c}" for p in (vr.CAST, vr.WRIST_CAST) for c in "rgb"]


def _env(colour_shift: float | None, noise: tuple[float, float] = (0.0, 6.0), wrist: bool = True):
    visual = {"enabled": True, "image_noise": list(noise)}
    if colour_shift is not None:
        visual["colour_shift"] = colour_shift
    return gym.make("ast_robot/PickPlaceUR5e-v0", config={**DEPLOY, "wrist_camera": wrist},
                    randomization={"preset": "default", "visual": visual})  # fmt: skip


def test_zero_range_or_visual_off_draws_nothing_from_the_stream():
    for cfg in (VisualRandomizationConfig(enabled=True), VisualRandomizationConfig(enabled=False, colour_shift=0.1)):
        rng = np.random.default_rng(3)
        before = rng.bit_generator.state
        assert vr.sample_colour_shift(cfg, rng) == {} and rng.bit_generator.state == before


@pytest.mark.parametrize("wrist", [True, False])
def test_off_by_default_every_seed_draws_and_renders_as_without_the_key(wrist):
    """The key at its default (absent) and at 0: the same draws, dr and images; on, every other value of the
    episode's draw is still the same (the casts are drawn last of the reset's draws; the noise drawn after the
    reset comes later in the stream, so on, it differs) and only the casts are added to dr."""
    absent, zero, on = _env(None, wrist=wrist), _env(0.0, wrist=wrist), _env(0.08, wrist=wrist)
    for seed in (0, 7):
        (oa, ia), (oz, iz), (oo, io) = (e.reset(seed=seed) for e in (absent, zero, on))
        assert ia["dr"] == iz["dr"] and not set(CASTS) & set(ia["dr"])
        assert set(io["dr"]) - set(ia["dr"]) == set(CASTS[: 6 if wrist else 3])
        assert {k: io["dr"][k] for k in ia["dr"]} == ia["dr"]  # the other draws keep their order
        for key in oa:
            assert np.array_equal(oa[key], oz[key]), key
        for _ in range(3):
            action = absent.action_space.sample()
            (sa, *_), (sz, *_) = (e.step(action) for e in (absent, zero))
            assert all(np.array_equal(sa[k], sz[k]) for k in sa)
    for e in (absent, zero, on):
        e.close()


def test_casts_are_sampled_per_camera_and_episode_inside_the_range():
    env = _env(0.05)
    seen = []
    for seed in range(6):
        _, info = env.reset(seed=seed)
        values = [info["dr"][k] for k in CASTS]
        assert all(-0.05 <= v <= 0.05 for v in values)
        seen.append(values)
    seen = np.array(seen)
    assert np.ptp(seen, axis=0).min() > 0.01  # every channel of both cameras drawn anew per episode
    assert not np.allclose(seen[:, :3], seen[:, 3:])  # the wrist camera draws its own cast
    env.close()


def test_the_images_are_the_renders_cast_exactly_as_the_twins_camera_casts_them():
    """obs = the env's render with the sampled cast == the twin's post_process of that render with the same
    shift (the twin renders the env's frames bit for bit: tests/ros/test_pipeline_parity_camera.py)."""
    from types import SimpleNamespace

    from ast_robot.twin.hidden import HiddenParams
    from ast_robot.twin.pickplace import PickPlaceTable

    env = _env(0.08, noise=(0.0, 0.0))
    u = env.unwrapped
    for seed in (1, 2):
        obs, info = env.reset(seed=seed)
        for key, raw, prefix in (("camera", u.render_camera(), vr.CAST), ("wrist_camera", u.render_wrist(), vr.WRIST_CAST)):
            shift = vr.shift_of(info["dr"], prefix)
            twin_camera = SimpleNamespace(hidden=HiddenParams(colour_shift=[float(s) for s in shift]))
            assert np.array_equal(obs[key], PickPlaceTable.post_process(twin_camera, raw)), key
            diff = obs[key].astype(float) - raw
            inside = (raw > 30) & (raw < 225)  # no clipping there: the mean moves by the shift (truncated)
            for c in range(3):
                assert abs(diff[..., c][inside[..., c]].mean() - shift[c] * 255) < 1.0
    env.close()


def test_the_cast_composes_with_image_noise_and_zero_shift_is_the_identity():
    image = np.full((4, 4, 3), 100, dtype=np.uint8)
    assert vr.colour_cast(image, np.zeros(3)) is image
    out = vr.colour_cast(image, np.array([0.06, 0.0, -0.05]))
    assert out.dtype == np.uint8 and out[0, 0].tolist() == [115, 100, 87]  # 100 + 15.3 -> 115, 100 - 12.75 -> 87
    assert vr.colour_cast(np.full((1, 1, 3), 250, np.uint8), np.array([0.1, 0.0, -1.0]))[0, 0].tolist() == [255, 250, 0]


@pytest.mark.parametrize("bad", [-0.01, 0.6, float("nan"), "red"])
def test_bad_colour_shift_values_are_refused_in_one_line(bad):
    with pytest.raises((ConfigError, TypeError, ValueError), match="colour_shift") as err:
        from_dict(VisualRandomizationConfig, {"colour_shift": bad})
    assert "\n" not in str(err.value)
