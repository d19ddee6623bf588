"""bench/policy_options.py: a run's policy, same weights, with act()-time options (the estimate filter, issue 20)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ast_robot.config import PolicyConfig, dump_config, load_config
from ast_robot.policies.policy import PolicyBase, build_policy
from ast_robot.run_layout import POLICY_DIR
from tests.policies.test_estimate_filter import observations
from tests.policies.test_two_stage_wrist import TWO_STAGE, wrist_space

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.policy_options import main, write  # noqa: E402

CONFIG = Path(__file__).resolve().parents[2] / "configs/experiments/pickplace_fr3_pixels_bc.yaml"


@pytest.fixture()
def run(tmp_path):
    """A run folder: the FR3 pixel config and a small two_stage student (random weights)."""
    torch.manual_seed(0)
    build_policy(PolicyConfig(**TWO_STAGE), wrist_space(), 4).save(tmp_path / "run" / POLICY_DIR)
    (tmp_path / "run" / "config.yaml").write_text(dump_config(load_config(CONFIG)))
    return tmp_path / "run"


def test_the_filter_is_set_and_nothing_else_changes(run, tmp_path):
    write(run, tmp_path / "out", ["policy.estimate_filter=[10]"])
    old, new = PolicyBase.load(run / POLICY_DIR), PolicyBase.load(tmp_path / "out" / POLICY_DIR)
    assert old.cfg.estimate_filter == [] and new.cfg.estimate_filter == [10]
    assert load_config(tmp_path / "out" / "config.yaml").policy.estimate_filter == [10]
    for (k, a), (j, b) in zip(old.state_dict().items(), new.state_dict().items(), strict=True):
        assert k == j and torch.equal(a, b)
    first = observations(1, seed=7)[0]
    np.testing.assert_allclose(new.act(first), old.act(first), rtol=0, atol=1e-5)  # one frame: the estimate
    write(run, tmp_path / "same", [])  # null case: no option, the same student
    again = PolicyBase.load(tmp_path / "same" / POLICY_DIR)
    assert again.cfg == old.cfg and torch.equal(torch.as_tensor(again.act(first)), torch.as_tensor(old.act(first)))


def test_an_option_that_needs_training_is_refused_in_one_line(run, tmp_path):
    allowed = r"\['policy.estimate_filter', 'policy.place_presence'\]"
    with pytest.raises(SystemExit, match=r"only act\(\)-time options .*" + allowed) as err:
        main(["--run", str(run), "--out", str(tmp_path / "out"), "--set", "policy.n_keypoints=3"])
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists()
