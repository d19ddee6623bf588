"""`demos collect --observation deploy` records the deployable layout, and `train` clones from it (issue 20)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import ast_robot  # noqa: F401  (registers the ids)
from ast_robot.cli import main
from ast_robot.envs.demos import check_fits, load_demos, read_meta
from ast_robot.robot import kernels

ENV = "ast_robot/PickPlaceUR5e-v0"


def test_demos_collect_records_the_deploy_observation_then_train_clones_it(tmp_path, repo_root):
    out = tmp_path / "demos"
    assert main(["demos", "collect", "--env", ENV, "--observation", "deploy", "--visual", "--objects", "2",
                 "--pads", "2", "--episodes", "2", "--out", str(out)]) == 0  # fmt: skip
    meta = read_meta(out)
    assert meta["env_config"]["observation"] == "deploy" and meta["env_config"]["camera"]
    assert meta["randomization"]["visual"]["enabled"] is True
    (episode, _) = load_demos(out, env_id=ENV)
    steps = len(episode)
    assert episode.arrays["observation"].shape == (steps + 1, kernels.proprio_size(6))  # no object positions
    assert episode.arrays["camera"].shape == (steps + 1, 64, 64, 3)
    assert episode.instruction and any(name.startswith("visual_") for name in episode.dr)
    env = gym.make(ENV, config=meta["env_config"], randomization={"enabled": False})
    check_fits([episode], dict(env.observation_space.spaces), 4)  # the deploy env accepts them as they are
    assert set(env.observation_space.spaces) == {"observation", "camera", "instruction"}
    env.close()

    tiny = ["train.steps=3", "train.eval_episodes=1", "train.batch_size=8", f"train.demos={out}",
            f"run_root={tmp_path}"]  # fmt: skip
    config = str(repo_root / "configs/experiments/pickplace_ur5e_pixels_bc.yaml")
    assert main(["train", config, "--no-progress", *(x for o in tiny for x in ("--set", o))]) == 0
    run = tmp_path / "pickplace_ur5e_pixels_bc"
    assert (run / "policy" / "latest").is_file()
    from ast_robot.policies.policy import PolicyBase

    policy = PolicyBase.load(run / "policy")
    assert sorted(policy.spec) == ["camera", "instruction", "observation"]  # what the checkpoint will be served
    action = policy.act({k: episode.arrays[k][0] if k != "instruction" else episode.arrays[k] for k in policy.spec})
    assert action.shape == (4,) and np.isfinite(action).all()
