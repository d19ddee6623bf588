"""bench/extend_policy.py: a trained policy extended by new options, as a run folder to fine-tune from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ast_robot.config import PolicyConfig
from ast_robot.policies.policy import PolicyBase, build_policy
from bench import extend_policy
from tests.policies.test_two_stage import TWO_STAGE, deploy_space


@pytest.fixture()
def source(tmp_path):
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(**TWO_STAGE), deploy_space(), 4)
    policy.save(tmp_path / "src")
    return tmp_path / "src", policy.eval()


def test_extending_by_nothing_gives_the_same_policy(source, tmp_path):  # the null case
    path, policy = source
    extend_policy.main(["--from", str(path), "--out", str(tmp_path / "same")])
    again = PolicyBase.load(tmp_path / "same" / "policy")
    obs = {k: v.sample() for k, v in deploy_space().spaces.items()}
    np.testing.assert_array_equal(again.act(obs), policy.act(obs))
    assert (tmp_path / "same" / "config.yaml").is_file()


def test_an_extended_policy_loads_with_its_options_and_keeps_the_old_weights(source, tmp_path):
    path, policy = source
    extend_policy.main(["--from", str(path), "--set", "scene_resolution=full", "--set", "gripper_prior=2",
                        "--out", str(tmp_path / "ext")])  # fmt: skip
    ext = PolicyBase.load(tmp_path / "ext" / "policy")
    assert (ext.cfg.scene_resolution, ext.cfg.gripper_prior) == ("full", 2.0)
    assert torch.equal(ext.perception.gripper, policy.perception.gripper)
    assert torch.equal(ext.net[0].weight, policy.net[0].weight)
    assert np.isfinite(ext.act({k: v.sample() for k, v in deploy_space().spaces.items()})).all()


def test_a_bad_option_is_refused_in_one_line(source, tmp_path):
    with pytest.raises(ValueError, match="--set 'resolution=full': expected KEY=VALUE with KEY a policy field"):
        extend_policy.main(["--from", str(source[0]), "--set", "resolution=full", "--out", str(tmp_path / "x")])
    with pytest.raises(ValueError, match="--fit-prior needs --set gripper_prior"):
        extend_policy.main(["--from", str(source[0]), "--fit-prior", str(tmp_path), "--out", str(tmp_path / "y")])
