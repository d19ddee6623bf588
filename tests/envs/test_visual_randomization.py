"""Visual randomization: colour names keep their hue bands, sampling is pure and seeded, the model gets it."""

from __future__ import annotations

import colorsys

import mujoco
import numpy as np
import pytest

from ast_robot.config import VisualRandomizationConfig
from ast_robot.envs import visual_randomization as vr
from ast_robot.envs.instructions import COLOURS
from ast_robot.robot.specs import load_model

WIDE = VisualRandomizationConfig(enabled=True, hue_jitter_deg=60.0, saturation_scale=(0.2, 3.0),
                                 value_scale=(0.2, 3.0))  # fmt: skip


def test_every_nominal_colour_lies_in_its_own_band_only():
    for name, rgb in COLOURS.items():
        assert vr.band_of(np.array(rgb)) == name


def test_bands_are_disjoint_on_a_dense_hsv_grid():
    for h in np.linspace(0, 1, 181):
        for s in np.linspace(0, 1, 21):
            for v in np.linspace(0, 1, 11):
                rgb = np.array(colorsys.hsv_to_rgb(h, s, v))
                assert sum(b.contains(rgb) for b in vr.BANDS.values()) <= 1


def test_colours_outside_every_band_have_no_name():
    assert vr.band_of(np.array([0.5, 0.5, 0.5])) is None  # mid grey: too dark for white, no saturation
    assert vr.band_of(np.array([0.9, 0.6, 0.1])) == "orange"  # hue 40 deg: orange, not red or yellow
    assert vr.band_of(np.array(colorsys.hsv_to_rgb(15 / 360, 0.9, 0.9))) is None  # between red and orange


@pytest.mark.parametrize("name", sorted(COLOURS))
def test_jittered_colours_stay_in_the_named_band_even_with_wide_jitter(name):
    rng = np.random.default_rng(0)
    samples = [vr.jitter_colour(name, WIDE, rng) for _ in range(400)]
    assert all(vr.band_of(rgb) == name for rgb in samples)
    assert np.ptp(np.array(samples), axis=0).max() > 0.05  # the jitter does move the colour


def test_sample_is_empty_when_disabled_and_seeded_when_enabled():
    rng = np.random.default_rng(1)
    assert vr.sample(VisualRandomizationConfig(), rng, ["red", "blue"], ["green", "white"]) == {}
    on = VisualRandomizationConfig(enabled=True)
    a = vr.sample(on, np.random.default_rng(3), ["red", "blue"], ["green", "white"])
    b = vr.sample(on, np.random.default_rng(3), ["red", "blue"], ["green", "white"])
    c = vr.sample(on, np.random.default_rng(4), ["red", "blue"], ["green", "white"])
    assert a == b and a != c
    assert all(isinstance(v, float) and np.isfinite(v) for v in a.values())
    assert {"visual_object1_r", "visual_pad1_b", "visual_camera_yaw", "visual_image_noise"} <= set(a)
    assert vr.band_of(np.array([a[f"visual_object1_{c}"] for c in "rgb"])) == "blue"
    assert all(abs(a[f"visual_camera_d{x}"]) <= on.camera_shift for x in "xyz")
    assert all(abs(a[f"visual_camera_{x}"]) <= on.camera_rotation_deg for x in ("roll", "pitch", "yaw"))


def test_scenery_colours_are_greyish_never_a_named_chromatic_colour():
    on = VisualRandomizationConfig(enabled=True)
    rng = np.random.default_rng(5)
    for _ in range(200):
        p = vr.sample(on, rng, ["red"], ["blue"])
        for element in ("table", "floor"):
            rgb = np.array([p[f"visual_{element}_{c}"] for c in "rgb"])
            assert colorsys.rgb_to_hsv(*rgb)[1] <= on.scenery_saturation + 1e-9
            assert vr.band_of(rgb) is None


def _model():
    return load_model("ur5e", "pickplace", n_objects=2, n_pads=2)


def test_camera_aimed_without_jitter_matches_mujocos_targetbody_camera():
    model = _model()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    nom = vr.nominal(model)
    reference = data.cam_xmat[nom.camera].copy()
    model.cam_mode[nom.camera] = mujoco.mjtCamLight.mjCAMLIGHT_FIXED
    model.cam_quat[nom.camera] = vr.camera_quat(model.cam_pos[nom.camera], nom.aim, [0.0, 0.0, 0.0])
    mujoco.mj_forward(model, data)
    assert np.allclose(data.cam_xmat[nom.camera], reference, atol=1e-9)
    model.cam_quat[nom.camera] = vr.camera_quat(model.cam_pos[nom.camera], nom.aim, [0.0, 3.0, 0.0])
    mujoco.mj_forward(model, data)
    view = lambda m: -m.reshape(3, 3)[:, 2]  # noqa: E731  (the camera looks along -z)
    angle = np.degrees(np.arccos(np.clip(view(data.cam_xmat[nom.camera]) @ view(reference), -1, 1)))
    assert angle == pytest.approx(3.0, abs=1e-6)  # pitch turns the view axis by exactly that angle


def test_apply_writes_the_sampled_values_into_the_model():
    model = _model()
    nom = vr.nominal(model)
    cam_pos, diffuse = model.cam_pos[nom.camera].copy(), model.light_diffuse[nom.light].copy()
    p = vr.sample(VisualRandomizationConfig(enabled=True), np.random.default_rng(2), ["red", "cyan"], ["white", "blue"])
    vr.apply(model, p, nom)
    assert np.allclose(model.cam_pos[nom.camera] - cam_pos, [p[f"visual_camera_d{a}"] for a in "xyz"])
    assert np.allclose(model.light_diffuse[nom.light], diffuse * p["visual_light_intensity"])
    tilt = np.degrees(np.arccos(-model.light_dir[nom.light][2]))
    assert tilt == pytest.approx(p["visual_light_tilt"], abs=1e-6)
    assert vr.band_of(model.geom_rgba[model.geom("object1").id, :3]) == "cyan"
    assert vr.band_of(model.site_rgba[model.site("pad0").id, :3]) == "white"
    table = model.mat_rgba[nom.materials["table"], :3]
    assert np.allclose(table, [p[f"visual_table_{c}"] for c in "rgb"])


def test_image_noise_has_the_sampled_std_and_zero_is_the_identity():
    image = np.full((64, 64, 3), 128, dtype=np.uint8)
    rng = np.random.default_rng(0)
    assert vr.add_image_noise(image, 0.0, rng) is image
    noisy = vr.add_image_noise(image, 5.0, rng)
    assert noisy.dtype == np.uint8 and noisy.shape == image.shape
    assert np.std(noisy.astype(float)) == pytest.approx(5.0, rel=0.05)
