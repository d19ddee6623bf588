"""train.scenes_file: the two_stage student's single-render scenes rendered once and read back (issue 20)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ast_robot.config import load_config
from ast_robot.envs import make_env
from ast_robot.envs.scenes import make_scenes
from ast_robot.trainers import bc

CONFIG = Path(__file__).resolve().parents[2] / "configs/experiments/pickplace_ur5e_pixels_bc.yaml"
SMALL = ["env.camera_size=[32,32]", "env.wrist_camera=true", "train.scenes=3", "seed=0"]


def _cfg(path: Path, *overrides: str):
    return load_config(CONFIG, [*SMALL, f"train.scenes_file={path}", *overrides])


def _scenes(cfg):
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed)
    try:
        return bc._cached_scenes(cfg, env, cfg.seed + 5_000_000)[0]
    finally:
        env.close()


def test_the_file_holds_what_rendering_gives_and_a_later_run_reads_it_without_rendering(tmp_path, monkeypatch):
    path = tmp_path / "scenes.npz"
    cfg = _cfg(path)
    first = _scenes(cfg)  # null case: no file yet, so rendered and written
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed)
    rendered = make_scenes(env, 3, seed=5_000_000)
    env.close()
    assert path.is_file() and set(first) == set(rendered) and "wrist_camera" in first
    for key in rendered:
        np.testing.assert_array_equal(first[key], rendered[key])

    def no_render(*_a, **_k):
        raise AssertionError("re-rendered although the file was there")

    monkeypatch.setattr("ast_robot.envs.scenes.make_scenes", no_render)
    again = _scenes(_cfg(path, "env.max_episode_steps=77"))  # the episode length does not enter a scene
    for key in rendered:
        np.testing.assert_array_equal(again[key], rendered[key])


@pytest.mark.parametrize(("override", "field"), [("train.scenes=4", "n"), ("seed=1", "seed"),
                                                 ("env.camera_size=[24,24]", "env"),
                                                 ("randomization.visual.enabled=false", "randomization")])  # fmt: skip
def test_a_file_rendered_for_another_run_is_refused_naming_what_differs(tmp_path, override, field):
    path = tmp_path / "scenes.npz"
    _scenes(_cfg(path))
    with pytest.raises(ValueError, match=rf"train.scenes_file: .*scenes.npz holds scenes of another run \({field} differs"):
        _scenes(_cfg(path, override))


def test_the_cast_range_alone_may_differ_and_the_file_says_whether_its_scenes_are_cast(tmp_path, monkeypatch):
    """The trainer casts uncast rows at batch time (colour_aug): scenes rendered without the cast serve a run
    with it (flagged uncast, not re-rendered); scenes rendered under a cast are flagged cast."""
    plain, cast = tmp_path / "plain.npz", tmp_path / "cast.npz"
    _scenes(_cfg(plain))
    assert _cast_flag(_cfg(cast, "randomization.visual.colour_shift=0.05")) is True  # rendered under the cast
    monkeypatch.setattr("ast_robot.envs.scenes.make_scenes", lambda *a, **k: pytest.fail("re-rendered"))
    assert _cast_flag(_cfg(plain, "randomization.visual.colour_shift=0.0706")) is False
    assert _cast_flag(_cfg(cast)) is True  # and the other way round


def _cast_flag(cfg) -> bool:
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed)
    try:
        scenes, cast = bc._cached_scenes(cfg, env, cfg.seed + 5_000_000)
    finally:
        env.close()
    assert len(scenes["camera"]) == 3
    return cast
