"""A higher-resolution camera (`demos collect --camera-size`) and single-render scenes in BC (`train.scenes`)."""

from __future__ import annotations

import pytest

import ast_robot  # noqa: F401  (registers the ids)
from ast_robot.cli import main
from ast_robot.envs.demos import load_demos

ENV = "ast_robot/PickPlaceUR5e-v0"


@pytest.fixture(scope="module")
def demos96(tmp_path_factory):
    out = tmp_path_factory.mktemp("px") / "demos96"
    assert main(["demos", "collect", "--env", ENV, "--observation", "deploy", "--visual", "--objects", "2",
                 "--pads", "2", "--episodes", "1", "--camera-size", "96", "96", "--out", str(out)]) == 0  # fmt: skip
    return out


def test_demos_at_96_pixels_then_train_with_scenes(demos96, tmp_path, repo_root):
    (episode,) = load_demos(demos96, env_id=ENV)
    assert episode.arrays["camera"].shape[1:] == (96, 96, 3)
    tiny = ["train.steps=3", "train.eval_episodes=1", "train.batch_size=8", f"train.demos={demos96}",
            f"run_root={tmp_path}", "train.scenes=6", "env.camera_size=[96,96]"]  # fmt: skip
    config = str(repo_root / "configs/experiments/pickplace_ur5e_pixels_bc.yaml")
    assert main(["train", config, "--no-progress", *(x for o in tiny for x in ("--set", o))]) == 0
    from ast_robot.policies.policy import PolicyBase

    policy = PolicyBase.load(tmp_path / "pickplace_ur5e_pixels_bc" / "policy")
    assert policy.spec["camera"][0] == (96, 96, 3)
    assert policy.pixel_scale == pytest.approx(23.5)  # half-resolution pixels of a 96-pixel image


def test_scenes_need_the_two_stage_policy(demos96, tmp_path, repo_root, capsys):
    tiny = ["train.steps=3", f"train.demos={demos96}", f"run_root={tmp_path}", "train.scenes=4",
            "env.camera_size=[96,96]", "policy.type=mlp"]  # fmt: skip
    config = str(repo_root / "configs/experiments/pickplace_ur5e_pixels_bc.yaml")
    rc = main(["train", config, "--no-progress", *(x for o in tiny for x in ("--set", o))])
    err = capsys.readouterr().err
    assert rc != 0 and "train.scenes: 4 needs policy.type 'two_stage'" in err, err
